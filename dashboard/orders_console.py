"""The duty officer's order console (operator mode only): write an order, pick its place on
the map, choose its targets, preview the recipients, send.

Every call that reads recipients or changes state checks, on the server, that the request
carries a signed-in duty officer's session and does not come from the wall page; otherwise
it answers with a message and does nothing. Sending needs a preview of exactly the same form
first (so nobody sends to recipients they have not seen). The place is picked in the browser
(assets/orders.js): the map itself is never returned from a callback.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from dashboard import live, orders_data
from dashboard.deps import Deps
from dashboard.i18n import t
from dashboard.routes import signed_in_officer
from schemas.commands import CommandKind, Priority
from schemas.orders import OrderDraft, RecipientPreview

log = logging.getLogger("gridwatch.dashboard.orders")

TARGETS = ("all", "grids", "people", "nearest", "radius")
FORM = ("order-kind", "order-priority", "order-title", "order-body", "order-lat", "order-lon", "order-deadline",
        "order-expiry", "order-target", "order-grids", "order-adjacent", "order-people", "order-n", "order-radius")
SHOWN_PEOPLE = 40  # the preview lists this many names, then "and N more"


def refusal(config: dict | None, lang: str) -> str | None:
    """Why this request may not use the console, or None when it may (a signed-in officer, not the wall)."""
    if bool((config or {}).get("wall")):
        return t("orders.wall_refused", lang)
    if not signed_in_officer():
        return t("orders.need_signin", lang)
    return None


def _minutes(value: Any, now: datetime) -> datetime | None:
    if value in (None, ""):
        return None
    return now + timedelta(minutes=float(value))


def build_draft(form: dict, now: datetime | None = None) -> OrderDraft:
    """The console's fields -> an OrderDraft (ValidationError / ValueError on bad input). Pure."""
    now = now or datetime.now(timezone.utc)
    kind = form.get("order-target") or "all"
    lat, lon = form.get("order-lat"), form.get("order-lon")
    lat = None if lat in (None, "") else float(lat)
    lon = None if lon in (None, "") else float(lon)
    if kind == "grids":
        target = {"type": "grids", "codes": list(form.get("order-grids") or []),
                  "include_adjacent": "on" in (form.get("order-adjacent") or [])}
    elif kind == "people":
        people, terminals = orders_data.split_people(form.get("order-people"))
        target = {"type": "people", "person_ids": people, "terminal_ids": terminals}
    elif kind == "nearest":
        target = {"type": "nearest", "lat": lat, "lon": lon, "n": int(form.get("order-n") or 5)}
    elif kind == "radius":
        target = {"type": "radius", "lat": lat, "lon": lon, "radius_m": float(form.get("order-radius") or 0)}
    else:
        target = {"type": "all"}
    return OrderDraft.model_validate({
        "kind": form.get("order-kind") or CommandKind.EMERGENCY.value,
        "priority": form.get("order-priority") or Priority.CRITICAL.value,
        "title": form.get("order-title") or "",
        "body": form.get("order-body") or "",
        "lat": lat,
        "lon": lon,
        "deadline": _minutes(form.get("order-deadline"), now),
        "expires_at": _minutes(form.get("order-expiry"), now),
        "target": target,
    })


def problems(exc: Exception) -> str:
    """A validation error as one line a person can act on (field: message; ...)."""
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors()[:4]:
            where = ".".join(str(x) for x in e["loc"] if not str(x).startswith(("function-", "tagged-union")))
            parts.append(f"{where}: {e['msg']}" if where else e["msg"])
        return "; ".join(parts)
    return str(exc)


def preview_view(p: RecipientPreview, lang: str) -> list:
    """The preview as text components (names come from the registry: never HTML)."""
    names = p.people[:SHOWN_PEOPLE]
    more = len(p.people) - len(names)
    people = ", ".join(names) + (t("orders.and_more", lang).format(n=more) if more > 0 else "")
    return [
        html.Div(t("orders.preview_counts", lang).format(
            terminals=p.terminals, people=len(p.people), grids=len(p.grids), offline=p.offline),
            className="gw-order-counts", id="order-preview-counts"),
        html.Div([html.Span(t("orders.people", lang), className="gw-muted"), people or "—"]),
        html.Div([html.Span(t("orders.grids", lang), className="gw-muted"), ", ".join(p.grids) or "—"]),
    ]


def _field(label: str, child) -> html.Div:
    return html.Div([html.Label(label), child], className="gw-order-field")


def _options(lang: str, prefix: str, values) -> list[dict]:
    return [{"label": t(f"{prefix}.{v}", lang), "value": v} for v in values]


def panel(settings) -> html.Details:
    lang = settings.language
    number = {"type": "number"}
    minutes = {"type": "number", "min": 1, "max": 7 * 24 * 60}
    degrees = {"type": "number", "step": "any", "debounce": True}
    return html.Details(
        [
            html.Summary(t("orders.console", lang), id="order-console-toggle"),
            html.Div([
                _field(t("orders.kind", lang), dcc.Dropdown(
                    id="order-kind", options=_options(lang, "orders.kind", [k.value for k in CommandKind]),
                    value=CommandKind.EMERGENCY.value, clearable=False)),
                _field(t("orders.priority", lang), dcc.Dropdown(
                    id="order-priority", options=_options(lang, "orders.priority", [p.value for p in Priority]),
                    value=Priority.CRITICAL.value, clearable=False)),
            ], className="gw-order-row"),
            _field(t("orders.title", lang), dcc.Input(id="order-title", type="text", maxLength=200)),
            _field(t("orders.body", lang), dcc.Textarea(id="order-body", maxLength=8000, rows=3)),
            dcc.Checklist(id="order-pick", options=[{"label": t("orders.pick", lang), "value": "on"}], value=[],
                          className="gw-radio gw-order-pick"),
            html.Div([
                dcc.Input(id="order-lat", placeholder=t("orders.lat", lang), min=-90, max=90, **degrees),
                dcc.Input(id="order-lon", placeholder=t("orders.lon", lang), min=-180, max=180, **degrees),
            ], className="gw-order-row"),
            html.Div([
                _field(t("orders.deadline_min", lang), dcc.Input(id="order-deadline", **minutes)),
                _field(t("orders.expiry_min", lang), dcc.Input(id="order-expiry", **minutes)),
            ], className="gw-order-row"),
            dcc.RadioItems(id="order-target", options=_options(lang, "orders.target", TARGETS), value="all",
                           inline=True, className="gw-radio"),
            html.Div([
                dcc.Dropdown(id="order-grids", options=[], multi=True, placeholder=t("orders.grids_pick", lang)),
                dcc.Checklist(id="order-adjacent", options=[{"label": t("orders.adjacent", lang), "value": "on"}],
                              value=[], className="gw-radio"),
            ], id="order-t-grids", style={"display": "none"}),
            html.Div(dcc.Dropdown(id="order-people", options=[], multi=True, placeholder=t("orders.people_pick", lang)),
                     id="order-t-people", style={"display": "none"}),
            html.Div(_field(t("orders.nearest_n", lang), dcc.Input(id="order-n", value=5, min=1, max=200, **number)),
                     id="order-t-nearest", style={"display": "none"}),
            html.Div(_field(t("orders.radius_m", lang),
                            dcc.Input(id="order-radius", value=500, min=1, max=50_000, **number)),
                     id="order-t-radius", style={"display": "none"}),
            html.Div([html.Button(t("orders.preview", lang), id="order-preview", n_clicks=0),
                      html.Button(t("orders.send", lang), id="order-send", n_clicks=0, className="gw-order-send")],
                     className="gw-order-row"),
            html.Div(id="order-msg", className="gw-msg"),
            html.Div(id="order-preview-out", className="gw-order-preview"),
            dcc.Store(id="order-previewed"),
            dcc.Store(id="order-options-init", data=1),
            dcc.Store(id="order-pick-out"),
        ],
        className="gw-panel gw-order-console",
        id="order-console",
        open=False,  # closed until the officer opens it: the side column keeps room for alerts
    )


def register(app: Dash, deps: Deps) -> None:
    settings = deps.settings
    lang = settings.language

    @app.callback(
        Output("order-grids", "options"),
        Output("order-people", "options"),
        Input("order-options-init", "data"),
        State("gw-config", "data"),
    )
    def options(_init, config):
        # Names of people are for the duty desk: a page without a signed-in officer gets none.
        if refusal(config, lang):
            return [], []
        from dashboard.routes import current_grid_version

        def compute() -> dict:
            with deps.pool.connection() as conn:
                return {"grids": orders_data.grid_options(conn, lang), "people": orders_data.people_options(conn)}

        opts = deps.cached(f"orders:options:{current_grid_version(deps)}:{lang}", 60, compute)
        return opts["grids"], opts["people"]

    @app.callback(
        Output("order-preview-out", "children"),
        Output("order-msg", "children"),
        Output("order-previewed", "data"),
        Input("order-preview", "n_clicks"),
        Input("order-send", "n_clicks"),
        *[State(f, "value") for f in FORM],
        State("order-previewed", "data"),
        State("gw-config", "data"),
        prevent_initial_call=True,
    )
    def preview_or_send(_p, _s, *rest):
        values, previewed, config = rest[: len(FORM)], rest[len(FORM)], rest[len(FORM) + 1]
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        refused = refusal(config, lang)
        who = signed_in_officer()
        if refused or not who:
            log.warning("order console refused: %s",
                        "wall page" if (config or {}).get("wall") else "no duty officer signed in")
            return no_update, refused, no_update
        form = dict(zip(FORM, values))
        form_hash = live.values_hash(form)
        try:
            draft = build_draft(form)
        except (ValidationError, ValueError, TypeError) as exc:
            return no_update, t("orders.invalid", lang) + problems(exc), None
        from orders import desk

        try:
            if ctx.triggered_id == "order-preview":
                with deps.pool.connection() as conn:
                    p = desk.preview(conn, deps.redis, settings, draft)
                return preview_view(p, lang), "", form_hash
            if previewed != form_hash:
                return no_update, t("orders.preview_first", lang), no_update
            with deps.pool.connection() as conn:
                created = desk.issue(conn, deps.redis, settings, draft, who, "ui")
        except ValueError as exc:  # unknown grids/people, nobody reached, expiry in the past
            return no_update, t("orders.invalid", lang) + str(exc), None
        deps.cache_drop("orders:board")
        log.info("order sent from the console", extra={"fields": {"order": str(created.order_id), "by": who,
                                                                  "recipients": created.recipients}})
        return [], t("orders.sent", lang).format(n=created.recipients, id=str(created.order_id)[:8]), None

    # The place is picked in the browser (a click on the map sets lat/lon and moves a marker).
    app.clientside_callback(
        ClientsideFunction("gwOrders", "pick"),
        Output("order-pick-out", "data"),
        Input("order-pick", "value"),
        Input("order-lat", "value"),
        Input("order-lon", "value"),
    )
    app.clientside_callback(
        ClientsideFunction("gwOrders", "targetFields"),
        Output("order-t-grids", "style"),
        Output("order-t-people", "style"),
        Output("order-t-nearest", "style"),
        Output("order-t-radius", "style"),
        Input("order-target", "value"),
    )
