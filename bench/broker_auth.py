"""Broker accounts benchmark: what an account per terminal costs, against one shared account, same run.

On a private broker with the project's configuration (bench.local_broker: dynamic-security
plugin, no anonymous clients), N reference terminals (one TerminalFleet each phase):

1. provision: N terminal accounts (own role each) created over ``$CONTROL`` as ``python -m broker``
   and the simulator do it, in batches of 200 commands: accounts/s;
2. connect, then a burst of K fixes per terminal until every PUBACK is back: once with every
   terminal on the shared development account (the baseline: one role, no per-terminal ACL), once
   each as itself (password check, its own role's ACLs on every publish).

Printed as ratios to the baseline, never asserted (shared, noisy machine).
Usage: python -m bench.broker_auth [--terminals 1000] [--fixes 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from bench.local_broker import LocalBroker
from broker import accounts, secrets
from broker.control import DynsecControl
from broker.dev import dev_settings
from schemas.topics import Topics
from terminal.client import TerminalConfig
from terminal.fleet import TerminalFleet


def provision(s, ids: list[str]) -> tuple[dict[str, str], float]:
    passwords = {t: secrets.new_password() for t in ids}
    commands = [c for t in ids for c in accounts.add_terminal(Topics(s.topic_prefix), t, passwords[t])]
    t0 = time.perf_counter()
    with DynsecControl(s, timeout_s=120) as broker:
        for i in range(0, len(commands), 200):
            broker.run(commands[i:i + 200])
    return passwords, time.perf_counter() - t0


def run_fleet(s, ids: list[str], fixes: int, passwords: dict[str, str] | None) -> tuple[float, float]:
    """(seconds until all connected, fixes PUBACKed per second)."""
    fleet = TerminalFleet(s.mqtt_host, s.mqtt_port, username=s.mqtt_username, password=s.mqtt_password,
                          passwords=passwords, connect_rate=100_000)
    prefix = s.topic_prefix
    for t in ids:
        fleet.add(TerminalConfig(t, prefix=prefix, await_receipts=False))
    t0 = time.perf_counter()
    fleet.start()
    if not fleet.wait_connected(timeout=120):
        raise RuntimeError(f"only {fleet.connected_count()}/{len(ids)} terminals connected")
    connect_s = time.perf_counter() - t0
    clients = list(fleet.clients.values())

    def burst() -> None:
        for _ in range(fixes):
            for c in clients:
                c.send_fix(28.26, 117.03, battery_pct=80.0)

    t1 = time.perf_counter()
    fleet.loop.run_sync(burst, timeout=300)
    while fleet.loop.run_sync(lambda: fleet.totals().in_flight):  # read on the loop thread: no race
        time.sleep(0.005)
    rate = len(ids) * fixes / (time.perf_counter() - t1)
    fleet.stop(graceful=False)
    return connect_s, rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--fixes", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gw-bench-auth-"))
    broker = LocalBroker(work / "broker").start()
    try:
        s = dev_settings(broker.settings).model_copy(update={"mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
                                                             "topic_prefix": "gw/v1"})
        tag = uuid.uuid4().hex[:6]
        ids = [f"BA{tag}-{i:05d}" for i in range(args.terminals)]
        passwords, took = provision(s, ids)
        print(f"provision: {len(ids)} terminal accounts in {took:.2f} s = {len(ids) / took:,.0f} accounts/s")
        for r in range(args.repeats):
            base_connect, base_rate = run_fleet(s, ids, args.fixes, None)
            own_connect, own_rate = run_fleet(s, ids, args.fixes, passwords)
            print(f"round {r + 1}: connect all {len(ids)}: shared dev account {base_connect:.2f} s, own accounts "
                  f"{own_connect:.2f} s (x{own_connect / base_connect:.2f}); burst of {args.fixes} fixes each: "
                  f"shared {base_rate:,.0f}/s, own {own_rate:,.0f}/s (x{own_rate / base_rate:.2f})", flush=True)
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
