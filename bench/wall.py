"""Benchmark the wall: server time and bytes per refresh, page load to first complete render,
and fix-to-screen latency, with 530 level-2 polygons, 70,000 entities and 1,000 terminals
moving every second (synthetic city, dashboard/devserver.py), served by gunicorn (2 gthread
workers) on this machine.

Baselines, measured in the same run: over HTTP, the full snapshot every poll (what a screen
that never keeps a version would get); in-process, the previous compact refresh (every terminal
every time) and the refresh a naive wall would do, the full terminals GeoJSON every tick.

    .venv/bin/python -m bench.wall [--seconds 60] [--loads 3] [--no-browser] [--demo]
    .venv/bin/python -m bench.wall --soak 30 [--soak-interval 30] [--heap-dir DIR]

Targets (issue 16): delta p99 <= 10 ms over HTTP, <= 25 KB raw / 8 KB gzip per refresh, first
complete render (grids, terminals, entity clusters, counters) <= 1.5 s, a stored fix on screen
within 500 ms, 60 fps; with --soak MINUTES the renderer's memory flat after warm-up
(bench/wall_soak.py). The charts are timed too, apart: they are drawn after the map.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
import urllib.parse
import urllib.request

import orjson

from dashboard import live, live_delta
from dashboard.deps import Deps
from dashboard.devserver import SyntheticWall
from schemas.settings import get_settings

CHROMIUM = "/usr/bin/chromium"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def http_live(url: str, sid: str | None, gh: str | None, measure: str = "officers") -> tuple[float, int, int, int, dict | None]:
    """(ms, status, wire bytes, raw bytes, body) for one GET /api/live, as the wall's poll does it."""
    q = urllib.parse.urlencode({"m": measure, **({"s": sid} if sid else {}), **({"gh": gh} if gh else {})})
    req = urllib.request.Request(f"{url}/api/live?{q}", headers={"Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        ms = (time.perf_counter() - t0) * 1000
        enc = r.headers.get("Content-Encoding")
        status = r.status
    raw = gzip.decompress(body) if enc == "gzip" else body
    return ms, status, len(body), len(raw), (json.loads(raw) if status == 200 and raw else None)


def full_geojson(deps: Deps) -> bytes:
    """The baseline: every terminal as a GeoJSON Feature with its properties, every refresh."""
    snap = live.read_snapshot(deps)
    meta = live.ensure_meta(deps, snap)
    feats = []
    for tid, fix in snap.last.items():
        feats.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [fix["lon"], fix["lat"]]},
            "properties": {"id": tid, "role": (meta["t"].get(tid) or ["?"])[0], "online": live.is_online(deps.settings, snap, tid),
                           "ts": fix.get("ts"), "heading": fix.get("hdg"), "battery": fix.get("bat"), "grid": fix.get("g2"),
                           "tooltip": tid},
        })
    return orjson.dumps({"type": "FeatureCollection", "features": feats})


def bench_http(w: SyntheticWall, seconds: float, poll_s: float) -> dict:
    """Over HTTP, as the browser polls: a screen that follows (sends the snapshot it has) gets
    deltas or 204; in the same run, the baseline asks for the full snapshot every time."""
    delta_ms, delta_wire, delta_raw, nothing_ms = [], [], [], []
    full_ms, full_wire, full_raw = [], [], []
    sid = gh = None
    end = time.time() + seconds
    while time.time() < end:
        ms, status, nb, nr, body = http_live(w.url, sid, gh)
        if status == 204:
            nothing_ms.append(ms)
        elif body is not None and "d" in body:
            delta_ms.append(ms), delta_wire.append(nb), delta_raw.append(nr)
        if body is not None:
            sid, gh = body["s"], body.get("gh", gh)
        ms, status, nb, nr, _ = http_live(w.url, None, None)
        full_ms.append(ms), full_wire.append(nb), full_raw.append(nr)
        time.sleep(poll_s)
    return {"delta": summarise(delta_ms, delta_wire, delta_raw), "full": summarise(full_ms, full_wire, full_raw),
            "nothing_ms_p50": statistics.median(nothing_ms) if nothing_ms else None, "nothing_n": len(nothing_ms)}


def summarise(ms: list[float], wire: list[int], raw: list[int]) -> dict:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": statistics.median(ms), "p99": pct(ms, 99),
            "raw": statistics.median(raw), "wire": statistics.median(wire), "raw_max": max(raw), "wire_max": max(wire)}


class BenchDeps(Deps):
    """The web's own snapshot builders keep running during the in-process runs: keep apart from them."""

    def cache_key(self, name: str) -> str:
        return super().cache_key(f"bench:{name}")


def bench_inproc(w: SyntheticWall, rounds: int = 200) -> dict:
    """In-process, same snapshot source. Per screen poll: the answer for a screen one snapshot
    behind (the builder stored that delta) and, worst case, one whose delta must be computed.
    Per ingest batch, once for every screen: building the snapshot. Baseline: the full terminals
    GeoJSON a naive wall would build per poll."""
    deps = BenchDeps(w.settings)
    answer_ms, uncached_ms, build_ms, base_ms = [], [], [], []
    w.pause_fleet()  # one batch per round, written here: each round is one new version
    try:
        prev = live_delta.build(deps, time.time())
        for _ in range(rounds):
            w.fleet.step()
            now = time.time()
            t0 = time.perf_counter()
            sid = live_delta.build(deps, now)
            live_delta.store_delta(deps, prev, sid)  # what the builder does after each build
            build_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            live_delta.answer(deps, prev, "officers", "-", now=now)
            answer_ms.append((time.perf_counter() - t0) * 1000)
            deps.redis.delete(deps.cache_key(f"wall:delta:{prev}:{sid}"))
            t0 = time.perf_counter()
            live_delta.answer(deps, prev, "officers", "-", now=now)
            uncached_ms.append((time.perf_counter() - t0) * 1000)
            prev = sid
            t0 = time.perf_counter()
            body = full_geojson(deps)
            base_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        w.resume_fleet()
    p = lambda xs: (statistics.median(xs), pct(xs, 99))  # noqa: E731
    return {"answer": p(answer_ms), "uncached": p(uncached_ms), "build": p(build_ms), "base": p(base_ms),
            "base_raw": len(body), "base_gzip": len(gzip.compress(body, 6))}


# When each part of the first complete render first holds, in ms from navigation start (polled
# every 10 ms in the page): where a slow load spends its time. The charts are not part of "complete"
# (plotly.js runs only once the map is drawn, assets/charts_later.js): timed apart, printed beside.
PARTS = """(() => {
  const parts = {
    grids: () => document.querySelectorAll('path.leaflet-interactive').length >= 500
      && document.querySelectorAll('.leaflet-overlay-pane path').length >= %(paths)d,
    terminals: () => !!(window.gridwatch && window.gridwatch.terminalCount && window.gridwatch.terminalCount() >= %(terminals)d),
    clusters: () => document.querySelectorAll('.gw-cluster').length > 0,
    counters: () => /\\d/.test((document.getElementById('ctr-online') || {}).textContent || ''),
    charts: () => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3
      && document.querySelectorAll('.js-plotly-plot .trace, .js-plotly-plot .annotation').length >= 3,
  };
  const at = window.__benchParts = {};
  (function tick() {
    for (const k in parts) { if (!(k in at)) { try { if (parts[k]()) at[k] = performance.now(); } catch (e) {} } }
    if (Object.keys(at).length < Object.keys(parts).length && performance.now() < 60000) setTimeout(tick, 10);
  })();
})();"""


def bench_browser(w: SyntheticWall, loads: int = 3, watch_s: float = 20) -> dict:
    from playwright.sync_api import sync_playwright

    # Complete: every level-2 polygon and level-1 outline (all but 5) drawn, every terminal placed,
    # entity clusters shown, the counters filled.
    ready = """() => document.querySelectorAll('path.leaflet-interactive').length >= 500
        && document.querySelectorAll('.leaflet-overlay-pane path').length >= %d
        && window.gridwatch && window.gridwatch.terminalCount() >= %d
        && document.querySelectorAll('.gw-cluster').length > 0
        && /\\d/.test((document.getElementById('ctr-online') || {}).textContent || '')"""
    paths = len(w.city.level2) + len(w.city.level1) - 5
    ready = ready % (paths, len(w.city.terminals))
    marks = PARTS % {"paths": paths, "terminals": len(w.city.terminals)}
    out: dict = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        load_s, load_bytes, charts_s, parts = [], [], [], []
        for i in range(loads):
            ctx = b.new_context(viewport={"width": 1920, "height": 1080})  # cold cache each time
            ctx.add_init_script(marks)
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(w.url + "/wall")
            page.wait_for_function(ready, timeout=60_000, polling=20)
            load_s.append(time.perf_counter() - t0)
            page.wait_for_function("() => 'charts' in window.__benchParts", timeout=60_000, polling=20)
            charts_s.append(time.perf_counter() - t0)
            parts.append(page.evaluate("() => window.__benchParts"))
            load_bytes.append(page.evaluate("() => performance.getEntriesByType('resource').reduce((a, e) => a + (e.transferSize || 0), 0)"
                                            " + (performance.getEntriesByType('navigation')[0] || {}).transferSize"))
            if i < loads - 1:
                ctx.close()
        # Keep the last page: how it copes with 1,000 moving terminals, and fix-to-screen latency.
        page.evaluate("() => { window.gridwatch.applyMs = []; }")
        frames = page.evaluate(f"""() => new Promise(res => {{ let n = 0, longest = 0, last = performance.now(); const t0 = last;
            function f(t) {{ n++; longest = Math.max(longest, t - last); last = t; if (t - t0 < {watch_s * 1000}) requestAnimationFrame(f); else res([n / ((t - t0) / 1000), longest]); }}
            requestAnimationFrame(f); }})""")
        apply = page.evaluate("() => window.gridwatch.applyMs.slice()")
        # Latency: move one terminal far away in Redis (as ingest would), time until it moves on screen.
        tid = w.city.terminals[5]["terminal_id"]
        lat_ms = []
        for k in range(8):
            target = 28.0 + 0.01 * k
            w.pause_fleet()  # so the mover does not overwrite the probe
            fix = json.loads(w.redis.hget(w.fleet.keys.last_fix, tid))
            fix.update(lat=target, ts=time.time())
            t0 = time.perf_counter()
            pipe = w.redis.pipeline()
            pipe.hset(w.fleet.keys.last_fix, tid, json.dumps(fix))
            pipe.incr(w.fleet.keys.version)
            pipe.execute()
            page.wait_for_function(f"() => Math.abs(window.gridwatch.markers['{tid}'].getLatLng().lat - {target}) < 1e-6", timeout=10_000, polling=10)
            lat_ms.append((time.perf_counter() - t0) * 1000)
        ctx.close()
        b.close()
    out.update({
        "load_s_median": statistics.median(load_s), "load_s_all": load_s, "load_bytes": statistics.median(load_bytes),
        "charts_s_median": statistics.median(charts_s),
        "parts_ms": {k: statistics.median(p[k] for p in parts) for k in ("grids", "terminals", "clusters", "counters", "charts")},
        "fps": frames[0], "longest_frame_ms": frames[1],
        "apply_ms_p50": statistics.median(apply) if apply else None, "apply_ms_p99": pct(apply, 99) if apply else None,
        "fix_to_screen_ms_p50": statistics.median(lat_ms), "fix_to_screen_ms_max": max(lat_ms),
    })
    return out


def run_soak(w: SyntheticWall, minutes: float, interval_s: float, heap_dir: str | None, setup_js: str | None = None) -> None:
    from pathlib import Path

    from bench import wall_soak

    print(f"Gridwatch wall soak: /wall with {len(w.city.terminals)} terminals moving every second,"
          f" {minutes:g} min, a sample every {interval_s:g} s", flush=True)
    samples = wall_soak.soak(w.url + "/wall", minutes, interval_s, Path(heap_dir) if heap_dir else None, setup_js)
    print(wall_soak.summary(samples))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="how long to poll the refresh over HTTP")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--loads", type=int, default=3, help="cold page loads to time (the median is judged)")
    ap.add_argument("--soak", type=float, metavar="MINUTES", help="only leave /wall open this long and print the renderer's memory")
    ap.add_argument("--soak-interval", type=float, default=30, metavar="S", help="seconds between memory samples in --soak")
    ap.add_argument("--heap-dir", help="with --soak: write V8 heap snapshots here (at 1 min and at the end) and print what grew")
    ap.add_argument("--soak-eval", metavar="JS", help="with --soak: run this in the page once it is drawn (switch a feature off to find what grows)")
    ap.add_argument("--demo", action="store_true", help="the demo city of grid/ (its own terminal count) instead of the synthetic one")
    args = ap.parse_args()
    # the bench polls as a wall PC on the allow-list would
    with SyntheticWall(get_settings(), terminals=1000, entities=70_000, demo=args.demo,
                       extra={"web_wall_addresses": "127.0.0.1"}) as w:
        time.sleep(2)
        if args.soak:
            run_soak(w, args.soak, args.soak_interval, args.heap_dir, args.soak_eval)
            return
        h = bench_http(w, args.seconds, w.settings.wall_refresh_ms / 1000)
        ip = bench_inproc(w)
        br = {} if args.no_browser else bench_browser(w, loads=args.loads)
    report(w, h, ip, br)


def report(w: SyntheticWall, h: dict, ip: dict, br: dict) -> None:
    kb = lambda n: f"{n / 1024:.1f} KB"  # noqa: E731
    d, f = h["delta"], h["full"]
    print(f"Gridwatch wall benchmark: {len(w.city.level2)} level-2 polygons, 70,000 entities,"
          f" {len(w.city.terminals)} terminals moving every second, poll every {w.settings.wall_refresh_ms} ms")
    print("  GET /api/live over HTTP (gunicorn, 2 gthread workers), same run:")
    print(f"    delta (this design):        p50 {d['p50']:.1f} ms, p99 {d['p99']:.1f} ms, {kb(d['raw'])} raw, {kb(d['wire'])} gzip"
          f" (max {kb(d['raw_max'])} / {kb(d['wire_max'])}; {d['n']} deltas)")
    print(f"    baseline: full snapshot:    p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, {kb(f['raw'])} raw, {kb(f['wire'])} gzip")
    print(f"    nothing new (204):          p50 {h['nothing_ms_p50'] or 0:.1f} ms ({h['nothing_n']} polls)")
    print(f"    ratio delta/full: p99 {d['p99'] / f['p99']:.2f}, bytes raw {d['raw'] / f['raw']:.2f}, gzip {d['wire'] / f['wire']:.2f}")
    print(f"  in-process, per poll: answer one snapshot behind p50 {ip['answer'][0]:.2f} / p99 {ip['answer'][1]:.2f} ms,"
          f" delta not yet stored p50 {ip['uncached'][0]:.2f} / p99 {ip['uncached'][1]:.2f} ms;"
          f" per ingest batch (once for all screens, off the request path): build p50 {ip['build'][0]:.1f} / p99 {ip['build'][1]:.1f} ms")
    print(f"  in-process baseline, full terminals GeoJSON per poll: p50 {ip['base'][0]:.1f} / p99 {ip['base'][1]:.1f} ms"
          f" ({kb(ip['base_raw'])} raw, {kb(ip['base_gzip'])} gzip); ratio answer/baseline p50 {ip['answer'][0] / ip['base'][0]:.2f},"
          f" build/baseline p50 {ip['build'][0] / ip['base'][0]:.2f}")
    if br:
        print(f"  page load to first complete render (cold cache, headless Chromium): median {br['load_s_median']:.2f} s"
              f" ({', '.join(f'{x:.2f}' for x in br['load_s_all'])}), {kb(br['load_bytes'])} transferred")
        pm = br["parts_ms"]
        print(f"    each part first drawn (median ms from navigation start): grids {pm['grids']:.0f}, terminals {pm['terminals']:.0f},"
              f" clusters {pm['clusters']:.0f}, counters {pm['counters']:.0f}; charts {pm['charts']:.0f}"
              f" (not part of 'complete'; page load to charts drawn median {br['charts_s_median']:.2f} s)")
        print(f"  browser with 1,000 moving terminals: {br['fps']:.0f} fps, longest frame {br['longest_frame_ms']:.0f} ms,"
              f" apply p50 {br['apply_ms_p50']:.1f} ms, p99 {br['apply_ms_p99']:.1f} ms")
        print(f"  fix stored -> marker moved on screen: p50 {br['fix_to_screen_ms_p50']:.0f} ms, max {br['fix_to_screen_ms_max']:.0f} ms")
    ok = [d["p99"] <= 10, d["raw"] <= 25 * 1024, d["wire"] <= 8 * 1024]
    if br:
        ok += [br["load_s_median"] <= 1.5, br["fix_to_screen_ms_max"] <= 500, br["fps"] >= 55]
    print(f"  targets (delta p99 <= 10 ms, <= 25 KB raw / 8 KB gzip, first render <= 1.5 s, fix on screen <= 500 ms, 60 fps):"
          f" {'met' if all(ok) else 'NOT all met'}")

if __name__ == "__main__":
    main()
