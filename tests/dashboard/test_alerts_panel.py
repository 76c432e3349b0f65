"""The alert panel through Flask's test client (the browser's HTTP path): feed, pins payload,
acknowledge/resolve only for a signed-in duty officer, user text never HTML."""

from __future__ import annotations

import json

import psycopg
import pytest

from dashboard.alerts_panel import WallAlert, alert_feed, alert_payload
from dashboard.app import create_app
from tests.dashboard.auth_support import forged_client, removed_user_client, sign_in, signed_in

XSS = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def app(settings, known_live):
    return create_app(settings)


@pytest.fixture
def my_alert(known_db):
    """An open alert of this test's own (the shared known alerts are other tests' business)."""
    with psycopg.connect(known_db, autocommit=True) as c:
        aid = c.execute(
            "INSERT INTO alert (kind, severity, terminal_id, grid2_code, lat, lon, title, dedup_key, subject, count)"
            " VALUES ('sos', 'critical', 'T1', '360602001001', 28.21, 117.01, %s, 'sos:panel-' || md5(random()::text), 'T1', 3)"
            " RETURNING id", (XSS,)).fetchone()[0]
    yield aid
    with psycopg.connect(known_db, autocommit=True) as c:
        c.execute("UPDATE alert SET state = 'resolved' WHERE id = %s", (aid,))


def _call(client, app, clicks: list[tuple[str, int, int]], wall: bool = False, status: int = 200):
    key = next(k for k in app.callback_map if "alert-feed.children" in k)
    outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in key.strip(".").split("...")]
    acks = [{"id": {"type": "alert-ack", "id": i}, "property": "n_clicks", "value": v} for typ, i, v in clicks if typ == "alert-ack"]
    res = [{"id": {"type": "alert-resolve", "id": i}, "property": "n_clicks", "value": v} for typ, i, v in clicks if typ == "alert-resolve"]
    pressed = [(typ, i) for typ, i, v in clicks if v]
    changed = ([json.dumps({"id": pressed[0][1], "type": pressed[0][0]}, separators=(",", ":")) + ".n_clicks"] if pressed
               else ["alert-tick.n_intervals"])
    body = {"output": key, "outputs": outputs, "changedPropIds": changed,
            "inputs": [{"id": "alert-tick", "property": "n_intervals", "value": 1}, acks, res],
            "state": [{"id": "alert-state", "property": "data", "value": {}},
                      {"id": "gw-config", "property": "data", "value": {"wall": wall}}]}
    resp = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == status, resp.data[:500]
    return resp.get_json()["response"] if status == 200 else resp.get_json()


def _state(known_db, aid):
    with psycopg.connect(known_db) as c:
        return c.execute("SELECT state, acknowledged_by, resolved_by FROM alert WHERE id = %s", (aid,)).fetchone()


def test_feed_newest_first_with_pins_payload(app, known_db, my_alert):
    out = _call(signed_in(app, "viewer"), app, [])
    text = json.dumps(out["alert-feed"]["children"], ensure_ascii=False)
    assert text.index(json.dumps(XSS)[1:-1]) < text.index("终端离线 T3")  # newest first
    pins = {p["id"]: p for p in out["alert-data"]["data"]["alerts"]}
    assert pins[my_alert]["sos"] is True and pins[my_alert]["sev"] == "critical"
    assert (pins[my_alert]["lat"], pins[my_alert]["lon"]) == (28.21, 117.01)
    assert "第 3 次" in text  # the count of a bumped alert


def test_actions_need_a_signed_in_duty_officer_and_are_recorded(app, known_db, my_alert):
    client = app.server.test_client()
    # Anonymous: the feed itself is refused before the callback runs.
    assert _call(client, app, [("alert-ack", my_alert, 1)], status=401)["error"]
    # A read-only user sees the feed; the callback refuses the change.
    viewer = signed_in(app, "viewer")
    assert _call(viewer, app, [("alert-ack", my_alert, 1)])["alert-msg"]["children"] == "请先以值班员身份登录"
    assert _state(known_db, my_alert) == ("open", None, None)
    # A forged cookie (signed with another key) and a removed user's old cookie are refused.
    assert _call(forged_client(app, "duty"), app, [("alert-ack", my_alert, 1)], status=401)["error"]
    gone = removed_user_client(app, known_db, "duty_officer")
    assert _call(gone, app, [("alert-ack", my_alert, 1)], status=401)["error"]
    assert _state(known_db, my_alert) == ("open", None, None)
    assert sign_in(client, "duty").status_code == 302
    # the wall page never acts, even in a signed-in browser
    assert _call(client, app, [("alert-ack", my_alert, 1)], wall=True)["alert-msg"]["children"] == "请先以值班员身份登录"
    assert _state(known_db, my_alert)[0] == "open"
    assert _call(client, app, [("alert-ack", my_alert, 1)])["alert-msg"]["children"] == "已记录"
    assert _call(client, app, [("alert-resolve", my_alert, 1)])["alert-msg"]["children"] == "已记录"
    assert _state(known_db, my_alert) == ("resolved", "duty", "duty")
    with psycopg.connect(known_db) as c:
        rows = c.execute("SELECT actor, action, at IS NOT NULL FROM alert_action WHERE alert_id = %s ORDER BY id", (my_alert,)).fetchall()
    assert rows == [("duty", "acknowledge", True), ("duty", "resolve", True)]
    # resolved: gone from the feed, and a second resolve is refused as stale
    assert _call(client, app, [("alert-resolve", my_alert, 1)])["alert-msg"]["children"] == "该告警状态已变化"


def test_titles_are_text_not_html(settings):
    from datetime import datetime, timezone

    a = WallAlert(1, "sos", "critical", "open", "T1", None, 28.2, 117.0, XSS, datetime.now(timezone.utc), None, 1, None, None)
    [item] = alert_feed([a], "en", settings.timezone, controls=True)
    tree = json.dumps(item.to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert "dangerouslySetInnerHTML" not in tree
    assert item.children[0].children == XSS  # a text child: React renders it escaped
    assert alert_payload([a], "en")["alerts"][0]["title"] == XSS  # alerts.js sets it with textContent
    calm = alert_feed([], "en", settings.timezone, controls=True)
    assert calm[0].children == "No open alerts"
