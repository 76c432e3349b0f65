"""Sessions end in a real browser (headless Chromium against gunicorn): a signed-in operator
page whose user is removed, and a wall whose token is revoked, fall back to the sign-in page
at their next poll instead of freezing; a hand-made cookie opens nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from dashboard.auth import store
from dashboard.auth.model import Role
from tests.dashboard.browser_support import require_chromium


pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def wall(base_settings):
    from dashboard.devserver import SyntheticWall

    require_chromium()
    with SyntheticWall(base_settings, terminals=50, entities=500, language="en", move=False) as w:
        yield w


LIVE = "() => window.gridwatch && window.gridwatch.terminalCount() >= 50"


def test_removed_user_is_sent_back_to_sign_in(wall, browser):
    from tests.dashboard.auth_support import browser_sign_in

    name = f"temp-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(wall.dsn, autocommit=True) as c:
        store.create_user(c, name, Role.DUTY_OFFICER, "temporary-pw-1", "tests")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    browser_sign_in(page, wall.url, name, "temporary-pw-1")
    page.wait_for_function(LIVE, timeout=30_000)
    assert page.locator("#order-console").count() == 1
    with psycopg.connect(wall.dsn, autocommit=True) as c:
        store.remove_user(c, name, "tests")
    page.wait_for_selector("#signin-user", timeout=30_000)  # the next poll got 401: reloaded to the form
    assert page.locator("#gw-map").count() == 0 and page.locator("#order-console").count() == 0


def test_revoked_wall_token_ends_the_wall(wall, browser):
    with psycopg.connect(wall.dsn, autocommit=True) as c:
        token = store.create_wall_token(c, f"lobby-{uuid.uuid4().hex[:6]}", "tests")
        name = c.execute("SELECT name FROM wall_token WHERE token_hash = %s", (store.digest(token),)).fetchone()[0]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{wall.url}/wall?token={token}")
    page.wait_for_function(LIVE, timeout=30_000)
    assert page.url == f"{wall.url}/wall"  # the token is off the address bar
    with psycopg.connect(wall.dsn, autocommit=True) as c:
        store.revoke_wall_token(c, name, "tests")
    page.wait_for_selector("#signin-need", timeout=30_000)
    assert page.locator("#gw-map").count() == 0


def test_a_forged_cookie_opens_nothing(wall, browser):
    ctx = browser.new_context()
    ctx.add_cookies([{"name": "gw_session", "value": "eyJzaWQiOiJ4In0.forged.signature", "url": wall.url}])
    page = ctx.new_page()
    page.goto(wall.url + "/")
    page.wait_for_selector("#signin-user", timeout=30_000)
    assert page.locator("#gw-map").count() == 0
    ctx.close()
