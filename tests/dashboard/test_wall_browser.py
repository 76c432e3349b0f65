"""The wall in headless Debian Chromium, served by gunicorn against a synthetic city
(530 level-2 polygons, 70,000 entities, 1,000 terminals moving every second).

Saves artifacts/wall.png (wall mode) and artifacts/operator.png (CI keeps them).
"""

from __future__ import annotations

import time

import pytest
from tests.dashboard.browser_support import ARTIFACTS, require_chromium


pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY = """() => document.querySelectorAll('path.leaflet-interactive').length >= 500
    && window.gridwatch && window.gridwatch.cityFitted && window.gridwatch.terminalCount() >= 1000
    && document.querySelectorAll('.gw-cluster').length > 0
    && /\\d/.test((document.getElementById('ctr-online') || {}).textContent || '')"""


@pytest.fixture(scope="module")
def wall(base_settings):
    from dashboard.devserver import SyntheticWall

    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with SyntheticWall(base_settings, language="zh-CN", log_path=ARTIFACTS / "wall-gunicorn.log", extra={"wall_rotate_s": 5}) as w:
        yield w


def _open(browser, url, sign_in_to: str | None = None):
    """A page on ``url``; with ``sign_in_to`` (the server's base URL) signed in as the duty officer first."""
    from dashboard.devserver import DEV_USERS
    from tests.dashboard.auth_support import browser_sign_in

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    t0 = time.perf_counter()
    if sign_in_to:
        browser_sign_in(page, sign_in_to, "duty", DEV_USERS["duty"][1])
    page.goto(url)
    page.wait_for_function(READY, timeout=30_000)
    return page, errors, time.perf_counter() - t0


def test_wall_renders_map_grids_terminals_counters(wall, browser):
    page, errors, ready_s = _open(browser, wall.wall_url)  # the wall's own read-only token
    assert page.locator("#gw-map.leaflet-container").count() == 1
    assert page.locator("path.leaflet-interactive").count() >= 530 - 5  # level-2 fills (clickable)
    assert page.locator(".leaflet-overlay-pane path").count() >= 530 + 59 - 5  # + level-1 outlines (not clickable)
    assert page.evaluate("() => window.gridwatch.terminalCount()") == 1000
    online = page.locator("#ctr-online").inner_text()
    assert online.endswith("1,000") and int(online.split("/")[0].replace(",", "")) > 900
    assert page.locator("#ctr-inspections_today").inner_text() != "—"
    assert page.locator("#ctr-cases_filed").inner_text() == "—"  # no closed-loop data yet: no invented number
    assert page.locator(".gw-alert").count() == 2 and page.locator(".gw-alert button").count() == 0  # wall: no controls
    assert page.locator(".gw-alert-pin").count() == 2
    time.sleep(1.0)
    page.screenshot(path=str(ARTIFACTS / "wall.png"))
    # Wall mode with wall_rotate_s > 0: the focus moves to a level-1 grid (the one configured view change).
    # Against the zoom the city fit chose: under load the first rotation may already be done here.
    page.wait_for_function("() => window.gridwatch.getMap().getZoom() > window.gridwatch.cityFitZoom + 0.5", timeout=15_000)
    assert not [e for e in errors if "favicon" not in e], errors
    assert ready_s < 15


def test_charts_load_plotly_basic_after_the_map_is_drawn(wall, browser):
    """plotly.js runs only once the map is drawn (assets/charts_later.js), from the basic bundle:
    the full plotly.min.js is never fetched, and the three charts are drawn with it."""
    from dashboard.bundles import PLOTLY_URL

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(wall.wall_url)
    page.wait_for_function(READY, timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3"
                           " && document.querySelectorAll('#chart-activity .scatterlayer .trace').length > 0", timeout=30_000)
    drawn, lib = page.evaluate("() => [window.gridwatch.mapDrawnAt, window.gridwatch.chartsLibAt]")
    assert drawn is not None and lib is not None and lib > drawn
    assert page.locator("#chart-categories .pielayer .trace").count() == 1
    assert page.locator("#chart-grids .barlayer .trace").count() == 1
    assert any(u.endswith(PLOTLY_URL) for u in urls) and not any("plotly.min.js" in u for u in urls)
    page.close()


# A cluster on screen with no terminal within 15 px of its centre (a terminal there takes the click).
FREE_CLUSTER = """() => { const g = window.gridwatch, m = g.getMap(), box = m.getContainer().getBoundingClientRect();
  for (const el of document.querySelectorAll('.gw-cluster')) {
    const r = el.getBoundingClientRect(), x = r.left + r.width / 2 - box.left, y = r.top + r.height / 2 - box.top;
    if (x < 40 || y < 40 || x > box.width - 40 || y > box.height - 40) continue;
    let near = false;
    for (const id in g.markers) { const p = m.latLngToContainerPoint(g.markers[id].getLatLng()); if (Math.hypot(p.x - x, p.y - y) < 15) { near = true; break; } }
    if (!near) return [r.left + r.width / 2, r.top + r.height / 2];
  }
  return null; }"""


def test_entities_clustered_in_a_worker_and_a_cluster_click_zooms_in(wall, browser):
    """All 70,000 entities are indexed off the main thread (assets/gwentities.js); the clusters
    in view are drawn, and a click on one zooms to where it splits."""
    page, errors, _ = _open(browser, wall.wall_url)
    ent = page.evaluate("() => window.gridwatch.entities")
    assert ent["ready"] and ent["count"] == 70_000 and ent["error"] is None
    assert ent["shown"] >= page.locator(".gw-cluster").count() > 0
    counts = page.evaluate("() => [...document.querySelectorAll('.gw-cluster span')].map(s => s.textContent)")
    assert counts and all(c.replace(".", "").replace("k", "").isdigit() for c in counts)
    zoom = page.evaluate("() => window.gridwatch.getMap().getZoom()")
    pt = page.evaluate(FREE_CLUSTER)
    assert pt is not None
    page.mouse.click(*pt)
    page.wait_for_function(f"() => window.gridwatch.getMap().getZoom() > {zoom}", timeout=10_000)
    assert not [e for e in errors if "favicon" not in e], errors
    page.close()


def test_terminals_and_grids_asked_for_before_the_map_exists(wall, browser):
    """gwlive.js asks for the first snapshot and gwgrids.js for the grids as soon as they run; the
    map (created by React later) draws them at once."""
    page, errors, _ = _open(browser, wall.wall_url)
    starts = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('resource')
        .filter(e => e.name.includes('/api/live') || e.name.includes('/api/grids'))
        .map(e => [e.name.replace(location.origin, ''), e.startTime]).reverse())""")
    created = page.evaluate("() => window.gridwatch.mapCreatedAt")
    assert starts["/api/live?m=officers"] < created, (starts, created)
    assert starts["/api/grids.geojson?level=2"] < created and starts["/api/grids.geojson?level=1"] < created
    assert page.evaluate("() => window.gridwatch.grids.drawnAt") is not None
    assert not [e for e in errors if "favicon" not in e], errors
    page.close()


def test_sign_in_page_starts_no_entity_worker(wall, browser):
    page = browser.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(wall.url + "/wall")  # no token, not an allowed address: the sign-in page
    page.wait_for_selector("#signin-need", timeout=30_000)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.gridwatch.entities.ready") is False
    assert not [u for u in urls if "/api/" in u or "supercluster" in u or "plotly" in u], urls
    page.close()


def test_operator_clicks_grid_terminal_and_replays(wall, browser):
    page, errors, _ = _open(browser, wall.url + "/", sign_in_to=wall.url)
    # Refreshes move markers in place and never touch the operator's view.
    page.evaluate("() => { window.gridwatch.getMap().setView([28.2, 117.0], 13, {animate: false}); }")
    applied = page.evaluate("() => window.gridwatch.applied")
    page.wait_for_function(f"() => window.gridwatch.applied >= {applied + 2}", timeout=10_000)
    view = page.evaluate("() => { const m = window.gridwatch.getMap(); const c = m.getCenter(); return [m.getZoom(), c.lat, c.lng]; }")
    assert view == [13, 28.2, 117.0]
    # Click a level-2 grid: its supervisor and team.
    code = wall.city.level2[100]["code"]
    page.evaluate(
        "(c) => { const m = window.gridwatch.getMap(); m.setView([c[0], c[1]], 13, {animate: false}); }",
        [wall.city.level2[100]["lat"] + 0.004, wall.city.level2[100]["lon"] + 0.004],
    )
    time.sleep(0.5)
    box = page.locator("#gw-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"() => document.getElementById('details').textContent.includes('{code}')", timeout=10_000)
    assert "一级网格负责人" in page.locator("#details").inner_text()
    # Click a terminal marker (canvas): who, grid, last fix, battery, task, track.
    tid = wall.city.terminals[0]["terminal_id"]
    pt = page.evaluate(
        "(id) => { const g = window.gridwatch, m = g.getMap(), mk = g.markers[id]; m.setView(mk.getLatLng(), 14, {animate: false});"
        " const p = m.latLngToContainerPoint(mk.getLatLng()); return [p.x, p.y]; }",
        tid,
    )
    time.sleep(0.3)
    pt = page.evaluate("(id) => { const g = window.gridwatch, m = g.getMap(); const p = m.latLngToContainerPoint(g.markers[id].getLatLng()); return [p.x, p.y]; }", tid)
    page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])
    page.wait_for_function(f"() => document.getElementById('details').textContent.includes('{tid}')", timeout=10_000)
    assert "电量" in page.locator("#details").inner_text()
    assert page.evaluate("() => window.gridwatch.getMap().getZoom()") == 14  # the click did not move the view
    # Replay: the last hour of this terminal's fixes, animated from one fetched array.
    start = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - 3600 + 8 * 3600 - time.localtime().tm_gmtoff))
    page.fill("#replay-target", tid)
    page.fill("#replay-start", start)
    page.locator("#replay-target").press("Enter")
    page.locator("#replay-start").press("Enter")
    page.click("#replay-load")
    page.wait_for_function("() => document.getElementById('replay-msg').textContent.length > 0", timeout=10_000)
    assert page.locator("#replay-msg").inner_text().startswith("已载入 3"), page.locator("#replay-msg").inner_text()  # ~30 fixes in 30 min
    page.click("#replay-play")
    page.wait_for_function("() => window.gridwatch.replay && window.gridwatch.replay.getLayers().length >= 2"
                           " && document.getElementById('replay-label').textContent.length > 0", timeout=10_000)
    page.evaluate("() => { const g = window.gridwatch; g.getMap().fitBounds(g.replay.getLayers()[0].getBounds().pad(0.5), {animate: false}); }")
    time.sleep(1.0)
    page.screenshot(path=str(ARTIFACTS / "operator.png"))
    assert not [e for e in errors if "favicon" not in e], errors
