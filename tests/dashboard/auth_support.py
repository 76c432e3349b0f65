"""Users of the wall's tests and a sign-in through the real route (as the browser posts it)."""

from __future__ import annotations

import psycopg

from dashboard.auth import store
from dashboard.auth.model import Role

# name -> (role, password)
USERS = {
    "duty": (Role.DUTY_OFFICER, "duty-password-1"),
    "chief": (Role.ADMINISTRATOR, "chief-password-1"),
    "viewer": (Role.WALL_VIEWER, "viewer-password-1"),
}


def make_users(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, (role, password) in USERS.items():
            if not conn.execute("SELECT 1 FROM web_user WHERE name = %s", (name,)).fetchone():
                store.create_user(conn, name, role, password, "tests")


def csrf(client) -> str:
    """The CSRF token of the client's session (the page puts the same one in its forms)."""
    with client.session_transaction() as s:
        tok = s.get("csrf")
        if not tok:
            tok = s["csrf"] = "csrf-of-this-test-client"
    return tok


def sign_in(client, user: str, password: str | None = None):
    """POST the sign-in form; returns the response (a redirect)."""
    password = USERS[user][1] if password is None else password
    return client.post("/auth/login", data={"user": user, "password": password, "csrf": csrf(client)})


def sign_out(client):
    return client.post("/auth/logout", data={"csrf": csrf(client)})


def signed_in(app, user: str):
    """A test client of ``app`` signed in as ``user`` (through the real route)."""
    client = app.server.test_client()
    resp = sign_in(client, user)
    assert resp.status_code == 302 and "signin=" not in resp.headers["Location"], resp.headers.get("Location")
    return client


def forged_client(app, user: str):
    """A client whose session cookie names a session id nobody issued, signed with the old
    default secret: what a hand-made cookie looks like."""
    from flask.sessions import SecureCookieSessionInterface
    import flask

    forger = flask.Flask("forger")
    forger.secret_key = "change-me"
    cookie = SecureCookieSessionInterface().get_signing_serializer(forger).dumps(
        {"sid": "x" * 43, "duty_officer": user, "user": user})
    client = app.server.test_client()
    client.set_cookie(app.server.config["SESSION_COOKIE_NAME"], cookie)
    return client


def removed_user_client(app, dsn: str, role: str):
    """A client signed in as a fresh user of ``role`` who is then removed (python -m dashboard.users remove)."""
    import uuid

    name = f"gone-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.create_user(conn, name, Role(role), "removed-password-1", "tests")
    client = app.server.test_client()
    resp = sign_in(client, name, "removed-password-1")
    assert "signin=" not in resp.headers["Location"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.remove_user(conn, name, "tests")
    return client


def wall_client(app, dsn: str):
    """A test client that opened /wall?token=... with a fresh wall token: a read-only wall session."""
    import uuid

    with psycopg.connect(dsn, autocommit=True) as conn:
        token = store.create_wall_token(conn, f"wall-{uuid.uuid4().hex[:8]}", "tests")
    client = app.server.test_client()
    resp = client.get(f"/wall?token={token}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/wall"), resp.data[:200]
    return client


# ----------------------------------------------------------------- in a real browser
def browser_sign_in(page, base_url: str, user: str, password: str, timeout_ms: int = 30_000) -> None:
    """Open the operator page, fill the sign-in form (it carries the CSRF token) and wait for the signed-in page."""
    page.goto(base_url + "/")
    page.wait_for_selector("#signin-user", timeout=timeout_ms)
    page.fill("#signin-user", user)
    page.fill("#signin-password", password)
    page.click("#signin-submit")
    page.wait_for_selector("#signin-who", timeout=timeout_ms)
