"""The order console and board through Dash's callback endpoint (the browser's HTTP path),
against the test database and Redis: who may act, preview, send, the board following acks."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from dashboard.app import create_app
from dashboard.orders_data import BOARD_TTL_S
from dashboard.i18n import t
from tests.dashboard.auth_support import forged_client, removed_user_client, sign_in, signed_in
from tests.dashboard.orders_support import board, console, text_of
from tests.support import wait_until

GRID = "360602001001"  # T1 (李明, online) and T3 (赵协, offline) work here


@pytest.fixture(scope="module")
def app(settings, known_live):
    return create_app(settings)


def _form(title: str, **kw) -> dict:
    return {"order-kind": "emergency", "order-priority": "critical", "order-title": title, "order-body": "go now",
            "order-lat": 28.2035, "order-lon": 117.0035, "order-expiry": 30, "order-target": "grids",
            "order-grids": [GRID], "order-adjacent": [], **kw}


def _orders_titled(dsn: str, title: str) -> list[tuple]:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT order_id, created_by, created_via FROM emergency_order WHERE title = %s", (title,)).fetchall()


def _sign_in(client, user: str = "duty") -> None:
    resp = sign_in(client, user)
    assert "signin=" not in resp.headers.get("Location", "")


def test_console_refuses_without_officer_and_on_the_wall(app, known_db):
    lang = app._gw_deps.settings.language
    title = f"refused {uuid.uuid4().hex[:6]}"
    client = app.server.test_client()
    # No session, a forged cookie, a removed user's old cookie: refused before the callback runs.
    for who in (client, forged_client(app, "duty"), removed_user_client(app, known_db, "duty_officer")):
        for button in ("order-preview", "order-send"):
            resp, out = console(who, app, button, _form(title), previewed="x")
            assert resp.status_code == 401 and out == {}
    # A signed-in read-only user: the callback refuses, and shows no recipient names.
    viewer = app.server.test_client()
    _sign_in(viewer, "viewer")
    for button in ("order-preview", "order-send"):
        resp, out = console(viewer, app, button, _form(title), previewed="x")
        assert resp.status_code == 200
        assert out["order-msg"] == t("orders.need_signin", lang)
        assert "order-preview-out" not in out
    # A signed-in officer on the wall page: refused too.
    _sign_in(client)
    for button in ("order-preview", "order-send"):
        _, out = console(client, app, button, _form(title), previewed="x", wall=True)
        assert out["order-msg"] == t("orders.wall_refused", lang)
    assert _orders_titled(known_db, title) == []
    # The pickers' options: refused without a session, empty for a read-only user, filled for an officer.
    anon = app.server.test_client()
    from tests.dashboard.orders_support import dash_call

    inputs = [{"id": "order-options-init", "property": "data", "value": 1}]
    st = [{"id": "gw-config", "property": "data", "value": {"wall": False}}]
    assert dash_call(anon, app, "order-grids.options", inputs, st, ["order-options-init.data"]).status_code == 401
    out = dash_call(viewer, app, "order-grids.options", inputs, st, ["order-options-init.data"]).get_json()["response"]
    assert out["order-grids"]["options"] == [] and out["order-people"]["options"] == []
    out = dash_call(client, app, "order-grids.options", inputs, st, ["order-options-init.data"]).get_json()["response"]
    assert {o["value"] for o in out["order-grids"]["options"]} >= {"360602001", GRID}
    assert {"value": "p:P2", "label": "李明 · T1"} in out["order-people"]["options"]


def test_preview_then_send_stores_the_order_and_recipients(app, known_db, live_on_the_clock):
    lang = app._gw_deps.settings.language
    title = f"fire at market {uuid.uuid4().hex[:6]}"
    client = app.server.test_client()
    _sign_in(client)
    form = _form(title)
    # Bad input: a clear message, nothing stored.
    _, out = console(client, app, "order-preview", _form(""))
    assert out["order-msg"].startswith(t("orders.invalid", lang)) and "title" in out["order-msg"]
    # Send before any preview: refused.
    _, out = console(client, app, "order-send", form)
    assert out["order-msg"] == t("orders.preview_first", lang)
    # Preview: 2 terminals (T1, T3), their people, the grid, 1 offline (T3).
    _, out = console(client, app, "order-preview", form)
    text = text_of(out["order-preview-out"])
    assert t("orders.preview_counts", lang).format(terminals=2, people=2, grids=1, offline=1) in text
    assert "李明" in text and "赵协" in text and GRID in text
    previewed = out["order-previewed"]
    # A form changed after the preview must be previewed again.
    _, out = console(client, app, "order-send", {**form, "order-grids": ["360602002001"]}, previewed=previewed)
    assert out["order-msg"] == t("orders.preview_first", lang)
    _, out = console(client, app, "order-send", form, previewed=previewed)
    assert out["order-msg"].startswith(t("orders.sent", lang).split("{")[0])
    rows = _orders_titled(known_db, title)
    assert len(rows) == 1 and rows[0][1:] == ("duty", "ui")
    with psycopg.connect(known_db) as c:
        recips = c.execute("SELECT terminal_id, state FROM order_recipient WHERE order_id = %s ORDER BY 1", (rows[0][0],)).fetchall()
        actor = c.execute("SELECT actor FROM order_audit WHERE order_id = %s AND action = 'create'", (rows[0][0],)).fetchone()
    assert recips == [("T1", "queued"), ("T3", "queued")]
    assert actor == ("duty",)


def _card_text(out: dict, order_id) -> str:
    cards = [c for c in out["orders-board"] if (c.get("props") or {}).get("id") == f"order-card-{order_id}"]
    return text_of(cards[0]) if cards else ""


def test_board_follows_an_ack_and_cancel_needs_an_officer(app, known_db):
    lang = app._gw_deps.settings.language
    title = f"board {uuid.uuid4().hex[:6]}"
    client = app.server.test_client()
    _sign_in(client)
    form = _form(title, **{"order-target": "people", "order-people": ["p:P2"], "order-grids": []})
    _, out = console(client, app, "order-preview", form)
    _, out = console(client, app, "order-send", form, previewed=out["order-previewed"])
    (order_id, _, _), = _orders_titled(known_db, title)
    # The board shows it, queued, with who has not answered.
    _, out = board(client, app)
    card = _card_text(out, order_id)
    assert title in card and f"{t('orders.state.queued', lang)} 1" in card and "李明" in card
    assert {"label": f"{title} #{str(order_id)[:8]}", "value": str(order_id)} in out["order-sel"]
    # Nothing changed: no update (HTTP 204).
    resp, _ = board(client, app, state=out["orders-board-state"])
    assert resp.status_code == 204
    # Ingest stores a 'received' ack: the trigger moves the state; the board shows it on a later poll.
    with psycopg.connect(known_db, autocommit=True) as c:
        cmd = c.execute("SELECT command_id FROM order_recipient WHERE order_id = %s", (order_id,)).fetchone()[0]
        c.execute("INSERT INTO command_ack (command_id, terminal_id, status, ts, received_at) VALUES (%s, 'T1', 'received', now(), now())", (cmd,))
    stored = time.monotonic()

    def shows_received():
        resp, out = board(client, app, state=out_state[0])
        if resp.status_code == 200:
            out_state[0] = out["orders-board-state"]
            return f"{t('orders.state.received', lang)} 1" in _card_text(out, order_id)
        return False

    out_state = [out["orders-board-state"]]
    wait_until(shows_received, timeout=15, interval=0.2, what="the board to show the ack")
    print(f"board showed the ack {time.monotonic() - stored:.2f} s after it was stored (cache {BOARD_TTL_S} s)")
    # The wall overlay carries the order's place, its grids (none: a people target) and its recipient.
    from tests.dashboard.orders_support import dash_call

    ov = dash_call(client, app, "orders-overlay.data", [{"id": "orders-tick", "property": "n_intervals", "value": 1}],
                   [{"id": "orders-ov-state", "property": "data", "value": {}}], ["orders-tick.n_intervals"]).get_json()["response"]
    mine = [o for o in ov["orders-overlay"]["data"] if o["id"] == str(order_id)]
    assert mine and mine[0]["lat"] == 28.2035 and mine[0]["rec"] == [["T1", "received", 0]]
    # Cancel: refused without a session and on the wall, done by a signed-in officer with a reason.
    fields = {"order-sel": str(order_id), "order-reason": "false alarm"}
    resp, out = board(app.server.test_client(), app, action="order-cancel", fields=fields)
    assert resp.status_code == 401 and out == {}
    resp, _ = board(forged_client(app, "duty"), app, action="order-cancel", fields=fields)
    assert resp.status_code == 401
    resp, _ = board(removed_user_client(app, known_db, "administrator"), app, action="order-cancel", fields=fields)
    assert resp.status_code == 401
    _, out = board(signed_in(app, "viewer"), app, action="order-cancel", fields=fields)
    assert out["order-board-msg"] == t("orders.need_signin", lang)
    _, out = board(client, app, action="order-cancel", fields=fields, wall=True)
    assert out["order-board-msg"] == t("orders.wall_refused", lang)
    _, out = board(client, app, action="order-cancel", fields={"order-sel": str(order_id)})
    assert out["order-board-msg"] == t("orders.reason_needed", lang)
    with psycopg.connect(known_db) as c:
        assert c.execute("SELECT state FROM emergency_order WHERE order_id = %s", (order_id,)).fetchone() == ("active",)
    _, out = board(client, app, action="order-cancel", fields=fields)
    assert out["order-board-msg"] == t("orders.cancelled", lang)
    assert _card_text(out, order_id) == ""  # no longer active
    with psycopg.connect(known_db) as c:
        assert c.execute("SELECT state FROM emergency_order WHERE order_id = %s", (order_id,)).fetchone() == ("cancelled",)
        assert c.execute("SELECT actor, detail->>'reason' FROM order_audit WHERE order_id = %s AND action = 'cancel'",
                         (order_id,)).fetchone() == ("duty", "false alarm")
    # A second cancel: the order has ended.
    _, out = board(client, app, action="order-cancel", fields=fields)
    assert out["order-board-msg"] == t("orders.not_active", lang)


def test_amend_from_the_board(app, known_db):
    lang = app._gw_deps.settings.language
    title = f"amend {uuid.uuid4().hex[:6]}"
    client = app.server.test_client()
    _sign_in(client)
    form = _form(title, **{"order-target": "people", "order-people": ["t:T2"], "order-grids": []})
    _, out = console(client, app, "order-preview", form)
    _, out = console(client, app, "order-send", form, previewed=out["order-previewed"])
    (order_id, _, _), = _orders_titled(known_db, title)
    sel = {"order-sel": str(order_id)}
    # Refused: no session, a removed user's cookie (gate); a read-only user (the callback).
    change = {**sel, "order-am-title": title + " (viewer)"}
    assert board(app.server.test_client(), app, action="order-amend", fields=change)[0].status_code == 401
    assert board(removed_user_client(app, known_db, "duty_officer"), app, action="order-amend", fields=change)[0].status_code == 401
    _, out = board(signed_in(app, "viewer"), app, action="order-amend", fields=change)
    assert out["order-board-msg"] == t("orders.need_signin", lang)
    _, out = board(client, app, action="order-amend", fields=sel)
    assert out["order-board-msg"] == t("orders.nothing_to_change", lang)
    _, out = board(client, app, action="order-amend", fields={**sel, "order-am-place": ["on"]})
    assert out["order-board-msg"].startswith(t("orders.invalid", lang))  # no place picked
    _, out = board(client, app, action="order-amend", fields={**sel, "order-am-title": title + " (moved)", "order-am-place": ["on"],
                                                               "order-lat": 28.21, "order-lon": 117.11, "order-am-expiry": 45})
    assert out["order-board-msg"] == t("orders.amended", lang)
    with psycopg.connect(known_db) as c:
        assert c.execute("SELECT revision, title, lat, lon FROM emergency_order WHERE order_id = %s",
                         (order_id,)).fetchone() == (1, title + " (moved)", 28.21, 117.11)
        assert c.execute("SELECT count(*) FROM order_command WHERE order_id = %s AND action = 'amend'", (order_id,)).fetchone() == (1,)
