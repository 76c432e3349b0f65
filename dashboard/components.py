"""Small typed builders shared by the operator page and the wall page.

The map is built once per page load and never returned from a callback: its grids, entities and
terminals are drawn and refreshed client-side (assets/gwgrids.js, gwentities.js, gwlive.js), so
the operator's zoom and pan are never reset.
"""

from __future__ import annotations

import dash_leaflet as dl
from dash import dcc, html

from dashboard.i18n import js_strings, t
from schemas.settings import Settings

COUNTER_KEYS = (
    ("inspections_today", False),
    ("inspections_year", False),
    ("reports_year", False),
    ("leads_verified", True),
    ("cases_filed", True),
    ("police_transfers", True),
    ("penalty_decisions", True),
    ("mediation_rate_pct", True),
)
COUNTER_LABEL = {
    "inspections_today": "counter.inspections_today",
    "inspections_year": "counter.inspections_year",
    "reports_year": "counter.reports_year",
    "leads_verified": "counter.leads_verified",
    "cases_filed": "counter.cases_filed",
    "police_transfers": "counter.police_transfers",
    "penalty_decisions": "counter.penalties",
    "mediation_rate_pct": "counter.mediation_rate",
}


def client_config(settings: Settings, wall: bool) -> dict:
    return {
        "onlineWindow": settings.online_window_s,
        "pollMs": settings.wall_refresh_ms,
        "staleAfter": min(60, settings.online_window_s),
        "strings": js_strings(settings.language),
        "wall": wall,
        "tz": settings.timezone,
        "locale": "zh-CN" if settings.language == "zh-CN" else "en-GB",
    }


# Sent once per page, fetched by assets/gwgrids.js and assets/gwentities.js: the page's head preloads
# them (app.py) so they download while the scripts load, not after the map has mounted.
LAYER_URLS = {"grids2": "/api/grids.geojson?level=2", "grids1": "/api/grids.geojson?level=1",
              "entities": "/api/entities.geojson"}


def live_map(settings: Settings) -> dl.Map:
    lon0, lat0, lon1, lat1 = settings.city_bbox
    layers: list = []
    if settings.tile_url:
        layers.append(dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution, maxZoom=18))
    layers += [
        # The grids and the entities are not Dash layers: assets/gwgrids.js draws the grids the moment
        # the map exists, assets/gwentities.js clusters the entities in a Web Worker.
        dl.Polyline(id="track-line", positions=[], pathOptions={"color": "#ffc857", "weight": 3, "opacity": 0.9, "dashArray": "6 4"}),
        dl.ScaleControl(position="bottomright", imperial=False),
    ]
    return dl.Map(
        id="gw-map",
        children=layers,
        bounds=[[lat0, lon0], [lat1, lon1]],
        zoomSnap=0.25,
        minZoom=7,
        maxZoom=18,
        attributionControl=bool(settings.tile_url),
        trackViewport=False,  # we never read the view back; the view is the operator's
        style={"width": "100%", "height": "100%"},
    )


def legend(settings: Settings) -> html.Div:
    lang = settings.language
    items = [
        ("#ffc857", "role.level1_supervisor"),
        ("#35d0ff", "role.level2_supervisor"),
        ("#b794f6", "role.co_manager"),
        ("#5ee69a", "role.informant"),
    ]
    rows = [html.Div([html.Span(className="gw-dot", style={"background": c}), t(k, lang)]) for c, k in items]
    rows.append(html.Div([html.Span(className="gw-ring"), t("status.offline", lang)]))
    return html.Div(rows, className="gw-legend")


def counters(settings: Settings) -> html.Div:
    lang = settings.language
    boxes = [
        html.Div(
            [html.Div("—", id="ctr-online", className="v"), html.Div(t("counter.online", lang), className="k")],
            className="gw-counter gw-big",
        )
    ]
    for key, pending in COUNTER_KEYS:
        boxes.append(
            html.Div(
                [html.Div("—", id=f"ctr-{key}", className="v"), html.Div(t(COUNTER_LABEL[key], lang), className="k")],
                className="gw-counter" + (" gw-pending" if pending else ""),
                title=t("counter.pending", lang) if pending else None,
            )
        )
    return html.Div(boxes, className="gw-counters")


def charts(settings: Settings, controls: bool) -> html.Div:
    lang = settings.language
    graph_cfg = {"displayModeBar": False, "responsive": True}
    children = [
        html.Div(dcc.Graph(id="chart-activity", config=graph_cfg, style={"height": "100%"}), className="gw-chart"),
        html.Div(dcc.Graph(id="chart-grids", config=graph_cfg, style={"height": "100%"}), className="gw-chart"),
        html.Div(dcc.Graph(id="chart-categories", config=graph_cfg, style={"height": "100%"}), className="gw-chart"),
        html.Div(
            dcc.RadioItems(
                id="chart-range",
                options=[{"label": t(f"charts.{r}", lang), "value": r} for r in ("24h", "7d", "30d")],
                value="24h",
                inline=True,
                className="gw-radio",
            ),
            className="gw-range",
            style={} if controls else {"display": "none"},
        ),
    ]
    return html.Div(children, className="gw-charts")


def stores(settings: Settings, wall: bool) -> list:
    """The non-visual pieces both pages share: intervals and stores."""
    return [
        dcc.Interval(id="live-tick", interval=1000),  # the clock; the live layer polls by itself (gwlive.js)
        dcc.Interval(id="chart-tick", interval=60_000),
        dcc.Interval(id="rotate-tick", interval=max(1, settings.wall_rotate_s) * 1000, disabled=not (wall and settings.wall_rotate_s > 0)),
        dcc.Store(id="live-data"),  # the id of the snapshot on screen (gwlive.js sets it): the orders rings follow it
        dcc.Store(id="live-state", data={}),
        dcc.Store(id="alert-state", data={}),
        dcc.Store(id="term-sel"),
        dcc.Store(id="grid-sel"),  # the level-2 grid clicked on the map (gwgrids.js sets it)
        dcc.Store(id="rotate-out"),
        dcc.Store(id="gw-config", data=client_config(settings, wall)),
    ]
