"""Ingest benchmark: fixes/s stored end to end and publish -> stored latency, against the ceiling.

Runs on the services ``./gw setup`` starts (project broker, TimescaleDB, Redis), in a database
of its own with the demo city imported (so every fix is grid-tagged, as in production):

1. ceiling: a bare paho subscriber that only counts, receiving the same stream;
2. full load: ``python -m ingest`` with the stream offered as fast as the publisher can go;
   with delivery receipts off and on, alternating (--repeats pairs), to measure what they cost:
   stored/s, and ingest's CPU seconds per 10,000 fixes (on a busy 2-core machine the publisher is
   often the limit of a live run; CPU time shows ingest's own cost whatever the pace);
3. target load: the stream paced at --rate fixes/s (default 5,000), for latency, receipts on.
A counting subscriber on ``{prefix}/rcpt/t/+`` tells what receipts add to broker traffic.

Figures are printed, never asserted: these machines are noisy; compare the ratios.
Usage: python -m bench.ingest [--fixes 60000] [--terminals 1000] [--rate 5000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

from broker.dev import dev_settings
from db.migrate import drop_database, ensure_database, migrate
from schemas.settings import Settings, get_settings
from schemas.topics import Topics
from terminal.loadgen import LoadStats, publish_fixes
from tests.support import ServiceProcess, wait_until

ROOT = Path(__file__).resolve().parent.parent


def bare_subscriber_rate(s: Settings, n_fixes: int, n_terminals: int) -> float:
    """Messages/s a do-nothing paho subscriber receives of a full-speed stream: this machine's ceiling."""
    topics = Topics(f"bench/{uuid.uuid4().hex[:6]}/gw/v1")
    got = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()

    def on_message(client, userdata, msg):
        now = time.monotonic()
        got["first"] = got["first"] or now
        got["n"] += 1
        got["last"] = now
        if got["n"] >= n_fixes:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    s.secure_mqtt_client(c, "bench-bare")
    c.on_message = on_message
    c.connect(s.mqtt_host, s.mqtt_port)
    c.subscribe(topics.terminal_subscription("+"), qos=1)
    c.loop_start()
    time.sleep(0.5)
    publish_fixes(n_fixes, n_terminals, s.mqtt_host, s.mqtt_port, prefix=topics.prefix,
                  username=s.mqtt_username, password=s.mqtt_password)
    done.wait(120)
    c.loop_stop()
    c.disconnect()
    return got["n"] / max(got["last"] - got["first"], 1e-6)


class TopicCounter:
    """Counts messages and payload bytes on a topic filter (here: the receipts ingest publishes)."""

    def __init__(self, s: Settings, topic_filter: str):
        self.n = 0
        self.bytes = 0
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-count-{uuid.uuid4().hex[:6]}",
                             protocol=mqtt.MQTTv5)
        s.secure_mqtt_client(self.c, "bench-count")
        self.c.on_message = self._on_message
        self.c.connect(s.mqtt_host, s.mqtt_port)
        self.c.subscribe(topic_filter, qos=0)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg):
        self.n += 1
        self.bytes += len(msg.payload) + len(msg.topic)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def run_ingest(s: Settings, n_fixes: int, n_terminals: int, rate: float | None, log: Path, receipts: bool = True) -> dict:
    prefix = f"bn{uuid.uuid4().hex[:5]}-"
    s = s.model_copy(update={"ingest_receipts": receipts})
    proc = ServiceProcess("ingest", s, log).start()
    counter = TopicCounter(s, f"{s.topic_prefix}/rcpt/t/+")
    try:
        wait_until(lambda: "subscribed to" in proc.log_text(), what="ingest to subscribe", timeout=30)
        wait_until(lambda: "grid loaded" in proc.log_text(), what="ingest to load the grid", timeout=30)
        holder: dict[str, LoadStats] = {}
        cpu_at_start = cpu_seconds(proc.proc.pid)  # start-up (imports, grid load) is not the load's cost

        def publish():
            holder["stats"] = publish_fixes(n_fixes, n_terminals, s.mqtt_host, s.mqtt_port, rate=rate,
                                            prefix=s.topic_prefix, terminal_prefix=prefix,
                                            username=s.mqtt_username, password=s.mqtt_password)

        started = time.time()
        t = threading.Thread(target=publish)
        t.start()
        stored, lat = _watch_while_publishing(s.pg_dsn, prefix, n_fixes, t, holder)
        elapsed = time.time() - started
        time.sleep(1.5)  # the last coalesced receipts
        cpu = cpu_seconds(proc.proc.pid) - cpu_at_start
    finally:
        proc.stop()
        counter.close()
    lat.sort()
    return {"stored": stored, "offered": holder["stats"].rate if "stats" in holder else 0.0,
            "receipts": counter.n, "receipt_bytes": counter.bytes, "elapsed": elapsed,
            "cpu_per_10k": cpu / max(stored, 1) * 10_000,
            "rate": stored / elapsed if elapsed else 0.0,
            "p50": statistics.median(lat) if lat else float("nan"),
            "p99": lat[int(len(lat) * 0.99) - 1] if lat else float("nan")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc): what its work cost, whatever the publisher's speed."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _watch_while_publishing(dsn, prefix, expected, thread, holder):
    """A fix's stored time is the first poll (every 50 ms) that sees its committed row.

    New rows are found by their inserting transaction id (one ingest writes batches one
    after another, so ids grow), which needs no index the product does not have.
    """
    stored_at: dict[tuple[str, int], float] = {}
    deadline = time.monotonic() + 600
    last_xid = 0
    last_progress = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while len(stored_at) < expected and time.monotonic() < deadline:
            if not thread.is_alive() and time.monotonic() - last_progress > 15:
                break  # published and acknowledged, yet nothing new for 15 s: report what was stored
            rows = conn.execute(
                "SELECT terminal_id, seq, xmin::text::bigint FROM gps_fix"
                " WHERE terminal_id LIKE %s AND xmin::text::bigint > %s", (prefix + "%", last_xid)).fetchall()
            now = time.time()
            for tid, seq, xid in rows:
                stored_at.setdefault((tid, seq), now)
                last_xid = max(last_xid, xid)
                last_progress = time.monotonic()
            time.sleep(0.05)
        total = conn.execute("SELECT count(*) FROM gps_fix WHERE terminal_id LIKE %s", (prefix + "%",)).fetchone()[0]
    thread.join()
    publish = holder["stats"].publish_times
    return total, [stored_at[k] - publish[k] for k in stored_at if k in publish]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixes", type=int, default=60_000)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--repeats", type=int, default=2, help="full-load runs with receipts off and on, alternating")
    args = ap.parse_args()
    base = dev_settings(get_settings())  # the broker admits no anonymous client
    dsn = psycopg.conninfo.make_conninfo(base.pg_dsn, dbname=f"gw_bench_{uuid.uuid4().hex[:6]}")
    ensure_database(dsn)
    try:
        migrate(dsn, base.retention_days)
        print("importing the demo city into the benchmark database ...", flush=True)
        subprocess.run([sys.executable, "-m", "grid", "--dsn", dsn, "demo", "--out", str(ROOT / "var" / "bench-city")],
                       cwd=ROOT, check=True, capture_output=True)
        tag = uuid.uuid4().hex[:6]
        s = base.model_copy(update={"pg_dsn": dsn, "redis_prefix": f"gwbench:{tag}:", "topic_prefix": f"bench/{tag}/gw/v1",
                                    "ingest_client_id": f"gw-bench-{tag}", "ingest_share_group": f"bench{tag}",
                                    "log_level": "INFO", "stats_interval_s": 5.0,
                                    # the load generator's ids are synthetic, not the demo registry's
                                    "accept_unregistered": True})
        logs = ROOT / "artifacts"
        logs.mkdir(exist_ok=True)
        print(f"ceiling: bare paho subscriber, {args.fixes} single-fix messages from {args.terminals} terminals ...", flush=True)
        ceiling = bare_subscriber_rate(s, args.fixes, args.terminals)
        print(f"  received {ceiling:,.0f} msg/s", flush=True)
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for i in range(args.repeats):
            for receipts in (False, True):
                print(f"ingest at full offered load, receipts {'on' if receipts else 'off'} ({i + 1}/{args.repeats}) ...",
                      flush=True)
                runs[receipts].append(run_ingest(s, args.fixes, args.terminals, None, logs / "bench-ingest-full.log", receipts))
        full = max(runs[True], key=lambda r: r["rate"])
        print(f"ingest at a paced {args.rate:,.0f} fixes/s ...", flush=True)
        paced = run_ingest(s, min(args.fixes, int(args.rate * 12)), args.terminals, args.rate, logs / "bench-ingest-paced.log")
    finally:
        drop_database(dsn)
        import redis
        r = redis.Redis.from_url(base.redis_url)
        for k in r.scan_iter(match="gwbench:*", count=1000):
            r.delete(k)
    print()
    print(f"{'run':<28}{'stored/s':>10}{'offered/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'vs ceiling':>12}{'stored':>9}")
    for name, r in (("full offered load", full), (f"paced {args.rate:,.0f}/s", paced)):
        # a paced run is bounded by its pace, so only the full-load run is compared with the ceiling
        ratio = f"{r['rate'] / ceiling:>11.0%}" if r is full else f"{'—':>11}"
        print(f"{name:<28}{r['rate']:>10,.0f}{r['offered']:>11,.0f}{r['p50'] * 1000:>9.0f}{r['p99'] * 1000:>9.0f}"
              f"{ratio}{r['stored']:>9,}")
    print(f"{'bare paho subscriber':<28}{ceiling:>10,.0f}{'':>11}{'':>9}{'':>9}{1:>11.0%}")
    print()
    for receipts in (False, True):
        rs = runs[receipts]
        print(f"full load, receipts {'on ' if receipts else 'off'}: stored/s " + ", ".join(f"{r['rate']:,.0f}" for r in rs)
              + " (offered " + ", ".join(f"{r['offered']:,.0f}" for r in rs) + "); ingest CPU s per 10k fixes "
              + ", ".join(f"{r['cpu_per_10k']:.2f}" for r in rs))
    med = {k: statistics.median(r["rate"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu_per_10k"] for r in v) for k, v in runs.items()}
    print(f"receipt overhead: median full-load rate with receipts / without = {med[True] / med[False]:.1%}; "
          f"ingest CPU per fix with / without = {cpu[True] / cpu[False]:.1%}")
    for name, r in (("full load", full), (f"paced {args.rate:,.0f}/s", paced)):
        msgs = r["stored"]  # single-fix messages
        print(f"receipts, {name}: {r['receipts']:,} receipts ({r['receipt_bytes'] / 1024:,.0f} KiB) "
              f"for {msgs:,} fix messages: +{r['receipts'] / max(msgs, 1):.0%} "
              f"messages, {r['receipt_bytes'] / max(r['receipts'], 1):.0f} bytes each (topic + payload)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
