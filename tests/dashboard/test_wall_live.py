"""The wall's snapshot against real Redis (and PostgreSQL for the cached registry summary),
read through the live feed's full answer (dashboard/live_delta.py over dashboard/live.py)."""

import orjson

from dashboard import live_delta
from dashboard.deps import Deps


class PrivateDeps(Deps):
    """Cache keys of this module's own: a snapshot builder left running by another test in this
    process (the web app's) stamps its snapshots with the real clock, and a snapshot from the
    future counts as fresh, so it could answer in place of the one built here at ``now``."""

    def cache_key(self, name: str) -> str:
        return super().cache_key(f"test_wall_live:{name}")


def full(settings, rds, measure: str, now: float) -> dict:
    """The full snapshot a screen that has nothing gets, built afresh."""
    deps = PrivateDeps(settings)
    for key in rds.scan_iter(match=deps.cache_key("wall:*")):
        rds.delete(key)
    return orjson.loads(live_delta.answer(deps, None, measure, None, now=now))


def test_counters_from_snapshot(settings, known_live, rds):
    c = full(settings, rds, "officers", known_live)["c"]
    assert c["online"] == 2 and c["total"] == 3  # T3 seen 10 min ago and its session said offline
    assert c["inspections_today"] == 5
    assert c["inspections_year"] == 3 + 5  # rollup before today + today's live counters
    assert c["reports_year"] == 2 + 3
    # Closed-loop figures have no source yet: None, shown as "—", never invented.
    for k in ("leads_verified", "cases_filed", "police_transfers", "penalty_decisions", "mediation_rate_pct"):
        assert c[k] is None


def test_terminal_rows_are_compact_and_flag_offline(settings, known_live, rds):
    body = full(settings, rds, "officers", known_live)
    rows = dict(zip(body["full"]["ids"], body["full"]["r"]))
    assert set(rows) == {"T1", "T2", "T3"}
    t1 = rows["T1"]
    assert t1[:2] == [2820390, 11700390] and body["now"] - t1[2] == 5 and t1[4] == "2" and t1[5] == 45 and t1[6] == 0
    assert rows["T2"][5] == -1  # no heading
    assert rows["T3"][6] == 1 and rows["T3"][4] == "c"
    assert len(orjson.dumps(body["full"])) < 300


def test_grid_colour_values_per_measure(settings, known_live, rds):
    get = lambda m: full(settings, rds, m, known_live)  # noqa: E731
    assert get("officers")["g"] == {"360602001001": 1, "360602002001": 1}  # T3 is offline
    assert get("inspections")["g"] == {"360602001001": 4, "360602002001": 1}
    assert get("reports")["g"] == {"360602002001": 3}
    assert get("alerts")["g"] == {"360602002001": 1, "360602001001": 1}  # the resolved one does not count
    assert get("inspections")["gmax"] == 4
    assert get("nonsense")["m"] == "officers"  # an unknown measure from the browser is the default one


def test_registry_summary_is_cached_in_redis(settings, known_live, rds):
    deps = PrivateDeps(settings)
    rds.delete(deps.cache_key("terminal_meta"))
    full(settings, rds, "officers", known_live)
    assert rds.get(deps.cache_key("terminal_meta")) is not None
    assert rds.pttl(deps.cache_key("terminal_meta")) > 0
