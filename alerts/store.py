"""What the engine reads from PostgreSQL (the record) and the state it checkpoints there.

Reads are set-based and bounded: events and status messages by arrival time from a committed
high-water mark (index on ``received_at``), each registered terminal's newest fix by one
probe of ``gps_fix (terminal_id, ts, seq)``, report counts by ``(kind, ts)``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from alerts.model import EventIn, FixSample, Person, TerminalState

_EVENT_COLS = "terminal_id, seq, ts, kind, body, lat, lon, grid2_code, received_at"


def _event(row: Any) -> EventIn:
    tid, seq, ts, kind, body, lat, lon, g2, rec = row
    if isinstance(body, (str, bytes)):
        body = orjson.loads(body)
    return EventIn(tid, seq, ts, kind, body if isinstance(body, dict) else {}, lat, lon, g2, rec)


# ---------------------------------------------------------------- marks
def mark(conn: psycopg.Connection, source: str, initial: datetime) -> datetime:
    """The committed mark of ``source``, locked for this transaction (one engine evaluates at a time)."""
    conn.execute("INSERT INTO alert_engine_mark (source, mark) VALUES (%s, %s) ON CONFLICT DO NOTHING", (source, initial))
    return conn.execute("SELECT mark FROM alert_engine_mark WHERE source = %s FOR UPDATE", (source,)).fetchone()[0]


def advance_mark(conn: psycopg.Connection, source: str, to: datetime) -> None:
    conn.execute("UPDATE alert_engine_mark SET mark = greatest(mark, %s), updated_at = now() WHERE source = %s", (to, source))


# ---------------------------------------------------------------- events
def events_after(conn: psycopg.Connection, after: datetime, limit: int) -> list[EventIn]:
    """Events that arrived after the mark, oldest first."""
    rows = conn.execute(
        f"SELECT {_EVENT_COLS} FROM terminal_event WHERE received_at > %s ORDER BY received_at LIMIT %s", (after, limit)
    ).fetchall()
    return [_event(r) for r in rows]


def unseen_events_between(conn: psycopg.Connection, lo: datetime, hi: datetime, limit: int) -> list[EventIn]:
    """Events that arrived in (lo, hi] and were never evaluated: a batch committed after the mark passed it."""
    rows = conn.execute(
        f"""SELECT {_EVENT_COLS} FROM terminal_event e WHERE received_at > %s AND received_at <= %s
            AND NOT EXISTS (SELECT 1 FROM alert_seen_event s WHERE s.terminal_id = e.terminal_id AND s.seq = e.seq AND s.ts = e.ts)
            ORDER BY received_at LIMIT %s""",
        (lo, hi, limit),
    ).fetchall()
    return [_event(r) for r in rows]


def claim_new(conn: psycopg.Connection, events: list[EventIn]) -> list[EventIn]:
    """Record events as evaluated; returns those not evaluated before (the ones the rules may see)."""
    if not events:
        return []
    rows = conn.execute(
        """INSERT INTO alert_seen_event (terminal_id, seq, ts, received_at)
           SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
           ON CONFLICT DO NOTHING RETURNING terminal_id, seq, ts""",
        ([e.terminal_id for e in events], [e.seq for e in events], [e.ts for e in events], [e.received_at for e in events]),
    ).fetchall()
    new = {(t, s, ts) for t, s, ts in rows}
    return [e for e in events if (e.terminal_id, e.seq, e.ts) in new]


def prune_seen(conn: psycopg.Connection, before: datetime) -> int:
    return conn.execute("DELETE FROM alert_seen_event WHERE received_at < %s", (before,)).rowcount


def status_after(conn: psycopg.Connection, after: datetime, limit: int) -> list[tuple[str, datetime, bool, datetime]]:
    """(terminal_id, ts, online, received_at) of status messages that arrived after ``after``."""
    return conn.execute(
        "SELECT terminal_id, ts, online, received_at FROM terminal_status WHERE received_at > %s ORDER BY received_at LIMIT %s",
        (after, limit),
    ).fetchall()


# ---------------------------------------------------------------- fixes
def newest_fixes(conn: psycopg.Connection, terminal_ids: list[str], since: datetime) -> list[FixSample]:
    """Each terminal's newest fix since ``since``: one index probe per terminal, whatever the fix rate."""
    if not terminal_ids:
        return []
    rows = conn.execute(
        """SELECT n.terminal_id, n.ts, n.lat, n.lon, n.grid2_code, n.battery_pct, n.received_at
           FROM unnest(%s::text[]) AS t(id) CROSS JOIN LATERAL (
               SELECT terminal_id, ts, lat, lon, grid2_code, battery_pct, received_at FROM gps_fix
               WHERE terminal_id = t.id AND ts > %s ORDER BY ts DESC LIMIT 1) n""",
        (terminal_ids, since),
    ).fetchall()
    return [FixSample(*r) for r in rows]


# ---------------------------------------------------------------- reports, for the surge rule
def reports_last_hour(conn: psycopg.Connection, now: datetime) -> dict[str, int]:
    rows = conn.execute(
        "SELECT grid2_code, count(*) FROM terminal_event WHERE kind = 'report' AND ts > %s AND ts <= %s"
        " AND grid2_code IS NOT NULL GROUP BY 1",
        (now - timedelta(hours=1), now + timedelta(minutes=5)),
    ).fetchall()
    return {g: int(n) for g, n in rows}


def report_baseline(conn: psycopg.Connection, grids: list[str], now: datetime, days: int) -> tuple[dict[str, int], float]:
    """Reports per grid in the ``days`` before the last hour, and how many hours of history that is
    (fewer than ``days`` on a young installation: its first report bounds it)."""
    hi = now - timedelta(hours=1)
    lo = now - timedelta(days=days)
    first = conn.execute("SELECT min(ts) FROM terminal_event WHERE kind = 'report' AND ts > %s", (lo,)).fetchone()[0]
    hours = max(0.0, (hi - max(lo, first)).total_seconds() / 3600) if first else 0.0
    rows = conn.execute(
        "SELECT grid2_code, count(*) FROM terminal_event WHERE kind = 'report' AND grid2_code = ANY(%s)"
        " AND ts > %s AND ts <= %s GROUP BY 1",
        (grids, lo, hi),
    ).fetchall()
    return {g: int(n) for g, n in rows}, hours


# ---------------------------------------------------------------- registry
def load_people(conn: psycopg.Connection) -> dict[str, Person]:
    """terminal_id -> its person, with the level-2 grids they may be in: their own (a level-1
    assignment means every level-2 grid in it) and the grids adjacent to those."""
    children: dict[str, set[str]] = defaultdict(set)
    for code, l1 in conn.execute("SELECT code, level1_code FROM grid_level2"):
        children[l1].add(code)
    level2 = set().union(*children.values()) if children else set()
    adjacent: dict[str, set[str]] = defaultdict(set)
    for a, b in conn.execute("SELECT a, b FROM grid_adjacency"):
        adjacent[a].add(b)
    assigned: dict[str, set[str]] = defaultdict(set)
    for pid, code in conn.execute("SELECT person_id, grid_code FROM person_grid"):
        if code in level2:
            assigned[pid].add(code)
        assigned[pid] |= children.get(code, set())
    people = {}
    for tid, pid, name, role, phone in conn.execute(
        "SELECT t.terminal_id, p.person_id, p.name, p.role, p.phone FROM terminal t JOIN person p USING (person_id)"
    ):
        own = assigned.get(pid, set())
        allowed = set(own)
        for g in own:
            allowed |= adjacent.get(g, set())
        people[tid] = Person(pid, name, role, phone, frozenset(allowed))
    return people


def lookup_people(conn: psycopg.Connection, terminal_ids: list[str]) -> dict[str, Person]:
    """The persons of a few terminals, by name and role only (the next full ``load_people`` adds their grids)."""
    rows = conn.execute(
        "SELECT t.terminal_id, p.person_id, p.name, p.role, p.phone FROM terminal t JOIN person p USING (person_id)"
        " WHERE t.terminal_id = ANY(%s)", (terminal_ids,)
    ).fetchall()
    return {tid: Person(pid, name, role, phone) for tid, pid, name, role, phone in rows}


def load_grids(conn: psycopg.Connection) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    names, centroids = {}, {}
    for code, name, lat, lon in conn.execute("SELECT code, name_zh, centroid_lat, centroid_lon FROM grid_level2"):
        names[code] = name
        if lat is not None and lon is not None:
            centroids[code] = (lat, lon)
    return names, centroids


# ---------------------------------------------------------------- terminal state checkpoint
_STATE_COLS = ("terminal_id", "last_seen_at", "last_fix_ts", "lat", "lon", "grid2_code", "battery_pct", "battery_ts",
               "battery_low_since", "outside_since")


def load_states(conn: psycopg.Connection) -> dict[str, TerminalState]:
    rows = conn.execute(f"SELECT {', '.join(_STATE_COLS)} FROM alert_terminal_state").fetchall()
    return {r[0]: TerminalState(*r) for r in rows}


def save_states(conn: psycopg.Connection, states: list[TerminalState]) -> None:
    if not states:
        return
    cols = ", ".join(_STATE_COLS)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _STATE_COLS[1:])
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS stage_alert_state (LIKE alert_terminal_state INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY stage_alert_state ({cols}) FROM STDIN") as copy:
            for s in states:
                copy.write_row(tuple(getattr(s, c) for c in _STATE_COLS))
        cur.execute(f"INSERT INTO alert_terminal_state ({cols}) SELECT {cols} FROM stage_alert_state"
                    f" ON CONFLICT (terminal_id) DO UPDATE SET {sets}, updated_at = now()")


# ---------------------------------------------------------------- orders (their alerts' lifecycle is ours)
def answered_order_alerts(conn: psycopg.Connection) -> list[str]:
    """Dedup keys of unresolved ``order_unacknowledged`` alerts whose order no longer waits on
    anyone: every recipient answered (or was cancelled/expired), or the order ended."""
    rows = conn.execute(
        """SELECT a.dedup_key FROM alert a
           WHERE a.kind = 'order_unacknowledged' AND a.state <> 'resolved' AND a.cleared_at IS NULL
             AND a.dedup_key LIKE 'order_unacknowledged:%%'
             AND NOT EXISTS (
                 SELECT 1 FROM emergency_order o
                 WHERE o.order_id::text = split_part(a.dedup_key, ':', 2) AND o.state = 'active'
                   AND EXISTS (SELECT 1 FROM order_recipient r WHERE r.order_id = o.order_id
                               AND r.state IN ('queued', 'sent', 'no_answer')))"""
    ).fetchall()
    return [k for (k,) in rows]
