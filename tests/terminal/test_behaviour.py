"""Virtual officers: pure and seeded; inside their region except on deliberate excursions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from schemas.commands import Command
from terminal.behaviour import (
    BehaviourConfig,
    Entity,
    EventAction,
    FixAction,
    NetworkAction,
    Region,
    VirtualOfficer,
)
from terminal.client import EVENT_MODELS

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


def test_command_answers() -> None:
    region = Region(U, ("G",), ENTITIES)
    officer = VirtualOfficer("T-9", region, seed=1, config=BehaviourConfig(reject_share=0.0), clock=FIXED)
    cmd = Command(command_id="6f1d3c1e-2b7a-4c1e-9f3a-0a5b2c7d8e90", issued_at=FIXED(), kind="emergency", title="Go", issued_by="d", lat=28.40, lon=117.20)
    plans = officer.answer_command(cmd)
    assert [p.status for p in plans] == ["accepted", "done"] and plans[0].after_s < plans[1].after_s
    assert officer.waypoint == (117.20, 28.40) and officer.off_region_reason == "dispatch"
    refuser = VirtualOfficer("T-9", region, seed=1, config=BehaviourConfig(reject_share=1.0), clock=FIXED)
    (plan,) = refuser.answer_command(cmd)
    assert plan.status == "rejected" and plan.note
    assert officer.answer_command(cmd.model_copy(update={"requires_ack": False})) == []
