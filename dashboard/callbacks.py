"""Every callback of the wall, registered on one app by ``register(app, deps)``.

Server callbacks return data (stores, layer props, small HTML); clientside callbacks in
assets/gridwatch.js apply it. No callback returns the map or changes its view, except the
wall-mode rotation (clientside, only when Settings.wall_rotate_s > 0).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import ClientsideFunction, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import live, queries
from dashboard.deps import Deps
from dashboard.i18n import t

log = logging.getLogger("gridwatch.dashboard")

RANGES = {"24h": (24, 1), "7d": (24 * 7, 6), "30d": (24 * 30, 24)}  # hours back, bin hours
KIND_COLOURS = {
    "inspection.started": "#1d6fa5",
    "inspection.completed": "#35d0ff",
    "report": "#ffc857",
    "sos": "#ff5c5c",
    "patrol.started": "#5ee69a",
    "patrol.ended": "#2f8f5b",
}
FONT = '"Noto Sans CJK SC", "Noto Sans SC", "DejaVu Sans", sans-serif'
MAX_REPLAY_MIN = 480


# ---------------------------------------------------------------- charts
def _layout(title: str, **kw) -> dict:
    base = dict(
        title={"text": title, "font": {"size": 14, "color": "#35d0ff"}, "x": 0.02, "y": 0.96},
        template="plotly_dark",
        paper_bgcolor="#0c1826",
        plot_bgcolor="#0c1826",
        font={"family": FONT, "color": "#dfe9f5", "size": 11},
        margin={"l": 40, "r": 12, "t": 34, "b": 28},
    )
    return base | kw


def _empty(fig: go.Figure, lang: str, keep_x: bool = False) -> go.Figure:
    fig.add_annotation(text=t("charts.no_data", lang), showarrow=False, font={"size": 14, "color": "#7f93ab"}, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=keep_x)
    fig.update_yaxes(visible=False)
    return fig


def chart_data(deps: Deps, rng: str, now: float | None = None) -> dict:
    """The three charts' rows for ``rng``, cached in Redis for 60 s (shared by every worker)."""
    hours, bin_h = RANGES.get(rng, RANGES["24h"])
    lang = deps.settings.language

    def compute() -> dict:
        end = datetime.fromtimestamp(now or time.time(), ZoneInfo(deps.settings.timezone))
        start = end - timedelta(hours=hours)
        with deps.pool.connection() as conn:
            act = queries.activity_by_kind(conn, start, end, bin_h)
            grids = queries.inspections_by_grid(conn, start, end, lang)
            cats = queries.reports_by_category(conn, start, end)
        return {
            "activity": [[r.bucket.isoformat(), r.kind, r.n] for r in act],
            "window": [start.isoformat(), end.isoformat()],
            "bin_h": bin_h,
            "grids": [[r.code, r.name, r.n] for r in grids],
            "categories": [[r.category, r.n] for r in cats],
        }

    return deps.cached(f"charts:{rng}:{lang}", 60, compute)


def _window_axis(data: dict, zone: ZoneInfo) -> dict:
    """x-axis props spanning the chosen window (local time), with ticks on round hours or days.

    Without a fixed range plotly autoscales to the data: one bin gave millisecond ticks."""
    if not data.get("window"):
        return {}
    x0, x1 = (datetime.fromisoformat(v).astimezone(zone).replace(tzinfo=None) for v in data["window"])
    hours = (x1 - x0).total_seconds() / 3600
    dtick_h, fmt = (3, "%H:%M") if hours <= 24 else (24, "%m-%d") if hours <= 24 * 7 else (24 * 5, "%m-%d")
    return {"range": [x0, x1], "type": "date", "tick0": "2000-01-01", "dtick": dtick_h * 3600 * 1000, "tickformat": fmt}


def _activity_series(data: dict, zone: ZoneInfo) -> dict[str, tuple[list, list]]:
    """kind -> (local bin starts, counts); bins without events between the first and last bin count 0
    (the query returns only bins that have rows: a line drawn across a gap would invent events)."""
    counts: dict[str, dict[datetime, int]] = {}
    for ts, kind, n in data["activity"]:
        counts.setdefault(kind, {})[datetime.fromisoformat(ts)] = n
    if not counts:
        return {}
    seen = sorted({b for per in counts.values() for b in per})
    step = timedelta(hours=data.get("bin_h") or 1)
    bins, b = [], seen[0]
    while b <= seen[-1]:
        bins.append(b)
        b += step
    return {kind: ([x.astimezone(zone).replace(tzinfo=None) for x in bins], [per.get(x, 0) for x in bins]) for kind, per in counts.items()}


def chart_figures(data: dict, lang: str, tz: str) -> tuple[go.Figure, go.Figure, go.Figure]:
    zone = ZoneInfo(tz)
    act = go.Figure(layout=_layout(t("charts.activity", lang), legend={"orientation": "h", "y": -0.18, "font": {"size": 10}}, hovermode="x unified"))
    series = _activity_series(data, zone)
    for kind in queries.ACTIVITY_KINDS:
        if kind in series:
            xs, ys = series[kind]
            act.add_trace(go.Scatter(x=xs, y=ys, name=t("kind." + kind, lang), mode="lines+markers", marker={"size": 4},
                                     line={"width": 2, "color": KIND_COLOURS[kind]}, stackgroup=None))
    if not series:
        _empty(act, lang, keep_x=True)
    act.update_xaxes(**_window_axis(data, zone))

    grids = go.Figure(layout=_layout(t("charts.inspections_by_grid", lang), margin={"l": 110, "r": 12, "t": 34, "b": 24}))
    if data["grids"]:
        rows = list(reversed(data["grids"]))
        grids.add_trace(go.Bar(x=[r[2] for r in rows], y=[r[1] for r in rows], orientation="h", marker={"color": "#35d0ff"}, hovertext=[r[0] for r in rows]))
    else:
        _empty(grids, lang)

    cats = go.Figure(layout=_layout(t("charts.complaints_by_category", lang), showlegend=True, legend={"font": {"size": 10}}))
    if data["categories"]:
        labels = [t("category." + c, lang) if ("category." + c) in _CATS else c for c, _ in data["categories"]]
        cats.add_trace(
            go.Pie(labels=labels, values=[n for _, n in data["categories"]], hole=0.55, textinfo="value",
                   marker={"colors": ["#ffc857", "#35d0ff", "#ff6b6b", "#5ee69a", "#b794f6", "#7f93ab"]})
        )
    else:
        _empty(cats, lang)
    return act, grids, cats


_CATS = {f"category.{c}" for c in ("complaint", "consultation", "tip", "clue", "help", "other")}


# ---------------------------------------------------------------- details
def _kv(rows: list[tuple[str, object]]) -> html.Table:
    return html.Table([html.Tr([html.Td(k, className="gw-muted"), html.Td(str(v))]) for k, v in rows])


def grid_details(deps: Deps, code: str, now: float | None = None) -> list:
    lang = deps.settings.language
    now = now or time.time()
    with deps.pool.connection() as conn:
        info = queries.grid_info(conn, code)
        if info is None:
            return [html.Div(code)]
        team = queries.grid_team(conn, code, info.level1_code)
    k = deps.keys
    day = live.local_day(deps.settings, now)
    kinds = ("inspection.completed", "report", "patrol.started", "sos")
    pipe = deps.redis.pipeline(transaction=False)
    pipe.hmget(k.counters(day), [f"{code}|{x}" for x in kinds])
    tids = [m.terminal_id for m in team if m.terminal_id]
    if tids:
        pipe.zmscore(k.last_seen, tids)
        pipe.hmget(k.session, tids)
    res = pipe.execute()
    today = {kind: int(v or 0) for kind, v in zip(kinds, res[0])}
    seen = dict(zip(tids, res[1])) if tids else {}
    sess = dict(zip(tids, [(v or b"").decode() for v in res[2]])) if tids else {}

    def status(tid: str | None) -> str:
        if not tid or seen.get(tid) is None:
            return t("status.offline", lang)
        online = now - seen[tid] <= deps.settings.online_window_s and sess.get(tid) != "0"
        return t("status.online" if online else "status.offline", lang)

    name = info.name_en if lang == "en" and info.name_en else info.name_zh
    l1 = info.level1_name_en if lang == "en" and info.level1_name_en else info.level1_name_zh
    sup = [m for m in team if m.role == "level1_supervisor"]
    rest = [m for m in team if m.role != "level1_supervisor"]
    order = {"level2_supervisor": 0, "co_manager": 1, "informant": 2}
    rest.sort(key=lambda m: (order.get(m.role, 9), m.name))
    out = [
        html.Div(f"{name} ({code})", style={"fontSize": "16px", "fontWeight": 600}),
        _kv([
            (t("details.level1", lang), f"{l1} ({info.level1_code})"),
            (t("details.supervisor", lang), ", ".join(f"{m.name} · {status(m.terminal_id)}" for m in sup) or t("details.none", lang)),
            (t("details.today", lang), " · ".join(f"{t('kind.' + x, lang)} {today[x]}" for x in kinds)),
        ]),
        html.Div(t("details.team", lang), style={"marginTop": "6px", "color": "#35d0ff"}),
        html.Table(
            [
                html.Tr([html.Td(m.name), html.Td(t("role." + m.role, lang) if m.role in order else m.role, className="gw-muted"),
                         html.Td(m.terminal_id or "—"), html.Td(status(m.terminal_id) if m.terminal_id else "—")])
                for m in rest
            ]
        )
        if rest
        else html.Div(t("details.none", lang), className="gw-muted"),
    ]
    return out


def terminal_details(deps: Deps, tid: str, now: float | None = None) -> tuple[list, list]:
    import orjson

    lang = deps.settings.language
    now = now or time.time()
    zone = ZoneInfo(deps.settings.timezone)
    k = deps.keys
    pipe = deps.redis.pipeline(transaction=False)
    pipe.hget(k.last_fix, tid)
    pipe.zscore(k.last_seen, tid)
    pipe.hget(k.session, tid)
    raw, seen, sess = pipe.execute()
    fix = orjson.loads(raw) if raw else {}
    since = datetime.fromtimestamp(now, zone)
    with deps.pool.connection() as conn:
        info = queries.terminal_info(conn, tid)
        task = queries.current_task(conn, tid, since - timedelta(hours=24))
        trk = queries.track(conn, tid, since - timedelta(minutes=30), since + timedelta(minutes=5))
        grid = queries.grid_info(conn, fix["g2"]) if fix.get("g2") else None
    online = seen is not None and now - seen <= deps.settings.online_window_s and (sess or b"").decode() != "0"
    if fix.get("ts") and now - float(fix["ts"]) > min(60, deps.settings.online_window_s) and online:
        state = t("status.stale", lang)
    else:
        state = t("status.online" if online else "status.offline", lang)
    who = t("details.unknown", lang)
    if info and info.name:
        who = f"{info.name} · {t('role.' + info.role, lang) if info.role else ''}"
    gname = t("details.none", lang)
    if grid:
        gname = f"{grid.name_en if lang == 'en' and grid.name_en else grid.name_zh} ({grid.code})"
    last = datetime.fromtimestamp(float(fix["ts"]), zone).strftime("%Y-%m-%d %H:%M:%S") if fix.get("ts") else "—"
    bat = f"{fix['bat']:.0f}%" if isinstance(fix.get("bat"), (int, float)) else "—"
    task_s = t("details.none", lang)
    if task:
        ident = task.body.get("inspection_id") or task.body.get("patrol_id") or ""
        entity = task.body.get("entity_uscc") or ""
        task_s = f"{t('kind.' + task.kind, lang)} {ident} {entity} @ {task.ts.astimezone(zone):%H:%M}"
    body = [
        html.Div(f"{t('details.terminal', lang)} {tid}", style={"fontSize": "16px", "fontWeight": 600}),
        _kv([
            (t("details.person", lang), who),
            (t("details.grid", lang), gname),
            (t("details.last_fix", lang), f"{last} · {state}"),
            (t("details.battery", lang), bat),
            (t("details.task", lang), task_s),
            (t("details.track", lang), len(trk)),
        ]),
    ]
    return body, [[p.lat, p.lon] for p in trk]


# ---------------------------------------------------------------- replay
def parse_local(text: str, tz: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=ZoneInfo(tz))
        except ValueError:
            continue
    return None


def replay_payload(fixes: list[queries.FixPoint], start: datetime) -> dict:
    """One array for the whole window: {"t0": epoch, "ids": [...], "p": [[dt_s, id_index, lat, lon], ...]} in time order."""
    ids: dict[str, int] = {}
    t0 = start.timestamp()
    pts = []
    for f in fixes:
        i = ids.setdefault(f.terminal_id, len(ids))
        pts.append([round(f.ts.timestamp() - t0, 1), i, round(f.lat, 6), round(f.lon, 6)])
    return {"t0": t0, "ids": list(ids), "p": pts}


def load_replay(deps: Deps, target: str, start: datetime, minutes: int) -> dict:
    minutes = max(1, min(int(minutes), MAX_REPLAY_MIN))
    end = start + timedelta(minutes=minutes)
    with deps.pool.connection() as conn:
        if queries.is_level2_grid(conn, target):
            fixes = queries.grid_fixes(conn, target, start, end)
        else:
            fixes = queries.track(conn, target, start, end)
    return replay_payload(fixes, start)


# ---------------------------------------------------------------- registration
def register(app: Dash, deps: Deps) -> None:
    settings = deps.settings
    lang = settings.language

    # The live terminals, counters and grid colours are polled by assets/gwlive.js from /api/live
    # (dashboard/live_delta.py); Dash only tells it which measure colours the grids.
    app.clientside_callback(
        ClientsideFunction("gridwatch", "measure"),
        Output("live-state", "data"),
        Input("measure", "value"),
    )

    app.clientside_callback(
        ClientsideFunction("gridwatch", "clock"),
        Output("gw-clock", "children"),
        Input("live-tick", "n_intervals"),
        State("gw-config", "data"),
    )

    @app.callback(
        Output("chart-activity", "figure"),
        Output("chart-grids", "figure"),
        Output("chart-categories", "figure"),
        Input("chart-range", "value"),
        Input("chart-tick", "n_intervals"),
    )
    def charts(rng, _n):
        return chart_figures(chart_data(deps, rng or "24h"), lang, settings.timezone)

    @app.callback(
        Output("details", "children"),
        Output("track-line", "positions"),
        Input("grid-sel", "data"),
        Input("term-sel", "data"),
        prevent_initial_call=True,
    )
    def details(grid, term):
        if ctx.triggered_id == "term-sel" and term and term.get("id"):
            return terminal_details(deps, str(term["id"]))
        if grid and grid.get("code"):
            return grid_details(deps, str(grid["code"])), []
        raise PreventUpdate

    @app.callback(
        Output("replay-data", "data"),
        Output("replay-slider", "max"),
        Output("replay-slider", "value"),
        Output("replay-msg", "children"),
        Output("replay-tick", "disabled", allow_duplicate=True),
        Input("replay-load", "n_clicks"),
        Input("replay-clear", "n_clicks"),
        State("replay-target", "value"),
        State("replay-start", "value"),
        State("replay-minutes", "value"),
        prevent_initial_call=True,
    )
    def replay(_load, _clear, target, start_text, minutes):
        if ctx.triggered_id == "replay-clear":
            return None, no_update, 0, "", True
        start = parse_local(start_text or "", settings.timezone)
        if not target or start is None:
            return no_update, no_update, no_update, t("replay.bad_input", lang), True
        data = load_replay(deps, target.strip(), start, int(minutes or 30))
        if not data["p"]:
            return data, int(minutes or 30) * 60, 0, t("replay.empty", lang), True
        return data, int(minutes or 30) * 60, 0, t("replay.loaded", lang).format(n=len(data["p"]), k=len(data["ids"])), True

    app.clientside_callback(
        ClientsideFunction("gridwatch", "replayPlay"),
        Output("replay-tick", "disabled"),
        Input("replay-play", "n_clicks"),
        State("replay-tick", "disabled"),
        State("replay-data", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("gridwatch", "replayTick"),
        Output("replay-slider", "value", allow_duplicate=True),
        Input("replay-tick", "n_intervals"),
        State("replay-slider", "value"),
        State("replay-data", "data"),
        State("replay-speed", "value"),
        State("replay-slider", "max"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("gridwatch", "replayDraw"),
        Output("replay-label", "children"),
        Input("replay-slider", "value"),
        Input("replay-data", "data"),
        State("gw-config", "data"),
    )
    app.clientside_callback(
        ClientsideFunction("gridwatch", "rotate"),
        Output("rotate-out", "data"),
        Input("rotate-tick", "n_intervals"),
        prevent_initial_call=True,
    )
