"""What a signed-in duty officer can change: an alert's state. Every action writes
``alert_action`` (actor, time) in the same transaction as the state change.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

import psycopg


class AlertAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


def parse_officers(spec: str) -> dict[str, str]:
    """``"user:password,user2:pw2"`` -> {user: password}. Blank entries are ignored."""
    out = {}
    for part in spec.split(","):
        user, sep, pw = part.strip().partition(":")
        if user and sep:
            out[user] = pw
    return out


def check_officer(spec: str, user: str, password: str) -> bool:
    expected = parse_officers(spec).get(user or "")
    # Compare even for an unknown user, so timing says nothing about which users exist.
    ok = hmac.compare_digest((expected or "\0").encode(), (password or "").encode())
    return expected is not None and ok


def act_on_alert(conn: psycopg.Connection, alert_id: int, action: AlertAction, actor: str, note: str | None = None) -> bool:
    """Apply ``action``; False when the alert is not in a state that allows it (already done)."""
    with conn.transaction():
        if action is AlertAction.ACKNOWLEDGE:
            row = conn.execute(
                "UPDATE alert SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s"
                " WHERE id = %s AND state = 'open' RETURNING id",
                (actor, alert_id),
            ).fetchone()
        else:
            row = conn.execute(
                "UPDATE alert SET state = 'resolved', resolved_at = now(), resolved_by = %s,"
                " acknowledged_at = coalesce(acknowledged_at, now()), acknowledged_by = coalesce(acknowledged_by, %s)"
                " WHERE id = %s AND state IN ('open', 'acknowledged') RETURNING id",
                (actor, actor, alert_id),
            ).fetchone()
        if row is None:
            return False
        conn.execute(
            "INSERT INTO alert_action (alert_id, actor, action, note) VALUES (%s, %s, %s, %s)",
            (alert_id, actor, action.value, note),
        )
    return True
