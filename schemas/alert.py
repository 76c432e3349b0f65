"""The alert contract: kinds, severities, states and the actions people take on them.

Used by the alerts engine (which opens, bumps and clears alerts), by the orders dispatcher
(which raises ``order_unacknowledged``) and by the wall (which shows them and acts on them).
No other module spells these strings.

Lifecycle: open -> acknowledged -> resolved. An engine clears an alert (resolved, by
``system``) when its condition ends. One condition on one subject (its ``dedup_key``) never
has two alerts that are not resolved: a repeat bumps ``count`` and ``last_seen_at``.
"""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    SOS = "sos"
    OFFLINE = "offline"  # a terminal silent during duty hours
    OUTSIDE_GRID = "outside_grid"  # an officer outside their grid and its neighbours during duty hours
    SERIOUS_VIOLATION = "serious_violation"  # a serious report or an inspection with a serious violation
    COMPLAINT_SURGE = "complaint_surge"  # reports in a level-2 grid far above its own baseline
    LOW_BATTERY = "low_battery"
    ORDER_UNACKNOWLEDGED = "order_unacknowledged"  # recipients of an emergency order silent after re-sends
    TASK_OVERDUE = "task_overdue"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertAction(StrEnum):
    """What is recorded in ``alert_action`` (who, when) for each transition or reminder."""

    OPEN = "open"
    BUMP = "bump"  # the condition was seen again while the alert was not resolved
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    CLEAR = "clear"  # resolved by the engine because the condition ended
    REMIND = "remind"
    NOTE = "note"


SYSTEM_ACTOR = "system"


def dedup_key(kind: AlertKind, subject: str) -> str:
    """One open alert per condition and subject, e.g. ``offline:T00001`` or ``order_unacknowledged:<order id>``."""
    return f"{kind.value}:{subject}"
