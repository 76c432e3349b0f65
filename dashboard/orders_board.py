"""The order board (operator mode) and the wall's order overlay data (both modes).

Every second the page asks for the board; the summary of the active orders is computed once
per ``orders_data.BOARD_TTL_S`` for every worker (Redis), and a page whose last answer has
the same hash gets "no update" (HTTP 204). An ack stored by ingest moves its recipient's
state in the same transaction (the trigger of db/migrations/0011_orders.sql), so the board
shows it within one poll plus the cache's life.

Cancel and amend are for a signed-in duty officer, not the wall (checked on the server).
Everything from people and terminals (titles, names, reasons) is rendered as text.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo

from dash import ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from dashboard import live, orders_data
from dashboard.deps import Deps
from dashboard.i18n import t
from dashboard.orders_console import problems, refusal
from dashboard.routes import signed_in_officer
from schemas.orders import OrderAmendment, OrderCancellation

log = logging.getLogger("gridwatch.dashboard.orders")

POLL_MS = 1000
SHOWN_ROWS = 30  # people per order on the board (the API has them all)


def _state_label(state: str, lang: str) -> str:
    return t(f"orders.state.{state}", lang)


def _counts_line(counts: dict, lang: str) -> str:
    return " · ".join(f"{_state_label(s, lang)} {counts[s]}" for s in orders_data.STATE_ORDER if counts.get(s))


def order_card(o: dict, lang: str, tz: str) -> html.Div:
    """One active order: counts, per grid, per person, who has not answered. Text only."""
    zone = ZoneInfo(tz)
    at = datetime.fromisoformat(o["at"]).astimezone(zone)
    meta = [t(f"orders.priority.{o['priority']}", lang), t(f"orders.kind.{o['kind']}", lang), o["by"],
            f"{at:%m-%d %H:%M:%S}"]
    if o["expires"]:
        meta.append(t("orders.expires", lang) + f"{datetime.fromisoformat(o['expires']).astimezone(zone):%H:%M}")
    if o["rev"]:
        meta.append(t("orders.revision", lang).format(n=o["rev"]))
    people = o["people"][:SHOWN_ROWS]
    rows = [html.Tr([html.Td(name), html.Td(tid, className="gw-muted"),
                     html.Td(_state_label(st, lang) + (" ✓" + t("orders.arrived", lang) if arrived else ""),
                             className=f"gw-rs gw-rs-{st}"),
                     html.Td(reason, className="gw-muted")])
            for name, tid, st, reason, arrived in people]
    if len(o["people"]) > len(people):
        rows.append(html.Tr(html.Td(t("orders.and_more", lang).format(n=len(o["people"]) - len(people)), colSpan=4)))
    silent = o["silent"]
    silent_text = ", ".join(silent[:SHOWN_ROWS]) + ("…" if len(silent) > SHOWN_ROWS else "")
    return html.Div(
        [
            html.Div([html.Span(o["title"], className="t"), html.Span(f" #{o['id'][:8]}", className="gw-muted")]),
            html.Div(" · ".join(meta), className="m"),
            html.Div(_counts_line(o["counts"], lang) or "—", className="gw-order-counts"),
            html.Div([html.Span(t("orders.silent", lang), className="gw-muted"),
                      silent_text if silent else t("orders.none_silent", lang)],
                     className="gw-order-silent"),
            html.Details([
                html.Summary(t("orders.per_grid", lang)),
                html.Table([html.Tr([html.Td(g), html.Td(_counts_line(c, lang))]) for g, c in o["grids"]]),
            ]),
            html.Details([html.Summary(t("orders.per_person", lang)), html.Table(rows)]),
        ],
        className=f"gw-order gw-order-{o['priority']}",
        id=f"order-card-{o['id']}",
    )


def board_view(board: list[dict], lang: str, tz: str) -> list:
    if not board:
        return [html.Div(t("orders.none", lang), className="gw-calm")]
    return [order_card(o, lang, tz) for o in board]


def panel(settings) -> html.Div:
    lang = settings.language
    return html.Div(
        [
            html.H3(t("orders.board", lang)),
            html.Div(html.Div(t("orders.none", lang), className="gw-calm"), id="orders-board"),
            html.Details([
                html.Summary(t("orders.change", lang)),
                dcc.Dropdown(id="order-sel", options=[], placeholder=t("orders.select", lang)),
                html.Div([
                    dcc.Input(id="order-reason", type="text", maxLength=2000, placeholder=t("orders.reason", lang)),
                    html.Button(t("orders.cancel", lang), id="order-cancel", n_clicks=0),
                ], className="gw-order-row"),
                dcc.Input(id="order-am-title", type="text", maxLength=200, placeholder=t("orders.new_title", lang)),
                dcc.Textarea(id="order-am-body", maxLength=8000, rows=2, placeholder=t("orders.new_body", lang)),
                html.Div([
                    dcc.Input(id="order-am-expiry", type="number", min=1, max=7 * 24 * 60,
                              placeholder=t("orders.expiry_min", lang)),
                    dcc.Checklist(id="order-am-place", options=[{"label": t("orders.use_place", lang), "value": "on"}],
                                  value=[], className="gw-radio"),
                ], className="gw-order-row"),
                html.Button(t("orders.amend", lang), id="order-amend", n_clicks=0),
            ], className="gw-order-change"),
            html.Div(id="order-board-msg", className="gw-msg"),
            dcc.Store(id="orders-board-state", data={}),
        ],
        className="gw-panel gw-orders-board",
    )


def stores(settings) -> list:
    """Both pages: the poll, the wall overlay's data and its last hash, the overlay script's output."""
    return [
        dcc.Interval(id="orders-tick", interval=POLL_MS),
        dcc.Store(id="orders-overlay"),
        dcc.Store(id="orders-ov-state", data={}),
        dcc.Store(id="orders-js-out"),
    ]


def build_amendment(title, body, expiry_min, use_place, lat, lon, now: datetime | None = None) -> OrderAmendment | None:
    """The amend form -> an OrderAmendment, or None when it changes nothing. Pure."""
    now = now or datetime.now(timezone.utc)
    fields: dict = {}
    if title and str(title).strip():
        fields["title"] = title
    if body and str(body).strip():
        fields["body"] = body
    if expiry_min not in (None, ""):
        fields["expires_at"] = now + timedelta(minutes=float(expiry_min))
    if "on" in (use_place or []):
        if lat in (None, "") or lon in (None, ""):
            raise ValueError("pick the new place on the map first")
        fields["lat"], fields["lon"] = float(lat), float(lon)
    return OrderAmendment.model_validate(fields) if fields else None


def _act(deps: Deps, action: str, order_id: str, who: str, reason, title, body, expiry, use_place, lat, lon,
         lang: str) -> str:
    from orders import desk

    try:
        oid = UUID(str(order_id))
    except ValueError:
        return t("orders.select_first", lang)
    try:
        if action == "order-cancel":
            if not (reason or "").strip():
                return t("orders.reason_needed", lang)
            change = OrderCancellation(reason=reason)
            with deps.pool.connection() as conn:
                desk.cancel(conn, deps.settings, oid, change, who)
        else:
            amendment = build_amendment(title, body, expiry, use_place, lat, lon)
            if amendment is None:
                return t("orders.nothing_to_change", lang)
            with deps.pool.connection() as conn:
                desk.amend(conn, deps.settings, oid, amendment, who)
    except desk.OrderNotActive:
        return t("orders.not_active", lang)
    except (ValidationError, ValueError) as exc:
        return t("orders.invalid", lang) + problems(exc)
    deps.cache_drop("orders:board")
    log.info("order %s by %s", "cancelled" if action == "order-cancel" else "amended", who,
             extra={"fields": {"order": str(oid)}})
    return t("orders.cancelled" if action == "order-cancel" else "orders.amended", lang)


def register(app: Dash, deps: Deps) -> None:
    settings = deps.settings
    lang = settings.language

    @app.callback(
        Output("orders-board", "children"),
        Output("order-sel", "options"),
        Output("orders-board-state", "data"),
        Output("order-board-msg", "children"),
        Input("orders-tick", "n_intervals"),
        Input("order-cancel", "n_clicks"),
        Input("order-amend", "n_clicks"),
        State("order-sel", "value"),
        State("order-reason", "value"),
        State("order-am-title", "value"),
        State("order-am-body", "value"),
        State("order-am-expiry", "value"),
        State("order-am-place", "value"),
        State("order-lat", "value"),
        State("order-lon", "value"),
        State("orders-board-state", "data"),
        State("gw-config", "data"),
    )
    def board(_n, _c, _a, sel, reason, title, body, expiry, use_place, lat, lon, state, config):
        msg = no_update
        if ctx.triggered_id in ("order-cancel", "order-amend") and ctx.triggered and ctx.triggered[0].get("value"):
            msg = refusal(config, lang)
            who = signed_in_officer()
            if msg is None and who:
                msg = _act(deps, ctx.triggered_id, sel, who, reason, title, body, expiry, use_place, lat, lon, lang)
            else:
                log.warning("order change refused: %s",
                            "wall page" if (config or {}).get("wall") else "no duty officer signed in")
        data = orders_data.board_snapshot(deps)
        key = live.values_hash({"b": data})
        if msg is no_update and (state or {}).get("h") == key:
            raise PreventUpdate
        options = [{"label": f"{o['title']} #{o['id'][:8]}", "value": o["id"]} for o in data]
        return board_view(data, lang, settings.timezone), options, {"h": key}, msg

    @app.callback(
        Output("orders-overlay", "data"),
        Output("orders-ov-state", "data"),
        Input("orders-tick", "n_intervals"),
        State("orders-ov-state", "data"),
        prevent_initial_call=True,  # first at the first tick: page load has the map layers to fetch
    )
    def overlay(_n, state):
        data = orders_data.overlay(orders_data.board_snapshot(deps))
        key = live.values_hash({"o": data})
        if (state or {}).get("h") == key:
            raise PreventUpdate
        return data, {"h": key}

    # The wall's drawing: place, radius, grids, recipients' rings (assets/orders.js).
    app.clientside_callback(
        ClientsideFunction("gwOrders", "draw"),
        Output("orders-js-out", "data"),
        Input("orders-overlay", "data"),
        Input("live-data", "data"),
    )
