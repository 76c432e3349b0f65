"""Read side of the order console, board, wall overlay and HTTP API: the pickers' options,
recent orders, and the board snapshot (cached in Redis < 1 s, shared by every worker).

Writes go through ``orders.desk`` only; this module reads the registry and summarises
``OrderView``s. ``summarize`` is pure.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg

from dashboard.deps import Deps
from schemas.orders import OrderView, RecipientState, SILENT_STATES

log = logging.getLogger("gridwatch.dashboard.orders")

BOARD_TTL_S = 0.4  # the board polls every second; an ack shows within poll + this
BOARD_LIMIT = 20  # active orders on the board
RECENT_WINDOW = timedelta(days=1)
MAX_ROWS = 2000  # per order: the wall overlay's recipients (the board's tables show fewer)
STATE_ORDER = [s.value for s in (RecipientState.QUEUED, RecipientState.SENT, RecipientState.RECEIVED,
                                 RecipientState.ACCEPTED, RecipientState.DONE, RecipientState.REJECTED,
                                 RecipientState.NO_ANSWER, RecipientState.EXPIRED, RecipientState.CANCELLED)]
SILENT = {s.value for s in SILENT_STATES}


# ---------------------------------------------------------------- pickers
def grid_options(conn: psycopg.Connection, language: str) -> list[dict]:
    """Level-1 then level-2 grids as dropdown options: label "name (code)"."""
    name = "coalesce(nullif(name_en, ''), name_zh)" if language == "en" else "name_zh"
    rows = conn.execute(
        f"SELECT 1, code, {name} FROM grid_level1 UNION ALL SELECT 2, code, {name} FROM grid_level2 ORDER BY 1, 2"
    ).fetchall()
    return [{"label": f"{'L1' if lvl == 1 else 'L2'} {nm} ({code})", "value": code} for lvl, code, nm in rows]


def people_options(conn: psycopg.Connection) -> list[dict]:
    """People (each with their terminals) and terminals without a person. Values ``p:<id>`` / ``t:<id>``."""
    rows = conn.execute(
        "SELECT p.person_id, p.name, string_agg(t.terminal_id, ', ' ORDER BY t.terminal_id)"
        " FROM person p LEFT JOIN terminal t ON t.person_id = p.person_id"
        " GROUP BY p.person_id, p.name ORDER BY p.name, p.person_id"
    ).fetchall()
    out = [{"label": f"{nm} · {tids or '—'}", "value": f"p:{pid}"} for pid, nm, tids in rows]
    unowned = conn.execute("SELECT terminal_id FROM terminal WHERE person_id IS NULL ORDER BY terminal_id").fetchall()
    for (tid,) in unowned:
        out.append({"label": tid, "value": f"t:{tid}"})
    return out


def split_people(values: list[str] | None) -> tuple[list[str], list[str]]:
    """Dropdown values -> (person ids, terminal ids)."""
    people, terminals = [], []
    for v in values or []:
        kind, _, ident = str(v).partition(":")
        if kind == "p" and ident:
            people.append(ident)
        elif kind == "t" and ident:
            terminals.append(ident)
    return people, terminals


# ---------------------------------------------------------------- orders
def recent_order_ids(conn: psycopg.Connection, now: datetime | None = None, limit: int = 50) -> list[UUID]:
    """Orders created within RECENT_WINDOW that are no longer active, newest first (index emergency_order_created)."""
    now = now or datetime.now(timezone.utc)
    rows = conn.execute(
        "SELECT order_id FROM emergency_order WHERE created_at > %s AND state <> 'active'"
        " ORDER BY created_at DESC LIMIT %s",
        (now - RECENT_WINDOW, limit),
    ).fetchall()
    return [r[0] for r in rows]


def summarize(view: OrderView) -> dict:
    """One order as the board and the wall need it (JSON-ready, small). Pure."""
    recs = view.recipients or []
    per_grid: dict[str, Counter] = defaultdict(Counter)
    people, silent, rec = [], [], []
    for r in recs:
        st = RecipientState(r.state).value
        per_grid[r.grid2_code or "—"][st] += 1
        who = r.person_name or r.person_id or r.terminal_id
        people.append([who, r.terminal_id, st, r.reason or "", 1 if r.arrived_at else 0])
        if st in SILENT:
            silent.append(who)
        rec.append([r.terminal_id, st, 1 if r.arrived_at else 0])
    people.sort(key=lambda p: (STATE_ORDER.index(p[2]) if p[2] in STATE_ORDER else 99, p[0]))
    target = view.target.model_dump(mode="json")
    radius = target.get("radius_m") if target.get("type") == "radius" else None
    counts = {RecipientState(k).value: int(v) for k, v in view.counts.items() if v}
    return {
        "id": str(view.order_id),
        "cmd": str(view.command_id),
        "state": view.state.value,
        "rev": view.revision,
        "kind": view.kind.value,
        "priority": view.priority.value,
        "title": view.title,
        "body": view.body,
        "lat": view.lat,
        "lon": view.lon,
        "place_r": view.place_radius_m,
        "radius": radius,
        "target": target,
        "by": view.created_by,
        "at": view.created_at.isoformat(),
        "expires": view.expires_at.isoformat() if view.expires_at else None,
        "deadline": view.deadline.isoformat() if view.deadline else None,
        "counts": counts,
        "total": sum(counts.values()) if counts else len(recs),
        "grids": sorted([g, dict(c)] for g, c in per_grid.items()),
        "people": people,
        "silent": sorted(silent),
        "rec": rec[:MAX_ROWS],
    }


def board_snapshot(deps: Deps) -> list[dict]:
    """Active orders summarised, newest first; one computation per BOARD_TTL_S for every worker."""
    from orders import desk

    def compute() -> list[dict]:
        with deps.pool.connection() as conn:
            out = []
            for v in desk.board(conn, BOARD_LIMIT):
                full = desk.order(conn, v.order_id, recipients=True)
                if full is not None:
                    out.append(summarize(full))
            return out

    return deps.cached("orders:board", BOARD_TTL_S, compute)


def overlay(board: list[dict]) -> list[dict]:
    """What the wall draws per active order: place, radius, grids, recipients (with arrival)."""
    out = []
    for o in board:
        target = o["target"]
        grids = list(target.get("codes") or []) if target.get("type") == "grids" else []
        if grids and target.get("include_adjacent"):
            grids += [g for g, _ in o["grids"] if g != "—" and g not in grids]
        out.append({"id": o["id"], "title": o["title"], "lat": o["lat"], "lon": o["lon"],
                    "r": o["radius"], "pr": o["place_r"], "grids": grids, "rec": o["rec"], "priority": o["priority"]})
    return out
