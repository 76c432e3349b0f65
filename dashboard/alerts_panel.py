"""The alert panel of the wall: the feed (newest first), pins on the map, acknowledge/resolve
for a signed-in duty officer, and the audible cue for new critical alerts.

The server sends data; assets/alerts.js draws: pins in the map's ``gw-alerts`` pane
(severity-coloured, SOS pulsing red, tooltips set as text), ``map.panTo`` when an alert in
the feed or a pin is clicked (the zoom stays the operator's), and a Web Audio beep for a
new or reminded critical alert in operator mode unless muted. Titles and details come from
terminals and people: they are rendered as text only (Dash text children; text nodes in JS).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from psycopg.rows import class_row

from dashboard import live
from dashboard.actions import act_on_alert
from dashboard.deps import Deps
from dashboard.i18n import t
from dashboard.routes import signed_in_officer
from schemas.logs import fields
from schemas.alert import AlertAction, AlertKind, AlertState, Severity
from schemas.settings import Settings

log = logging.getLogger("gridwatch.dashboard.alerts")

FEED_LIMIT = 50
REFRESH_MS = 1000  # the feed's own tick: an SOS reaches the wall within about a second of being stored
CACHE_S = 0.8  # one database read per interval, shared by every worker and screen (Redis cache)
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True, slots=True)
class WallAlert:
    id: int
    kind: str
    severity: str
    state: str
    terminal_id: str | None
    grid2_code: str | None
    lat: float | None
    lon: float | None
    title: str
    opened_at: datetime
    acknowledged_by: str | None
    count: int
    cleared_at: datetime | None
    last_reminded_at: datetime | None


def open_alerts(conn: psycopg.Connection, limit: int = FEED_LIMIT) -> list[WallAlert]:
    """Alerts not yet resolved, newest first (partial index ``alert_open``)."""
    with conn.cursor(row_factory=class_row(WallAlert)) as cur:
        return cur.execute(
            "SELECT id, kind, severity, state, terminal_id, grid2_code, lat, lon, title, opened_at, acknowledged_by,"
            " count, cleared_at, last_reminded_at FROM alert WHERE state <> %s ORDER BY opened_at DESC, id DESC LIMIT %s",
            (AlertState.RESOLVED.value, limit),
        ).fetchall()


def load_alerts(deps: Deps) -> list[WallAlert]:
    def compute() -> list[dict]:
        with deps.pool.connection() as conn:
            return [_to_json(a) for a in open_alerts(conn)]

    return [_from_json(d) for d in deps.cached("alerts", CACHE_S, compute)]


_TIMES = ("opened_at", "cleared_at", "last_reminded_at")


def _to_json(a: WallAlert) -> dict:
    d = asdict(a)
    for k in _TIMES:
        d[k] = d[k].isoformat() if d[k] else None
    return d


def _from_json(d: dict) -> WallAlert:
    d = dict(d)
    for k in _TIMES:
        d[k] = datetime.fromisoformat(d[k]) if d[k] else None
    return WallAlert(**d)


# ---------------------------------------------------------------- rendering
def _kind_label(kind: str, lang: str) -> str:
    try:
        return t(f"alerts.kind.{AlertKind(kind).value}", lang)
    except (ValueError, KeyError):
        return kind


def alert_feed(rows: list[WallAlert], lang: str, tz: str, controls: bool) -> list:
    """The feed as Dash components: every title is a text child (React escapes it), never HTML."""
    if not rows:
        return [html.Div(t("alerts.none", lang), className="gw-calm")]
    zone = ZoneInfo(tz)
    out = []
    for a in rows:
        sev = a.severity if a.severity in SEVERITIES else Severity.WARNING.value
        where = " · ".join(x for x in (a.grid2_code, a.terminal_id) if x)
        meta = [_kind_label(a.kind, lang), t(f"alerts.severity.{sev}", lang), t(f"alerts.state.{a.state}", lang),
                f"{a.opened_at.astimezone(zone):%m-%d %H:%M:%S}"]
        if a.count > 1:
            meta.append(t("alerts.count", lang).format(n=a.count))
        if a.acknowledged_by:
            meta.append(a.acknowledged_by)
        children = [html.Div(a.title, className="t"), html.Div(f"{' · '.join(meta)}  {where}", className="m")]
        if a.cleared_at:
            children.append(html.Div(t("alerts.cleared", lang), className="m gw-cleared"))
        if controls:
            buttons = []
            if a.state == AlertState.OPEN:
                buttons.append(html.Button(t("alerts.ack", lang), id={"type": "alert-ack", "id": a.id}, n_clicks=0))
            buttons.append(html.Button(t("alerts.resolve", lang), id={"type": "alert-resolve", "id": a.id}, n_clicks=0))
            children.append(html.Div(buttons))
        located = {"data-lat": a.lat, "data-lon": a.lon} if a.lat is not None and a.lon is not None else {}
        out.append(html.Div(children, className=f"gw-alert {sev} gw-kind-{_css_token(a.kind)}"
                            + (" gw-located" if located else ""), id=f"alert-{a.id}", **located))
    return out


def _css_token(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)[:40]


def alert_payload(rows: list[WallAlert], lang: str) -> dict:
    """What assets/alerts.js needs: pins (text title, severity, SOS flag) and the reminders it beeps for."""
    pins = [
        {"id": a.id, "lat": a.lat, "lon": a.lon, "sev": a.severity if a.severity in SEVERITIES else Severity.WARNING.value,
         "sos": a.kind == AlertKind.SOS, "title": a.title, "state": a.state, "n": a.count,
         "rem": a.last_reminded_at.timestamp() if a.last_reminded_at else 0}
        for a in rows
    ]
    return {"alerts": pins, "strings": {"mute": t("alerts.mute", lang), "unmute": t("alerts.unmute", lang)}}


def panel(settings: Settings, wall: bool) -> html.Div:
    """The panel's components (the layout places it in the side column)."""
    lang = settings.language
    # The wall makes no sound (no one there to mute it): the button exists but is hidden.
    head = [html.H3(t("alerts.title", lang)),
            html.Button(t("alerts.mute", lang), id="alert-mute", n_clicks=0, className="gw-mute",
                        title=t("alerts.mute_hint", lang), style={"display": "none"} if wall else {})]
    return html.Div(
        [
            html.Div(head, className="gw-alerts-head"),
            html.Div(id="alert-msg", className="gw-msg"),
            html.Div(html.Div(t("alerts.none", lang), className="gw-calm"), id="alert-feed"),
            dcc.Interval(id="alert-tick", interval=REFRESH_MS),
            dcc.Store(id="alert-data"),
            dcc.Store(id="alert-drawn"),
        ],
        className="gw-panel gw-alerts",
    )


# ---------------------------------------------------------------- callbacks
def register(app: Dash, deps: Deps) -> None:
    settings = deps.settings
    lang = settings.language

    @app.callback(
        Output("alert-feed", "children"),
        Output("alert-data", "data"),
        Output("alert-state", "data"),
        Output("alert-msg", "children"),
        Input("alert-tick", "n_intervals"),
        Input({"type": "alert-ack", "id": ALL}, "n_clicks"),
        Input({"type": "alert-resolve", "id": ALL}, "n_clicks"),
        State("alert-state", "data"),
        State("gw-config", "data"),
    )
    def alerts(_n, _acks, _resolves, state, config):
        msg = no_update
        trig = ctx.triggered_id
        wall = bool((config or {}).get("wall"))
        if isinstance(trig, dict) and ctx.triggered and ctx.triggered[0].get("value"):
            msg = act(deps, trig, wall)
        rows = load_alerts(deps)
        key = live.values_hash({"a": [[a.id, a.state, a.count, a.acknowledged_by, bool(a.cleared_at),
                                       a.last_reminded_at.timestamp() if a.last_reminded_at else 0] for a in rows], "w": wall})
        if msg is no_update and (state or {}).get("h") == key:
            raise PreventUpdate
        return alert_feed(rows, lang, settings.timezone, controls=not wall), alert_payload(rows, lang), {"h": key}, msg

    app.clientside_callback(
        ClientsideFunction("gwAlerts", "apply"),
        Output("alert-drawn", "data"),
        Input("alert-data", "data"),
        State("gw-config", "data"),
    )
    app.clientside_callback(
        ClientsideFunction("gwAlerts", "toggleMute"),
        Output("alert-mute", "children"),
        Input("alert-mute", "n_clicks"),
        Input("alert-data", "data"),  # the label in the page's language, muted or not, once strings arrive
    )


def act(deps: Deps, trig: dict, wall: bool) -> str:
    """Acknowledge or resolve, as the signed-in duty officer (checked here, on the server); the message to show."""
    lang = deps.settings.language
    who = signed_in_officer()
    if not who or wall:
        log.warning("alert action refused: not signed in as a duty officer", extra=fields(alert=trig.get("id")))
        return t("alerts.need_signin", lang)
    action = AlertAction.ACKNOWLEDGE if trig.get("type") == "alert-ack" else AlertAction.RESOLVE
    try:
        alert_id = int(trig["id"])
    except (KeyError, TypeError, ValueError):
        return t("alerts.stale", lang)
    with deps.pool.connection() as conn:
        ok = act_on_alert(conn, alert_id, action, who)
    deps.cache_drop("alerts", "alerts_by_grid")
    if ok:
        log.info("alert %s by %s", action.value, who, extra=fields(alert=alert_id))
    return t("alerts.done" if ok else "alerts.stale", lang)
