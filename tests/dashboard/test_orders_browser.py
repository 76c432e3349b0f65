"""The order console, board and wall overlay in headless Debian Chromium, served by gunicorn
against a synthetic city (1,000 moving terminals): sign in, pick the place on the map,
preview, send; the order's place, radius and recipients' rings appear on the operator page
and on the wall, and the operator's view is never moved.

Screenshots: $GRIDWATCH_ARTIFACTS (default artifacts/) orders-console.png, orders-wall.png.
"""

from __future__ import annotations

import re
import time

import psycopg
import pytest
from tests.dashboard.browser_support import ARTIFACTS, require_chromium

READY = "() => window.gridwatch && window.gridwatch.cityFitted && window.gridwatch.terminalCount() >= 1000 && window.gwOrders && window.gridwatch.getMap()"
VIEW = "() => { const m = window.gridwatch.getMap(), c = m.getCenter(); return [m.getZoom(), +c.lat.toFixed(6), +c.lng.toFixed(6)]; }"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def wall(base_settings):
    from dashboard.devserver import SyntheticWall

    require_chromium()
    extra = {"web_secret": "browser-test-secret-" + "b" * 32}
    users = {"duty": ("duty_officer", "browser-secret")}
    with SyntheticWall(base_settings, language="zh-CN", entities=5_000, log_path=ARTIFACTS / "orders-gunicorn.log", extra=extra,
                       users=users) as w:
        yield w


def _errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_console_preview_send_and_the_wall_shows_the_order(wall, browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1200})
    errors = _errors(page)
    page.goto(wall.url + "/")
    # Anonymous: the sign-in form and no data at all.
    page.wait_for_selector("#signin-user", timeout=30_000)
    assert page.locator("#gw-map").count() == 0 and page.locator("#order-console").count() == 0
    # Sign in as the duty officer (the form posts to /auth/login with its CSRF token and comes back).
    page.fill("#signin-user", "duty")
    page.fill("#signin-password", "browser-secret")
    page.click("#signin-submit")
    page.wait_for_function(READY, timeout=30_000)
    assert page.locator("#order-console").count() == 1 and page.locator("#order-send").count() == 1
    page.wait_for_function("() => document.getElementById('order-people') && "
                           "document.querySelectorAll('#signin-box button').length === 1", timeout=15_000)
    # The operator's own view: near a terminal, zoom 14.
    tid = wall.city.terminals[10]["terminal_id"]
    page.evaluate("(id) => { const g = window.gridwatch, m = g.getMap(); m.setView(g.markers[id].getLatLng(), 14, {animate: false}); return null; }", tid)
    time.sleep(0.5)
    view = page.evaluate(VIEW)
    page.click("#order-console-toggle")  # the console opens on demand
    # Pick the place: the toggle, then a click on the map (away from any terminal marker) sets lat/lon.
    page.locator("#order-pick input").check()
    box = page.locator("#gw-map").bounding_box()
    for dx, dy in ((31, 23), (-47, 17), (12, -41), (57, 49)):
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)
        try:
            page.wait_for_function("() => document.getElementById('order-lat').value !== ''", timeout=2_000)
            break
        except Exception:
            continue
    lat = float(page.input_value("#order-lat"))
    lon = float(page.input_value("#order-lon"))
    assert abs(lat - view[1]) < 0.05 and abs(lon - view[2]) < 0.05
    page.wait_for_function("() => document.querySelectorAll('.gw-pick-pin').length === 1", timeout=5_000)
    assert page.evaluate(VIEW) == view  # picking did not move the map
    # Write the order: everyone online within 2 km of the place.
    title = f"市场火情 {int(time.time()) % 10000}"
    page.fill("#order-title", title)
    page.fill("#order-body", "立即前往现场核查")
    page.locator("#order-target label", has_text="半径内").click()
    page.fill("#order-radius", "2000")
    page.fill("#order-expiry", "30")
    page.click("#order-preview")
    page.wait_for_function("() => !!document.getElementById('order-preview-counts')", timeout=15_000)
    counts = page.locator("#order-preview-counts").inner_text()
    m = re.match(r"(\d+) 台终端", counts)
    assert m and int(m.group(1)) >= 1, counts
    n = int(m.group(1))
    page.screenshot(path=str(ARTIFACTS / "orders-console.png"))
    page.click("#order-send")
    page.wait_for_function("() => document.getElementById('order-msg').textContent.startsWith('已发送')", timeout=15_000)
    assert f"{n} 个接收终端" in page.locator("#order-msg").inner_text()
    # The board lists it; the map shows its place, its radius and its recipients' rings.
    page.wait_for_function(f"() => document.getElementById('orders-board').textContent.includes({title!r})", timeout=15_000)
    page.wait_for_function("() => window.gwOrders.pinCount() === 1 && window.gwOrders.ringCount() >= 1", timeout=15_000)
    assert page.locator(".gw-order-label", has_text=title).count() == 1
    assert page.evaluate(VIEW) == view  # nothing the order drew moved the view
    time.sleep(1.0)
    page.screenshot(path=str(ARTIFACTS / "orders-operator.png"))
    # The wall: the same order's place and rings, no console, no board.
    w = browser.new_page(viewport={"width": 1920, "height": 1080})
    werrors = _errors(w)
    w.goto(wall.wall_url)  # a read-only wall session (wall token)
    w.wait_for_function(READY, timeout=30_000)
    w.wait_for_function("() => window.gwOrders.pinCount() === 1 && window.gwOrders.ringCount() >= 1", timeout=15_000)
    assert w.locator(".gw-order-label", has_text=title).count() == 1
    assert w.locator("#order-console").count() == 0 and w.locator("#orders-board").count() == 0
    rings = w.evaluate("() => window.gwOrders.ringCount()")
    assert 1 <= rings <= n
    assert w.evaluate("() => window.gwOrders.arrivedCount()") == 0
    # One recipient reaches the place (the dispatcher records arrived_at): its ring turns "arrived".
    with psycopg.connect(wall.dsn, autocommit=True) as c:
        c.execute("UPDATE order_recipient SET arrived_at = now() WHERE terminal_id = ("
                  " SELECT min(r.terminal_id) FROM order_recipient r JOIN emergency_order o USING (order_id)"
                  " WHERE o.title = %s) AND order_id = (SELECT order_id FROM emergency_order WHERE title = %s)",
                  (title, title))
    w.wait_for_function("() => window.gwOrders.arrivedCount() === 1", timeout=15_000)
    w.evaluate("(ll) => { window.gridwatch.getMap().setView(ll, 13, {animate: false}); return null; }", [lat, lon])
    time.sleep(1.5)
    w.screenshot(path=str(ARTIFACTS / "orders-wall.png"))
    assert not [e for e in errors + werrors if "favicon" not in e], errors + werrors
