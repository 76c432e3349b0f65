"""orders.followup (pure): re-send timing, no answer, return, arrivals, severities."""

from __future__ import annotations

import uuid

from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from orders.followup import RETURN_GRACE_S, Heading, Step, Waiting, arrivals, plan, resend_after_s, severity
from orders.targeting import LivePosition
from schemas.alert import Severity
from schemas.commands import Priority
from schemas.orders import RecipientState
from schemas.settings import Settings

S = Settings(order_resend_critical_s=30, order_resend_urgent_s=60, order_resend_normal_s=300, order_resends=1)
T0 = 1_800_000_000.0


def waiting(state=RecipientState.SENT, attempts=1, offline=False, priority=Priority.CRITICAL, tid="T1") -> Waiting:
    return Waiting(uuid.uuid4(), tid, uuid.uuid4(), state, attempts, T0, offline, priority)


def steps(ws, now, seen=None):
    return [d.step for d in plan(ws, now, seen or {}, S)]


def test_critical_timeline_sent_resend_no_answer():
    assert steps([waiting()], T0 + 29.9) == []
    assert steps([waiting()], T0 + 30) == [Step.RESEND]
    assert steps([waiting(attempts=2)], T0 + 30) == [Step.NO_ANSWER]  # one re-send done, still silent
    assert steps([waiting(state=RecipientState.NO_ANSWER, attempts=2)], T0 + 3600) == []


def test_priorities_have_their_own_times():
    assert steps([waiting(priority=Priority.URGENT)], T0 + 59) == []
    assert steps([waiting(priority=Priority.URGENT)], T0 + 60) == [Step.RESEND]
    assert steps([waiting(priority=Priority.NORMAL)], T0 + 299) == []
    assert resend_after_s(Priority.NORMAL, S) == 300
    assert [severity(p) for p in Priority] == [Severity.INFO, Severity.WARNING, Severity.CRITICAL]


def test_return_resends_at_once_only_if_it_was_offline_and_has_been_heard_since():
    heard = {"T1": T0 + 5}
    assert steps([waiting(offline=True)], T0 + 5 + RETURN_GRACE_S, heard) == [Step.RETURNED]
    assert steps([waiting(offline=True)], T0 + 5 + RETURN_GRACE_S / 2, heard) == []  # the session's copy goes first
    assert steps([waiting(offline=False)], T0 + 10, heard) == []  # was online: the normal timing applies
    assert steps([waiting(offline=True)], T0 + 10, {"T1": T0 - 1}) == []  # not heard since the send
    assert steps([waiting(state=RecipientState.NO_ANSWER, attempts=2, offline=True)], T0 + 100, {"T1": T0 + 90}) == [Step.RETURNED]


@hsettings(max_examples=200, deadline=None)
@given(attempts=st.integers(1, 6), resends=st.integers(0, 4), dt=st.floats(0, 10_000))
def test_sends_are_bounded_by_the_resend_setting(attempts, resends, dt):
    s = S.model_copy(update={"order_resends": resends})
    got = [d.step for d in plan([waiting(attempts=attempts)], T0 + dt, {}, s)]
    if dt < 30:
        assert got == []
    elif attempts <= resends:
        assert got == [Step.RESEND]
    else:
        assert got == [Step.NO_ANSWER]


def test_arrivals_within_radius_only():
    h = Heading(uuid.uuid4(), "T1", uuid.uuid4(), 28.25, 117.01, 100.0)
    far = Heading(uuid.uuid4(), "T2", uuid.uuid4(), 28.25, 117.01, 100.0)
    none = Heading(uuid.uuid4(), "T3", uuid.uuid4(), 28.25, 117.01, 100.0)
    pos = {"T1": LivePosition(28.2505, 117.01, T0), "T2": LivePosition(28.26, 117.01, T0)}
    got = arrivals([h, far, none], pos)
    assert [(x.terminal_id, round(d)) for x, d in got] == [("T1", 56)]
