"""The wall's versioned deltas: the pure diff (hypothesis) and the /api/live answers against real Redis."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from dashboard import live_delta
from dashboard.deps import Deps

ROW = st.tuples(st.integers(2_000_000, 3_000_000), st.integers(11_000_000, 12_000_000), st.integers(0, 10**9),
                st.integers(0, 10**9), st.sampled_from("12ci?"), st.integers(-1, 359), st.integers(0, 1)).map(list)
SNAP = st.dictionaries(st.text("T0123456789", min_size=1, max_size=6), ROW, max_size=30)


def split(snap: dict) -> tuple[list[str], list[list]]:
    ids = sorted(snap)
    return ids, [snap[i] for i in ids]


def apply(ids: list[str], rows: dict[str, list], d: dict, now: int) -> tuple[list[str], dict[str, list]]:
    """What assets/gwlive.js (applyDelta) does with a delta, written again in Python."""
    rows = {k: list(v) for k, v in rows.items()}
    idx = -1
    for k, gap in enumerate(d["i"]):
        idx += gap
        r = rows[ids[idx]]
        r[0] += d["dy"][k]
        r[1] += d["dx"][k]
        r[2], r[3], r[5], r[6] = now - d["fa"][k], now - d["sa"][k], d["h"][k], d["o"][k]
    for tid in d["x"]:
        del rows[tid]
    for a in d["a"]:
        rows[a[0]] = a[1:]
    return d.get("ids", ids), rows


@given(SNAP, SNAP)
def test_a_delta_turns_the_old_snapshot_into_the_new(old, new):
    # terminals in both keep their role in this half; a changed role is the next test
    for tid in set(old) & set(new):
        new[tid][4] = old[tid][4]
    old_ids, old_rows = split(old)
    new_ids, new_rows = split(new)
    d = live_delta.diff(old_ids, old_rows, new_ids, new_rows, now=10**9)
    ids, rows = apply(old_ids, old, d, 10**9)
    assert ids == new_ids and rows == new
    assert sorted(d["x"]) == sorted(set(old) - set(new))  # removals travel as ids


def test_only_what_changed_travels_and_moves_are_small_steps():
    old = {"T1": [2820390, 11700390, 100, 100, "2", 45, 0], "T2": [2820500, 11710500, 100, 100, "c", -1, 0],
           "T3": [2820600, 11700600, 50, 50, "i", 10, 0]}
    new = {"T1": [2820393, 11700388, 101, 101, "2", 50, 0], "T2": old["T2"], "T3": [2820600, 11700600, 50, 50, "i", 10, 1]}
    d = live_delta.diff(*split(old), *split(new), now=110)
    assert d["i"] == [1, 2] and d["dy"] == [3, 0] and d["dx"] == [-2, 0]  # T1 moved, T2 unchanged, T3 went offline
    assert d["fa"] == [9, 60] and d["o"] == [0, 1] and d["a"] == [] and d["x"] == [] and "ids" not in d


def test_a_changed_role_or_a_new_terminal_is_a_whole_row_and_removals_send_the_id_list():
    old = {"T1": [1, 1, 1, 1, "2", 0, 0], "T2": [2, 2, 2, 2, "i", 0, 0]}
    new = {"T1": [1, 1, 1, 1, "1", 0, 0], "T3": [3, 3, 3, 3, "c", 0, 0]}
    d = live_delta.diff(*split(old), *split(new), now=5)
    assert d["a"] == [["T1", 1, 1, 1, 1, "1", 0, 0], ["T3", 3, 3, 3, 3, "c", 0, 0]]
    assert d["x"] == ["T2"] and d["ids"] == ["T1", "T3"] and d["i"] == []


def test_sid_parts():
    assert live_delta.sid_parts("42.1700000000123") == (42, 1700000000.123)
    for bad in (None, "", "42", "a.b", "1.2.3"):
        assert live_delta.sid_parts(bad) is None


# ---------------------------------------------------------------- against Redis
def _fresh_deps(settings, rds) -> Deps:
    deps = Deps(settings)
    for key in rds.scan_iter(match=deps.cache_key("wall:*")):
        rds.delete(key)
    return deps


def test_full_then_nothing_then_a_delta_with_the_move_only(settings, known_live, rds):
    deps = _fresh_deps(settings, rds)
    first = orjson.loads(live_delta.answer(deps, None, "officers", None, now=known_live))
    assert "full" in first and first["full"]["ids"] == ["T1", "T2", "T3"]
    assert first["full"]["r"][0][:2] == [2820390, 11700390] and first["full"]["r"][2][6] == 1  # T3 offline
    assert first["c"]["total"] == 3 and first["g"] == {"360602001001": 1, "360602002001": 1}
    sid, gh = first["s"], first["gh"]
    assert live_delta.answer(deps, sid, "officers", gh, now=known_live + 1) is None  # nothing new: 204
    fix = orjson.loads(rds.hget(deps.keys.last_fix, "T1"))
    try:
        rds.hset(deps.keys.last_fix, "T1", orjson.dumps(fix | {"lat": 28.20393, "ts": known_live + 2}))
        rds.incr(deps.keys.version)
        nxt = orjson.loads(live_delta.answer(deps, sid, "officers", gh, now=known_live + 2))
        assert nxt["b"] == sid and "full" not in nxt and "g" not in nxt  # same grids, same colours
        assert nxt["d"]["i"] == [1] and nxt["d"]["dy"] == [3] and nxt["d"]["dx"] == [0] and nxt["d"]["fa"] == [0]
    finally:
        rds.hset(deps.keys.last_fix, "T1", orjson.dumps(fix))
        rds.decr(deps.keys.version)


def test_unknown_or_expired_snapshot_gets_the_full_one_and_a_new_measure_its_values(settings, known_live, rds):
    deps = _fresh_deps(settings, rds)
    body = orjson.loads(live_delta.answer(deps, "42.1", "officers", None, now=known_live))
    assert "full" in body and "b" not in body
    same = orjson.loads(live_delta.answer(deps, body["s"], "inspections", body["gh"], now=known_live))
    assert same["g"] == {"360602001001": 4, "360602002001": 1} and same["gmax"] == 4 and "d" not in same

