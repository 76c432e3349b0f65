"""Every SQL statement of the dispatcher (db/migrations/0011_orders.sql).

Rows to publish are claimed ``FOR UPDATE SKIP LOCKED`` inside the caller's transaction, which
stays open until the broker has acknowledged them: a second dispatcher skips them, and an ack
that ingest stores meanwhile waits the few milliseconds until they are marked ``sent``.
Each state change writes its order_audit rows in the same statement (a CTE).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from psycopg.types.json import Jsonb

from orders.followup import Heading, Waiting
from schemas.alert import AlertKind, AlertState, dedup_key
from schemas.commands import Priority
from schemas.orders import AuditAction, RecipientState

FINAL = "('done', 'rejected', 'expired', 'cancelled')"
# Recipients the dispatcher follows: those of an active order's current issue/amendment, and of
# a cancellation (the stand-down must reach people too).
FOLLOWED = ("c.revision = o.revision AND ((o.state = 'active' AND c.action <> 'cancel') OR c.action = 'cancel')")


def claim_queued(conn, limit: int, lease_s: float) -> list[tuple[UUID, str, dict]]:
    """(command_id, terminal_id, content) of queued recipients, oldest command first, claimed for
    ``lease_s``: ``last_sent_at`` is set to now and committed by the caller at once, so no row lock
    is held while the copies are published. (A lock held through the publish made every ack
    ingest stored for one of them wait, and with it ingest's whole batch of fixes.) A dispatcher
    that dies holding a claim leaves the rows queued; they are claimed again when the lease runs
    out. Re-publishing is harmless: terminals dedupe by command_id."""
    return conn.execute(
        "WITH c AS (SELECT r.command_id, r.terminal_id FROM order_recipient r"
        "  JOIN order_command oc ON oc.command_id = r.command_id"
        "  WHERE r.state = 'queued' AND (r.last_sent_at IS NULL OR r.last_sent_at < now() - make_interval(secs => %s))"
        "  ORDER BY oc.created_at, r.terminal_id LIMIT %s FOR UPDATE OF r SKIP LOCKED)"
        " UPDATE order_recipient r SET last_sent_at = now() FROM c, order_command oc"
        " WHERE r.command_id = c.command_id AND r.terminal_id = c.terminal_id AND oc.command_id = c.command_id"
        " RETURNING r.command_id, r.terminal_id, oc.content",
        (lease_s, limit),
    ).fetchall()


def release_claim(conn, claimed: Sequence[tuple[UUID, str]]) -> None:
    """A publish failed: the recipients may be claimed again at once (still queued)."""
    conn.execute(
        "UPDATE order_recipient r SET last_sent_at = NULL"
        " FROM unnest(%s::uuid[], %s::text[]) AS v(cid, tid)"
        " WHERE r.command_id = v.cid AND r.terminal_id = v.tid AND r.state = 'queued'",
        ([c[0] for c in claimed], [c[1] for c in claimed]))


def mark_sent(conn, sent: Sequence[tuple[UUID, str, bool]], now: datetime, action: AuditAction,
              detail: dict | None = None, first: bool = True) -> int:
    """After the PUBACKs: attempts + 1, last_sent_at, offline_at_send; ``first``: queued -> sent.
    An ack may have been stored before this (the copy went out unlocked): a recipient that has
    already moved on keeps its state."""
    if not sent:
        return 0
    state_sql = ("state = CASE WHEN r.state = 'queued' THEN 'sent' ELSE r.state END,"
                 " state_at = CASE WHEN r.state = 'queued' THEN %(now)s ELSE r.state_at END," if first else "")
    cur = conn.execute(
        "WITH v AS (SELECT * FROM unnest(%(cids)s::uuid[], %(tids)s::text[], %(offs)s::bool[]) AS v(cid, tid, off)),"
        " changed AS (UPDATE order_recipient r SET " + state_sql +
        "  attempts = r.attempts + 1, last_sent_at = %(now)s, offline_at_send = v.off"
        "  FROM v WHERE r.command_id = v.cid AND r.terminal_id = v.tid"
        "  RETURNING r.order_id, r.command_id, r.terminal_id, r.attempts, v.off)"
        " INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action, detail)"
        " SELECT %(now)s, 'system', order_id, command_id, terminal_id, %(action)s,"
        "  %(detail)s || jsonb_build_object('attempt', attempts, 'offline', off) FROM changed",
        {"cids": [s[0] for s in sent], "tids": [s[1] for s in sent], "offs": [s[2] for s in sent], "now": now,
         "action": action.value, "detail": Jsonb(detail or {})},
    )
    return cur.rowcount


def mark_unsendable(conn, bad: Sequence[tuple[UUID, str, str]], now: datetime) -> int:
    """Queued recipients no valid copy can be made for -> rejected with the reason (audited)."""
    if not bad:
        return 0
    cur = conn.execute(
        "WITH changed AS (UPDATE order_recipient r SET state = 'rejected', state_at = %(now)s, reason = v.why"
        "  FROM unnest(%(cids)s::uuid[], %(tids)s::text[], %(whys)s::text[]) AS v(cid, tid, why)"
        "  WHERE r.command_id = v.cid AND r.terminal_id = v.tid AND r.state = 'queued'"
        "  RETURNING r.order_id, r.command_id, r.terminal_id, v.why)"
        " INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action, detail)"
        " SELECT %(now)s, 'system', order_id, command_id, terminal_id, %(action)s, jsonb_build_object('reason', why)"
        " FROM changed",
        {"cids": [b[0] for b in bad], "tids": [b[1] for b in bad], "whys": [b[2] for b in bad], "now": now,
         "action": AuditAction.REJECTED.value})
    return cur.rowcount


def claim_waiting(conn, now: datetime, min_resend_s: float) -> list[tuple[Waiting, dict]]:
    """Followed recipients sent to and silent that may need something now (due for a re-send, or
    offline at the last send), with their command's content; locked."""
    rows = conn.execute(
        "SELECT r.command_id, r.terminal_id, r.order_id, r.state, r.attempts, extract(epoch FROM r.last_sent_at),"
        " r.offline_at_send, o.priority, c.content"
        " FROM order_recipient r JOIN order_command c ON c.command_id = r.command_id"
        " JOIN emergency_order o ON o.order_id = r.order_id"
        f" WHERE r.state IN ('sent', 'no_answer') AND {FOLLOWED}"
        " AND (r.offline_at_send OR (r.state = 'sent' AND r.last_sent_at <= %s - make_interval(secs => %s)))"
        " FOR UPDATE OF r SKIP LOCKED",
        (now, min_resend_s),
    ).fetchall()
    return [(Waiting(cid, tid, oid, RecipientState(st), att, float(last), off, Priority(prio)), content)
            for cid, tid, oid, st, att, last, off, prio, content in rows]


def lease_resends(conn, recipients: Sequence[tuple[UUID, str]], now: datetime) -> None:
    """Recipients about to be re-sent to: ``last_sent_at`` = now, committed by the caller before
    the publish, as claim_queued does for first sends. No row lock is then held while the copies
    go out (an ack ingest stores for one of them would wait, and its batch of fixes with it), and
    no follow-up picks them again meanwhile: neither due (just sent) nor "came back" (not heard
    from since). A dispatcher that dies here leaves them to the next re-send when due."""
    if recipients:
        conn.execute(
            "UPDATE order_recipient r SET last_sent_at = %s FROM unnest(%s::uuid[], %s::text[]) AS v(cid, tid)"
            " WHERE r.command_id = v.cid AND r.terminal_id = v.tid",
            (now, [r[0] for r in recipients], [r[1] for r in recipients]))


def release_resends(conn, leased: Sequence[tuple[UUID, str, float]], now: datetime) -> None:
    """A re-send failed: each recipient gets back the last_sent_at it had (epoch s), so the next
    follow-up finds it due again at once; one whose lease someone else replaced keeps theirs."""
    conn.execute(
        "UPDATE order_recipient r SET last_sent_at = to_timestamp(v.was)"
        " FROM unnest(%s::uuid[], %s::text[], %s::float8[]) AS v(cid, tid, was)"
        " WHERE r.command_id = v.cid AND r.terminal_id = v.tid AND r.last_sent_at = %s",
        ([r[0] for r in leased], [r[1] for r in leased], [r[2] for r in leased], now))


def mark_no_answer(conn, silent: Sequence[tuple[UUID, str]], now: datetime) -> list[UUID]:
    """sent -> no_answer (audited); returns the orders concerned."""
    if not silent:
        return []
    rows = conn.execute(
        "WITH changed AS (UPDATE order_recipient r SET state = 'no_answer', state_at = %(now)s"
        "  FROM unnest(%(cids)s::uuid[], %(tids)s::text[]) AS v(cid, tid)"
        "  WHERE r.command_id = v.cid AND r.terminal_id = v.tid AND r.state = 'sent'"
        "  RETURNING r.order_id, r.command_id, r.terminal_id, r.attempts),"
        " logged AS (INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action, detail)"
        "  SELECT %(now)s, 'system', order_id, command_id, terminal_id, %(action)s,"
        "  jsonb_build_object('attempts', attempts) FROM changed)"
        " SELECT DISTINCT order_id FROM changed",
        {"cids": [s[0] for s in silent], "tids": [s[1] for s in silent], "now": now,
         "action": AuditAction.NO_ANSWER.value},
    ).fetchall()
    return [r[0] for r in rows]


def raise_alert(conn, order_id: UUID, severity: str, now: datetime) -> tuple[int, bool, list[str]] | None:
    """One ``order_unacknowledged`` alert per order (not resolved): opened, or its detail refreshed
    with every silent recipient. Returns (alert id, newly opened, silent terminals)."""
    order = conn.execute("SELECT title, lat, lon, priority FROM emergency_order WHERE order_id = %s",
                         (order_id,)).fetchone()
    silent = conn.execute(
        "SELECT r.terminal_id, r.person_name, r.grid2_code, c.action FROM order_recipient r"
        " JOIN order_command c ON c.command_id = r.command_id JOIN emergency_order o ON o.order_id = r.order_id"
        f" WHERE r.order_id = %s AND r.state = 'no_answer' AND {FOLLOWED} ORDER BY r.terminal_id",
        (order_id,),
    ).fetchall()
    if order is None or not silent:
        return None
    title, lat, lon, priority = order
    detail = {"order_id": str(order_id), "order_title": title, "priority": priority, "count": len(silent),
              "silent": [{"terminal_id": t, "person": p, "grid2_code": g, "command": a} for t, p, g, a in silent]}
    row = conn.execute(
        "INSERT INTO alert (kind, severity, state, lat, lon, title, detail, dedup_key, opened_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (dedup_key) WHERE state <> 'resolved' AND dedup_key IS NOT NULL"
        " DO UPDATE SET detail = EXCLUDED.detail RETURNING id, xmax = 0",
        (AlertKind.ORDER_UNACKNOWLEDGED.value, severity, AlertState.OPEN.value, lat, lon,
         f"Order not acknowledged by {len(silent)}: {title}"[:500], Jsonb(detail),
         dedup_key(AlertKind.ORDER_UNACKNOWLEDGED, str(order_id)), now),
    ).fetchone()
    conn.execute(
        "INSERT INTO order_audit (at, actor, order_id, action, detail) VALUES (%s, 'system', %s, %s, %s)",
        (now, order_id, AuditAction.ALERT.value, Jsonb({"alert_id": row[0], "opened": row[1], "silent": len(silent)})),
    )
    return row[0], row[1], [s[0] for s in silent]


def expire(conn, now: datetime) -> tuple[int, int]:
    """Active orders past expires_at -> expired, their unfinished recipients -> expired (audited)."""
    ids = [r[0] for r in conn.execute(
        "SELECT order_id FROM emergency_order WHERE state = 'active' AND expires_at <= %s FOR UPDATE SKIP LOCKED",
        (now,)).fetchall()]
    if not ids:
        return 0, 0
    conn.execute(
        "WITH changed AS (UPDATE emergency_order SET state = 'expired', ended_at = %(now)s"
        "  WHERE order_id = ANY(%(ids)s) RETURNING order_id, expires_at)"
        " INSERT INTO order_audit (at, actor, order_id, action, detail)"
        " SELECT %(now)s, 'system', order_id, %(action)s, jsonb_build_object('expires_at', expires_at) FROM changed",
        {"now": now, "ids": ids, "action": AuditAction.EXPIRE.value})
    cur = conn.execute(
        "WITH changed AS (UPDATE order_recipient SET state = 'expired', state_at = %(now)s"
        f"  WHERE order_id = ANY(%(ids)s) AND state NOT IN {FINAL} RETURNING order_id, command_id, terminal_id, state)"
        " INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action)"
        " SELECT %(now)s, 'system', order_id, command_id, terminal_id, %(action)s FROM changed",
        {"now": now, "ids": ids, "action": AuditAction.EXPIRED.value})
    return len(ids), cur.rowcount


def close_finished(conn, now: datetime) -> int:
    """Active orders whose current recipients have all finished -> closed (audited)."""
    cur = conn.execute(
        "WITH changed AS (UPDATE emergency_order o SET state = 'closed', ended_at = %(now)s"
        "  WHERE o.state = 'active' AND NOT EXISTS (SELECT 1 FROM order_recipient r"
        "   JOIN order_command c ON c.command_id = r.command_id"
        "   WHERE r.order_id = o.order_id AND c.revision = o.revision AND c.action <> 'cancel'"
        f"   AND r.state NOT IN {FINAL})"
        "  RETURNING o.order_id)"
        " INSERT INTO order_audit (at, actor, order_id, action) SELECT %(now)s, 'system', order_id, %(action)s FROM changed",
        {"now": now, "action": AuditAction.CLOSE.value})
    return cur.rowcount


def heading(conn, default_radius_m: float) -> list[Heading]:
    """Accepted (or done) recipients of active orders with a place who have not arrived yet."""
    rows = conn.execute(
        "SELECT r.command_id, r.terminal_id, r.order_id, o.lat, o.lon, coalesce(o.place_radius_m, %s)"
        " FROM emergency_order o JOIN order_recipient r ON r.order_id = o.order_id AND r.state IN ('accepted', 'done')"
        " JOIN order_command c ON c.command_id = r.command_id"
        " WHERE o.state = 'active' AND o.lat IS NOT NULL AND c.revision = o.revision AND c.action <> 'cancel'"
        " AND r.arrived_at IS NULL",
        (default_radius_m,)).fetchall()
    return [Heading(*r) for r in rows]


def mark_arrived(conn, arrived: Sequence[tuple[Heading, float]], now: datetime) -> int:
    if not arrived:
        return 0
    cur = conn.execute(
        "WITH changed AS (UPDATE order_recipient r SET arrived_at = %(now)s"
        "  FROM unnest(%(cids)s::uuid[], %(tids)s::text[], %(ds)s::float8[]) AS v(cid, tid, d)"
        "  WHERE r.command_id = v.cid AND r.terminal_id = v.tid AND r.arrived_at IS NULL"
        "  RETURNING r.order_id, r.command_id, r.terminal_id, v.d)"
        " INSERT INTO order_audit (at, actor, order_id, command_id, terminal_id, action, detail)"
        " SELECT %(now)s, 'system', order_id, command_id, terminal_id, %(action)s,"
        "  jsonb_build_object('distance_m', round(d::numeric, 1)) FROM changed",
        {"now": now, "cids": [h.command_id for h, _ in arrived], "tids": [h.terminal_id for h, _ in arrived],
         "ds": [d for _, d in arrived], "action": AuditAction.ARRIVED.value})
    return cur.rowcount


def acks_since(conn, after_id: int) -> tuple[int, int]:
    """(acks that moved a recipient since audit id ``after_id``, newest audit id): for the summary line."""
    n, last = conn.execute(
        "SELECT count(*) FILTER (WHERE action LIKE 'state:%%' AND actor <> 'system'), coalesce(max(id), %s)"
        " FROM order_audit WHERE id > %s", (after_id, after_id)).fetchone()
    return n, last


def outbox_size(conn) -> int:
    return conn.execute("SELECT count(*) FROM order_recipient WHERE state = 'queued'").fetchone()[0]


def last_audit_id(conn) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM order_audit").fetchone()[0]
