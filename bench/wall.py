"""Benchmark the wall: server time and bytes per refresh, page load to first complete render,
and fix-to-screen latency, with 530 level-2 polygons, 70,000 entities and 1,000 terminals
moving every second (synthetic city, dashboard/devserver.py), served by gunicorn (2 gthread
workers) on this machine.

Baseline, measured in the same run: the refresh a naive wall would do, rebuilding and
sending the full terminals GeoJSON FeatureCollection every tick.

    .venv/bin/python -m bench.wall [--seconds 60] [--no-browser]

Targets (issue 4): p99 < 100 ms server time per refresh, < 200 KB per refresh.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
import urllib.request

import orjson

from dashboard import live
from dashboard.deps import Deps
from dashboard.devserver import SyntheticWall
from schemas.settings import get_settings

CHROMIUM = "/usr/bin/chromium"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def refresh_body(state: dict) -> bytes:
    return json.dumps({
        "output": "..live-data.data...live-state.data..",
        "outputs": [{"id": "live-data", "property": "data"}, {"id": "live-state", "property": "data"}],
        "inputs": [{"id": "live-tick", "property": "n_intervals", "value": 1}, {"id": "measure", "property": "value", "value": "officers"}],
        "state": [{"id": "live-state", "property": "data", "value": state}],
        "changedPropIds": ["live-tick.n_intervals"],
    }).encode()


def http_refresh(url: str, state: dict) -> tuple[float, int, int, int, dict | None]:
    """(ms, status, wire bytes, raw bytes, new state) for one refresh callback over HTTP."""
    req = urllib.request.Request(url + "/_dash-update-component", data=refresh_body(state), method="POST",
                                 headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        ms = (time.perf_counter() - t0) * 1000
        enc = r.headers.get("Content-Encoding")
        status = r.status
    raw = gzip.decompress(body) if enc == "gzip" else body
    new_state = json.loads(raw)["response"]["live-state"]["data"] if status == 200 and raw else None
    return ms, status, len(body), len(raw), new_state


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


def bench_server(w: SyntheticWall, seconds: float) -> dict:
    deps = Deps(w.settings)
    # Over HTTP, as the browser does: each request carries the previous version, and the fleet
    # writes a new batch every second, so about one request in two builds a full payload.
    times, wire, raw, unchanged = [], [], [], 0
    state: dict = {}
    end = time.time() + seconds
    while time.time() < end:
        ms, status, nb, nr, st = http_refresh(w.url, state)
        if status == 200:
            times.append(ms)
            wire.append(nb)
            raw.append(nr)
            state = st
        else:
            unchanged += 1
        time.sleep(0.5)
    # In-process: the compact refresh vs the full-GeoJSON baseline, same snapshot source.
    comp_ms, base_ms, base_raw, base_gz = [], [], [], []
    for _ in range(200):
        t0 = time.perf_counter()
        payload, _ = live.refresh(deps, {}, "officers", force=True)
        orjson.dumps(payload)
        comp_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        body = full_geojson(deps)
        base_ms.append((time.perf_counter() - t0) * 1000)
        base_raw.append(len(body))
    base_gz = len(gzip.compress(body, 6))
    comp_body = orjson.dumps(payload)
    return {
        "http_ms_p50": statistics.median(times), "http_ms_p99": pct(times, 99), "http_n": len(times), "http_unchanged_204": unchanged,
        "bytes_raw": statistics.median(raw), "bytes_wire_gzip": statistics.median(wire),
        "inproc_ms_p50": statistics.median(comp_ms), "inproc_ms_p99": pct(comp_ms, 99),
        "baseline_ms_p50": statistics.median(base_ms), "baseline_ms_p99": pct(base_ms, 99),
        "baseline_bytes_raw": statistics.median(base_raw), "baseline_bytes_gzip": base_gz,
        "compact_bytes_raw_inproc": len(comp_body), "compact_bytes_gzip_inproc": len(gzip.compress(comp_body, 6)),
    }


def bench_browser(w: SyntheticWall, loads: int = 3, watch_s: float = 20) -> dict:
    from playwright.sync_api import sync_playwright

    ready = """() => document.querySelectorAll('path.leaflet-interactive').length >= 500
        && window.gridwatch && window.gridwatch.terminalCount() >= %d
        && document.querySelectorAll('.gw-cluster').length > 0
        && /\\d/.test((document.getElementById('ctr-online') || {}).textContent || '')"""
    ready = ready % len(w.city.terminals)
    out: dict = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        load_s, load_bytes = [], []
        for i in range(loads):
            ctx = b.new_context(viewport={"width": 1920, "height": 1080})  # cold cache each time
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(w.url + "/wall")
            page.wait_for_function(ready, timeout=60_000, polling=20)
            load_s.append(time.perf_counter() - t0)
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
            w._stop.set()  # pause the mover so it does not overwrite the probe
            time.sleep(0.05)
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
        "fps": frames[0], "longest_frame_ms": frames[1],
        "apply_ms_p50": statistics.median(apply) if apply else None, "apply_ms_p99": pct(apply, 99) if apply else None,
        "fix_to_screen_ms_p50": statistics.median(lat_ms), "fix_to_screen_ms_max": max(lat_ms),
    })
    return out


def run_soak(w: SyntheticWall, minutes: float, interval_s: float, heap_dir: str | None) -> None:
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from bench import wall_soak

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = b.new_context(viewport={"width": 1920, "height": 1080}).new_page()
        page.goto(w.url + "/wall")
        page.wait_for_function("() => window.gridwatch && window.gridwatch.terminalCount() > 0", timeout=60_000)
        print(f"Gridwatch wall soak: /wall with {len(w.city.terminals)} terminals moving every second,"
              f" {minutes:g} min, a sample every {interval_s:g} s", flush=True)
        samples = wall_soak.soak(page, b, minutes, interval_s, Path(heap_dir) if heap_dir else None)
        print(wall_soak.summary(samples))
        b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="how long to poll the refresh over HTTP")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--soak", type=float, metavar="MINUTES", help="only leave /wall open this long and print the renderer's memory")
    ap.add_argument("--soak-interval", type=float, default=30, metavar="S", help="seconds between memory samples in --soak")
    ap.add_argument("--heap-dir", help="with --soak: write V8 heap snapshots here (at 1 min and at the end) and print what grew")
    ap.add_argument("--demo", action="store_true", help="the demo city of grid/ (its own terminal count) instead of the synthetic one")
    args = ap.parse_args()
    # the bench polls as a wall PC on the allow-list would
    with SyntheticWall(get_settings(), terminals=1000, entities=70_000, demo=args.demo,
                       extra={"web_wall_addresses": "127.0.0.1"}) as w:
        time.sleep(2)
        if args.soak:
            run_soak(w, args.soak, args.soak_interval, args.heap_dir)
            return
        s = bench_server(w, args.seconds)
        br = {} if args.no_browser else bench_browser(w)
    kb = lambda n: f"{n / 1024:.1f} KB"  # noqa: E731
    print(f"Gridwatch wall benchmark: {len(w.city.level2)} level-2 polygons, 70,000 entities,"
          f" {len(w.city.terminals)} terminals moving every second ({'demo city' if args.demo else 'synthetic city'})")
    print(f"  refresh over HTTP (gunicorn, 2 gthread workers): p50 {s['http_ms_p50']:.1f} ms, p99 {s['http_ms_p99']:.1f} ms"
          f"  ({s['http_n']} full refreshes; {s['http_unchanged_204']} polls found nothing new and answered 204)")
    print(f"  bytes per refresh: {kb(s['bytes_raw'])} raw, {kb(s['bytes_wire_gzip'])} on the wire (gzip)")
    print(f"  in-process refresh (Redis snapshot -> compact payload): p50 {s['inproc_ms_p50']:.1f} ms, p99 {s['inproc_ms_p99']:.1f} ms")
    print(f"  baseline full terminals GeoJSON per refresh: p50 {s['baseline_ms_p50']:.1f} ms, p99 {s['baseline_ms_p99']:.1f} ms,"
          f" {kb(s['baseline_bytes_raw'])} raw, {kb(s['baseline_bytes_gzip'])} gzip")
    print(f"  ratio compact/baseline: bytes raw {s['compact_bytes_raw_inproc'] / s['baseline_bytes_raw']:.2f},"
          f" gzip {s['compact_bytes_gzip_inproc'] / s['baseline_bytes_gzip']:.2f}, time p50 {s['inproc_ms_p50'] / s['baseline_ms_p50']:.2f}")
    if br:
        print(f"  page load to first complete render (cold cache, headless Chromium): median {br['load_s_median']:.2f} s"
              f" ({', '.join(f'{x:.2f}' for x in br['load_s_all'])}), {kb(br['load_bytes'])} transferred")
        print(f"  browser with 1,000 moving terminals: {br['fps']:.0f} fps, longest frame {br['longest_frame_ms']:.0f} ms,"
              f" apply p50 {br['apply_ms_p50']:.1f} ms, p99 {br['apply_ms_p99']:.1f} ms")
        print(f"  fix stored -> marker moved on screen: p50 {br['fix_to_screen_ms_p50']:.0f} ms, max {br['fix_to_screen_ms_max']:.0f} ms (target < 2,000)")
    ok = s["http_ms_p99"] < 100 and s["bytes_raw"] < 200 * 1024
    print(f"  targets (p99 < 100 ms, < 200 KB per refresh): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
