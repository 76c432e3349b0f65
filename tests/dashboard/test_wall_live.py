"""The refresh path against real Redis (and PostgreSQL for the cached registry summary)."""

from dashboard import live
from dashboard.deps import Deps


def test_counters_from_snapshot(settings, known_live):
    deps = Deps(settings)
    payload, state = live.refresh(deps, {}, "officers", force=True, now=known_live)
    c = payload["c"]
    assert c["online"] == 2 and c["total"] == 3  # T3 seen 10 min ago and its session said offline
    assert c["inspections_today"] == 5
    assert c["inspections_year"] == 3 + 5  # rollup before today + today's live counters
    assert c["reports_year"] == 2 + 3
    # Closed-loop figures have no source yet: None, shown as "—", never invented.
    for k in ("leads_verified", "cases_filed", "police_transfers", "penalty_decisions", "mediation_rate_pct"):
        assert c[k] is None
    assert state["v"] == 42


def test_terminal_rows_are_compact_and_flag_offline(settings, known_live):
    deps = Deps(settings)
    payload, _ = live.refresh(deps, {}, "officers", force=True, now=known_live)
    rows = {r[0]: r for r in payload["t"]}
    assert set(rows) == {"T1", "T2", "T3"}
    t1 = rows["T1"]
    assert t1[1:3] == [28.2039, 117.0039] and t1[3] == 5 and t1[5] == "2" and t1[6] == 45 and t1[7] == 0
    assert rows["T2"][6] == -1  # no heading
    assert rows["T3"][7] == 1 and rows["T3"][5] == "c"
    assert len(str(payload)) < 2000


def test_grid_colour_values_per_measure(settings, known_live):
    deps = Deps(settings)
    get = lambda m: live.refresh(deps, {}, m, force=True, now=known_live)[0]["g"]  # noqa: E731
    assert get("officers") == {"360602001001": 1, "360602002001": 1}  # T3 is offline
    assert get("inspections") == {"360602001001": 4, "360602002001": 1}
    assert get("reports") == {"360602002001": 3}
    assert get("alerts") == {"360602002001": 1, "360602001001": 1}  # the resolved one does not count
    p = live.refresh(deps, {}, "inspections", force=True, now=known_live)[0]
    assert p["gmax"] == 4


def test_unchanged_version_returns_nothing(settings, known_live, rds):
    deps = Deps(settings)
    payload, state = live.refresh(deps, {}, "officers", force=True, now=known_live)
    assert payload is not None
    again, state2 = live.refresh(deps, state, "officers", now=known_live + 1)
    assert again is None and state2 == state
    # grid values unchanged -> no "g" in the next payload even when the version moves
    rds.incr(deps.keys.version)
    nxt, _ = live.refresh(deps, state, "officers", now=known_live + 2)
    assert nxt is not None and "g" not in nxt and nxt["v"] == 43
    rds.decr(deps.keys.version)


def test_registry_summary_is_cached_in_redis(settings, known_live, rds):
    deps = Deps(settings)
    live.refresh(deps, {}, "officers", force=True, now=known_live)
    assert rds.get(deps.cache_key("terminal_meta")) is not None
    assert rds.pttl(deps.cache_key("terminal_meta")) > 0
