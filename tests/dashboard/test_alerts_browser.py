"""End to end in headless Chromium: an SOS from the reference terminal client, through the real
broker, ingest, the alerts engine and the wall (gunicorn), is a pinned, pulsing alert on the
operator's page (latency printed, a generous bound asserted); a click on it pans the map
without changing the zoom; operator mode beeps unless muted; a title carrying HTML stays text
in the feed and in the pin's tooltip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from dashboard.auth import store as auth_store
from dashboard.auth.model import Role
from dashboard.devserver import free_port
from tests.dashboard.auth_support import browser_sign_in
from terminal.client import TerminalClient, TerminalConfig
from tests.alerts.conftest import alert_settings, alerts_proc, person, registry  # noqa: F401  (fixtures)
from tests.ingest.conftest import ingest  # noqa: F401  (fixtures)
from tests.support import wait_until
from tests.dashboard.browser_support import ROOT, require_chromium

XSS = '<img src=x onerror="window.__pwned=1">'

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def redis_prefix(base_settings):
    """This module's own Redis prefix: the wall suite's session prefix holds other tests' known live
    state, and the ingest started here would rebuild it from this test's database."""
    prefix = f"gwtest:alertwall:{uuid.uuid4().hex[:8]}:"
    yield prefix
    r = redis.Redis.from_url(base_settings.redis_url)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)


@pytest.fixture
def web(alert_settings, tmp_path):
    require_chromium()
    port = free_port()
    env = alert_settings.model_copy(update={"web_secret": "alerts-browser-secret-" + "a" * 32}).as_env(os.environ)
    env.update(GRIDWATCH_WEB_BIND=f"127.0.0.1:{port}", GRIDWATCH_WEB_WORKERS="1")
    log = open(tmp_path / "web.log", "ab")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                             "dashboard.app:server"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_until(up, what="gunicorn to answer", timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def web_access(alert_settings):
    """A duty officer (name, password) and a wall token in this test's database."""
    name, password = f"duty-{uuid.uuid4().hex[:6]}", "alerts-browser-pw"
    with psycopg.connect(alert_settings.pg_dsn, autocommit=True) as c:
        auth_store.create_user(c, name, Role.DUTY_OFFICER, password, "tests")
        token = auth_store.create_wall_token(c, f"wall-{uuid.uuid4().hex[:6]}", "tests")
    return name, password, token


def _open(browser, url, sign_in: tuple[str, str] | None = None):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if sign_in:
        browser_sign_in(page, url.rsplit("/", 1)[0], *sign_in)  # ends on the signed-in operator page
        # the city fit runs once, when the grids arrive: let it be done before the test sets its own view
        page.wait_for_function("() => window.gridwatch && window.gridwatch.cityFitted === true", timeout=30_000)
    if page.url != url:
        page.goto(url)
    page.wait_for_function("() => window.gridwatch && window.gridwatch.getMap() && window.gridwatch.cityFitted"
                           " && window.gwAlerts && window.gwAlerts.applied >= 1",
                           timeout=30_000)
    return page, errors


def test_sos_on_the_wall_centring_sound_and_text_only(alert_settings, ingest, alerts_proc, person, web, web_access, browser, pg_dsn):
    s = alert_settings
    page, errors = _open(browser, web + "/", sign_in=web_access[:2])
    page.evaluate("() => window.gridwatch.getMap().setView([28.0, 116.8], 14, {animate: false})")
    client = TerminalClient(TerminalConfig(person, prefix=s.topic_prefix), host=s.mqtt_host, port=s.mqtt_port,
                            username=s.mqtt_username, password=s.mqtt_password).start()
    try:
        assert client.wait_connected(10)
        t0 = time.monotonic()
        client.send_event("sos", lat=28.2611, lon=117.2122)
        # this SOS (the session's database holds other tests' alerts too): its feed item and its pin
        page.wait_for_function(
            """(tid) => [...document.querySelectorAll('.gw-alert.gw-kind-sos')].some(e => e.textContent.includes(tid))
                && Object.values(window.gwAlerts.markers).some(m => Math.abs(m.getLatLng().lat - 28.2611) < 1e-6
                    && m.getElement() && m.getElement().classList.contains('gw-sos'))""", arg=person, timeout=30_000, polling=20)
        latency = time.monotonic() - t0
    finally:
        client.stop()
    print(f"\nSOS publish -> pinned on the operator's wall: {latency * 1000:.0f} ms")
    assert latency < 15, "an SOS took more than 15 s to reach the wall"
    feed = page.locator(".gw-alert.gw-kind-sos", has_text=person)
    assert "王" in feed.inner_text()  # the person, by name
    # operator mode: the cue sounded for it
    assert page.evaluate("() => window.gwAlerts.beeps") >= 1
    # a click on the alert pans to it; the zoom is the operator's
    feed.locator(".t").click()
    view = page.evaluate("() => { const m = window.gridwatch.getMap(), c = m.getCenter(); return [m.getZoom(), c.lat, c.lng]; }")
    assert view[0] == 14 and abs(view[1] - 28.2611) < 1e-3 and abs(view[2] - 117.2122) < 1e-3
    # an acknowledged critical alert is quiet until it is seen again (a second SOS bumps its count)
    cue = """(n) => { const A = window.gwAlerts, before = A.beeps;
        window.dash_clientside.gwAlerts.apply({alerts: [{id: -7, sev: 'critical', sos: true, state: 'acknowledged', n: n,
            rem: 0, lat: 28.3, lon: 117.1, title: 't'}]}, {wall: false}); return A.beeps - before; }"""
    assert page.evaluate(cue, 1) == 0 and page.evaluate(cue, 1) == 0 and page.evaluate(cue, 2) == 1
    # mute: the label flips and the next critical alert is silent
    page.click("#alert-mute")
    page.wait_for_function("() => document.getElementById('alert-mute').textContent === '取消静音'", timeout=5_000)
    beeps = page.evaluate("() => window.gwAlerts.beeps")
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute("INSERT INTO alert (kind, severity, lat, lon, title, subject, dedup_key) VALUES"
                  " ('sos', 'critical', 28.25, 117.22, %s, 'X', 'sos:xss-' || md5(random()::text))", (XSS,))
    page.wait_for_function("() => window.gwAlerts.pinCount() >= 2", timeout=15_000)
    assert page.evaluate("() => window.gwAlerts.beeps") == beeps
    # the HTML in the title is text: in the feed, and in the pin's tooltip
    titles = page.locator(".gw-alert .t").all_inner_texts()
    assert XSS in titles
    tip = page.evaluate("""() => { const A = window.gwAlerts; for (const id in A.markers) { const m = A.markers[id];
        m.openTooltip(); const el = m.getTooltip().getElement(); if (el && el.textContent.includes('<img')) {
        return [el.textContent, el.querySelectorAll('img').length]; } } return null; }""")
    assert tip is not None and tip[0] == XSS and tip[1] == 0
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.locator(".leaflet-container img[src='x']").count() == 0
    assert not errors, errors


def test_the_wall_page_pins_alerts_without_controls_or_sound(alert_settings, web, web_access, browser, pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute("INSERT INTO alert (kind, severity, lat, lon, title, subject, dedup_key) VALUES"
                  " ('sos', 'critical', 28.26, 117.21, 'SOS wall', 'W', 'sos:wall-' || md5(random()::text))")
    page, errors = _open(browser, web + "/wall?token=" + web_access[2])
    page.wait_for_function("() => document.querySelector('.gw-alert-pin.gw-sos') !== null", timeout=15_000)
    assert page.locator(".gw-alert button").count() == 0
    assert page.evaluate("() => window.gwAlerts.beeps") == 0
    assert not page.locator("#alert-mute").is_visible()
    assert not errors, errors
