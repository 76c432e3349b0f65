"""Every SQL statement and Redis read of the desk (orders/desk.py): registry, live positions,
orders, commands, recipients and the audit trail (db/migrations/0011_orders.sql).

Callers own the transaction; these functions only run statements on the connection given.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from psycopg.types.json import Jsonb

from orders.targeting import LivePosition, Registry, TerminalEntry
from schemas.orders import AuditAction, Recipient
from schemas.topics import RedisKeys

LEVEL1_ROLE = "level1_supervisor"


# ---------------------------------------------------------------- registry and live state
def load_registry(conn) -> Registry:
    """Terminals with their person and grids, level-1 -> level-2 map and adjacency (a few ms for a city)."""
    level1_of = dict(conn.execute("SELECT code, level1_code FROM grid_level2").fetchall())
    level1 = frozenset(r[0] for r in conn.execute("SELECT code FROM grid_level1"))
    adj: dict[str, set[str]] = defaultdict(set)
    for a, b in conn.execute("SELECT a, b FROM grid_adjacency"):
        adj[a].add(b)
        adj[b].add(a)
    rows = conn.execute(
        "SELECT t.terminal_id, t.person_id, p.name, p.role, pg.grid_code FROM terminal t"
        " LEFT JOIN person p ON p.person_id = t.person_id"
        " LEFT JOIN person_grid pg ON pg.person_id = t.person_id ORDER BY t.terminal_id, pg.grid_code"
    ).fetchall()
    info: dict[str, tuple] = {}
    grids: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for tid, pid, name, role, code in rows:
        info[tid] = (pid, name, role)
        g2, g1 = grids[tid]
        if code is None:
            continue
        if code in level1_of:
            g2.append(code)
        elif code in level1:
            g1.append(code)
    terminals = {
        tid: TerminalEntry(tid, pid, name, role, tuple(sorted(set(grids[tid][0]))), tuple(sorted(set(grids[tid][1]))))
        for tid, (pid, name, role) in info.items()
    }
    return Registry(terminals, level1_of, {k: frozenset(v) for k, v in adj.items()}, level1)


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else v


def load_seen(redis, keys: RedisKeys, terminal_ids: Sequence[str] | None = None) -> dict[str, float]:
    """Epoch seconds each terminal was last heard from (live:seen); all terminals, or those named."""
    if terminal_ids is None:
        return {_text(t): float(s) for t, s in redis.zrange(keys.last_seen, 0, -1, withscores=True)}
    if not terminal_ids:
        return {}
    scores = redis.zmscore(keys.last_seen, list(terminal_ids))
    return {t: float(s) for t, s in zip(terminal_ids, scores) if s is not None}


def load_positions(redis, keys: RedisKeys, terminal_ids: Sequence[str] | None = None) -> dict[str, LivePosition]:
    """Newest fix of each terminal (live:last) with when it was last heard from (live:seen, else the fix time)."""
    if terminal_ids is None:
        raw = {_text(k): v for k, v in redis.hgetall(keys.last_fix).items()}
    else:
        raw = dict(zip(terminal_ids, redis.hmget(keys.last_fix, list(terminal_ids)))) if terminal_ids else {}
    seen = load_seen(redis, keys, None if terminal_ids is None else [t for t, v in raw.items() if v is not None])
    out = {}
    for tid, value in raw.items():
        if value is None:
            continue
        try:
            d = json.loads(value)
            out[tid] = LivePosition(float(d["lat"]), float(d["lon"]), max(seen.get(tid, 0.0), float(d.get("ts") or 0.0)))
        except (ValueError, KeyError, TypeError):
            continue  # a record we cannot read is not a position; ingest owns its shape
    return out


# ---------------------------------------------------------------- writes
def insert_order(conn, order_id: UUID, fields: dict, target: dict, actor: str, via: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO emergency_order (order_id, kind, priority, title, body, lat, lon, place_radius_m, target,"
        " created_by, created_via, created_at, deadline, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (order_id, fields["kind"], fields["priority"], fields["title"], fields["body"], fields["lat"], fields["lon"],
         fields["place_radius_m"], Jsonb(target), actor, via, now, fields["deadline"], fields["expires_at"]),
    )


def insert_command(conn, command_id: UUID, order_id: UUID, action: str, revision: int, content: dict,
                   actor: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO order_command (command_id, order_id, action, revision, content, created_by, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (command_id, order_id, action, revision, Jsonb(content), actor, now),
    )


RECIPIENT_COLUMNS = ("command_id", "terminal_id", "order_id", "person_id", "person_name", "role", "grid2_code",
                     "grid1_code", "distance_m", "state_at")


def insert_recipients(conn, command_id: UUID, order_id: UUID, recipients: Iterable[Recipient], now: datetime) -> int:
    """The outbox rows (state queued) and one audit row each; COPY, so 1,000 recipients cost milliseconds."""
    n = 0
    with conn.cursor() as cur:
        with cur.copy(f"COPY order_recipient ({', '.join(RECIPIENT_COLUMNS)}) FROM STDIN") as copy:
            for r in recipients:
                copy.write_row((command_id, r.terminal_id, order_id, r.person_id, r.person_name, r.role, r.grid2_code,
                                r.grid1_code, r.distance_m, now))
                n += 1
        cur.execute(
            "INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action)"
            " SELECT %s, 'system', order_id, command_id, terminal_id, %s FROM order_recipient WHERE command_id = %s",
            (now, AuditAction.QUEUED.value, command_id),
        )
    return n


def copy_recipients(conn, from_command: UUID, to_command: UUID, now: datetime) -> int:
    """The recipients of ``from_command`` again, queued for ``to_command`` (amend/cancel reach the same people)."""
    cur = conn.execute(
        "INSERT INTO order_recipient (command_id, terminal_id, order_id, person_id, person_name, role, grid2_code,"
        " grid1_code, distance_m, state_at)"
        " SELECT %s, terminal_id, order_id, person_id, person_name, role, grid2_code, grid1_code, distance_m, %s"
        " FROM order_recipient WHERE command_id = %s",
        (to_command, now, from_command),
    )
    n = cur.rowcount
    conn.execute(
        "INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action)"
        " SELECT %s, 'system', order_id, command_id, terminal_id, %s FROM order_recipient WHERE command_id = %s",
        (now, AuditAction.QUEUED.value, to_command),
    )
    return n


def audit(conn, at: datetime, actor: str, order_id: UUID, action: AuditAction, detail: dict,
          command_id: UUID | None = None, terminal_id: str | None = None) -> None:
    conn.execute(
        "INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (at, actor, order_id, command_id, terminal_id, action.value, Jsonb(detail)),
    )


def lock_order(conn, order_id: UUID) -> dict | None:
    """The order row, locked until the transaction ends (amend/cancel of one order run one at a time)."""
    cur = conn.execute(
        "SELECT order_id, state, revision, kind, priority, title, body, lat, lon, place_radius_m, deadline, expires_at"
        " FROM emergency_order WHERE order_id = %s FOR UPDATE", (order_id,))
    row = cur.fetchone()
    return dict(zip([c.name for c in cur.description], row)) if row else None


def issue_command(conn, order_id: UUID) -> tuple[UUID, dict]:
    """The order's first command (whose recipients every later command reaches)."""
    return conn.execute(
        "SELECT command_id, content FROM order_command WHERE order_id = %s AND action = 'issue'", (order_id,)
    ).fetchone()


def latest_content(conn, order_id: UUID) -> dict:
    return conn.execute(
        "SELECT content FROM order_command WHERE order_id = %s AND action IN ('issue', 'amend')"
        " ORDER BY revision DESC LIMIT 1", (order_id,)).fetchone()[0]


def update_order(conn, order_id: UUID, fields: dict, revision: int) -> None:
    conn.execute(
        "UPDATE emergency_order SET title = %s, body = %s, priority = %s, lat = %s, lon = %s, deadline = %s,"
        " expires_at = %s, revision = %s WHERE order_id = %s",
        (fields["title"], fields["body"], fields["priority"], fields["lat"], fields["lon"], fields["deadline"],
         fields["expires_at"], revision, order_id),
    )


def end_order(conn, order_id: UUID, state: str, now: datetime) -> None:
    conn.execute("UPDATE emergency_order SET state = %s, ended_at = %s WHERE order_id = %s", (state, now, order_id))


def cancel_unfinished(conn, order_id: UUID, actor: str, now: datetime) -> int:
    """Recipients of the order's commands so far that have not finished -> cancelled (audited each)."""
    cur = conn.execute(
        "WITH changed AS (UPDATE order_recipient SET state = 'cancelled', state_at = %s"
        "  WHERE order_id = %s AND state NOT IN ('done', 'rejected', 'expired', 'cancelled')"
        "  RETURNING order_id, command_id, terminal_id)"
        " INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action)"
        " SELECT %s, %s, order_id, command_id, terminal_id, %s FROM changed",
        (now, order_id, now, actor, AuditAction.CANCELLED.value),
    )
    return cur.rowcount


# ---------------------------------------------------------------- reads
ORDER_COLUMNS = ("order_id, state, revision, kind, priority, title, body, lat, lon, place_radius_m, target,"
                 " created_by, created_at, deadline, expires_at")

# The command the board tracks: the newest issue/amendment (cancel commands are followed by the dispatcher).
TRACKED_COMMAND = ("(SELECT c.command_id FROM order_command c WHERE c.order_id = o.order_id"
                   " AND c.action IN ('issue', 'amend') ORDER BY c.revision DESC LIMIT 1)")


def orders(conn, order_ids: Sequence[UUID] | None = None, active_limit: int | None = None) -> list[dict]:
    """Orders with their tracked command id and per-state counts: the named ones, or the newest active ones."""
    if order_ids is not None:
        where, params = "o.order_id = ANY(%s)", [list(order_ids)]
        tail = ""
    else:
        where, params = "o.state = 'active'", []
        tail = " ORDER BY o.created_at DESC LIMIT %s"
        params.append(active_limit)
    cur = conn.execute(
        f"SELECT {', '.join('o.' + c.strip() for c in ORDER_COLUMNS.split(','))}, {TRACKED_COMMAND} AS command_id"
        f" FROM emergency_order o WHERE {where}{tail}", params)
    names = [c.name for c in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    if rows:
        counts: dict[UUID, dict[str, int]] = defaultdict(dict)
        for cid, state, n in conn.execute(
            "SELECT command_id, state, count(*) FROM order_recipient WHERE command_id = ANY(%s) GROUP BY 1, 2",
            ([r["command_id"] for r in rows],),
        ):
            counts[cid][state] = n
        for r in rows:
            r["counts"] = counts.get(r["command_id"], {})
    return rows


def recipients(conn, command_id: UUID) -> list[dict]:
    cur = conn.execute(
        "SELECT terminal_id, person_id, person_name, role, grid2_code, grid1_code, distance_m, state, state_at,"
        " attempts, reason, arrived_at FROM order_recipient WHERE command_id = %s ORDER BY terminal_id", (command_id,))
    names = [c.name for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def audit_rows(conn, order_id: UUID, limit: int = 10_000) -> list[dict]:
    cur = conn.execute(
        "SELECT id, at, actor, order_id, command_id, terminal_id, action, detail FROM order_audit"
        " WHERE order_id = %s ORDER BY id LIMIT %s", (order_id, limit))
    names = [c.name for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
