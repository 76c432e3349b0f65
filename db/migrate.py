"""Apply ``db/migrations/NNNN_name[.variant].sql`` in order, once each, recording the version.

The store mode decides which variant of a version applies:

* ``tsl``    TimescaleDB with the Timescale License: hypertables, continuous aggregates, policies.
* ``apache`` TimescaleDB, Apache edition: hypertables; rollups and retention done by Gridwatch.
* ``native`` plain PostgreSQL: native range partitions by day; rollups and retention by Gridwatch.

Variant suffixes: ``.hyper`` (tsl, apache), ``.native``, ``.tsl``, ``.app`` (apache, native);
no suffix applies in every mode. The mode is recorded in ``gw_meta`` the first time and kept.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psycopg

log = logging.getLogger("gridwatch.db")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<variant>hyper|native|tsl|app))?\.sql$")
_LOCK_KEY = 0x6772_6964  # advisory lock: one migrator at a time when several processes start


class StoreMode(StrEnum):
    TSL = "tsl"
    APACHE = "apache"
    NATIVE = "native"


_VARIANTS = {
    StoreMode.TSL: {None, "hyper", "tsl"},
    StoreMode.APACHE: {None, "hyper", "app"},
    StoreMode.NATIVE: {None, "native", "app"},
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variant: str | None
    path: Path


def plan(paths: list[Path], mode: StoreMode) -> list[Migration]:
    """The migrations that apply in ``mode``, in version order. Pure."""
    chosen: dict[int, Migration] = {}
    for path in sorted(paths):
        m = _FILE.match(path.name)
        if not m:
            raise ValueError(f"migration file name not understood: {path.name}")
        if m["variant"] not in _VARIANTS[mode]:
            continue
        version = int(m["version"])
        if version in chosen:
            raise ValueError(f"two migrations for version {version} in mode {mode}: {chosen[version].path.name}, {path.name}")
        chosen[version] = Migration(version, m["name"], m["variant"], path)
    return [chosen[v] for v in sorted(chosen)]


def detect_mode(conn: psycopg.Connection) -> StoreMode:
    """TimescaleDB needs to be both installed and preloaded; its license decides the rest."""
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available or "timescaledb" not in preload:
        return StoreMode.NATIVE
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    license_ = conn.execute("SHOW timescaledb.license").fetchone()[0]
    return StoreMode.TSL if license_ == "timescale" else StoreMode.APACHE


def recorded_mode(conn: psycopg.Connection) -> StoreMode | None:
    if conn.execute("SELECT to_regclass('gw_meta')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT value FROM gw_meta WHERE key = 'store_mode'").fetchone()
    return StoreMode(row[0]) if row else None


def migrate(dsn: str, retention_days: int = 400, mode: StoreMode | None = None) -> list[Migration]:
    """Bring the database at ``dsn`` up to date; returns what was applied. Idempotent."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            return _migrate_locked(conn, retention_days, mode)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _migrate_locked(conn: psycopg.Connection, retention_days: int, mode: StoreMode | None) -> list[Migration]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
        " variant text, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    mode = recorded_mode(conn) or mode or detect_mode(conn)
    if mode is not StoreMode.NATIVE:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    conn.execute("SELECT set_config('gridwatch.retention_days', %s, false)", (str(retention_days),))
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for m in plan(list(MIGRATIONS_DIR.glob("*.sql")), mode):
        if m.version in done:
            continue
        log.info("applying migration %04d %s (%s, mode %s)", m.version, m.name, m.variant or "all modes", mode)
        with conn.transaction():
            conn.execute(m.path.read_text())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                (m.version, m.name, m.variant),
            )
            if m.version == 1:
                conn.execute(
                    "INSERT INTO gw_meta (key, value) VALUES ('store_mode', %s) ON CONFLICT (key) DO NOTHING",
                    (mode.value,),
                )
        applied.append(m)
    log.info("schema up to date: mode %s, %d migration(s) applied", mode, len(applied))
    return applied


def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` if it does not exist (connects to ``postgres``)."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    name = info.get("dbname") or "postgres"
    admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
            log.info("created database %s", name)


def drop_database(dsn: str) -> None:
    """Drop the database named in ``dsn`` (its connections are closed first): for scratch databases."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
