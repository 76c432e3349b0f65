"""The wall's live layer in headless Debian Chromium: what a delta does on screen.

A fix written to Redis (as ingest writes it) moves that terminal's existing marker without
touching the operator's view; a terminal that is forgotten disappears and a new one appears,
both through deltas (no full snapshot after the first). The fleet does not move here: the
test writes every change itself.
"""

from __future__ import annotations

import json
import time

import pytest
from tests.dashboard.browser_support import ARTIFACTS, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEW = "() => { const m = window.gridwatch.getMap(), c = m.getCenter(); return [m.getZoom(), c.lat, c.lng]; }"


@pytest.fixture(scope="module")
def wall(base_settings):
    from dashboard.devserver import SyntheticWall

    require_chromium()
    with SyntheticWall(base_settings, terminals=60, entities=500, move=False, language="en",
                       log_path=ARTIFACTS / "wall-delta-gunicorn.log") as w:
        yield w


@pytest.fixture()
def page(wall, browser):
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(wall.wall_url)
    page.wait_for_function("() => window.gridwatch && window.gridwatch.cityFitted && window.gridwatch.terminalCount() === 60"
                           " && window.gridwatch.sid", timeout=30_000)
    yield page
    assert not errors, errors
    page.close()


def write_fix(wall, tid: str, **change) -> None:
    """What ingest does for a stored fix: the newest fix, seen time, and a new live:version."""
    keys = wall.fleet.keys
    raw = wall.redis.hget(keys.last_fix, tid)
    fix = json.loads(raw) if raw else {"seq": 1, "spd": 1.0, "hdg": 90, "bat": 80, "acc": 5, "g2": None, "g1": None}
    fix.update(ts=time.time(), **change)
    pipe = wall.redis.pipeline()
    pipe.hset(keys.last_fix, tid, json.dumps(fix))
    pipe.zadd(keys.last_seen, {tid: fix["ts"]})
    pipe.hset(keys.session, tid, "1")
    pipe.incr(keys.version)
    pipe.execute()


def test_a_fix_moves_its_marker_in_place_and_the_view_stays(wall, page):
    tid = wall.city.terminals[7]["terminal_id"]
    page.evaluate("() => { window.gridwatch.getMap().setView([28.2, 117.0], 13, {animate: false}); }")
    page.evaluate(f"() => {{ window._probe = window.gridwatch.markers['{tid}']; }}")
    full = page.evaluate("() => window.gridwatch.live.full")
    lat, lon = 28.21234, 117.04321
    write_fix(wall, tid, lat=lat, lon=lon, hdg=270)
    page.wait_for_function(f"() => {{ const ll = window.gridwatch.markers['{tid}'].getLatLng();"
                           f" return Math.abs(ll.lat - {lat}) < 1e-9 && Math.abs(ll.lng - {lon}) < 1e-9; }}", timeout=10_000)
    assert page.evaluate(f"() => window.gridwatch.markers['{tid}'] === window._probe")  # the same layer object, moved
    assert page.evaluate(VIEW) == [13, 28.2, 117.0]  # a refresh changes data, never the view
    assert page.evaluate("() => window.gridwatch.live.full") == full  # it came as a delta
    assert page.evaluate("() => window.gridwatch.live.deltas") >= 1
    assert page.evaluate(f"() => window.gridwatch.markers['{tid}'].options.heading") == 270  # restyled too (zoom 13 shows headings)


def test_a_delta_removes_and_adds_terminals(wall, page):
    gone = wall.city.terminals[11]["terminal_id"]
    keys = wall.fleet.keys
    full = page.evaluate("() => window.gridwatch.live.full")
    pipe = wall.redis.pipeline()  # what ingest's prune does for a terminal silent too long
    pipe.hdel(keys.last_fix, gone)
    pipe.zrem(keys.last_seen, gone)
    pipe.hdel(keys.session, gone)
    pipe.incr(keys.version)
    pipe.execute()
    page.wait_for_function(f"() => !('{gone}' in window.gridwatch.markers)", timeout=10_000)
    assert page.evaluate("() => window.gridwatch.terminalCount()") == 59
    assert page.evaluate(f"() => window.gridwatch.ids.indexOf('{gone}')") == -1
    new = "TNEW<b>1</b>"  # an id from a terminal is text: it must not become markup anywhere
    write_fix(wall, new, lat=28.2, lon=117.0)
    page.wait_for_function(f"() => {json.dumps(new)} in window.gridwatch.markers", timeout=10_000)
    assert page.evaluate("() => window.gridwatch.terminalCount()") == 60
    assert page.evaluate("() => window.gridwatch.live.full") == full  # both through deltas
    assert page.evaluate("() => document.querySelectorAll('#gw-map b').length") == 0
    # After both, the next move of a terminal still lands on the right marker (indexes follow the new id list).
    tid = wall.city.terminals[30]["terminal_id"]
    write_fix(wall, tid, lat=28.25, lon=117.05)
    page.wait_for_function(f"() => Math.abs(window.gridwatch.markers['{tid}'].getLatLng().lat - 28.25) < 1e-9", timeout=10_000)
    assert page.evaluate("() => window.gridwatch.live.full") == full
