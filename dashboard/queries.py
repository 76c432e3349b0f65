"""Read-only SQL of the wall. Every query names a bounded time window or a key, and each has
an index that starts with it (docs/architecture.md); none scans history.

Rows are typed (``psycopg.rows.class_row`` into frozen dataclasses). Callers pass a
connection from the pool; nothing here writes (alert actions live in ``actions.py``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.rows import class_row
from shapely.geometry import mapping, shape

# Event kinds the activity chart shows (fixes and heartbeats would drown them).
ACTIVITY_KINDS = ("inspection.started", "inspection.completed", "report", "sos", "patrol.started", "patrol.ended")
TASK_KINDS = ("inspection.started", "inspection.completed", "patrol.started", "patrol.ended")


# ---------------------------------------------------------------- registry / map
def grid_version(conn: psycopg.Connection) -> str:
    """gw_meta 'grid_version' ('0' before any import): the ETag of the map layers."""
    if conn.execute("SELECT to_regclass('gw_meta')").fetchone()[0] is None:
        return "0"
    row = conn.execute("SELECT value FROM gw_meta WHERE key = 'grid_version'").fetchone()
    return row[0] if row else "0"


def _round_coords(obj: Any, nd: int = 5) -> Any:
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, (list, tuple)):
        return [_round_coords(x, nd) for x in obj]
    return obj


def grids_geojson(conn: psycopg.Connection, level: int, language: str, tolerance_deg: float = 0.0003) -> dict:
    """Level-1 or level-2 grids as one FeatureCollection, simplified (~30 m) for the map.

    Properties: ``code``, ``level``, ``parent`` and ``tooltip`` (the name in ``language``,
    HTML-escaped: dash-leaflet binds ``tooltip`` with Leaflet's bindTooltip, which sets it as
    HTML, and a grid's name comes from an imported file).
    """
    name = "name_en" if language == "en" else "name_zh"
    if level == 1:
        q = f"SELECT code, {name} AS name, name_zh, branch_code AS parent, geom FROM grid_level1 ORDER BY code"
    else:
        q = f"SELECT code, {name} AS name, name_zh, level1_code AS parent, geom FROM grid_level2 ORDER BY code"
    features = []
    for code, nm, name_zh, parent, geom in conn.execute(q):
        g = geom if isinstance(geom, dict) else json.loads(geom)
        try:
            simple = shape(g).simplify(tolerance_deg, preserve_topology=True)
            g = mapping(simple)
        except Exception:  # geometry the importer kept but shapely dislikes: show it as stored
            pass
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": g["type"], "coordinates": _round_coords(g["coordinates"])},
                "properties": {"code": code, "level": level, "parent": parent, "tooltip": html.escape(nm or name_zh or "", quote=True)},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def entities_geojson_text(conn: psycopg.Connection) -> str:
    """Every located market entity as compact GeoJSON text (property ``r``: risk level A-D)."""
    parts = []
    with conn.cursor() as cur:
        cur.execute("SELECT lon, lat, risk_level FROM market_entity WHERE lat IS NOT NULL AND lon IS NOT NULL")
        for lon, lat, risk in cur:
            parts.append(
                f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon:.5f},{lat:.5f}]}},"properties":{{"r":"{risk}"}}}}'
            )
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


@dataclass(frozen=True, slots=True)
class TerminalMeta:
    terminal_id: str
    person_id: str | None
    name: str | None
    role: str | None


def terminal_meta(conn: psycopg.Connection) -> list[TerminalMeta]:
    with conn.cursor(row_factory=class_row(TerminalMeta)) as cur:
        return cur.execute(
            "SELECT t.terminal_id, t.person_id, p.name, p.role FROM terminal t"
            " LEFT JOIN person p ON p.person_id = t.person_id ORDER BY t.terminal_id"
        ).fetchall()


@dataclass(frozen=True, slots=True)
class Level1Bounds:
    code: str
    name: str
    centroid_lat: float | None
    centroid_lon: float | None


# ---------------------------------------------------------------- counters
def kind_totals(conn: psycopg.Connection, kinds: tuple[str, ...], start: datetime, end: datetime) -> dict[str, int]:
    """Sum of ``activity_hourly`` per kind for buckets in [start, end)."""
    rows = conn.execute(
        "SELECT kind, coalesce(sum(n), 0)::bigint FROM activity_hourly"
        " WHERE kind = ANY(%s) AND bucket >= %s AND bucket < %s GROUP BY kind",
        (list(kinds), start, end),
    ).fetchall()
    out = {k: 0 for k in kinds}
    out.update({k: int(n) for k, n in rows})
    return out


@dataclass(frozen=True, slots=True)
class CaseLoopFigures:
    """The closed-supervision-loop figures the bureau reports. ``None`` = no data source yet (shown as "—").

    They come from the later "closed supervision loop" issue. Until its tables exist this
    returns all ``None``: the wall never shows an invented number.
    """

    leads_verified: int | None = None
    cases_filed: int | None = None
    police_transfers: int | None = None
    penalty_decisions: int | None = None
    mediation_rate_pct: float | None = None


CASE_LOOP_VIEW = "case_loop_summary"  # (leads_verified, cases_filed, police_transfers, penalty_decisions, mediation_rate_pct)


def case_loop_figures(conn: psycopg.Connection) -> CaseLoopFigures:
    """Read ``case_loop_summary`` (one row) if the closed-loop issue has created it, else all None."""
    if conn.execute("SELECT to_regclass(%s)", (CASE_LOOP_VIEW,)).fetchone()[0] is None:
        return CaseLoopFigures()
    with conn.cursor(row_factory=class_row(CaseLoopFigures)) as cur:
        row = cur.execute(
            "SELECT leads_verified, cases_filed, police_transfers, penalty_decisions, mediation_rate_pct"
            f" FROM {CASE_LOOP_VIEW} LIMIT 1"
        ).fetchone()
    return row or CaseLoopFigures()


def terminal_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM terminal").fetchone()[0])


# ---------------------------------------------------------------- alerts
def open_alerts_by_grid(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT grid2_code, count(*) FROM alert WHERE state <> 'resolved' AND grid2_code IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {g: int(n) for g, n in rows}


# ---------------------------------------------------------------- details
@dataclass(frozen=True, slots=True)
class GridInfo:
    code: str
    name_zh: str
    name_en: str
    level1_code: str
    level1_name_zh: str
    level1_name_en: str


@dataclass(frozen=True, slots=True)
class TeamMember:
    person_id: str
    name: str
    role: str
    phone: str
    terminal_id: str | None


def grid_info(conn: psycopg.Connection, code: str) -> GridInfo | None:
    with conn.cursor(row_factory=class_row(GridInfo)) as cur:
        return cur.execute(
            "SELECT g.code, g.name_zh, g.name_en, g.level1_code, l.name_zh AS level1_name_zh, l.name_en AS level1_name_en"
            " FROM grid_level2 g JOIN grid_level1 l ON l.code = g.level1_code WHERE g.code = %s",
            (code,),
        ).fetchone()


def grid_team(conn: psycopg.Connection, code: str, level1_code: str) -> list[TeamMember]:
    """The level-1 supervisor(s) of the grid's township, then its officers, co-managers and informants."""
    with conn.cursor(row_factory=class_row(TeamMember)) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (p.person_id) p.person_id, p.name, p.role, p.phone, t.terminal_id"
            " FROM person_grid pg JOIN person p ON p.person_id = pg.person_id"
            " LEFT JOIN terminal t ON t.person_id = p.person_id"
            " WHERE pg.grid_code = %s OR (pg.grid_code = %s AND p.role = 'level1_supervisor')"
            " ORDER BY p.person_id, t.terminal_id",
            (code, level1_code),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    terminal_id: str
    person_id: str | None
    name: str | None
    role: str | None
    phone: str | None


def terminal_info(conn: psycopg.Connection, terminal_id: str) -> TerminalInfo | None:
    with conn.cursor(row_factory=class_row(TerminalInfo)) as cur:
        return cur.execute(
            "SELECT t.terminal_id, t.person_id, p.name, p.role, p.phone FROM terminal t"
            " LEFT JOIN person p ON p.person_id = t.person_id WHERE t.terminal_id = %s",
            (terminal_id,),
        ).fetchone()


@dataclass(frozen=True, slots=True)
class TaskEvent:
    ts: datetime
    kind: str
    body: dict


def current_task(conn: psycopg.Connection, terminal_id: str, since: datetime) -> TaskEvent | None:
    """The newest inspection/patrol event of the terminal since ``since`` (index terminal_id, ts)."""
    with conn.cursor(row_factory=class_row(TaskEvent)) as cur:
        return cur.execute(
            "SELECT ts, kind, body FROM terminal_event WHERE terminal_id = %s AND ts >= %s AND kind = ANY(%s)"
            " ORDER BY ts DESC LIMIT 1",
            (terminal_id, since, list(TASK_KINDS)),
        ).fetchone()


@dataclass(frozen=True, slots=True)
class FixPoint:
    ts: datetime
    terminal_id: str
    lat: float
    lon: float


def track(conn: psycopg.Connection, terminal_id: str, start: datetime, end: datetime, limit: int = 20_000) -> list[FixPoint]:
    """Fixes of one terminal with start <= ts < end, oldest first (index gps_fix_terminal_ts_seq)."""
    with conn.cursor(row_factory=class_row(FixPoint)) as cur:
        return cur.execute(
            "SELECT ts, terminal_id, lat, lon FROM gps_fix WHERE terminal_id = %s AND ts >= %s AND ts < %s"
            " ORDER BY ts, seq LIMIT %s",
            (terminal_id, start, end, limit),
        ).fetchall()


def grid_fixes(conn: psycopg.Connection, grid2_code: str, start: datetime, end: datetime, limit: int = 100_000) -> list[FixPoint]:
    """Fixes inside one level-2 grid with start <= ts < end, oldest first (index gps_fix_grid_ts)."""
    with conn.cursor(row_factory=class_row(FixPoint)) as cur:
        return cur.execute(
            "SELECT ts, terminal_id, lat, lon FROM gps_fix WHERE grid2_code = %s AND ts >= %s AND ts < %s"
            " ORDER BY ts, terminal_id, seq LIMIT %s",
            (grid2_code, start, end, limit),
        ).fetchall()


def is_level2_grid(conn: psycopg.Connection, code: str) -> bool:
    return conn.execute("SELECT 1 FROM grid_level2 WHERE code = %s", (code,)).fetchone() is not None


# ---------------------------------------------------------------- charts
@dataclass(frozen=True, slots=True)
class KindBucket:
    bucket: datetime
    kind: str
    n: int


def activity_by_kind(conn: psycopg.Connection, start: datetime, end: datetime, bin_hours: int) -> list[KindBucket]:
    """Event counts per kind in bins of ``bin_hours`` from the hourly rollup (never raw history).

    Bins start at midnight in the zone of ``end`` (the bureau's), so a 24-hour bin is a local day.
    """
    origin = datetime(2000, 1, 1, tzinfo=end.tzinfo or timezone.utc)
    with conn.cursor(row_factory=class_row(KindBucket)) as cur:
        return cur.execute(
            "SELECT date_bin(make_interval(hours => %s), bucket, %s) AS bucket,"
            " kind, sum(n)::bigint AS n FROM activity_hourly"
            " WHERE kind = ANY(%s) AND bucket >= %s AND bucket < %s GROUP BY 1, 2 ORDER BY 1, 2",
            (bin_hours, origin, list(ACTIVITY_KINDS), start, end),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class GridCount:
    code: str
    name: str
    n: int


def inspections_by_grid(conn: psycopg.Connection, start: datetime, end: datetime, language: str, top: int = 10) -> list[GridCount]:
    name = "g.name_en" if language == "en" else "g.name_zh"
    with conn.cursor(row_factory=class_row(GridCount)) as cur:
        return cur.execute(
            f"SELECT a.grid2_code AS code, coalesce(nullif({name}, ''), g.name_zh, a.grid2_code) AS name, sum(a.n)::bigint AS n"
            " FROM activity_hourly a LEFT JOIN grid_level2 g ON g.code = a.grid2_code"
            " WHERE a.kind = 'inspection.completed' AND a.bucket >= %s AND a.bucket < %s AND a.grid2_code <> ''"
            " GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT %s",
            (start, end, top),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class CategoryCount:
    category: str
    n: int


def reports_by_category(conn: psycopg.Connection, start: datetime, end: datetime) -> list[CategoryCount]:
    """Report events per category in [start, end) (index terminal_event_kind_ts)."""
    with conn.cursor(row_factory=class_row(CategoryCount)) as cur:
        return cur.execute(
            "SELECT coalesce(body->>'category', 'other') AS category, count(*)::bigint AS n FROM terminal_event"
            " WHERE kind = 'report' AND ts >= %s AND ts < %s GROUP BY 1 ORDER BY 2 DESC",
            (start, end),
        ).fetchall()
