"""At load the wall fits the city (the level-2 grids' extent) to the map panel of a 1920x1080
screen, once: refreshes afterwards never change the view the operator chose.

Headless Debian Chromium against the synthetic city (530 level-2 polygons); saves
map-fit-wall.png and map-fit-operator.png to $GRIDWATCH_ARTIFACTS (default: artifacts/).
"""

from __future__ import annotations

import time

import pytest
from tests.dashboard.browser_support import ARTIFACTS, require_chromium


pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The level-2 grids' extent in container pixels, and the panel's size.
CITY_PX = """() => {
  const m = window.gridwatch.getMap(), b = L.latLngBounds([]);
  m.eachLayer(l => { const p = l.feature && l.feature.properties; if (p && p.level === 2) b.extend(l.getBounds()); });
  const sw = m.latLngToContainerPoint(b.getSouthWest()), ne = m.latLngToContainerPoint(b.getNorthEast()), s = m.getSize();
  return {x0: sw.x, y0: ne.y, x1: ne.x, y1: sw.y, w: s.x, h: s.y, n: document.querySelectorAll('path.leaflet-interactive').length};
}"""
VIEW = "() => { const m = window.gridwatch.getMap(), c = m.getCenter(); return [m.getZoom(), c.lat, c.lng]; }"


@pytest.fixture(scope="module")
def wall(base_settings):
    from dashboard.devserver import SyntheticWall

    require_chromium()
    # The fit depends on the polygons, not the fleet: a small fleet keeps the shared machine calm.
    with SyntheticWall(base_settings, terminals=200, entities=5000, language="zh-CN", log_path=ARTIFACTS / "map-fit-gunicorn.log") as w:
        yield w


@pytest.mark.parametrize("path", ["/wall", "/"])
def test_city_fills_the_panel_and_refresh_keeps_the_operators_view(wall, browser, path):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    if path == "/":
        from dashboard.devserver import DEV_USERS
        from tests.dashboard.auth_support import browser_sign_in

        browser_sign_in(page, wall.url, "viewer", DEV_USERS["viewer"][1])  # a read-only user sees the map too
        page.goto(wall.url + path)
    else:
        page.goto(wall.wall_url)
    page.wait_for_function("() => window.gridwatch && window.gridwatch.cityFitted === true"
                           " && document.querySelectorAll('path.leaflet-interactive').length >= 530", timeout=30_000)
    page.wait_for_function("() => window.gridwatch.applied >= 1", timeout=30_000)
    time.sleep(0.5)
    name = "map-fit-wall.png" if path == "/wall" else "map-fit-operator.png"
    page.screenshot(path=str(ARTIFACTS / name))

    px = page.evaluate(CITY_PX)
    width_share, height_share = (px["x1"] - px["x0"]) / px["w"], (px["y1"] - px["y0"]) / px["h"]
    assert max(width_share, height_share) >= 0.80, px  # before the fit: 0.77 (wall) and 0.70 (operator) of the height
    assert px["x0"] >= -2 and px["y0"] >= -2 and px["x1"] <= px["w"] + 2 and px["y1"] <= px["h"] + 2, px  # all of it shown
    assert px["w"] > 1000 and px["h"] > 600, px  # really the 1920x1080 layout's panel

    # The operator zooms in; several live refreshes (which move markers and restyle the grids) follow.
    page.evaluate("() => { window.gridwatch.getMap().setView([28.2, 117.0], 13, {animate: false}); }")
    applied = page.evaluate("() => window.gridwatch.applied")
    page.wait_for_function(f"() => window.gridwatch.applied >= {applied + 3}", timeout=20_000)
    assert page.evaluate(VIEW) == [13, 28.2, 117.0]
    # Another measure re-colours every grid: still the operator's view.
    applied = page.evaluate("() => window.gridwatch.applied")
    page.evaluate("() => { window.dash_clientside.set_props('measure', {value: 'inspections'}); }")
    page.wait_for_function(f"() => window.gridwatch.applied >= {applied + 2}", timeout=20_000)
    assert page.evaluate(VIEW) == [13, 28.2, 117.0]
    assert not [e for e in errors if "favicon" not in e], errors
    page.close()
