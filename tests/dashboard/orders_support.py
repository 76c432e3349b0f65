"""Helpers for the order console/board/API tests: a Dash callback called through Flask's test
client (the browser's HTTP path), the console's form as the page sends it."""

from __future__ import annotations

import json

from dashboard.orders_console import FORM


def dash_call(client, app, first_output: str, inputs: list, state: list, changed: list):
    """POST /_dash-update-component for the callback whose outputs start with ``first_output``."""
    key = next(k for k in app.callback_map if k.lstrip(".").startswith(first_output))
    if key.startswith(".."):
        outputs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in key.strip(".").split("...")]
    else:
        outputs = {"id": key.rsplit(".", 1)[0], "property": key.rsplit(".", 1)[1]}
    body = {"output": key, "outputs": outputs, "inputs": inputs, "state": state, "changedPropIds": changed}
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def form_state(form: dict, previewed=None, wall: bool = False) -> list:
    return ([{"id": f, "property": "value", "value": form.get(f)} for f in FORM]
            + [{"id": "order-previewed", "property": "data", "value": previewed},
               {"id": "gw-config", "property": "data", "value": {"wall": wall}}])


def console(client, app, button: str, form: dict, previewed=None, wall: bool = False):
    """Press Preview or Send; returns (HTTP response, {output id: value})."""
    inputs = [{"id": "order-preview", "property": "n_clicks", "value": 1 if button == "order-preview" else 0},
              {"id": "order-send", "property": "n_clicks", "value": 1 if button == "order-send" else 0}]
    resp = dash_call(client, app, "order-preview-out.children", inputs, form_state(form, previewed, wall), [f"{button}.n_clicks"])
    out = resp.get_json()["response"] if resp.status_code == 200 else {}
    return resp, {k: next(iter(v.values())) for k, v in out.items()}


def board(client, app, state=None, action: str | None = None, fields: dict | None = None, wall: bool = False):
    """One board refresh (or a cancel/amend press); returns (HTTP response, {output id: value})."""
    fields = fields or {}
    inputs = [{"id": "orders-tick", "property": "n_intervals", "value": 1},
              {"id": "order-cancel", "property": "n_clicks", "value": 1 if action == "order-cancel" else 0},
              {"id": "order-amend", "property": "n_clicks", "value": 1 if action == "order-amend" else 0}]
    names = ["order-sel", "order-reason", "order-am-title", "order-am-body", "order-am-expiry", "order-am-place", "order-lat", "order-lon"]
    st = [{"id": n, "property": "value", "value": fields.get(n)} for n in names]
    st += [{"id": "orders-board-state", "property": "data", "value": state or {}},
           {"id": "gw-config", "property": "data", "value": {"wall": wall}}]
    resp = dash_call(client, app, "orders-board.children", inputs, st, [f"{action or 'orders-tick.n_intervals'}" + (".n_clicks" if action else "")])
    out = resp.get_json()["response"] if resp.status_code == 200 else {}
    return resp, {k: next(iter(v.values())) for k, v in out.items()}


def text_of(component) -> str:
    """Every string in a Dash component tree (as JSON from the callback)."""
    return json.dumps(component, ensure_ascii=False)
