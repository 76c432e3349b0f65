"""The wall left running: the browser renderer's memory over time (``bench.wall --soak MINUTES``).

A wall screen stays on ``/wall`` for days, so the renderer must be flat after warm-up. Every
``interval`` seconds this prints the renderer process's resident memory (from /proc, the
figure a task manager shows), the JS heap in use, and the DOM node and event-listener counts
(Chrome DevTools Protocol ``Performance.getMetrics``). With ``heap_dir`` it also writes a
V8 heap snapshot at the first and the last sample, to diff by constructor when something grows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

MB = 1024 * 1024


def renderer_pids(browser_cdp) -> list[int]:
    """The renderer processes of this browser (SystemInfo.getProcessInfo on the browser session)."""
    info = browser_cdp.send("SystemInfo.getProcessInfo")
    return [p["id"] for p in info.get("processInfo", []) if p.get("type") == "renderer"]


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def metrics(page_cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in page_cdp.send("Performance.getMetrics")["metrics"]}


def heap_snapshot(page_cdp, path: Path) -> None:
    """Write a .heapsnapshot (open it in DevTools → Memory, or diff with summarise_snapshot)."""
    chunks: list[str] = []
    page_cdp.on("HeapProfiler.addHeapSnapshotChunk", lambda e: chunks.append(e["chunk"]))
    page_cdp.send("HeapProfiler.collectGarbage")
    page_cdp.send("HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
    path.write_text("".join(chunks))


def summarise_snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """constructor/name -> (count, self size) over every node of a heap snapshot."""
    snap = json.loads(path.read_text())
    meta = snap["snapshot"]["meta"]
    fields = meta["node_fields"]
    width = len(fields)
    i_type, i_name, i_size = fields.index("type"), fields.index("name"), fields.index("self_size")
    types = meta["node_types"][0]
    nodes, strings = snap["nodes"], snap["strings"]
    out: dict[str, list[int]] = {}
    for k in range(0, len(nodes), width):
        kind = types[nodes[k + i_type]]
        name = strings[nodes[k + i_name]] if kind in ("object", "closure", "native") else f"({kind})"
        row = out.setdefault(name[:80], [0, 0])
        row[0] += 1
        row[1] += nodes[k + i_size]
    return {k: (v[0], v[1]) for k, v in out.items()}


def diff_snapshots(first: Path, last: Path, top: int = 15) -> list[str]:
    a, b = summarise_snapshot(first), summarise_snapshot(last)
    grown = sorted(((b[k][1] - a.get(k, (0, 0))[1], b[k][0] - a.get(k, (0, 0))[0], k) for k in b), reverse=True)
    return [f"    {d_size / 1024:+9.0f} KB {d_count:+8d} × {name}" for d_size, d_count, name in grown[:top]]


def soak(page, browser, minutes: float, interval_s: float, heap_dir: Path | None = None) -> list[dict]:
    """Sample the open wall ``page`` for ``minutes``; prints one line per sample and returns them."""
    page_cdp = page.context.new_cdp_session(page)
    page_cdp.send("Performance.enable")
    browser_cdp = browser.new_browser_cdp_session()
    samples: list[dict] = []
    t0 = time.time()
    end = t0 + minutes * 60
    first_snap = last_snap = None
    while True:
        pids = renderer_pids(browser_cdp)
        m = metrics(page_cdp)
        s = {"t_s": round(time.time() - t0), "renderer_rss_mb": sum(rss_bytes(p) for p in pids) / MB,
             "js_heap_mb": m.get("JSHeapUsedSize", 0) / MB, "nodes": int(m.get("Nodes", 0)),
             "listeners": int(m.get("JSEventListeners", 0))}
        samples.append(s)
        print(f"  soak t={s['t_s']:5d} s  renderer {s['renderer_rss_mb']:7.1f} MB  JS heap {s['js_heap_mb']:6.1f} MB"
              f"  DOM nodes {s['nodes']:6d}  listeners {s['listeners']:5d}", flush=True)
        if heap_dir is not None and first_snap is None and s["t_s"] >= 60:
            first_snap = heap_dir / "wall-first.heapsnapshot"
            heap_snapshot(page_cdp, first_snap)
        if time.time() >= end:
            break
        time.sleep(max(0.0, min(interval_s, end - time.time())))
    if heap_dir is not None and first_snap is not None:
        last_snap = heap_dir / "wall-last.heapsnapshot"
        heap_snapshot(page_cdp, last_snap)
        print("  heap growth by constructor (last - first snapshot):")
        print("\n".join(diff_snapshots(first_snap, last_snap)))
    return samples


def summary(samples: list[dict], warmup_s: float = 120) -> str:
    """Growth after warm-up, per hour: what the issue's target (flat after warm-up) is judged on."""
    warm = [s for s in samples if s["t_s"] >= warmup_s] or samples
    if len(warm) < 2 or warm[-1]["t_s"] == warm[0]["t_s"]:
        return "  soak: too short to judge growth"
    hours = (warm[-1]["t_s"] - warm[0]["t_s"]) / 3600
    rss = (warm[-1]["renderer_rss_mb"] - warm[0]["renderer_rss_mb"]) / hours
    heap = (warm[-1]["js_heap_mb"] - warm[0]["js_heap_mb"]) / hours
    return (f"  soak after {warmup_s:.0f} s warm-up: renderer {warm[0]['renderer_rss_mb']:.0f} -> {warm[-1]['renderer_rss_mb']:.0f} MB"
            f" ({rss:+.0f} MB/h), JS heap {warm[0]['js_heap_mb']:.1f} -> {warm[-1]['js_heap_mb']:.1f} MB ({heap:+.1f} MB/h)")
