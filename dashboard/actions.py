"""What a signed-in duty officer can change: an alert's state. Every action writes
``alert_action`` (actor, time) in the same transaction as the state change.
"""

from __future__ import annotations

import psycopg

from schemas.alert import AlertAction, AlertState

# What a person may do from the wall, and from which states (the engine's own actions —
# open, bump, clear, remind — are not for people).
ALLOWED_FROM = {
    AlertAction.ACKNOWLEDGE: (AlertState.OPEN,),
    AlertAction.RESOLVE: (AlertState.OPEN, AlertState.ACKNOWLEDGED),
}


def act_on_alert(conn: psycopg.Connection, alert_id: int, action: AlertAction, actor: str, note: str | None = None) -> bool:
    """Apply ``action`` as ``actor``; False when the alert is not in a state that allows it (already done).

    The caller has checked that ``actor`` is a signed-in duty officer."""
    if action not in ALLOWED_FROM:
        raise ValueError(f"{action} is not an action a person takes from the wall")
    if not actor:
        raise ValueError("an alert action needs the officer who takes it")
    states = [s.value for s in ALLOWED_FROM[action]]
    with conn.transaction():
        if action is AlertAction.ACKNOWLEDGE:
            row = conn.execute(
                "UPDATE alert SET state = %s, acknowledged_at = now(), acknowledged_by = %s"
                " WHERE id = %s AND state = ANY(%s) RETURNING id",
                (AlertState.ACKNOWLEDGED.value, actor, alert_id, states),
            ).fetchone()
        else:
            row = conn.execute(
                "UPDATE alert SET state = %s, resolved_at = now(), resolved_by = %s,"
                " acknowledged_at = coalesce(acknowledged_at, now()), acknowledged_by = coalesce(acknowledged_by, %s)"
                " WHERE id = %s AND state = ANY(%s) RETURNING id",
                (AlertState.RESOLVED.value, actor, actor, alert_id, states),
            ).fetchone()
        if row is None:
            return False
        conn.execute(
            "INSERT INTO alert_action (alert_id, actor, action, note) VALUES (%s, %s, %s, %s)",
            (alert_id, actor, action.value, (note or None) and note[:2000]),
        )
    return True
