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
from dashboard.auth.model import Level
from dashboard.auth.web import csrf_token, current_access
from schemas.settings import Settings


def _csrf() -> dcc.Input:
    return dcc.Input(type="hidden", name="csrf", value=csrf_token(), id="signin-csrf")


def _signin(settings: Settings, signin: str | None) -> html.Form:
    """The sign-in form, or who is signed in and a sign-out button (both posting a CSRF token)."""
    lang = settings.language
    acc = current_access()
    if acc.is_user:
        who = acc.name + ("" if acc.officer else t("signin.as_viewer", lang))
        return html.Form(
            [_csrf(), html.Span(t("signin.signed_in_as", lang) + who, id="signin-who"),
             html.Button(t("signin.signout", lang), type="submit", id="signout-submit")],
            action="/auth/logout",
            method="POST",
            className="gw-form",
            id="signin-box",
        )
    msg = {"failed": t("signin.failed", lang), "limited": t("signin.limited", lang)}.get(signin or "", "")
    return html.Form(
        [
            _csrf(),
            dcc.Input(name="user", placeholder=t("signin.user_name", lang), type="text", id="signin-user", autoComplete="username"),
            dcc.Input(name="password", placeholder=t("signin.password", lang), type="password", id="signin-password",
                      autoComplete="current-password"),
            html.Button(t("signin.submit", lang), type="submit", id="signin-submit"),
            html.Span(msg, className="gw-msg", id="signin-msg"),
        ],
        action="/auth/login",
        method="POST",
        className="gw-form",
        id="signin-box",
    )


def signin_page(settings: Settings, wall: bool, signin: str | None = None) -> html.Div:
    """What a visitor without enough access gets: the title and the sign-in form, no data."""
    lang = settings.language
    note = t("wall.need_token", lang) if wall else t("signin.need", lang)
    return html.Div(
        [
            html.Div([html.Div(t("title", lang), className="gw-title"), html.Div(className="gw-spacer")], className="gw-head"),
            html.Div([html.H3(note, id="signin-need"), _signin(settings, signin)], className="gw-panel gw-signin-page"),
        ],
        className="gw-page",
        id="gw-page",
    )


def gated_page(settings: Settings, wall: bool, signin: str | None = None) -> html.Div:
    """The operator page for a signed-in user, the wall for a wall session or a user, else the sign-in page."""
    need = Level.WALL if wall else Level.VIEWER
    if current_access().level < need:
        return signin_page(settings, wall, signin)
    return page(settings, wall, signin)


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
        head += [_signin(settings, signin), html.A(t("wall_mode", lang), href="/wall")]
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
