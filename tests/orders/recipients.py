"""What the orders tests read back: recipients' states and the audit trail."""

from __future__ import annotations

from collections import Counter


def states(db, command_id) -> dict[str, str]:
    return dict(db.execute("SELECT terminal_id, state FROM order_recipient WHERE command_id = %s", (command_id,)).fetchall())


def audit_actions(db, order_id) -> Counter:
    return Counter((a, t) for a, t in db.execute(
        "SELECT action, terminal_id FROM order_audit WHERE order_id = %s", (order_id,)).fetchall())
