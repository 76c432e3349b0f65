"""The duty desk: preview, issue, amend and cancel orders; read the board, one order, its audit trail.

SQL and Redis reads only, no MQTT: ``issue`` commits the order, its first command and every
recipient (state ``queued``: the outbox) in one transaction with ``NOTIFY gw_orders``, and the
dispatcher process (orders/dispatcher.py) publishes from what is committed.

Transactions: each write runs in ``conn.transaction()``. On an autocommit or idle connection
that block commits; inside a transaction the caller opened (e.g. a psycopg_pool
``with pool.connection()`` block that has already read) it is a savepoint and the order is
committed with the caller's transaction. NOTIFY is delivered at that commit, never before.

Who is asking is the caller's check (the dashboard's sign-in, the API's token); ``actor`` is
recorded on every row of the audit trail.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from uuid import UUID

from orders import store
from orders.targeting import resolve_targets
from schemas.commands import Command, CommandAction
from schemas.orders import (
    AuditAction,
    NearestTarget,
    OrderAmendment,
    OrderCancellation,
    OrderCreated,
    OrderDraft,
    OrderState,
    OrderView,
    RadiusTarget,
    RecipientPreview,
    RecipientState,
    RecipientView,
)
from schemas.settings import Settings
from schemas.topics import RedisKeys

log = logging.getLogger("gridwatch.orders.desk")

NOTIFY_CHANNEL = "gw_orders"
VIAS = ("ui", "api")
MAX_ACTOR = 100  # Command.issued_by


class OrderNotActive(Exception):
    """The order is cancelled, expired or closed (or does not exist): it cannot be amended or cancelled."""

    def __init__(self, order_id: UUID, state: str | None):
        self.order_id, self.state = order_id, state
        super().__init__(f"order {order_id} is {state or 'unknown'}: only an active order can be changed")


class NoRecipients(ValueError):
    """The target resolved to no terminal (nobody online there, or an empty grid): nothing to send."""


# What an amendment or a cancellation carries over from the order (the Command's content fields).
ORDER_FIELDS = ("kind", "priority", "title", "body", "lat", "lon", "place_radius_m", "deadline", "expires_at")

def _now() -> datetime:
    return datetime.now(UTC)


def _check_actor(actor: str, via: str = "ui") -> str:
    actor = (actor or "").strip()
    if not actor or len(actor) > MAX_ACTOR:
        raise ValueError(f"actor must be 1-{MAX_ACTOR} characters (who is giving the order)")
    if via not in VIAS:
        raise ValueError(f"via must be one of {VIAS}")
    return actor


def _resolve(conn, redis, settings: Settings, draft: OrderDraft, now: datetime):
    keys = RedisKeys(settings.redis_prefix)
    registry = store.load_registry(conn)
    # only the point targets need every live position; the others need "last seen" of their own
    point = isinstance(draft.target, (NearestTarget, RadiusTarget))
    positions = store.load_positions(redis, keys) if point else {}
    recipients = resolve_targets(draft.target, registry, positions, now, settings.online_window_s)
    seen = store.load_seen(redis, keys, [r.terminal_id for r in recipients])
    return recipients, seen


def preview(conn, redis, settings: Settings, draft: OrderDraft) -> RecipientPreview:
    """Whom the draft would reach now: how many terminals, which people, which grids, how many offline.
    Raises targeting.UnknownTarget for names the registry does not have."""
    now = _now()
    with conn.transaction():
        recipients, seen = _resolve(conn, redis, settings, draft, now)
    offline = sum(1 for r in recipients if not _online(seen.get(r.terminal_id), now, settings))
    return RecipientPreview(
        terminals=len(recipients),
        people=sorted({r.person_name or r.person_id for r in recipients if r.person_name or r.person_id}),
        grids=sorted({g for r in recipients for g in ([r.grid2_code] if r.grid2_code else [r.grid1_code]) if g}),
        recipients=recipients,
        offline=offline,
    )


def _online(seen_ts: float | None, now: datetime, settings: Settings) -> bool:
    return seen_ts is not None and now.timestamp() - seen_ts <= settings.online_window_s


def command_content(fields: dict, action: CommandAction, revision: int, order_id: UUID, actor: str,
                    now: datetime) -> dict:
    """What order_command.content holds: the Command's fields except command_id and ``to`` (the
    dispatcher adds those per copy). Built through the Command model, so it is valid by construction."""
    cmd = Command(command_id=uuid.UUID(int=0), order_id=order_id, action=action, revision=revision, issued_at=now,
                  kind=fields["kind"], priority=fields["priority"], title=fields["title"], body=fields["body"],
                  issued_by=actor, expires_at=fields["expires_at"], deadline=fields["deadline"], lat=fields["lat"],
                  lon=fields["lon"], place_radius_m=fields["place_radius_m"])
    return cmd.model_dump(mode="json", exclude={"command_id", "to"}, exclude_none=True)


def issue(conn, redis, settings: Settings, draft: OrderDraft, actor: str, via: str = "ui") -> OrderCreated:
    """Resolve the recipients and commit the order, its first command, every recipient (queued) and
    the audit rows in one transaction, then NOTIFY the dispatcher (delivered at commit).
    Raises UnknownTarget, NoRecipients, ValueError (bad actor/via; an expiry in the past)."""
    actor = _check_actor(actor, via)
    now = _now()
    if draft.expires_at is not None and draft.expires_at <= now:
        raise ValueError("expires_at is in the past")
    order_id, command_id = uuid.uuid4(), uuid.uuid4()
    fields = draft.model_dump(mode="json", exclude={"target"})
    fields.update(kind=draft.kind.value, priority=draft.priority.value, deadline=draft.deadline,
                  expires_at=draft.expires_at)
    content = command_content(fields, CommandAction.ISSUE, 0, order_id, actor, now)
    target = draft.target.model_dump(mode="json")
    with conn.transaction():
        recipients, _ = _resolve(conn, redis, settings, draft, now)
        if not recipients:
            raise NoRecipients("the target reaches no terminal: nothing would be sent")
        store.insert_order(conn, order_id, fields, target, actor, via, now)
        store.insert_command(conn, command_id, order_id, CommandAction.ISSUE.value, 0, content, actor, now)
        n = store.insert_recipients(conn, command_id, order_id, recipients, now)
        store.audit(conn, now, actor, order_id, AuditAction.CREATE,
                    {"via": via, "target": target, "recipients": n, "title": draft.title,
                     "priority": draft.priority.value, "kind": draft.kind.value}, command_id=command_id)
        conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    log.info("order issued", extra={"fields": {"order_id": str(order_id), "by": actor, "via": via,
                                               "recipients": n, "priority": draft.priority.value}})
    return OrderCreated(order_id=order_id, command_id=command_id, recipients=n)


def amend(conn, settings: Settings, order_id: UUID, amendment: OrderAmendment, actor: str) -> UUID:
    """A new command (revision + 1) with the changed fields to the order's recipients; returns its id.
    Raises OrderNotActive, ValueError (nothing to change; half a place; an expiry in the past)."""
    actor = _check_actor(actor)
    changes = amendment.model_dump(mode="json", exclude_none=True)
    if not changes:
        raise ValueError("the amendment changes nothing")
    if ("lat" in changes) != ("lon" in changes):
        raise ValueError("give both lat and lon for a new place, or neither")
    now = _now()
    if amendment.expires_at is not None and amendment.expires_at <= now:
        raise ValueError("expires_at is in the past")
    command_id = uuid.uuid4()
    with conn.transaction():
        row = _lock_active(conn, order_id)
        fields = {k: row[k] for k in ORDER_FIELDS}
        fields.update(changes)
        fields.update({k: getattr(amendment, k) for k in ("deadline", "expires_at") if getattr(amendment, k)})
        revision = row["revision"] + 1
        content = command_content(fields, CommandAction.AMEND, revision, order_id, actor, now)
        store.update_order(conn, order_id, fields, revision)
        store.insert_command(conn, command_id, order_id, CommandAction.AMEND.value, revision, content, actor, now)
        first, _ = store.issue_command(conn, order_id)
        n = store.copy_recipients(conn, first, command_id, now)
        store.audit(conn, now, actor, order_id, AuditAction.AMEND, {"revision": revision, "changes": changes,
                                                                   "recipients": n}, command_id=command_id)
        conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    log.info("order amended", extra={"fields": {"order_id": str(order_id), "by": actor, "revision": revision}})
    return command_id


def _lock_active(conn, order_id: UUID) -> dict:
    """The order's row, locked for this transaction; OrderNotActive unless it is active."""
    row = store.lock_order(conn, order_id)
    if row is None or row["state"] != OrderState.ACTIVE:
        raise OrderNotActive(order_id, row and row["state"])
    return row


def cancel(conn, settings: Settings, order_id: UUID, cancellation: OrderCancellation, actor: str) -> UUID:
    """Stand down: the order is cancelled, its unfinished recipients ``cancelled``, and a cancel
    command (tracked like the first) goes to the same recipients; returns its id. Raises OrderNotActive."""
    actor = _check_actor(actor)
    now = _now()
    command_id = uuid.uuid4()
    with conn.transaction():
        row = _lock_active(conn, order_id)
        fields = {k: row[k] for k in ORDER_FIELDS}
        if cancellation.reason:
            fields["body"] = cancellation.reason  # what the officer reads on the stand-down
        content = command_content(fields, CommandAction.CANCEL, row["revision"], order_id, actor, now)
        store.end_order(conn, order_id, OrderState.CANCELLED.value, now)
        stopped = store.cancel_unfinished(conn, order_id, actor, now)
        store.insert_command(conn, command_id, order_id, CommandAction.CANCEL.value, row["revision"], content, actor, now)
        first, _ = store.issue_command(conn, order_id)
        n = store.copy_recipients(conn, first, command_id, now)
        store.audit(conn, now, actor, order_id, AuditAction.CANCEL, {"reason": cancellation.reason,
                                                                    "recipients": n, "stopped": stopped},
                    command_id=command_id)
        conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    log.info("order cancelled", extra={"fields": {"order_id": str(order_id), "by": actor, "stopped": stopped}})
    return command_id


def _view(row: dict, recipients: list[dict] | None) -> OrderView:
    counts = {s: 0 for s in RecipientState}
    for state, n in row["counts"].items():
        counts[RecipientState(state)] = n
    return OrderView(
        order_id=row["order_id"], command_id=row["command_id"], state=OrderState(row["state"]),
        revision=row["revision"], kind=row["kind"], priority=row["priority"], title=row["title"], body=row["body"],
        lat=row["lat"], lon=row["lon"], place_radius_m=row["place_radius_m"], target=row["target"],
        created_by=row["created_by"], created_at=row["created_at"], deadline=row["deadline"],
        expires_at=row["expires_at"], counts=counts,
        recipients=None if recipients is None else [RecipientView(**r) for r in recipients],
    )


def board(conn, limit: int = 20) -> list[OrderView]:
    """Active orders, newest first, with per-state counts of the command they are tracked on."""
    with conn.transaction():
        rows = store.orders(conn, active_limit=max(1, min(int(limit), 500)))
    return [_view(r, None) for r in rows]


def order(conn, order_id: UUID, recipients: bool = True) -> OrderView | None:
    """One order (any state), with its recipients' states when asked."""
    with conn.transaction():
        rows = store.orders(conn, order_ids=[order_id])
        if not rows:
            return None
        recs = store.recipients(conn, rows[0]["command_id"]) if recipients else None
    return _view(rows[0], recs)


def audit(conn, order_id: UUID) -> list[dict]:
    """The order's audit trail, oldest first: id, at, actor, order_id, command_id, terminal_id, action, detail."""
    with conn.transaction():
        return store.audit_rows(conn, order_id)

