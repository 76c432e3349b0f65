"""The dispatcher's decisions, pure: which silent recipients to re-send to, which count as no
answer, which accepted recipients have arrived, how severe an unanswered order's alert is.

Timing for one recipient (``resend`` = the priority's ``Settings.order_resend_*_s``)::

    t0 sent (attempt 1) ── t0+resend: still silent → re-send (attempt 2) ── ... up to
    Settings.order_resends re-sends ── one more ``resend`` of silence → no_answer + alert

and, at any time, a recipient whose terminal was offline at the last send and has been heard
from since (ingest's live:seen) is re-sent to at once: it came back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from orders.targeting import LivePosition, distance_m
from schemas.alert import Severity
from schemas.commands import Priority
from schemas.orders import RecipientState
from schemas.settings import Settings

# Heard from at least this long ago and still silent: the broker's queued copy (persistent
# session) had its chance to arrive and be answered first.
RETURN_GRACE_S = 2.0


class Step(StrEnum):
    RESEND = "resend"  # silent past the priority's re-send time
    RETURNED = "returned"  # was offline at the last send and has been heard from since
    NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A recipient that has been sent to and has not answered."""

    command_id: UUID
    terminal_id: str
    order_id: UUID
    state: RecipientState  # sent or no_answer
    attempts: int
    last_sent_at: float  # epoch seconds
    offline_at_send: bool
    priority: Priority


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    recipient: Waiting


def resend_after_s(priority: Priority, settings: Settings) -> float:
    return {Priority.CRITICAL: settings.order_resend_critical_s, Priority.URGENT: settings.order_resend_urgent_s,
            Priority.NORMAL: settings.order_resend_normal_s}[Priority(priority)]


def severity(priority: Priority) -> Severity:
    return {Priority.CRITICAL: Severity.CRITICAL, Priority.URGENT: Severity.WARNING,
            Priority.NORMAL: Severity.INFO}[Priority(priority)]


def is_offline(seen_ts: float | None, now: float, online_window_s: float) -> bool:
    return seen_ts is None or now - seen_ts > online_window_s


def plan(waiting: Iterable[Waiting], now: float, seen: Mapping[str, float], settings: Settings) -> list[Decision]:
    """What to do with each waiting recipient now (nothing, for most)."""
    out = []
    for w in waiting:
        heard = seen.get(w.terminal_id)
        if w.offline_at_send and heard is not None and heard > w.last_sent_at and now - heard >= RETURN_GRACE_S:
            out.append(Decision(Step.RETURNED, w))
        elif w.state is RecipientState.SENT and now - w.last_sent_at >= resend_after_s(w.priority, settings):
            out.append(Decision(Step.RESEND if w.attempts <= settings.order_resends else Step.NO_ANSWER, w))
    return out


@dataclass(frozen=True, slots=True)
class Heading:
    """An accepted recipient of an order with a place, not yet arrived."""

    command_id: UUID
    terminal_id: str
    order_id: UUID
    lat: float
    lon: float
    radius_m: float


def arrivals(heading: Iterable[Heading], positions: Mapping[str, LivePosition]) -> list[tuple[Heading, float]]:
    """Those whose live position is within the order's arrival radius, with their distance."""
    out = []
    for h in heading:
        p = positions.get(h.terminal_id)
        if p is not None:
            d = distance_m(h.lat, h.lon, p.lat, p.lon)
            if d <= h.radius_m:
                out.append((h, d))
    return out
