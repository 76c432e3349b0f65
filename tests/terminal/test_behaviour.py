"""Virtual officers: pure and seeded; inside their region except on deliberate excursions."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from schemas.ack import AckStatus
from schemas.commands import Command
from terminal.behaviour import BehaviourConfig, EventAction, FixAction, NetworkAction, VirtualOfficer
from terminal.client import EVENT_MODELS
from terminal.region import Entity, Region, metres
from terminal.response import BUSY_NOTE, AckAction, ResponseConfig

FIXED = lambda: datetime(2025, 6, 1, tzinfo=UTC)  # noqa: E731
# a concave "U": straight lines between random inside points often leave it
U = Polygon([(117.00, 28.25), (117.03, 28.25), (117.03, 28.28), (117.02, 28.28), (117.02, 28.26), (117.01, 28.26), (117.01, 28.28), (117.00, 28.28)])
ENTITIES = [Entity("91360600MA35K2LQ7K", 28.255, 117.015, "饭店", "food"), Entity("91360600MA35K2LQ8A", 28.27, 117.005, "药店", "drug")]
BUSY = BehaviourConfig(inspections_per_hour=3, reports_per_hour=2, wander_per_hour=1, offline_per_hour=1, sos_per_hour=0.05)


def run(officer: VirtualOfficer, ticks: int, dt: float = 5.0) -> list[tuple[float, object, str | None]]:
    out = []
    for i in range(1, ticks + 1):
        for a in officer.tick(i * dt, dt):
            out.append((i * dt, a, officer.off_region_reason))
    return out


@pytest.mark.parametrize("geometry", [U, unary_union([box(117.0, 28.0, 117.01, 28.01), box(117.01, 28.0, 117.02, 28.005)])])
def test_positions_stay_inside_except_deliberate_wander(geometry) -> None:
    region = Region(geometry, ("G",), ENTITIES if geometry is U else [])
    actions = run(VirtualOfficer("T-1", region, seed=3, config=BUSY, clock=FIXED), 20_000)
    fixes = [(a, reason) for _, a, reason in actions if isinstance(a, FixAction)]
    outside = [(a, reason) for a, reason in fixes if not region.contains(a.lon, a.lat)]
    assert len(fixes) > 5000
    assert all(reason is not None for _, reason in outside), "only a wander/dispatch leaves the region"
    assert outside, "with wander_per_hour=1 the officer does wander sometimes"
    assert len(outside) < 0.1 * len(fixes)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_any_seed_without_wander_stays_inside(seed: int) -> None:
    region = Region(U, ("G",), ENTITIES)
    cfg = BehaviourConfig(wander_per_hour=0, inspections_per_hour=3)
    for _, a, _ in run(VirtualOfficer("T-2", region, seed=seed, config=cfg, clock=FIXED), 2000):
        if isinstance(a, FixAction):
            assert region.contains(a.lon, a.lat)


def test_seeded_determinism() -> None:
    region = Region(U, ("G",), ENTITIES)
    a = run(VirtualOfficer("T-3", region, seed=42, config=BUSY, clock=FIXED), 3000)
    b = run(VirtualOfficer("T-3", region, seed=42, config=BUSY, clock=FIXED), 3000)
    c = run(VirtualOfficer("T-3", region, seed=43, config=BUSY, clock=FIXED), 3000)
    assert a == b
    assert a != c


def test_speeds_are_walking_or_driving_and_headings_valid() -> None:
    region = Region(U, ("G",), ENTITIES)
    for seed in range(5):
        for _, a, _ in run(VirtualOfficer(f"T-{seed}", region, seed=seed, clock=FIXED), 1000):
            if isinstance(a, FixAction):
                assert 0 <= a.speed_mps <= 15 and 0 <= a.heading_deg < 360
                assert 5 <= a.battery_pct <= 100


def test_a_day_has_every_kind_of_event_and_bodies_validate() -> None:
    region = Region(U, ("G",), ENTITIES)
    kinds: Counter[str] = Counter()
    network = []
    results = Counter()
    for seed in range(6):
        for _, a, _ in run(VirtualOfficer(f"T-{seed}", region, seed=seed, config=BUSY, clock=FIXED), 17_280):  # a day at 5 s
            if isinstance(a, EventAction):
                kinds[a.kind.value] += 1
                model = EVENT_MODELS[a.kind](seq=1, ts=FIXED(), kind=a.kind.value, body=a.body, lat=a.lat, lon=a.lon)
                assert model.body == a.body
                if a.kind == "inspection.completed":
                    results[a.body.result.value] += 1
                    assert a.body.signatures and a.body.attachments and a.body.answers
            elif isinstance(a, NetworkAction):
                network.append(a.online)
    assert set(kinds) == {"patrol.started", "patrol.ended", "inspection.started", "inspection.completed", "report", "heartbeat", "sos"}
    assert kinds["inspection.started"] >= kinds["inspection.completed"] >= kinds["inspection.started"] - 6
    assert network and network[0] is False, "goes offline and comes back"
    assert "compliant" in results


# --- answering orders (terminal.response, driven through the officer's ticks) ----------------------
ALWAYS = BehaviourConfig(response=ResponseConfig(silent_share=0.0, reject_share=0.0))
NEAR = (117.0050, 28.2540)  # inside U's left leg, ~1 km across
FAR = (117.0600, 28.2900)  # ~4 km away, outside the region


def order(place: tuple[float, float] | None = None, **fields) -> Command:
    base = dict(command_id=uuid.uuid4(), order_id=uuid.uuid4(), issued_at=FIXED(), kind="emergency", title="Go", issued_by="d")
    if place is not None:
        base.update(lon=place[0], lat=place[1])
    base.update(fields)
    return Command(**base)


def officer_at(start: tuple[float, float], *, seed: int = 1, config: BehaviourConfig = ALWAYS) -> VirtualOfficer:
    o = VirtualOfficer("T-9", Region(U, ("G",), ENTITIES), seed=seed, config=config, clock=FIXED)
    o.pos = o.waypoint = start
    return o


def ticks(officer: VirtualOfficer, start: float, until: float, dt: float = 5.0) -> list[tuple[float, object, str]]:
    """(time, action, phase after the tick) for each action from ``start`` (exclusive) to ``until``."""
    out = []
    t = start
    while t < until:
        t += dt
        for a in officer.tick(t, dt):
            out.append((t, a, officer.phase))
    return out


def acks(actions) -> list[tuple[float, AckAction]]:
    return [(t, a) for t, a, _ in actions if isinstance(a, AckAction)]


def test_accepts_after_a_human_delay_walks_to_a_near_place_and_is_done_after_arriving() -> None:
    o = officer_at((117.0050, 28.2600))  # 667 m north of NEAR: on foot (under drive_beyond_m)
    cmd = order(NEAR)
    o.receive_command(cmd, 100.0)
    out = ticks(o, 100.0, 100.0 + 4 * 3600)
    answered = acks(out)
    assert [(a.command_id, a.status) for _, a in answered] == [(cmd.command_id, AckStatus.ACCEPTED), (cmd.command_id, AckStatus.DONE)]
    accepted_at, done_at = answered[0][0], answered[1][0]
    assert 100 + 5 <= accepted_at <= 100 + 60 + 5, "seconds to a minute, at tick resolution"
    moving = [(t, a) for t, a, phase in out if isinstance(a, FixAction) and phase == "response" and a.speed_mps > 0]
    assert moving and all(1.3 <= a.speed_mps <= 1.5 for _, a in moving), "walking pace"
    assert moving[0][0] >= accepted_at, "sets off once accepted"
    arrived_at = next(t for t, a, _ in out if isinstance(a, FixAction) and (a.lon, a.lat) == NEAR)
    set_off = [a for t, a, _ in out if isinstance(a, FixAction) and t < accepted_at][-1]  # it patrolled until then
    distance = metres((set_off.lon, set_off.lat), NEAR)
    assert distance / 1.5 - 5 <= arrived_at - accepted_at + 5 <= distance / 1.3 + 5
    assert 120 <= done_at - arrived_at <= 900 + 10
    on_site = [a for t, a, _ in out if isinstance(a, FixAction) and arrived_at < t < done_at]
    assert on_site and all((a.lon, a.lat) == NEAR and a.speed_mps == 0 for a in on_site), "stays at the place, reporting it"
    after = [(a, phase) for t, a, phase in out if t > done_at]
    assert after and all(phase != "response" for _, phase in after), "back to patrol once done"


def test_drives_to_a_far_place_outside_the_region_and_comes_back() -> None:
    o = officer_at((117.0250, 28.2550))
    cmd = order(FAR)
    o.receive_command(cmd, 0.0)
    out = ticks(o, 0.0, 3 * 3600)
    region = o.region
    fixes = [(t, a, phase) for t, a, phase in out if isinstance(a, FixAction)]
    driving = [a.speed_mps for _, a, phase in fixes if phase == "response" and a.speed_mps > 0]
    assert driving and all(8 <= v <= 12 for v in driving)
    assert any((a.lon, a.lat) == FAR for _, a, _ in fixes), "reaches the place"
    assert [a.status for _, a in acks(out)] == [AckStatus.ACCEPTED, AckStatus.DONE]
    assert region.contains(*o.pos) or o.off_region_reason == "returning"
    assert region.contains(fixes[-1][1].lon, fixes[-1][1].lat), "back inside its region after the order"


def test_amendment_moves_the_destination_and_done_names_the_amendment() -> None:
    o = officer_at((117.0250, 28.2550))
    first = order(FAR)
    o.receive_command(first, 0.0)
    out = ticks(o, 0.0, 120.0)
    assert o.phase == "response" and o.waypoint == FAR
    amended_place = (117.0280, 28.2600)
    amend = order(amended_place, order_id=first.order_id, action="amend", revision=1)
    o.receive_command(amend, 120.0)
    out += ticks(o, 120.0, 3 * 3600)
    assert [(a.command_id, a.status) for _, a in acks(out)] == [
        (first.command_id, AckStatus.ACCEPTED),
        (amend.command_id, AckStatus.ACCEPTED),
        (amend.command_id, AckStatus.DONE),
    ]
    fixes = [a for _, a, _ in out if isinstance(a, FixAction)]
    assert any((a.lon, a.lat) == amended_place for a in fixes) and not any((a.lon, a.lat) == FAR for a in fixes)


def test_amendment_before_acceptance_is_accepted_instead_of_the_first() -> None:
    o = officer_at((117.0250, 28.2550))
    first = order(FAR)
    o.receive_command(first, 0.0)
    amend = order(NEAR, order_id=first.order_id, action="amend", revision=1)
    o.receive_command(amend, 1.0)
    out = ticks(o, 0.0, 3 * 3600)
    assert [(a.command_id, a.status) for _, a in acks(out)] == [(amend.command_id, AckStatus.ACCEPTED), (amend.command_id, AckStatus.DONE)]


def test_cancel_stops_the_response_and_returns_to_patrol() -> None:
    start = (117.0250, 28.2550)
    o = officer_at(start)
    first = order(FAR)
    o.receive_command(first, 0.0)
    out = ticks(o, 0.0, 300.0)
    assert o.phase == "response" and o.return_to is not None
    left_at = o.return_to  # where it left its patrol
    cancel = order(order_id=first.order_id, action="cancel", title="Stand down")
    o.receive_command(cancel, 300.0)
    out += ticks(o, 300.0, 3 * 3600)
    answered = [(a.command_id, a.status) for _, a in acks(out)]
    assert answered == [(first.command_id, AckStatus.ACCEPTED), (cancel.command_id, AckStatus.ACCEPTED)]
    cancel_at = [t for t, a in acks(out) if a.command_id == cancel.command_id][0]
    later = [(a, phase) for t, a, phase in out if t > cancel_at]
    assert all(phase != "response" for _, phase in later)
    assert not any(isinstance(a, FixAction) and (a.lon, a.lat) == FAR for a, _ in later), "never reaches the place"
    assert any(isinstance(a, FixAction) and (round(a.lon, 7), round(a.lat, 7)) == (round(left_at[0], 7), round(left_at[1], 7)) for a, _ in later), (
        "heads back to where it left the patrol"
    )


def test_people_differ_most_accept_some_reject_with_a_note_a_few_never_answer() -> None:
    outcomes: Counter[str] = Counter()
    for seed in range(300):
        o = officer_at((117.0250, 28.2550), seed=seed, config=BehaviourConfig())
        o.receive_command(order(NEAR), 0.0)
        answered = acks(ticks(o, 0.0, 120.0))
        if not answered:
            outcomes["silent"] += 1
            continue
        (t, first), *_ = answered
        outcomes[first.status.value] += 1
        if first.status is AckStatus.REJECTED:
            assert first.note and 10 <= t <= 95
    assert outcomes["accepted"] >= 0.75 * 300
    assert 5 <= outcomes["rejected"] <= 60 and 3 <= outcomes["silent"] <= 40


def test_a_busy_officer_turns_down_a_second_order_with_a_place() -> None:
    o = officer_at((117.0250, 28.2550))
    first, second = order(FAR), order(NEAR)
    o.receive_command(first, 0.0)
    o.receive_command(second, 1.0)
    answered = [(a.command_id, a.status, a.note) for _, a in acks(ticks(o, 0.0, 200.0))]
    assert (second.command_id, AckStatus.REJECTED, BUSY_NOTE) in answered
    assert (first.command_id, AckStatus.ACCEPTED, None) in answered


def test_messages_are_read_and_orders_without_answers_get_none() -> None:
    o = officer_at((117.0250, 28.2550))
    msg = order(kind="message", title="Meeting at 3")
    quiet = order(requires_ack=False)
    o.receive_command(msg, 0.0)
    o.receive_command(quiet, 0.0)
    answered = acks(ticks(o, 0.0, 600.0))
    assert [(a.command_id, a.status) for _, a in answered] == [(msg.command_id, AckStatus.ACCEPTED), (msg.command_id, AckStatus.DONE)]
    assert answered[1][0] - answered[0][0] <= 45
    assert o.phase != "response"


def test_answers_are_seeded() -> None:
    def run_once(seed: int) -> list:
        o = officer_at((117.0250, 28.2550), seed=seed, config=BehaviourConfig())
        for k in range(5):
            o.receive_command(order(NEAR if k % 2 else None, command_id=uuid.UUID(int=k + 1), order_id=uuid.UUID(int=100 + k)), 10.0 * k)
        return [(t, a) for t, a in acks(ticks(o, 0.0, 3600.0))]

    assert run_once(7) == run_once(7)
    assert run_once(7) != run_once(8)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([NEAR, FAR, (117.015, 28.275)]))
def test_only_an_order_takes_an_officer_out_of_its_region(seed: int, place: tuple[float, float]) -> None:
    region = Region(U, ("G",), ENTITIES)
    o = VirtualOfficer("T-7", region, seed=seed, config=BehaviourConfig(wander_per_hour=0, response=ResponseConfig(silent_share=0, reject_share=0)), clock=FIXED)
    ticks(o, 0.0, 600.0)
    o.receive_command(order(place), 600.0)
    for t in range(605, 3 * 3600, 5):
        for a in o.tick(float(t), 5.0):
            if isinstance(a, FixAction) and not region.contains(a.lon, a.lat):
                assert o.off_region_reason in ("dispatch", "returning")
    assert region.contains(*o.pos), "back inside after the order"
