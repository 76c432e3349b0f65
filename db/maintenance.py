"""Retention and partition upkeep, for the modes where TimescaleDB policies are not available.

``tsl`` mode needs nothing here (its policies run inside the database). ``apache`` mode drops
whole chunks past retention; ``native`` mode creates day partitions ahead and drops old ones.
Run hourly by ingest and on demand by ``python -m db maintain``. Idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from db.migrate import StoreMode, recorded_mode

log = logging.getLogger("gridwatch.db")


@dataclass(frozen=True)
class MaintenanceReport:
    mode: StoreMode
    dropped: int = 0
    created: int = 0


def maintain(conn: psycopg.Connection, retention_days: int, days_ahead: int) -> MaintenanceReport:
    mode = recorded_mode(conn)
    if mode is None:
        raise RuntimeError("database not migrated: run `python -m db migrate` first")
    if mode is StoreMode.TSL:
        return MaintenanceReport(mode)
    if mode is StoreMode.APACHE:
        rows = conn.execute(
            "SELECT drop_chunks('gps_fix', older_than => now() - make_interval(days => %s))", (retention_days,)
        ).fetchall()
        report = MaintenanceReport(mode, dropped=len(rows))
    else:
        created = sum(
            conn.execute("SELECT gw_ensure_partitions(%s, current_date - 1, %s)", (table, days_ahead + 1)).fetchone()[0]
            for table in ("gps_fix", "terminal_event")
        )
        dropped = conn.execute(
            "SELECT gw_drop_partitions_before('gps_fix', current_date - %s)", (retention_days,)
        ).fetchone()[0]
        report = MaintenanceReport(mode, dropped=dropped, created=created)
    conn.commit()
    if report.dropped or report.created:
        log.info("maintenance (%s): %d dropped past %d days, %d partitions created", mode, report.dropped, retention_days, report.created)
    return report
