"""The orders HTTP API through Flask's test client, against the test database and Redis:
token authentication, create/read/cancel/amend/audit, validation errors, token command."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from dashboard import tokens
from tests.dashboard.auth_support import sign_in
from dashboard.app import create_app

ROOT = Path(__file__).resolve().parents[2]
DRAFT = {"title": "Elevator accident", "body": "Check the lift at the market", "priority": "urgent", "kind": "emergency",
         "lat": 28.2035, "lon": 117.0035, "target": {"type": "grids", "codes": ["360602001001"]}}


@pytest.fixture(scope="module")
def app(settings, known_live):
    return create_app(settings)


@pytest.fixture(scope="module")
def token(known_db):
    name = f"city-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(known_db, autocommit=True) as c:
        return name, tokens.create(c, name)


def _auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_no_token_bad_token_revoked_token_are_401(app, known_db):
    client = app.server.test_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic ZHV0eTpzZWNyZXQ="}, {"Authorization": "Bearer "}):
        for method, path, body in (("post", "/api/v1/orders", DRAFT), ("post", "/api/v1/orders", {"title": ""}),
                                   ("get", "/api/v1/orders", None), ("get", f"/api/v1/orders/{uuid.uuid4()}", None),
                                   ("post", f"/api/v1/orders/{uuid.uuid4()}/cancel", {})):
            resp = getattr(client, method)(path, json=body, headers=headers)
            assert resp.status_code == 401, (method, path, headers, resp.data[:200])
            assert resp.get_json()["error"] and resp.headers["WWW-Authenticate"].startswith("Bearer")
    # A signed-in duty officer's browser session is not an API credential.
    assert sign_in(client, "duty").status_code == 302
    assert client.post("/api/v1/orders", json=DRAFT).status_code == 401
    assert client.post(f"/api/v1/orders/{uuid.uuid4()}/cancel", json={"reason": "x"}).status_code == 401
    # Revoked: refused from then on.
    name = f"gone-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(known_db, autocommit=True) as c:
        tok = tokens.create(c, name)
        assert client.get("/api/v1/orders", headers=_auth(tok)).status_code == 200
        assert tokens.revoke(c, name) and not tokens.revoke(c, name)
    assert client.get("/api/v1/orders", headers=_auth(tok)).status_code == 401
    with psycopg.connect(known_db) as c:
        assert c.execute("SELECT count(*) FROM emergency_order WHERE title = %s", (DRAFT["title"],)).fetchone()[0] == 0


def test_create_read_amend_cancel_and_audit(app, known_db, token):
    name, tok = token
    client = app.server.test_client()
    resp = client.post("/api/v1/orders", json=DRAFT, headers=_auth(tok))
    assert resp.status_code == 201, resp.data[:500]
    created = resp.get_json()
    assert created["recipients"] == 2
    oid = created["order_id"]
    # Read it: the order with every recipient's state.
    view = client.get(f"/api/v1/orders/{oid}", headers=_auth(tok)).get_json()
    assert view["title"] == DRAFT["title"] and view["created_by"] == f"api:{name}" and view["state"] == "active"
    assert sorted(r["terminal_id"] for r in view["recipients"]) == ["T1", "T3"]
    assert view["counts"]["queued"] == 2
    listing = client.get("/api/v1/orders", headers=_auth(tok)).get_json()
    assert oid in [o["order_id"] for o in listing["active"]]
    # Amend, then cancel: each a new command to the same recipients.
    resp = client.post(f"/api/v1/orders/{oid}/amend", json={"title": "Elevator accident, 3rd floor"}, headers=_auth(tok))
    assert resp.status_code == 200, resp.data[:300]
    assert resp.get_json()["command_id"] != created["command_id"]
    assert client.post(f"/api/v1/orders/{oid}/amend", json={}, headers=_auth(tok)).status_code == 422  # changes nothing
    resp = client.post(f"/api/v1/orders/{oid}/cancel", json={"reason": "handled by the fire brigade"}, headers=_auth(tok))
    assert resp.status_code == 200
    assert client.post(f"/api/v1/orders/{oid}/cancel", json={}, headers=_auth(tok)).status_code == 409
    listing = client.get("/api/v1/orders", headers=_auth(tok)).get_json()
    assert oid not in [o["order_id"] for o in listing["active"]] and oid in [o["order_id"] for o in listing["recent"]]
    # The audit names the API client.
    audit = client.get(f"/api/v1/orders/{oid}/audit", headers=_auth(tok)).get_json()
    mine = [(e["actor"], e["action"]) for e in audit["entries"] if e["actor"].startswith("api:")]
    assert mine[:1] == [(f"api:{name}", "create")]
    assert (f"api:{name}", "amend") in mine and (f"api:{name}", "cancel") in mine
    with psycopg.connect(known_db) as c:
        assert c.execute("SELECT created_via, state FROM emergency_order WHERE order_id = %s", (oid,)).fetchone() == ("api", "cancelled")
    # Unknown orders.
    other = uuid.uuid4()
    for method, path in (("get", f"/api/v1/orders/{other}"), ("get", f"/api/v1/orders/{other}/audit"),
                         ("post", f"/api/v1/orders/{other}/cancel")):
        resp = getattr(client, method)(path, json={} if method == "post" else None, headers=_auth(tok))
        assert resp.status_code == 404, path
    assert client.get("/api/v1/orders/not-a-uuid", headers=_auth(tok)).status_code == 404


@pytest.mark.parametrize("body, where", [
    ({**DRAFT, "title": ""}, "title"),
    ({**DRAFT, "lat": 95}, "lat"),
    ({**DRAFT, "lon": None}, None),  # half a place
    ({**DRAFT, "target": {"type": "radius", "lat": 28.2, "lon": 117.0}}, "radius_m"),
    ({**DRAFT, "target": {"type": "everyone"}}, "target"),
    ({**DRAFT, "surprise": 1}, "surprise"),
    ({**DRAFT, "target": {"type": "grids", "codes": ["NO_SUCH_GRID"]}}, "target"),  # refused by the desk
    ("not json at all", None),
])
def test_bad_input_is_422_with_the_errors(app, token, body, where):
    client = app.server.test_client()
    if isinstance(body, str):
        resp = client.post("/api/v1/orders", data=body, content_type="application/json", headers=_auth(token[1]))
    else:
        resp = client.post("/api/v1/orders", json=body, headers=_auth(token[1]))
    assert resp.status_code == 422, resp.data[:300]
    errors = resp.get_json()
    assert isinstance(errors, list) and errors and all({"loc", "msg", "type"} <= set(e) for e in errors)
    if where:
        assert any(where in [str(x) for x in e["loc"]] for e in errors), errors


def test_token_command(settings, known_db):
    env = {**settings.as_env(__import__("os").environ)}
    name = f"cli-{uuid.uuid4().hex[:6]}"
    run = lambda *a: subprocess.run([sys.executable, "-m", "dashboard.tokens", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    made = run("create", "--name", name)
    assert made.returncode == 0, made.stderr
    tok = made.stdout.strip()
    assert len(tok) >= 43 and name in made.stderr
    assert run("create", "--name", name).returncode == 2  # the name is taken
    assert run("create", "--name", "bad name!").returncode == 2
    with psycopg.connect(known_db) as c:
        stored = c.execute("SELECT token_hash, role FROM api_token WHERE name = %s", (name,)).fetchone()
        assert bytes(stored[0]) == tokens.token_hash(tok) and stored[1] == "duty_officer"
        assert tok.encode() not in json.dumps([str(v) for v in c.execute("SELECT * FROM api_token").fetchall()]).encode()
        assert tokens.verify(c, tok).name == name
    listed = run("list")
    assert listed.returncode == 0 and f"{name}\tduty_officer" in listed.stdout and "active" in listed.stdout
    assert run("revoke", name).returncode == 0
    assert run("revoke", name).returncode == 1
    with psycopg.connect(known_db) as c:
        assert tokens.verify(c, tok) is None
