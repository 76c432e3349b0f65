"""Both page layouts. They share every component id (so one set of callbacks serves both);
wall mode hides the controls and uses large type. Layout functions do no network I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard import alerts_panel
from dashboard import components as C
from dashboard import orders_board, orders_console
from dashboard.i18n import t
from dashboard.routes import signed_in_officer
from schemas.settings import Settings


def _signin(settings: Settings, failed: bool) -> html.Div:
    lang = settings.language
    who = signed_in_officer()
    if who:
        return html.Form(
            [html.Span(t("signin.signed_in_as", lang) + who), html.Button(t("signin.signout", lang), type="submit")],
            action="/auth/logout",
            method="POST",
            className="gw-form",
            id="signin-box",
        )
    return html.Form(
        [
            dcc.Input(name="user", placeholder=t("signin.user", lang), type="text", id="signin-user"),
            dcc.Input(name="password", placeholder=t("signin.password", lang), type="password", id="signin-password"),
            html.Button(t("signin.submit", lang), type="submit", id="signin-submit"),
            html.Span(t("signin.failed", lang) if failed else "", className="gw-msg"),
        ],
        action="/auth/login",
        method="POST",
        className="gw-form",
        id="signin-box",
    )


def _replay(settings: Settings) -> html.Div:
    lang = settings.language
    start = (datetime.now(ZoneInfo(settings.timezone)) - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
    return html.Div(
        [
            html.Div(t("replay.title", lang), style={"color": "#35d0ff", "marginTop": "8px"}),
            dcc.Input(id="replay-target", placeholder=t("replay.target", lang), type="text", debounce=True),
            dcc.Input(id="replay-start", value=start, placeholder=t("replay.start", lang), type="text", debounce=True),
            html.Div(
                [
                    dcc.Dropdown(
                        id="replay-minutes",
                        options=[{"label": f"{m} min", "value": m} for m in (15, 30, 60, 120, 240, 480)],
                        value=30,
                        clearable=False,
                        style={"width": "100px"},
                    ),
                    dcc.Dropdown(
                        id="replay-speed",
                        options=[{"label": f"×{s}", "value": s} for s in (10, 30, 60, 120, 300)],
                        value=60,
                        clearable=False,
                        style={"width": "90px"},
                    ),
                ],
                style={"display": "flex", "gap": "6px", "marginBottom": "4px"},
            ),
            html.Div(
                [
                    html.Button(t("replay.load", lang), id="replay-load"),
                    html.Button(t("replay.play", lang), id="replay-play"),
                    html.Button(t("replay.clear", lang), id="replay-clear"),
                ],
                style={"display": "flex", "gap": "6px"},
            ),
            dcc.Slider(id="replay-slider", min=0, max=1800, step=1, value=0, marks=None, updatemode="drag"),
            html.Div(id="replay-label", className="gw-muted"),
            html.Div(id="replay-msg", className="gw-msg"),
            dcc.Interval(id="replay-tick", interval=250, disabled=True),
            dcc.Store(id="replay-data"),
        ],
        className="gw-replay",
    )


def page(settings: Settings, wall: bool, signin: str | None = None) -> html.Div:
    lang = settings.language
    head = [
        html.Div(t("title", lang), className="gw-title"),
        html.Div(className="gw-spacer"),
    ]
    if not wall:
        head += [_signin(settings, signin == "failed"), html.A(t("wall_mode", lang), href="/wall")]
    head.append(html.Div(id="gw-clock", className="gw-clock"))
    tools = html.Div(
        [
            html.Div(t("measure.label", lang)),
            dcc.Dropdown(
                id="measure",
                options=[{"label": t(f"measure.{m}", lang), "value": m} for m in ("officers", "inspections", "reports", "alerts")],
                value="officers",
                clearable=False,
            ),
            _replay(settings),
        ],
        className="gw-map-tools",
        style={"display": "none"} if wall else {},
    )
    details = html.Div(
        [html.H3(t("details.title", lang)), html.Div(t("details.hint", lang), id="details", className="gw-details gw-muted")],
        className="gw-panel",
        style={"display": "none"} if wall else {},
    )
    side = html.Div(
        [
            html.Div(C.counters(settings), className="gw-panel"),
            alerts_panel.panel(settings, wall),
            details,
            *([] if wall else [orders_console.panel(settings), orders_board.panel(settings)]),
        ],
        className="gw-side",
    )
    return html.Div(
        [
            html.Div(head, className="gw-head"),
            html.Div([C.live_map(settings), tools, C.legend(settings)], className="gw-map-wrap"),
            side,
            C.charts(settings, controls=not wall),
            *C.stores(settings, wall),
            *orders_board.stores(settings),
        ],
        className="gw-page" + (" gw-wall" if wall else ""),
        id="gw-page",
    )
