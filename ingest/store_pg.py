"""History in PostgreSQL: one transaction per batch, COPY into a stage, insert skipping duplicates.

Delivery is at-least-once; storage is exactly-once: ``INSERT ... ON CONFLICT DO NOTHING
RETURNING`` tells which rows are new, and only those are rolled up (``app`` rollup mode) and
handed on to the live state, so a redelivery neither adds a row nor counts twice.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import set_json_dumps

from db.migrate import StoreMode, recorded_mode
from ingest.pipeline import AckRow, Decoded, EventRow, FixRow, StatusRow

log = logging.getLogger("gridwatch.ingest.pg")

# Each stage's columns with the table's own types: the COPY is binary (7x less Python per row than
# text: no number or time formatting), and a binary COPY must name every type exactly.
FIX_COLUMNS = {"ts": "timestamptz", "terminal_id": "text", "seq": "int8", "lat": "float8", "lon": "float8",
               "acc_m": "float4", "speed_mps": "float4", "heading_deg": "float4", "battery_pct": "float4",
               "grid2_code": "text", "grid1_code": "text", "received_at": "timestamptz", "extra": "jsonb"}
EVENT_COLUMNS = {"ts": "timestamptz", "terminal_id": "text", "seq": "int8", "kind": "text", "body": "jsonb",
                 "lat": "float8", "lon": "float8", "grid2_code": "text", "grid1_code": "text",
                 "received_at": "timestamptz", "extra": "jsonb"}
_FIX_COLS = ", ".join(FIX_COLUMNS)
_EVENT_COLS = ", ".join(EVENT_COLUMNS)
_EPOCH = "timestamptz '2000-01-01 00:00:00+00'"
# How many rows were new, and their keys only when that is not all of the batch: a batch without
# repeats (nearly every one) costs one row back instead of one per fix, parsed and matched in Python.
_NEW_KEYS = """,
counted AS (SELECT count(*) AS n FROM ins)
SELECT counted.n, ins.terminal_id, ins.seq, ins.ts FROM counted LEFT JOIN ins ON counted.n < %(staged)s"""

_INSERT_FIXES = f"""
WITH ins AS (
    INSERT INTO gps_fix ({_FIX_COLS}) SELECT {_FIX_COLS} FROM stage_fix
    ON CONFLICT DO NOTHING RETURNING terminal_id, seq, ts, grid2_code
){{rollup}}{_NEW_KEYS}"""
_ROLLUP_FIXES = f""",
roll AS (
    INSERT INTO fix_hourly (bucket, grid2_code, n)
    SELECT date_bin('1 hour', ts, {_EPOCH}), coalesce(grid2_code, ''), count(*) FROM ins GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bucket, grid2_code) DO UPDATE SET n = fix_hourly.n + EXCLUDED.n
)"""
_INSERT_EVENTS = f"""
WITH ins AS (
    INSERT INTO terminal_event ({_EVENT_COLS}) SELECT {_EVENT_COLS} FROM stage_event
    ON CONFLICT DO NOTHING RETURNING terminal_id, seq, ts, kind, grid2_code
){{rollup}}{_NEW_KEYS}"""
_ROLLUP_EVENTS = f""",
roll AS (
    INSERT INTO event_hourly (bucket, grid2_code, kind, n)
    SELECT date_bin('1 hour', ts, {_EPOCH}), coalesce(grid2_code, ''), kind, count(*) FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, grid2_code, kind) DO UPDATE SET n = event_hourly.n + EXCLUDED.n
)"""


@dataclass
class Stored:
    """The rows of a batch that were new to the database (what live state must reflect)."""

    fixes: list[FixRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    acks: list[AckRow] = field(default_factory=list)
    statuses: list[StatusRow] = field(default_factory=list)
    dead: int = 0
    duplicates: int = 0

    def merge(self, other: "Stored") -> None:
        self.fixes += other.fixes
        self.events += other.events
        self.acks = self.acks + other.acks
        self.statuses = self.statuses + other.statuses
        self.dead += other.dead
        self.duplicates += other.duplicates


class PgStore:
    """One connection, owned by the ingest worker thread."""

    def __init__(self, dsn: str, connect: Callable[[], psycopg.Connection] | None = None):
        self.dsn = dsn
        # the service passes one with timeouts (ingest.connections); tools and tests may use the plain one
        self._connect = connect or (lambda: psycopg.connect(self.dsn, application_name="gridwatch-ingest"))
        self.conn: psycopg.Connection | None = None
        self.mode: StoreMode | None = None

    def connect(self) -> None:
        self.close()
        conn = self._connect()
        self.mode = recorded_mode(conn)
        if self.mode is None:
            conn.close()
            raise RuntimeError("database not migrated: run `python -m db migrate`")
        for table, source in (("stage_fix", "gps_fix"), ("stage_event", "terminal_event")):
            conn.execute(f"CREATE TEMP TABLE {table} (LIKE {source}) ON COMMIT DELETE ROWS")
        conn.commit()
        self.conn = conn
        rollup = "kept by ingest" if self._rollup_in_app else "continuous aggregates"
        log.info("connected to PostgreSQL (store mode %s, hourly rollup %s)", self.mode, rollup)

    @property
    def _rollup_in_app(self) -> bool:
        return self.mode is not StoreMode.TSL

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()
        self.conn = None

    def connection(self) -> psycopg.Connection:
        """The open connection, (re)connecting when it was closed after a failure."""
        if self.conn is None or self.conn.closed:
            self.connect()
        return self.conn

    def write(self, batch: Decoded) -> Stored:
        """Store a batch in one transaction; raises psycopg.Error (nothing committed) on failure."""
        conn = self.connection()
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            # Never write inside a transaction someone left open: the block below would be a mere
            # savepoint, and what we acknowledge must be committed.
            log.warning("ingest connection was left in a transaction; rolling it back before writing")
            conn.rollback()
        stored = Stored(acks=batch.acks, statuses=batch.statuses, dead=len(batch.dead))
        with conn.transaction():
            with conn.cursor() as cur:
                if batch.fixes:
                    stored.fixes = self._insert(cur, "stage_fix", FIX_COLUMNS, batch.fixes, _INSERT_FIXES, _ROLLUP_FIXES)
                if batch.events:
                    stored.events = self._insert(cur, "stage_event", EVENT_COLUMNS, batch.events, _INSERT_EVENTS,
                                                 _ROLLUP_EVENTS)
                if batch.acks:
                    cur.executemany(
                        "INSERT INTO command_ack (command_id, terminal_id, status, ts, note, received_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [(a.command_id, a.terminal_id, a.status, a.ts, a.note, a.received_at) for a in batch.acks],
                    )
                if batch.statuses:
                    cur.executemany(
                        "INSERT INTO terminal_status (terminal_id, ts, online, received_at) VALUES (%s, %s, %s, %s)",
                        [(s.terminal_id, s.ts, s.online, s.received_at) for s in batch.statuses],
                    )
                if batch.dead:
                    cur.executemany(
                        "INSERT INTO dead_letter (received_at, topic, payload, reason, detail) VALUES (%s, %s, %s, %s, %s)",
                        [(d.received_at, d.topic, d.payload, d.reason.value, d.detail) for d in batch.dead],
                    )
        stored.duplicates = len(batch.fixes) + len(batch.events) - len(stored.fixes) - len(stored.events)
        return stored

    def _insert(self, cur, stage: str, columns, rows, insert_sql: str, rollup_sql: str) -> list:
        """The rows of ``rows`` that were new to the database."""
        set_json_dumps(_json_text, context=cur)  # body and extra are JSON text already
        row_of = operator.attrgetter(*columns)
        with cur.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(columns.values()))
            for r in rows:
                copy.write_row(row_of(r))
        sql = insert_sql.format(rollup=rollup_sql if self._rollup_in_app else "")
        cur.execute(sql, {"staged": len(rows)})
        result = cur.fetchall()
        if result[0][0] == len(rows):
            return rows  # all new
        return _take_new(rows, {(tid, seq, ts) for _, tid, seq, ts in result if tid is not None})


def _json_text(text: str) -> str:
    return text


def _take_new(rows: list, new_keys: set) -> list:
    """The rows whose key the database reported as inserted, each key once (a batch may hold a redelivery)."""
    taken = []
    for r in rows:
        if r.key in new_keys:
            new_keys.discard(r.key)
            taken.append(r)
    return taken
