"""The registry tables in PostgreSQL (db/migrations/0010_registry.sql): every SQL statement of grid/.

Writes go through one pattern: COPY the rows into a temporary stage table, then
``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` — so a re-import updates instead of
duplicating, and 70,000 entities load in about a second. Callers own the connection and the
transaction (``with conn.transaction():``), so an import commits all of its tables or none.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence

from psycopg import sql
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

GRID_VERSION_KEY = "grid_version"


def grid_version(conn) -> str | None:
    """The current grid version (gw_meta 'grid_version'): a cheap "did the grid change?" for ingest."""
    row = conn.execute("SELECT value FROM gw_meta WHERE key = %s", (GRID_VERSION_KEY,)).fetchone()
    return row[0] if row else None


def bump_grid_version(conn) -> str:
    """Give the grid a new version (UTC time + random suffix), so every process reloads it."""
    version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    conn.execute(
        "INSERT INTO gw_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (GRID_VERSION_KEY, version),
    )
    return version


def load_level2(conn) -> list[tuple[str, str, BaseGeometry]]:
    """(code, level1_code, geometry) of every level-2 grid."""
    rows = conn.execute("SELECT code, level1_code, geom FROM grid_level2 ORDER BY code").fetchall()
    return [(c, p, shape(g if isinstance(g, dict) else json.loads(g))) for c, p, g in rows]


def load_level1(conn) -> list[tuple[str, str, BaseGeometry]]:
    """(code, branch_code, geometry) of every level-1 grid."""
    rows = conn.execute("SELECT code, branch_code, geom FROM grid_level1 ORDER BY code").fetchall()
    return [(c, p, shape(g if isinstance(g, dict) else json.loads(g))) for c, p, g in rows]


def count(conn, table: str) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def existing_codes(conn, table: str, key: str = "code") -> set[str]:
    q = sql.SQL("SELECT {} FROM {}").format(sql.Identifier(key), sql.Identifier(table))
    return {r[0] for r in conn.execute(q)}


def upsert(conn, table: str, columns: Sequence[str], key: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY ``rows`` into a stage table and upsert them into ``table`` on ``key``; returns rows written.

    Rows must be unique on ``key`` (the importer drops and reports duplicates first).
    """
    stage = sql.Identifier(f"_stage_{table}")
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
            stage, sql.Identifier(table)
        )
    )
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, cols)) as copy:
            for row in rows:
                copy.write_row(row)
        updates = [c for c in columns if c not in key]
        conflict = sql.SQL(", ").join(map(sql.Identifier, key))
        if updates:
            action = sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updates
            )
        else:
            action = sql.SQL("DO NOTHING")
        cur.execute(
            sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT ({k}) ").format(
                t=sql.Identifier(table), c=cols, s=stage, k=conflict
            )
            + action
        )
        n = cur.rowcount
    conn.execute(sql.SQL("DROP TABLE {}").format(stage))
    return n


def replace_adjacency(conn, pairs: Iterable[tuple[str, str]]) -> int:
    """Replace grid_adjacency with ``pairs`` (each stored in both directions)."""
    both = sorted({p for a, b in pairs for p in ((a, b), (b, a))})
    conn.execute("DELETE FROM grid_adjacency")
    return upsert(conn, "grid_adjacency", ("a", "b"), ("a", "b"), both)


def replace_person_grids(conn, person_ids: Iterable[str], links: Sequence[tuple[str, str, str]]) -> int:
    """Set the grids of ``person_ids`` to exactly ``links`` (person_id, grid_code, role)."""
    ids = sorted(set(person_ids))
    conn.execute("DELETE FROM person_grid WHERE person_id = ANY(%s)", (ids,))
    return upsert(conn, "person_grid", ("person_id", "grid_code", "role"), ("person_id", "grid_code", "role"), links)
