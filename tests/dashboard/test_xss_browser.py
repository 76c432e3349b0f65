"""Stored script injection, in headless Chromium against gunicorn: a grid imported with the name
``<img src=x onerror=...>`` is served as the GeoJSON tooltip that dash-leaflet binds with
Leaflet's bindTooltip (HTML). It must show as text, and nothing it carries may run; the same
for the grid's details panel and the terminals' hover tooltips."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import redis
from tests.dashboard.browser_support import ARTIFACTS, require_chromium

XSS = '<img src=x onerror="window.__xss=1">'
CODE = "369999999001"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def wall(base_settings):
    from dashboard.devserver import SyntheticWall

    require_chromium()
    with SyntheticWall(base_settings, terminals=50, entities=500, language="en", move=False,
                       log_path=ARTIFACTS / "xss-gunicorn.log") as w:
        # "Imported" with a hostile name: a level-2 grid in the middle of the city, then a new grid version.
        with psycopg.connect(w.dsn, autocommit=True) as c:
            g = w.city.level2[0]
            l1, lat, lon = c.execute("SELECT level1_code FROM grid_level2 WHERE code = %s", (g["code"],)).fetchone()[0], g["lat"], g["lon"]
            d = 0.01
            poly = ('{"type": "Polygon", "coordinates": [[[%f, %f], [%f, %f], [%f, %f], [%f, %f], [%f, %f]]]}'
                    % (lon, lat, lon + d, lat, lon + d, lat + d, lon, lat + d, lon, lat))
            c.execute("INSERT INTO grid_level2 VALUES (%s, %s, %s, %s, %s, %s, %s, 1, true)",
                      (CODE, XSS, XSS, l1, poly, lat + d / 2, lon + d / 2))
            c.execute("UPDATE gw_meta SET value = %s WHERE key = 'grid_version'", (f"xss-{uuid.uuid4().hex[:6]}",))
        redis.Redis.from_url(w.settings.redis_url).delete(f"{w.prefix}dash:cache:grid_version")
        yield w


def test_a_hostile_grid_name_is_text_and_runs_nothing(wall, browser):
    from dashboard.devserver import DEV_USERS
    from tests.dashboard.auth_support import browser_sign_in

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_sign_in(page, wall.url, "viewer", DEV_USERS["viewer"][1])
    page.wait_for_function(f"""() => {{ const m = window.gridwatch && window.gridwatch.getMap(); if (!m) return false;
        let found = false; m.eachLayer(l => {{ if (l.feature && l.feature.properties.code === '{CODE}') found = true; }});
        return found; }}""", timeout=30_000)
    # Open the grid's tooltip (what hovering does) and read what the browser made of it.
    tip = page.evaluate(f"""() => {{ const m = window.gridwatch.getMap(); let out = null;
        m.eachLayer(l => {{ if (l.feature && l.feature.properties.code === '{CODE}' && l.getTooltip && l.getTooltip()) {{
            l.openTooltip(l.getBounds().getCenter()); const el = l.getTooltip().getElement();
            out = [el.textContent, el.querySelectorAll('img').length, el.innerHTML]; }} }});
        return out; }}""")
    assert tip is not None, "the grid's tooltip was not bound"
    assert tip[0] == XSS and tip[1] == 0, tip
    page.wait_for_timeout(500)  # an onerror would fire as soon as the image failed to load
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
    # The details panel: the name as text.
    page.evaluate(f"""() => window.dash_clientside.set_props('grid-sel', {{data: {{code: '{CODE}', n: 1}}}})""")
    page.wait_for_function(f"() => (document.getElementById('details') || {{}}).textContent.includes('{CODE}')", timeout=15_000)
    assert XSS in page.locator("#details").inner_text()
    assert page.locator("#details img").count() == 0
    assert page.evaluate("() => window.__xss") is None
    # The terminals' hover tooltip is a text node too (its id comes from a terminal).
    node = page.evaluate("() => { const n = window.gridwatch.textNode('<b>x</b>'); return [n.textContent, n.children.length]; }")
    assert node == ["<b>x</b>", 0]
    page.screenshot(path=str(ARTIFACTS / "xss-grid.png"))
    assert not errors, errors
