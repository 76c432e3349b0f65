"""The wall left running: the browser renderer's memory over time (``bench.wall --soak MINUTES``).

A wall screen stays on ``/wall`` for days, so the renderer must be flat after warm-up. Every
``interval`` seconds this prints the renderer process's resident memory (from /proc, the
figure a task manager shows), the JS heap in use, and the DOM node and event-listener counts
(Chrome DevTools Protocol ``Performance.getMetrics``, over a pipe: see PipeChromium). With
``heap_dir`` it also writes a V8 heap snapshot after one minute and at the end, and prints what
grew between them by constructor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"

MB = 1024 * 1024


class PipeChromium:
    """Debian's Chromium driven over --remote-debugging-pipe, as a wall PC runs it: no DevTools
    front-end and no Network domain enabled. (Playwright enables Network, and DevTools then keeps
    every response the page receives, up to its buffer: ~100 MB of renderer memory that a real
    wall never has, which would hide or fake a leak.) Only Runtime, Performance and, when asked,
    HeapProfiler are used. Messages are JSON separated by NUL on fds 3 (to Chromium) and 4."""

    def __init__(self, url: str, width: int = 1920, height: int = 1080):
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="gw-soak-")

        def fds() -> None:  # in the child, before exec: Chromium reads fd 3 and writes fd 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", f"--window-size={width},{height}", url],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._next = 0
        self._buf = b""
        self.events: list[dict] = []
        page = self._page_target()
        self.session = self.send("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]

    def _page_target(self, timeout_s: float = 30) -> str:
        end = time.time() + timeout_s
        while time.time() < end:
            pages = [t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            if pages:
                return pages[0]["targetId"]
            time.sleep(0.2)
        raise RuntimeError("Chromium opened no page")

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout_s: float = 120) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout_s
        while time.time() < end:
            for reply in self._read():
                if reply.get("id") == self._next:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                if "method" in reply:
                    self.events.append(reply)
        raise TimeoutError(method)

    def _read(self) -> list[dict]:
        while b"\0" not in self._buf:
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buf += chunk
        *msgs, self._buf = self._buf.split(b"\0")
        return [json.loads(m) for m in msgs if m]

    def page(self, method: str, params: dict | None = None) -> dict:
        return self.send(method, params, self.session)

    def evaluate(self, expr: str):
        return self.page("Runtime.evaluate", {"expression": expr, "returnByValue": True})["result"].get("value")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def renderer_pids(browser: PipeChromium) -> list[int]:
    """The renderer processes of this browser (SystemInfo.getProcessInfo)."""
    info = browser.send("SystemInfo.getProcessInfo")
    return [p["id"] for p in info.get("processInfo", []) if p.get("type") == "renderer"]


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def private_bytes(pid: int) -> int:
    """Memory only this process holds (Private_Clean + Private_Dirty + Swap from smaps_rollup): RSS
    also counts shared library and font pages that a process touches gradually, which is not growth."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:", "Swap:")):
                total += int(line.split()[1]) * 1024
    except OSError:
        pass
    return total


def metrics(browser: PipeChromium) -> dict[str, float]:
    return {m["name"]: m["value"] for m in browser.page("Performance.getMetrics")["metrics"]}


def heap_snapshot(browser: PipeChromium, path: Path) -> None:
    """Write a .heapsnapshot (open it in DevTools → Memory, or diff with diff_snapshots)."""
    browser.page("HeapProfiler.enable")
    browser.page("HeapProfiler.collectGarbage")
    browser.events.clear()
    browser.page("HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
    path.write_text("".join(e["params"]["chunk"] for e in browser.events if e.get("method") == "HeapProfiler.addHeapSnapshotChunk"))
    browser.events.clear()
    browser.page("HeapProfiler.disable")


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
        name = name.split(" @")[0]  # "system / Context / scope @123": one group, not one per node
        row = out.setdefault(name[:80], [0, 0])
        row[0] += 1
        row[1] += nodes[k + i_size]
    return {k: (v[0], v[1]) for k, v in out.items()}


def diff_snapshots(first: Path, last: Path, top: int = 15) -> list[str]:
    a, b = summarise_snapshot(first), summarise_snapshot(last)
    grown = sorted(((b[k][1] - a.get(k, (0, 0))[1], b[k][0] - a.get(k, (0, 0))[0], k) for k in b), reverse=True)
    return [f"    {d_size / 1024:+9.0f} KB {d_count:+8d} × {name}" for d_size, d_count, name in grown[:top]]


def soak(url: str, minutes: float, interval_s: float, heap_dir: Path | None = None, setup_js: str | None = None) -> list[dict]:
    """Open ``url`` (the wall) and sample for ``minutes``; prints one line per sample and returns them.
    ``setup_js`` runs once the wall is drawn: to switch a feature off while hunting what grows."""
    browser = PipeChromium(url)
    try:
        end = time.time() + 90
        while not browser.evaluate("window.gridwatch && window.gridwatch.terminalCount ? window.gridwatch.terminalCount() : 0"):
            if time.time() > end:
                raise RuntimeError("the wall drew no terminal in 90 s")
            time.sleep(0.5)
        if setup_js:
            print(f"  after load: {setup_js} -> {browser.evaluate(setup_js)!r}", flush=True)
        browser.page("Performance.enable")
        return _sample(browser, minutes, interval_s, heap_dir)
    finally:
        browser.close()


def _sample(browser: PipeChromium, minutes: float, interval_s: float, heap_dir: Path | None) -> list[dict]:
    samples: list[dict] = []
    t0 = time.time()
    end = t0 + minutes * 60
    first_snap = None
    while True:
        m = metrics(browser)
        pids = renderer_pids(browser)
        s = {"t_s": round(time.time() - t0), "renderer_rss_mb": sum(rss_bytes(p) for p in pids) / MB,
             "renderer_private_mb": sum(private_bytes(p) for p in pids) / MB,
             "js_heap_mb": m.get("JSHeapUsedSize", 0) / MB, "js_total_mb": m.get("JSHeapTotalSize", 0) / MB, "nodes": int(m.get("Nodes", 0)),
             "listeners": int(m.get("JSEventListeners", 0))}
        samples.append(s)
        print(f"  soak t={s['t_s']:5d} s  renderer {s['renderer_rss_mb']:7.1f} MB (private {s['renderer_private_mb']:6.1f})  JS heap {s['js_heap_mb']:6.1f}/{s['js_total_mb']:.0f} MB"
              f"  DOM nodes {s['nodes']:6d}  listeners {s['listeners']:5d}", flush=True)
        if heap_dir is not None and first_snap is None and s["t_s"] >= 60:
            first_snap = heap_dir / "wall-first.heapsnapshot"
            heap_snapshot(browser, first_snap)
        if time.time() >= end:
            break
        time.sleep(max(0.0, min(interval_s, end - time.time())))
    if first_snap is not None:
        last_snap = heap_dir / "wall-last.heapsnapshot"
        heap_snapshot(browser, last_snap)
        print("  heap growth by constructor (last - first snapshot):")
        print("\n".join(diff_snapshots(first_snap, last_snap)))
    return samples


def slope_per_hour(samples: list[dict], key: str) -> float:
    """Least-squares growth of ``key`` in MB per hour: one noisy sample (a GC just before or after)
    moves it far less than a first-to-last difference."""
    xs = [s["t_s"] / 3600 for s in samples]
    ys = [s[key] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def summary(samples: list[dict], warmup_s: float = 180) -> str:
    """Growth after warm-up, per hour: what the issue's target (flat after warm-up) is judged on."""
    warm = [s for s in samples if s["t_s"] >= warmup_s]
    if len(warm) < 3:
        return "  soak: too short to judge growth (fewer than 3 samples after warm-up)"
    lo, hi = min(s["renderer_rss_mb"] for s in warm), max(s["renderer_rss_mb"] for s in warm)
    private = (f", private trend {slope_per_hour(warm, 'renderer_private_mb'):+.0f} MB/h"
               if all("renderer_private_mb" in s for s in warm) else "")
    return (f"  soak after {warmup_s:.0f} s warm-up ({len(warm)} samples, {(warm[-1]['t_s'] - warm[0]['t_s']) / 60:.0f} min):"
            f" renderer {lo:.0f}-{hi:.0f} MB, trend {slope_per_hour(warm, 'renderer_rss_mb'):+.0f} MB/h{private};"
            f" JS heap trend {slope_per_hour(warm, 'js_heap_mb'):+.1f} MB/h; DOM nodes {warm[0]['nodes']} -> {warm[-1]['nodes']}")
