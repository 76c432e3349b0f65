"""``python -m terminal fleet-bench``: what N real terminal sessions cost on one network thread."""

from __future__ import annotations

import resource
import threading
import time
import uuid

from terminal.client import TerminalConfig
from terminal.fleet import TerminalFleet


def fleet_bench(n: int, host: str, port: int, fixes_per_terminal: int = 20, steady_s: float = 10.0,
                username: str | None = None, password: str | None = None) -> str:
    prefix = f"bench/{uuid.uuid4().hex[:8]}/gw/v1"
    fleet = TerminalFleet(host, port, username=username, password=password, connect_rate=100_000)
    for i in range(n):
        fleet.add(TerminalConfig(f"FB-{i:05d}", grids=("G1",), prefix=prefix))
    lines = []
    t0, c0 = time.monotonic(), time.process_time()
    fleet.start()
    ok = fleet.wait_connected(timeout=120)
    t1, c1 = time.monotonic(), time.process_time()
    lines.append(f"{fleet.connected_count()}/{n} sessions connected (ok={ok}) in {t1 - t0:.2f} s, CPU {c1 - c0:.2f} s, threads {threading.active_count()}")
    clients = list(fleet.clients.values())

    def burst() -> None:
        for _ in range(fixes_per_terminal):
            for c in clients:
                c.send_fix(28.26, 117.03, speed_mps=1.3, heading_deg=90.0, battery_pct=80.0)

    t2, c2 = time.monotonic(), time.process_time()
    fleet.loop.run_sync(burst, timeout=300)
    while fleet.totals().in_flight:
        time.sleep(0.005)
    t3, c3 = time.monotonic(), time.process_time()
    total = n * fixes_per_terminal
    lines.append(f"burst: {total} fixes built, published and PUBACKed in {t3 - t2:.2f} s = {total / (t3 - t2):,.0f} fixes/s, CPU {c3 - c2:.2f} s")

    def tick() -> None:
        for c in clients:
            c.send_fix(28.26, 117.03)

    c4, t4 = time.process_time(), time.monotonic()
    end = t4 + steady_s
    while time.monotonic() < end:
        fleet.call(tick)
        time.sleep(1.0)
    c5, t5 = time.process_time(), time.monotonic()
    lines.append(f"steady: {n} fixes/s (one per terminal per second) for {steady_s:.0f} s: CPU {100 * (c5 - c4) / (t5 - t4):.1f}% of one core")
    t6 = time.monotonic()
    fleet.stop()
    lines.append(f"clean stop (offline status + DISCONNECT for all): {time.monotonic() - t6:.2f} s; max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return "\n".join(lines)
