"""Who may use the web (issue 15), through the real app, PostgreSQL and Redis: sign-in with a
CSRF token and a rate limit, server-side sessions ended by sign-out and by user changes, the
read gate on details, replay and the data routes, wall tokens and the address allow-list, the
safe redirect, the startup refusal, the users and audit commands, escaped grid tooltips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from hypothesis import given, settings as hsettings, strategies as st

from dashboard.app import create_app
from dashboard.auth import store
from dashboard.auth.model import Level, Role
from dashboard.auth.startup import InsecureWebConfig, check_web_secret, is_loopback_bind
from dashboard.auth.web import callback_level, safe_back
from tests.dashboard.auth_support import USERS, csrf, sign_in, sign_out, signed_in, wall_client
from tests.dashboard.orders_support import dash_call

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 40


@pytest.fixture(scope="module")
def app(settings, known_live):
    return create_app(settings)


@pytest.fixture(autouse=True)
def fresh_signin_limits(settings):
    """Each test starts with no failed sign-ins counted (they share 127.0.0.1 and the user names)."""
    r = redis.Redis.from_url(settings.redis_url)

    def clear():
        keys = list(r.scan_iter(match=settings.redis_prefix + "web:signin:*"))
        if keys:
            r.delete(*keys)

    clear()
    yield
    clear()


def from_address(app, address: str):
    """A test client whose requests come from ``address``."""
    client = app.server.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _audit(dsn: str, action: str, subject: str) -> list[tuple]:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT actor, action, subject, address FROM web_audit WHERE action = %s AND subject = %s ORDER BY id",
                         (action, subject)).fetchall()


def _details(client, app, code: str = "360602001001"):
    return dash_call(client, app, "details.children",
                     [{"id": "grid-sel", "property": "data", "value": {"code": code, "n": 1}},
                      {"id": "term-sel", "property": "data", "value": None}], [], ["grid-sel.data"])


def _replay(client, app):
    return dash_call(client, app, "replay-data.data",
                     [{"id": "replay-load", "property": "n_clicks", "value": 1}, {"id": "replay-clear", "property": "n_clicks", "value": 0}],
                     [{"id": "replay-target", "property": "value", "value": "T1"},
                      {"id": "replay-start", "property": "value", "value": "2026-01-01 00:00"},
                      {"id": "replay-minutes", "property": "value", "value": 30}], ["replay-load.n_clicks"])


def _live(client, app):
    """The wall's live feed (GET /api/live, dashboard/live_delta.py)."""
    return client.get("/api/live?m=officers")


# ----------------------------------------------------------------- 1. secrets and bind
@pytest.mark.parametrize("bind,loop", [("127.0.0.1:8050", True), ("localhost:8050", True), ("[::1]:8050", True),
                                       ("127.8.9.1:1", True), ("0.0.0.0:8050", False), ("10.0.0.5:8050", False),
                                       ("[::]:8050", False), ("unix:/run/gw.sock", False), ("", False)])
def test_loopback_binds(bind, loop):
    assert is_loopback_bind(bind) is loop


def test_secret_rules(settings):
    default = settings.model_copy(update={"web_secret": "change-me"})
    check_web_secret(default, ["127.0.0.1:8050"])  # a local run needs nothing
    with pytest.raises(InsecureWebConfig, match="default GRIDWATCH_WEB_SECRET"):
        check_web_secret(default, ["127.0.0.1:8050", "0.0.0.0:8050"])
    short = settings.model_copy(update={"web_secret": "x" * 31})
    with pytest.raises(InsecureWebConfig, match="31 bytes"):
        check_web_secret(short, ["127.0.0.1:8050"])
    check_web_secret(settings.model_copy(update={"web_secret": STRONG}), ["0.0.0.0:8050"])
    # create_app refuses too (any WSGI server), by the configured bind
    with pytest.raises(InsecureWebConfig):
        create_app(settings.model_copy(update={"web_secret": "change-me", "web_bind": "0.0.0.0:8050"}))
    with pytest.raises(InsecureWebConfig):
        create_app(short)


def test_gunicorn_refuses_the_default_secret_off_loopback(settings):
    from dashboard.devserver import free_port

    env = settings.model_copy(update={"web_secret": "change-me", "web_bind": f"0.0.0.0:{free_port()}"}).as_env(os.environ)
    proc = subprocess.run([str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                           "dashboard.app:server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "gridwatch web not started" in proc.stderr and "GRIDWATCH_WEB_SECRET" in proc.stderr
    # -b on the command line is checked too (it overrides GRIDWATCH_WEB_BIND)
    env["GRIDWATCH_WEB_BIND"] = "127.0.0.1:1"
    proc = subprocess.run([str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                           "-b", f"0.0.0.0:{free_port()}", "dashboard.app:server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "gridwatch web not started" in proc.stderr


def test_a_local_run_starts_with_the_defaults(settings):
    """What ./gw start runs: the default secret, the default bind (here on a free loopback port)."""
    import urllib.request

    from dashboard.devserver import free_port
    from tests.support import wait_until

    port = free_port()
    env = settings.model_copy(update={"web_secret": "change-me", "web_bind": f"127.0.0.1:{port}"}).as_env(os.environ)
    env["GRIDWATCH_WEB_WORKERS"] = "1"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                             "dashboard.app:server"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_until(up, what="gunicorn on loopback with the default secret", timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/grids.geojson", timeout=5) as r:
            raise AssertionError(f"the layers answered {r.status} without a session")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    finally:
        proc.terminate()
        proc.wait(15)


def test_default_bind_is_loopback():
    from schemas.settings import Settings

    assert Settings.model_fields["web_bind"].default.startswith("127.0.0.1:")


# ----------------------------------------------------------------- 2. sign-in, sessions, users
def test_sign_in_needs_the_csrf_token_and_a_right_password(app, known_db):
    client = app.server.test_client()
    csrf(client)
    resp = client.post("/auth/login", data={"user": "duty", "password": USERS["duty"][1]})  # no token
    assert resp.status_code == 400
    resp = client.post("/auth/login", data={"user": "duty", "password": USERS["duty"][1], "csrf": "guessed"})
    assert resp.status_code == 400
    assert _details(client, app).status_code == 401  # still nobody
    resp = sign_in(client, "duty", "wrong-password-1")
    assert resp.status_code == 302 and "signin=failed" in resp.headers["Location"]
    assert _audit(known_db, "signin_failed", "duty")[-1][0] == "-"
    resp = sign_in(client, "nobody-here", "wrong-password-1")
    assert "signin=failed" in resp.headers["Location"]
    resp = sign_in(client, "duty")
    assert resp.status_code == 302 and "signin" not in resp.headers["Location"]
    assert _details(client, app).status_code == 200
    assert _audit(known_db, "signin", "duty")[-1][:3] == ("duty", "signin", "duty")
    # the session is a row: the cookie carries only its id
    with client.session_transaction() as s:
        assert set(s) == {"sid", "csrf"}
    # Sign-out needs the token too, and ends the session for a copy of the cookie as well.
    cookie = client.get_cookie("gw_session").value
    assert client.post("/auth/logout", data={}).status_code == 400
    assert sign_out(client).status_code == 302
    assert _details(client, app).status_code == 401
    copy = app.server.test_client()
    copy.set_cookie("gw_session", cookie)
    assert _details(copy, app).status_code == 401
    assert _audit(known_db, "signout", "duty")


def test_the_page_itself_carries_the_token(app):
    client = app.server.test_client()
    resp = dash_call(client, app, "_pages_content.children",
                     [{"id": "_pages_location", "property": "pathname", "value": "/"},
                      {"id": "_pages_location", "property": "search", "value": ""}], [], ["_pages_location.pathname"])
    assert resp.status_code == 200
    text = json.dumps(resp.get_json(), ensure_ascii=False)
    token = csrf(client)
    assert token in text and "signin-user" in text
    assert "gw-map" not in text and "live-tick" not in text  # no data for an anonymous page


def test_rate_limit_per_user_and_per_address(app, settings, known_db):
    r = redis.Redis.from_url(settings.redis_url)
    name = f"limited-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(known_db, autocommit=True) as c:
        store.create_user(c, name, Role.DUTY_OFFICER, "right-password-1", "tests")
    try:
        # per user: from several addresses, 5 failures lock the name (the right password too)
        for i in range(settings.web_signin_max_per_user):
            client = from_address(app, f"10.77.0.{i + 1}")
            assert "signin=failed" in sign_in(client, name, "wrong-password-1").headers["Location"]
        client = from_address(app, "10.77.1.1")
        assert "signin=limited" in sign_in(client, name, "right-password-1").headers["Location"]
        assert _details(client, app).status_code == 401
        assert _audit(known_db, "signin_limited", name)
        # per address: one address guessing many names is stopped, other addresses are not
        for i in range(settings.web_signin_max_per_address):
            guesser = from_address(app, "10.77.2.2")
            sign_in(guesser, f"guess{i}", "wrong-password-1")
        guesser = from_address(app, "10.77.2.2")
        assert "signin=limited" in sign_in(guesser, "viewer").headers["Location"]
        other = from_address(app, "10.77.3.3")
        assert "signin" not in sign_in(other, "viewer").headers["Location"]
    finally:
        keys = list(r.scan_iter(match=settings.redis_prefix + "web:signin:*"))
        if keys:
            r.delete(*keys)


def test_user_changes_end_sessions_and_are_audited(app, known_db):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "GRIDWATCH_PG_DSN": known_db}

    def users(*args, password: str | None = None):
        return subprocess.run([sys.executable, "-m", "dashboard.users", *args], cwd=ROOT, env=env, input=password,
                              capture_output=True, text=True, timeout=60)

    made = users("create", name, "--role", "duty_officer", "--password-stdin", password="first-password-1\n")
    assert made.returncode == 0, made.stderr
    assert users("create", name, "--role", "duty_officer", "--password-stdin", password="first-password-1\n").returncode == 2
    assert users("create", "bad name!", "--role", "duty_officer", "--password-stdin", password="first-password-1\n").returncode == 2
    assert users("create", name + "x", "--role", "duty_officer", "--password-stdin", password="short\n").returncode == 2
    listed = users("list")
    assert any(line.split("\t")[:2] == [name, "duty_officer"] for line in listed.stdout.splitlines())
    with psycopg.connect(known_db) as c:
        stored = c.execute("SELECT password_hash FROM web_user WHERE name = %s", (name,)).fetchone()[0]
    assert stored.startswith("$argon2id$") and "first-password-1" not in stored

    client = signed_in_as(app, name, "first-password-1")
    assert _details(client, app).status_code == 200
    assert users("passwd", name, "--password-stdin", password="second-password-1\n").returncode == 0
    assert _details(client, app).status_code == 401  # the old password's session is gone
    assert "signin=failed" in sign_in(app.server.test_client(), name, "first-password-1").headers["Location"]

    client = signed_in_as(app, name, "second-password-1")
    assert users("role", name, "wall_viewer").returncode == 0
    assert _details(client, app).status_code == 401  # a role change signs out too
    client = signed_in_as(app, name, "second-password-1")
    assert _details(client, app).status_code == 200
    assert users("remove", name).returncode == 0
    assert _details(client, app).status_code == 401
    assert users("remove", name).returncode == 2
    with psycopg.connect(known_db) as c:
        actions = [r[0] for r in c.execute("SELECT action FROM web_audit WHERE subject = %s AND actor LIKE 'cli:%%' ORDER BY id", (name,))]
    assert actions == ["user_created", "user_password", "user_role", "user_removed"]


def signed_in_as(app, name: str, password: str):
    client = app.server.test_client()
    assert "signin" not in sign_in(client, name, password).headers["Location"]
    return client


def test_idle_session_ends(app, known_db, settings):
    client = signed_in(app, "viewer")
    assert _details(client, app).status_code == 200
    sid = client.get_cookie("gw_session")
    assert sid is not None
    with client.session_transaction() as s:
        h = store.digest(s["sid"])
    with psycopg.connect(known_db, autocommit=True) as c:
        c.execute("UPDATE web_session SET last_seen_at = now() - make_interval(secs => %s) WHERE id_hash = %s",
                  (settings.web_session_idle_s + 5, h))
    assert _details(client, app).status_code == 401
    with psycopg.connect(known_db) as c:
        assert c.execute("SELECT count(*) FROM web_session WHERE id_hash = %s", (h,)).fetchone()[0] == 0


def test_cookie_flags(settings, known_live):
    for secure in (False, True):
        app = create_app(settings.model_copy(update={"web_secure_cookies": secure}))
        client = app.server.test_client()
        resp = sign_in(client, "viewer")
        header = next(v for k, v in resp.headers.items() if k == "Set-Cookie" and v.startswith("gw_session="))
        assert "HttpOnly" in header and "SameSite=Lax" in header
        assert ("Secure" in header) is secure


# ----------------------------------------------------------------- 3. reading
def test_reading_needs_sign_in_and_the_wall_reads_only_the_wall(app, known_db):
    anon = app.server.test_client()
    for call in (_details, _replay, _live):
        assert call(anon, app).status_code == 401
    wall = wall_client(app, known_db)
    assert _live(wall, app).status_code == 200
    assert wall.get("/api/grids.geojson?level=2").status_code == 200
    assert _details(wall, app).status_code == 403 and _replay(wall, app).status_code == 403
    viewer = signed_in(app, "viewer")
    assert _details(viewer, app).status_code == 200 and _replay(viewer, app).status_code == 200
    assert "李明" in json.dumps(_details(viewer, app).get_json(), ensure_ascii=False)


def test_callback_levels():
    assert callback_level(".._pages_content.children..._pages_store.data..") is Level.ANONYMOUS
    assert callback_level("..chart-activity.figure...chart-grids.figure...chart-categories.figure..") is Level.WALL
    assert callback_level("..alert-feed.children...alert-data.data..") is Level.WALL
    for out in ("..details.children...track-line.positions..", "..replay-data.data...replay-slider.max..",
                "..orders-board.children...order-sel.options..", "something-new.children", ""):
        assert callback_level(out) is Level.VIEWER  # anything not listed needs a signed-in user


def test_wall_token_opens_a_wall_and_revoking_ends_it(app, known_db):
    with psycopg.connect(known_db, autocommit=True) as c:
        token = store.create_wall_token(c, f"lobby-{uuid.uuid4().hex[:6]}", "tests")
        name = c.execute("SELECT name FROM wall_token WHERE token_hash = %s", (store.digest(token),)).fetchone()[0]
    bad = app.server.test_client()
    assert bad.get("/wall?token=not-a-token").status_code == 403
    client = app.server.test_client()
    resp = client.get(f"/wall?token={token}")
    assert resp.status_code == 302 and resp.headers["Location"] == "/wall"  # the token leaves the URL
    assert _live(client, app).status_code == 200
    assert _audit(known_db, "wall_opened", f"wall:{name}")
    with psycopg.connect(known_db, autocommit=True) as c:
        store.revoke_wall_token(c, name, "tests")
    assert _live(client, app).status_code == 401
    assert app.server.test_client().get(f"/wall?token={token}").status_code == 403


def test_wall_address_allow_list(settings, known_live):
    app = create_app(settings.model_copy(update={"web_wall_addresses": "10.1.2.0/28, 192.0.2.7"}))
    inside = from_address(app, "10.1.2.3")
    assert _live(inside, app).status_code == 200
    assert _details(inside, app).status_code == 403  # the wall reads the wall only
    assert _live(from_address(app, "192.0.2.7"), app).status_code == 200
    assert _live(from_address(app, "10.1.2.99"), app).status_code == 401


def test_wall_addresses_setting_is_checked(settings):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="web_wall_addresses"):
        settings.model_validate({**settings.model_dump(), "web_wall_addresses": "10.1.2.0/28,not-an-address"})


# ----------------------------------------------------------------- 4. grid names are text
def test_grid_tooltip_is_escaped(app, known_db):
    xss = '<img src=x onerror="window.__xss=1">'
    code = "360602002099"
    with psycopg.connect(known_db, autocommit=True) as c:
        c.execute("INSERT INTO grid_level2 VALUES (%s, %s, %s, '360602002',"
                  " '{\"type\": \"Polygon\", \"coordinates\": [[[117.2, 28.2], [117.21, 28.2], [117.21, 28.21], [117.2, 28.2]]]}',"
                  " 28.205, 117.205, 1, true)", (code, xss, xss))
        c.execute("UPDATE gw_meta SET value = %s WHERE key = 'grid_version'", (f"v-xss-{uuid.uuid4().hex[:6]}",))
    try:
        app._gw_deps.cache_drop("grid_version")
        wall = wall_client(app, known_db)
        fc = json.loads(wall.get("/api/grids.geojson?level=2").data)
        tip = next(f["properties"]["tooltip"] for f in fc["features"] if f["properties"]["code"] == code)
        assert tip == "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" and "<" not in tip
    finally:
        with psycopg.connect(known_db, autocommit=True) as c:
            c.execute("DELETE FROM grid_level2 WHERE code = %s", (code,))
            c.execute("UPDATE gw_meta SET value = 'v-test-1' WHERE key = 'grid_version'")
        app._gw_deps.cache_drop("grid_version")


# ----------------------------------------------------------------- 5. the redirect after sign-in
@pytest.mark.parametrize("referer,expected", [
    ("https://evil//evil/x", "/"),
    ("http://localhost//evil/x", "/"),
    ("http://localhost/\\evil/x", "/"),
    ("http://localhost/\t/evil/x", "/"),
    ("javascript:alert(1)", "/"),
    ("http://localhost/wall?signin=failed&x=1", "/wall?x=1"),
    ("http://localhost/", "/"),
])
def test_redirect_after_sign_in_stays_on_site(app, referer, expected):
    client = app.server.test_client()
    resp = client.post("/auth/login", data={"user": "viewer", "password": USERS["viewer"][1], "csrf": csrf(client)},
                       headers={"Referer": referer})
    assert resp.status_code == 302 and resp.headers["Location"] == expected
    failed = app.server.test_client()
    resp = failed.post("/auth/login", data={"user": "nobody", "password": "wrong-password-1", "csrf": csrf(failed)},
                       headers={"Referer": referer})
    assert resp.headers["Location"].startswith(expected.split("?")[0] + "?") and "signin=failed" in resp.headers["Location"]


@hsettings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_safe_back_is_always_a_local_path(text):
    for url in (text, "https://" + text, "http://localhost" + text, "//" + text, "/" + text):
        out = safe_back(url, "localhost")
        assert out.startswith("/") and out[1:2] not in ("/", "\\")
        assert not any(ord(c) < 0x21 or c == "\\" for c in out.split("?")[0])


# ----------------------------------------------------------------- 6. the audit
def test_audit_is_append_only_and_exports_with_orders_and_alerts(app, known_db):
    client = signed_in(app, "chief")
    with psycopg.connect(known_db, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("UPDATE web_audit SET actor = 'someone else'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("DELETE FROM web_audit")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("TRUNCATE web_audit")
        aid = c.execute("INSERT INTO alert (kind, severity, terminal_id, title) VALUES ('sos', 'critical', 'T1', 'audit test')"
                        " RETURNING id").fetchone()[0]
        from dashboard.actions import AlertAction, act_on_alert

        assert act_on_alert(c, aid, AlertAction.ACKNOWLEDGE, "chief")
    env = {**os.environ, "GRIDWATCH_PG_DSN": known_db}
    out = subprocess.run([sys.executable, "-m", "dashboard.audit", "--hours", "1", "--format", "jsonl"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert any(r["source"] == "web" and r["action"] == "signin" and r["actor"] == "chief" for r in rows)
    assert any(r["source"] == "alert" and r["action"] == "acknowledge" and r["subject"] == f"alert {aid}" for r in rows)
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    csv_out = subprocess.run([sys.executable, "-m", "dashboard.audit", "--hours", "1", "--format", "csv", "--source", "web"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "source,at,actor,action,subject,address,detail"
    assert all(line.startswith("web,") for line in lines[1:]) and any(",chief,signin,chief," in line for line in lines)
    assert "audit rows" in csv_out.stderr
    bad = subprocess.run([sys.executable, "-m", "dashboard.audit", "--since", "2026-02-01", "--until", "2026-01-01"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "after its start" in bad.stderr


def test_order_audit_in_the_export(app, known_db):
    from datetime import datetime, timedelta, timezone

    from dashboard.auth.audit import export

    oid = uuid.uuid4()
    with psycopg.connect(known_db, autocommit=True) as c:
        c.execute("INSERT INTO order_audit (actor, order_id, action) VALUES ('duty', %s, 'create')", (oid,))
        now = datetime.now(timezone.utc)
        rows = [r for r in export(c, now - timedelta(minutes=5), now + timedelta(minutes=1), ("order",))]
    assert any(r.actor == "duty" and r.action == "create" and r.subject == str(oid) for r in rows)
    with pytest.raises(ValueError):
        with psycopg.connect(known_db) as c:
            list(export(c, now, now + timedelta(minutes=1), ("nope",)))


def test_passwords_hash_and_verify():
    from dashboard.auth import passwords

    h = passwords.hash_password("correct horse 1")
    assert h.startswith("$argon2id$") and passwords.verify(h, "correct horse 1")
    assert not passwords.verify(h, "correct horse 2") and not passwords.verify(None, "anything")
    assert not passwords.verify("not-a-hash", "x")


def test_import_officers_from_the_old_setting(app, known_db):
    """The migration path: GRIDWATCH_DUTY_OFFICERS -> duty_officer users; a weak password is not carried over."""
    a, b = f"old-{uuid.uuid4().hex[:6]}", f"old-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "GRIDWATCH_PG_DSN": known_db, "GRIDWATCH_DUTY_OFFICERS": f"{a}:long-enough-pw, {b}:duty"}
    out = subprocess.run([sys.executable, "-m", "dashboard.users", "import-officers"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "1 made, 1 skipped" in out.stderr, out.stderr
    with psycopg.connect(known_db) as c:
        rows = c.execute("SELECT name, role FROM web_user WHERE name IN (%s, %s)", (a, b)).fetchall()
    assert rows == [(a, "duty_officer")]
    client = signed_in_as(app, a, "long-enough-pw")
    assert _details(client, app).status_code == 200


def test_api_token_changes_are_audited(known_db):
    from dashboard import tokens

    name = f"audit-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(known_db, autocommit=True) as c:
        tokens.create(c, name, "cli:tester")
        assert tokens.revoke(c, name, "cli:tester")
    assert [r[1] for r in _audit(known_db, "api_token_created", f"api:{name}")] == ["api_token_created"]
    assert _audit(known_db, "api_token_revoked", f"api:{name}")[0][0] == "cli:tester"


def test_security_headers(app):
    for path in ("/", "/healthz", "/auth/login"):
        resp = app.server.test_client().get(path) if path != "/auth/login" else app.server.test_client().post(path)
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"


def test_forwarded_address_only_through_a_trusted_proxy(settings, known_live):
    """The allow-list and the rate limit see the client's address: from X-Forwarded-For only when
    GRIDWATCH_WEB_PROXY_HOPS says a proxy sets it (else anyone could claim a wall's address)."""
    spec = {"web_wall_addresses": "10.1.2.3"}
    direct = create_app(settings.model_copy(update=spec))
    forged = from_address(direct, "198.51.100.9")
    assert _live_with(forged, direct, {"X-Forwarded-For": "10.1.2.3"}).status_code == 401
    proxied = create_app(settings.model_copy(update={**spec, "web_proxy_hops": 1}))
    via_proxy = from_address(proxied, "127.0.0.1")
    assert _live_with(via_proxy, proxied, {"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    assert _live_with(via_proxy, proxied, {"X-Forwarded-For": "10.1.2.4"}).status_code == 401


def _live_with(client, app, headers: dict):
    return client.get("/api/live?m=officers", headers=headers)
