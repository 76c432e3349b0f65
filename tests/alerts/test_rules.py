"""The rules as pure functions over synthetic timelines: each fires, does not fire, clears."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings as hsettings, strategies as st

from alerts import rules
from alerts.model import DutyHours, EventIn, FixSample, Person, TerminalState, Thresholds
from schemas.alert import AlertKind, Severity

TZ = "Asia/Shanghai"
# 10:00 in Shanghai on a Wednesday: inside the default duty hours
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
NIGHT = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)  # 23:00 in Shanghai
TH = Thresholds(offline_s=900, outside_grid_s=900, low_battery_pct=15, battery_clear_pct=25, surge_min_reports=5,
                surge_p=1e-4, remind_s=120)
DUTY = DutyHours.parse("*=08:00-18:00")
ALICE = Person("P1", "王<b>丽</b>", "level2_supervisor", "138", frozenset({"A", "B"}))
PEOPLE = {"T1": ALICE}


def ev(kind: str, body: dict | None = None, seq: int = 1, at: datetime = T0, lat=28.26, lon=117.01, tid="T1") -> EventIn:
    return EventIn(tid, seq, at, kind, body or {}, lat, lon, "A", at)


def fix(at: datetime, grid: str | None = "A", battery: float | None = 80.0, tid: str = "T1") -> FixSample:
    return FixSample(tid, at, 28.26, 117.01, grid, battery, at)


def fold(fixes: list[FixSample], person=ALICE) -> TerminalState:
    st = TerminalState(fixes[0].terminal_id)
    for f in fixes:
        st = rules.observe_fix(st, f, person, TH)
    return st


# ---------------------------------------------------------------- SOS
def test_sos_is_critical_at_once_with_person_and_event_position():
    [f] = rules.sos([ev("sos", {"text": "help"})], PEOPLE, {}, "en")
    assert (f.kind, f.severity, f.subject, f.terminal_id) == (AlertKind.SOS, Severity.CRITICAL, "T1", "T1")
    assert (f.lat, f.lon) == (28.26, 117.01)
    assert f.detail["person_name"] == ALICE.name and f.detail["text"] == "help" and f.detail["position"] == "event"
    assert ALICE.name in f.title


def test_sos_without_position_takes_the_last_fix():
    st = fold([fix(T0 - timedelta(seconds=30))])
    [f] = rules.sos([ev("sos", lat=None, lon=None)], PEOPLE, {"T1": st}, "en")
    assert (f.lat, f.lon) == (28.26, 117.01) and f.detail["position"] == "last_fix"


def test_other_events_are_not_sos_and_two_sos_are_two_occurrences():
    assert rules.sos([ev("report", {"serious": True}), ev("heartbeat")], PEOPLE, {}, "en") == []
    a, b = rules.sos([ev("sos", seq=1), ev("sos", seq=2)], PEOPLE, {}, "en")
    assert a.dedup_key == b.dedup_key and a.occurrence < b.occurrence


# ---------------------------------------------------------------- serious violations
def test_serious_report_and_serious_inspection_fire_ordinary_ones_do_not():
    evs = [
        ev("report", {"report_id": "R1", "category": "tip", "text": "x", "serious": True}),
        ev("report", {"report_id": "R2", "category": "tip", "text": "x", "serious": False}, seq=2),
        ev("inspection.completed", {"inspection_id": "I1", "entity_uscc": "91360600MA35XXXX0A", "result": "serious_violation"}, seq=3),
        ev("inspection.completed", {"inspection_id": "I2", "entity_uscc": "91360600MA35XXXX0A", "result": "violation"}, seq=4),
    ]
    found = rules.serious(evs, PEOPLE, "en")
    assert [f.subject for f in found] == ["report:T1:R1", "entity:91360600MA35XXXX0A"]
    assert all(f.kind is AlertKind.SERIOUS_VIOLATION for f in found)


# ---------------------------------------------------------------- offline
def test_offline_fires_after_threshold_on_duty_and_clears_when_back():
    st = {"T1": fold([fix(T0)])}
    assert rules.offline(st, PEOPLE, T0 + timedelta(minutes=14), TZ, DUTY, TH, set(), "en").findings == []
    res = rules.offline(st, PEOPLE, T0 + timedelta(minutes=16), TZ, DUTY, TH, set(), "en")
    [f] = res.findings
    assert f.kind is AlertKind.OFFLINE and f.subject == "T1"
    # the same silence evaluated later is the same occurrence (no bump)
    [g] = rules.offline(st, PEOPLE, T0 + timedelta(minutes=40), TZ, DUTY, TH, {"T1"}, "en").findings
    assert g.occurrence == f.occurrence
    back = {"T1": rules.observe_fix(st["T1"], fix(T0 + timedelta(minutes=41)), ALICE, TH)}
    res = rules.offline(back, PEOPLE, T0 + timedelta(minutes=41), TZ, DUTY, TH, {"T1"}, "en")
    assert res.findings == [] and res.ended == {"T1"}


def test_offline_does_not_fire_off_duty_nor_for_terminals_without_a_person_or_never_heard():
    st = {"T1": fold([fix(NIGHT - timedelta(hours=2))])}
    assert rules.offline(st, PEOPLE, NIGHT, TZ, DUTY, TH, set(), "en").findings == []
    st = {"T9": fold([fix(T0 - timedelta(hours=2), tid="T9")]), "T1": TerminalState("T1")}
    assert rules.offline(st, PEOPLE, T0, TZ, DUTY, TH, set(), "en").findings == []


def test_duty_hours_per_role_and_overnight():
    d = DutyHours.parse("*=08:00-18:00,informant=22:00-06:00,level1_supervisor=00:00-24:00")
    local = datetime(2026, 11, 25, 23, 0)
    assert not d.on_duty("co_manager", local) and d.on_duty("informant", local) and d.on_duty("level1_supervisor", local)
    assert d.on_duty("co_manager", datetime(2026, 11, 25, 8, 0)) and not d.on_duty("co_manager", datetime(2026, 11, 25, 18, 0))


# ---------------------------------------------------------------- outside grid
def test_outside_grid_fires_after_threshold_ignores_neighbours_and_clears_inside():
    start = T0 - timedelta(minutes=20)
    st = fold([fix(start, "A"), fix(start + timedelta(minutes=1), "Z"), fix(start + timedelta(minutes=19), "Z")])
    assert st.outside_since == start + timedelta(minutes=1)
    [f] = rules.outside_grid({"T1": st}, PEOPLE, T0, TZ, DUTY, TH, set(), "en").findings
    assert f.kind is AlertKind.OUTSIDE_GRID and f.detail["allowed"] == ["A", "B"]
    # outside every grid counts as outside; "B" (adjacent, in the allowed set) does not
    assert fold([fix(start, None)]).outside_since == start
    assert fold([fix(start, "B")]).outside_since is None
    # not long enough yet
    assert rules.outside_grid({"T1": st}, PEOPLE, st.outside_since + timedelta(minutes=14), TZ, DUTY, TH, set(), "en").findings == []
    back = rules.observe_fix(st, fix(T0 + timedelta(seconds=5), "B"), ALICE, TH)
    res = rules.outside_grid({"T1": back}, PEOPLE, T0 + timedelta(seconds=5), TZ, DUTY, TH, {"T1"}, "en")
    assert res.findings == [] and res.ended == {"T1"}


def test_outside_grid_never_fires_for_a_person_without_assignment():
    nobody = Person("P2", "x", "informant", "", frozenset())
    st = fold([fix(T0 - timedelta(hours=1), "Z")], person=nobody)
    assert rules.outside_grid({"T1": st}, {"T1": nobody}, T0, TZ, DUTY, TH, set(), "en").findings == []


# ---------------------------------------------------------------- low battery
def test_low_battery_fires_on_duty_with_hysteresis_and_clears_when_charged():
    st = fold([fix(T0 - timedelta(minutes=5), battery=40), fix(T0 - timedelta(minutes=2), battery=14)])
    [f] = rules.low_battery({"T1": st}, PEOPLE, T0, TZ, DUTY, TH, set(), "en").findings
    assert f.kind is AlertKind.LOW_BATTERY and f.detail["battery_pct"] == 14
    st2 = rules.observe_fix(st, fix(T0 + timedelta(minutes=1), battery=20), ALICE, TH)  # under the clear level: still low
    assert rules.low_battery({"T1": st2}, PEOPLE, T0 + timedelta(minutes=1), TZ, DUTY, TH, {"T1"}, "en").findings[0].occurrence == f.occurrence
    st3 = rules.observe_fix(st2, fix(T0 + timedelta(minutes=2), battery=30), ALICE, TH)
    res = rules.low_battery({"T1": st3}, PEOPLE, T0 + timedelta(minutes=2), TZ, DUTY, TH, {"T1"}, "en")
    assert res.findings == [] and res.ended == {"T1"}
    assert rules.low_battery({"T1": st}, PEOPLE, NIGHT, TZ, DUTY, TH, set(), "en").findings == []


# ---------------------------------------------------------------- surge
def test_surge_fires_far_above_the_grids_baseline_only():
    hours = 28 * 24 - 1
    # a quiet grid: 3 reports a year (~0.2 in 28 days) — 4 reports in an hour is below the minimum count
    assert rules.surge({"Q": 4}, {"Q": 0}, hours, {}, {}, T0, TH, set(), "en").findings == []
    # ... 6 is a surge
    [f] = rules.surge({"Q": 6}, {"Q": 0}, hours, {"Q": (28.2, 117.0)}, {"Q": "安居社区"}, T0, TH, set(), "en").findings
    assert f.kind is AlertKind.COMPLAINT_SURGE and f.detail["p_value"] < 1e-4 and (f.lat, f.lon) == (28.2, 117.0)
    # a busy grid (3 an hour): 6 is ordinary, 16 is not
    busy = 3 * hours
    assert rules.surge({"B": 6}, {"B": busy}, hours, {}, {}, T0, TH, set(), "en").findings == []
    assert len(rules.surge({"B": 16}, {"B": busy}, hours, {}, {}, T0, TH, set(), "en").findings) == 1
    # it ended where an open surge alert's grid is no longer significant
    assert rules.surge({"B": 6}, {"B": busy}, hours, {}, {}, T0, TH, {"B", "Q"}, "en").ended == {"B", "Q"}


@hsettings(max_examples=200, deadline=None)
@given(yearly=st.integers(0, 3), n=st.integers(0, 4))
def test_surge_never_fires_under_the_minimum_count_on_a_quiet_grid(yearly, n):
    hours = 365 * 24.0
    assert rules.surge({"Q": n}, {"Q": yearly}, hours, {}, {}, T0, TH, set(), "en").findings == []


@hsettings(max_examples=200, deadline=None)
@given(n=st.integers(0, 60), lam=st.floats(0.0001, 30))
def test_poisson_tail_is_a_probability_and_falls_with_n(n, lam):
    p, q = rules.poisson_tail(n, lam), rules.poisson_tail(n + 1, lam)
    assert 0.0 <= q <= p <= 1.0


def test_poisson_tail_matches_a_direct_sum():
    import math
    lam, n = 2.5, 7
    direct = 1 - sum(math.exp(-lam) * lam ** k / math.factorial(k) for k in range(n))
    assert abs(rules.poisson_tail(n, lam) - direct) < 1e-12


# ---------------------------------------------------------------- folding fixes: order and idempotence
@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3600), st.sampled_from(["A", "B", "Z", None]), st.integers(0, 100)), min_size=1, max_size=30))
def test_refolding_the_same_fixes_changes_nothing(seq):
    fixes = sorted({fix(T0 + timedelta(seconds=s), g, b) for s, g, b in seq}, key=lambda f: f.ts)
    once = fold(fixes)
    again = once
    for f in fixes:  # the overlap re-read after a restart
        again = rules.observe_fix(again, f, ALICE, TH)
    assert again == once
    assert once.last_fix_ts == fixes[-1].ts


def test_reminders_due_every_interval_until_acknowledged():
    due = rules.reminders_due([(1, T0, None), (2, T0, T0 + timedelta(minutes=1)), (3, T0 + timedelta(minutes=2), None)],
                              T0 + timedelta(minutes=2, seconds=1), TH)
    assert due == [1]
