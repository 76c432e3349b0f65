"""orders.targeting: each target kind on a small hand-made registry, then properties on random ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.targeting import LivePosition, Registry, TerminalEntry, UnknownTarget, distance_m, resolve_targets
from schemas.orders import EveryoneTarget, GridTarget, NearestTarget, PeopleTarget, RadiusTarget

NOW = 1_800_000_000.0
WINDOW = 120

# Level-1 L1 holds A, B, C in a row (A-B, B-C adjacent); L2 holds D (adjacent to C).
LEVEL1_OF = {"A": "L1", "B": "L1", "C": "L1", "D": "L2"}
ADJ = {"A": frozenset({"B"}), "B": frozenset({"A", "C"}), "C": frozenset({"B", "D"}), "D": frozenset({"C"})}
TERMINALS = {
    "T1": TerminalEntry("T1", "P1", "Ann", "level2_supervisor", ("A",)),
    "T2": TerminalEntry("T2", "P2", "Bo", "level2_supervisor", ("B",)),
    "T3": TerminalEntry("T3", "P3", "Cy", "co_manager", ("C",)),
    "T4": TerminalEntry("T4", "P4", "Di", "level2_supervisor", ("D",)),
    "T5": TerminalEntry("T5", "P5", "Ed", "level1_supervisor", (), ("L1",)),
    "T6": TerminalEntry("T6", "P1", "Ann", "level2_supervisor", ("A",)),  # Ann's second terminal
}
REG = Registry(TERMINALS, LEVEL1_OF, ADJ, frozenset({"L1", "L2"}))


def ids(recipients):
    return [r.terminal_id for r in recipients]


def test_everyone_in_terminal_order():
    assert ids(resolve_targets(EveryoneTarget(), REG, {}, NOW, WINDOW)) == ["T1", "T2", "T3", "T4", "T5", "T6"]


def test_level2_grid_exactly_its_terminals_and_adjacent_adds_neighbours():
    assert ids(resolve_targets(GridTarget(codes=["B"]), REG, {}, NOW, WINDOW)) == ["T2"]
    assert ids(resolve_targets(GridTarget(codes=["B"], include_adjacent=True), REG, {}, NOW, WINDOW)) == ["T1", "T2", "T3", "T6"]
    r = resolve_targets(GridTarget(codes=["D"]), REG, {}, NOW, WINDOW)
    assert [(x.terminal_id, x.grid2_code, x.grid1_code, x.person_name) for x in r] == [("T4", "D", "L2", "Di")]


def test_level1_grid_expands_and_includes_its_supervisor():
    r = resolve_targets(GridTarget(codes=["L1"]), REG, {}, NOW, WINDOW)
    assert ids(r) == ["T1", "T2", "T3", "T5", "T6"]
    sup = next(x for x in r if x.terminal_id == "T5")
    assert (sup.grid2_code, sup.grid1_code) == (None, "L1")
    # the level-1 supervisor is not in a level-2 grid's order
    assert "T5" not in ids(resolve_targets(GridTarget(codes=["A", "B", "C"]), REG, {}, NOW, WINDOW))


def test_unknown_codes_are_a_clear_error():
    with pytest.raises(UnknownTarget, match="unknown grids: ZZ"):
        resolve_targets(GridTarget(codes=["A", "ZZ"]), REG, {}, NOW, WINDOW)
    with pytest.raises(UnknownTarget, match="P9, T9"):
        resolve_targets(PeopleTarget(person_ids=["P9"], terminal_ids=["T9"]), REG, {}, NOW, WINDOW)


def test_people_and_terminals_each_once():
    r = resolve_targets(PeopleTarget(person_ids=["P1"], terminal_ids=["T1", "T4"]), REG, {}, NOW, WINDOW)
    assert ids(r) == ["T1", "T4", "T6"]


POS = {
    "T1": LivePosition(28.250, 117.010, NOW - 5),  # at the point
    "T2": LivePosition(28.260, 117.010, NOW - 5),  # ~1.1 km north
    "T3": LivePosition(28.251, 117.010, NOW - 500),  # near but offline
    "T4": LivePosition(28.300, 117.010, NOW - 60),  # ~5.6 km
    "X9": LivePosition(28.250, 117.010, NOW),  # not registered
}


def test_nearest_online_only_sorted_by_distance():
    r = resolve_targets(NearestTarget(lat=28.25, lon=117.01, n=2), REG, POS, NOW, WINDOW)
    assert ids(r) == ["T1", "T2"]
    assert r[0].distance_m == pytest.approx(0, abs=1) and r[1].distance_m == pytest.approx(1112, rel=0.01)
    assert ids(resolve_targets(NearestTarget(lat=28.25, lon=117.01, n=10), REG, POS, NOW, WINDOW)) == ["T1", "T2", "T4"]


def test_radius_online_within_distance():
    assert ids(resolve_targets(RadiusTarget(lat=28.25, lon=117.01, radius_m=2000), REG, POS, NOW, WINDOW)) == ["T1", "T2"]
    assert ids(resolve_targets(RadiusTarget(lat=28.25, lon=117.01, radius_m=10), REG, POS, NOW, WINDOW)) == ["T1"]


def test_distance_known_value():
    # one degree of latitude is about 111.2 km on the mean sphere
    assert distance_m(28.0, 117.0, 29.0, 117.0) == pytest.approx(111_195, rel=1e-3)


# --- properties on random registries and positions -------------------------------------------------

codes = st.sampled_from(["A", "B", "C", "D", "E", "F"])


@st.composite
def registries(draw):
    level1_of = {c: draw(st.sampled_from(["L1", "L2"])) for c in "ABCDEF"}
    pairs = draw(st.sets(st.tuples(codes, codes).filter(lambda p: p[0] != p[1]), max_size=10))
    adj: dict[str, set[str]] = {}
    for a, b in pairs:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    n = draw(st.integers(0, 25))
    terminals = {}
    for i in range(n):
        grids = tuple(sorted(draw(st.sets(codes, max_size=2))))
        terminals[f"T{i:02d}"] = TerminalEntry(f"T{i:02d}", f"P{i % 7}", None, "level2_supervisor", grids)
    return Registry(terminals, level1_of, {k: frozenset(v) for k, v in adj.items()}, frozenset({"L1", "L2"}))


@st.composite
def positions(draw, registry):
    out = {}
    for tid in registry.terminals:
        if draw(st.booleans()):
            out[tid] = LivePosition(draw(st.floats(28.0, 28.5)), draw(st.floats(116.8, 117.3)),
                                    NOW - draw(st.floats(0, 2 * WINDOW)))
    return out


point = st.tuples(st.floats(28.0, 28.5), st.floats(116.8, 117.3))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), reg=registries(), p=point, radius=st.floats(1, 60_000))
def test_radius_is_exactly_the_online_terminals_within_distance(data, reg, p, radius):
    pos = data.draw(positions(reg))
    got = resolve_targets(RadiusTarget(lat=p[0], lon=p[1], radius_m=min(radius, 50_000)), reg, pos, NOW, WINDOW)
    want = {t for t, x in pos.items() if NOW - x.seen_ts <= WINDOW and distance_m(p[0], p[1], x.lat, x.lon) <= min(radius, 50_000)}
    assert set(ids(got)) == want and len(got) == len(want)
    assert [r.distance_m for r in got] == sorted(r.distance_m for r in got)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), reg=registries(), p=point, n=st.integers(1, 30))
def test_nearest_returns_min_n_online_sorted_and_none_closer_left_out(data, reg, p, n):
    pos = data.draw(positions(reg))
    got = resolve_targets(NearestTarget(lat=p[0], lon=p[1], n=n), reg, pos, NOW, WINDOW)
    online = {t: distance_m(p[0], p[1], x.lat, x.lon) for t, x in pos.items() if NOW - x.seen_ts <= WINDOW}
    assert len(got) == min(n, len(online))
    dists = [r.distance_m for r in got]
    assert dists == sorted(dists)
    left_out = [d for t, d in online.items() if t not in ids(got)]
    assert not got or not left_out or min(left_out) >= dists[-1] - 1e-6


@settings(max_examples=150, deadline=None)
@given(reg=registries(), chosen=st.sets(codes, min_size=1, max_size=3))
def test_adjacent_is_a_superset_and_grid_members_are_right(reg, chosen):
    plain = resolve_targets(GridTarget(codes=sorted(chosen)), reg, {}, NOW, WINDOW)
    wide = resolve_targets(GridTarget(codes=sorted(chosen), include_adjacent=True), reg, {}, NOW, WINDOW)
    assert set(ids(plain)) <= set(ids(wide))
    assert set(ids(plain)) == {t for t, e in reg.terminals.items() if set(e.grids2) & chosen}
    reach = set(chosen) | {n for c in chosen for n in reg.adjacency.get(c, ())}
    assert set(ids(wide)) == {t for t, e in reg.terminals.items() if set(e.grids2) & reach}
    for r in plain + wide:
        assert ids(plain).count(r.terminal_id) <= 1 and ids(wide).count(r.terminal_id) <= 1
    assert ids(plain) == sorted(ids(plain))


@settings(max_examples=100, deadline=None)
@given(reg=registries(), level1=st.sampled_from(["L1", "L2"]))
def test_level1_equals_the_union_of_its_level2_grids(reg, level1):
    inside = sorted(c for c, p in reg.level1_of.items() if p == level1)
    got = ids(resolve_targets(GridTarget(codes=[level1]), reg, {}, NOW, WINDOW))
    want = ids(resolve_targets(GridTarget(codes=inside), reg, {}, NOW, WINDOW)) if inside else []
    assert got == want
