"""Builds the Dash app and exposes ``server`` for gunicorn (``dashboard.app:server``).

Nothing here touches the network at import: connections open on first use in each worker.
``warm(app)`` runs the first callback once (cold start ~100-140 ms otherwise); gunicorn
calls it after a worker boots (``dashboard/warmup.py: post_worker_init``, hooked in deploy/gunicorn.conf.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dash
import flask
from dash import Dash

from dashboard import alerts_panel, api, bundles, callbacks, orders_board, orders_console, routes
from dashboard import components as C
from dashboard.auth import web as auth_web
from dashboard.auth.web import current_access
from dashboard.auth.model import Access, Level
from dashboard.auth.startup import check_web_secret
from dashboard.deps import Deps
from dashboard.i18n import t
from dashboard.pages.layout import gated_page
from schemas.settings import Settings, get_settings

log = logging.getLogger("gridwatch.dashboard")
ASSETS = Path(__file__).with_name("assets")


def create_app(settings: Settings | None = None) -> Dash:
    settings = settings or get_settings()
    deps = Deps(settings)
    # A default or short secret off loopback lets anyone forge the session cookie: refuse to build.
    check_web_secret(settings)
    if os.environ.get("GRIDWATCH_DUTY_OFFICERS"):
        log.warning("GRIDWATCH_DUTY_OFFICERS is no longer read: users live in the database. "
                    "Run `python -m dashboard.users import-officers` once, then unset it")
    server = flask.Flask("gridwatch.dashboard")
    auth_web.install(server, deps)  # before any route: the gate runs ahead of Dash's own handlers
    app = Dash(
        "gridwatch.dashboard",
        server=server,
        assets_folder=str(ASSETS),
        serve_locally=True,
        compress=True,
        use_pages=True,
        pages_folder="",
        suppress_callback_exceptions=True,
        title=t("title", settings.language),
        update_title=None,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"},
                   {"name": "gw-plotly-js", "content": bundles.PLOTLY_URL},  # assets/charts_later.js loads it
                   {"name": "gw-supercluster-js", "content": bundles.SUPERCLUSTER_URL}],  # assets/gwentities.js' worker
    )
    app.config.external_scripts = []  # no CDN, ever
    page_head(app)

    def operator_layout(signin: str | None = None, **_):
        return gated_page(settings, wall=False, signin=signin)

    def wall_layout(signin: str | None = None, **_):
        return gated_page(settings, wall=True, signin=signin)

    dash.register_page("operator", path="/", layout=operator_layout, title=t("title", settings.language), name="operator")
    dash.register_page("wall", path="/wall", layout=wall_layout, title=t("title", settings.language), name="wall")
    app.layout = dash.html.Div(dash.page_container, style={"height": "100%"})
    routes.register(server, deps)
    bundles.register(server)
    callbacks.register(app, deps)
    orders_console.register(app, deps)
    orders_board.register(app, deps)
    api.register(server, deps)
    alerts_panel.register(app, deps)
    app._gw_deps = deps  # for warm() and tests
    return app


def page_head(app: Dash) -> None:
    """For a visitor who may see the map, the page's head starts the map layers' downloads at once
    (rel=preload, as=fetch: dash-leaflet's own fetch then takes them from the preload): about a
    second earlier than when the map mounts and asks. The charts' plotly.js downloads meanwhile
    too; it runs only once the map is drawn (assets/charts_later.js), and so do the script chunks of
    the lazily loaded components. The sign-in page preloads nothing.
    Every page gets regenerator-runtime instead of Dash's whole browser polyfill (dashboard/bundles.py)."""
    plain = app.interpolate_index
    links = "".join(f'<link rel="preload" href="{url}" as="fetch" crossorigin="anonymous">'
                    for url in C.LAYER_URLS.values())
    links += f'<link rel="preload" href="{bundles.PLOTLY_URL}" as="script">'
    # The components Dash loads lazily (the map's GeoJSON layers first) are fetched only once React has
    # mounted them, one after another: from the head they are in the cache by then.
    links += "".join(f'<link rel="preload" href="{app.config.requests_pathname_prefix}_dash-component-suites/{chunk}" as="script">'
                     for chunk in bundles.LAZY_CHUNKS)

    def interpolate_index(**kw) -> str:
        if current_access().level >= Level.WALL:
            kw["metas"] = kw.get("metas", "") + links
        kw["scripts"] = bundles.without_polyfill(kw.get("scripts", ""))
        return plain(**kw)

    app.interpolate_index = interpolate_index


def warm(app: Dash) -> float:
    """Run the live feed once through Flask so the first real poll is fast. Returns ms."""
    import time

    t0 = time.perf_counter()
    client = app.server.test_client()
    try:
        client.get("/_dash-layout")
        client.get("/_dash-dependencies")
        # The live feed is behind the wall gate: run it as an in-process wall reader, never over HTTP.
        with app.server.test_request_context("/api/live?m=officers"):
            flask.g.gw_access = Access(Level.WALL, "warm-up")
            resp = app.server.full_dispatch_request()
        if resp.status_code >= 400:
            log.warning("warm-up callback answered %s", resp.status_code)
    except Exception as exc:  # a missing service is reported by the real request; warming is best effort
        log.warning("warm-up failed: %s", exc)
    ms = (time.perf_counter() - t0) * 1000
    log.info("dashboard warmed in %.0f ms", ms)
    return ms


app = create_app()
server = app.server
