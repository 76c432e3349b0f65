"""Alerts engine benchmark: GPS fixes at ingest's full rate with SOS events mixed in.

Runs ``python -m ingest`` and ``python -m alerts`` on the services ``./gw setup`` starts, in
a database of its own with a small registry (every load-generator terminal is a registered
officer, so each state cycle samples all of them). It prints:

* offered fixes/s and SOS/s, and what ingest stored;
* the engine's evaluation against the offered load: events evaluated/s, the largest backlog
  of stored-but-unevaluated events seen while the stream ran, and the state cycle's time
  (every registered terminal's newest fix, every ``alerts_state_s``) from the engine's log;
* SOS publish -> alert stored (the alert row's ``opened_at``, the database clock on this same
  machine) p50 / p99.

Figures are printed, never asserted. Usage: python -m bench.alerts [--fixes 150000] [--terminals 1000] [--sos-rate 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import redis

from broker.dev import dev_settings
from db.migrate import drop_database, ensure_database, migrate
from schemas.settings import Settings
from schemas.topics import Channel, Topics
from terminal.loadgen import publish_fixes

ROOT = Path(__file__).resolve().parent.parent
GRID = {"type": "Polygon", "coordinates": [[[117.00, 28.24], [117.06, 28.24], [117.06, 28.28], [117.00, 28.28], [117.00, 28.24]]]}


class Proc:
    """A Gridwatch process (``python -m <module>``) with its log kept."""

    def __init__(self, module: str, settings: Settings, log: Path):
        self.module, self.log = module, log
        self.proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=settings.as_env(os.environ),
                                     stdout=open(log, "wb"), stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.module}: no {needle!r} in its log ({self.log})")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def registry(dsn: str, terminal_prefix: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO branch_office (code, name_zh) VALUES ('BR', '基准分局')")
        c.execute("INSERT INTO grid_level1 (code, name_zh, branch_code, geom) VALUES ('L1', '基准街道', 'BR', %s)", (json.dumps(GRID),))
        c.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom, centroid_lat, centroid_lon)"
                  " VALUES ('G1', '基准社区', 'L1', %s, 28.26, 117.03)", (json.dumps(GRID),))
        with c.cursor() as cur:
            for i in range(n):
                pid = f"P{i:05d}"
                cur.execute("INSERT INTO person (person_id, name, role) VALUES (%s, %s, 'level2_supervisor')", (pid, f"员{i}"))
                cur.execute("INSERT INTO person_grid (person_id, grid_code, role) VALUES (%s, 'G1', 'level2_supervisor')", (pid,))
                cur.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (f"{terminal_prefix}{i:05d}", pid))
        c.execute("INSERT INTO gw_meta (key, value) VALUES ('grid_version', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                  (uuid.uuid4().hex,))


def publish_sos(s: Settings, rate: float, stop: threading.Event, sent: dict[str, float], terminal_prefix: str,
                n: int) -> None:
    """One SOS every 1/rate s, each from another registered terminal (so each is its own alert:
    ingest quarantines unregistered ids), publish time recorded. Past n terminals the ids repeat
    and a repeat bumps its alert instead of opening one (not timed)."""
    topics = Topics(s.topic_prefix)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sos-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    s.secure_mqtt_client(c, "bench-sos")
    c.connect(s.mqtt_host, s.mqtt_port)
    c.loop_start()
    i = 0
    try:
        while not stop.is_set():
            tid = f"{terminal_prefix}{i % n:05d}"
            now = time.time()
            body = {"seq": 1, "ts": datetime.fromtimestamp(now, timezone.utc).isoformat(), "kind": "sos",
                    "lat": 28.26, "lon": 117.03, "body": {"text": "bench"}}
            c.publish(topics.terminal(tid, Channel.EVENT), json.dumps(body), qos=1)
            sent.setdefault(tid, now)
            i += 1
            stop.wait(1.0 / rate)
    finally:
        c.loop_stop()
        c.disconnect()


def watch_stored(dsn: str, stop: threading.Event, stored_at: dict[str, float]) -> None:
    """When each SOS became visible in terminal_event (polled every 20 ms): ingest's share of the latency."""
    with psycopg.connect(dsn, autocommit=True) as c:
        while not stop.is_set():
            now = time.time()
            for (tid,) in c.execute("SELECT terminal_id FROM terminal_event WHERE kind = 'sos'"
                                    " AND received_at > now() - interval '1 minute'"):
                stored_at.setdefault(tid, now)
            stop.wait(0.02)


def _pct(xs: list[float], q: float) -> float:
    return xs[max(0, int(len(xs) * q) - 1)] if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixes", type=int, default=150_000)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--sos-rate", type=float, default=10.0)
    args = ap.parse_args()
    base = dev_settings(Settings())  # the broker admits no anonymous client
    tag = uuid.uuid4().hex[:6]
    dsn = psycopg.conninfo.make_conninfo(base.pg_dsn, dbname=f"gw_bench_alerts_{tag}")
    s = base.model_copy(update={"pg_dsn": dsn, "redis_prefix": f"gwbench:{tag}:", "topic_prefix": f"bench/{tag}/gw/v1",
                                "ingest_client_id": f"gw-bench-{tag}", "ingest_share_group": f"bench{tag}",
                                "stats_interval_s": 2.0, "alerts_duty_hours": "*=00:00-24:00"})
    logs = ROOT / "artifacts"
    logs.mkdir(exist_ok=True)
    tprefix = f"lb{tag}-"
    ensure_database(dsn)
    procs: list[Proc] = []
    try:
        migrate(dsn, base.retention_days)
        registry(dsn, tprefix, args.terminals)
        ingest = Proc("ingest", s, logs / "bench-alerts-ingest.log")
        procs.append(ingest)
        ingest.wait_for("subscribed to")
        engine = Proc("alerts", s, logs / "bench-alerts-engine.log")
        procs.append(engine)
        engine.wait_for("alerts engine started")
        print(f"offering {args.fixes:,} fixes from {args.terminals:,} registered terminals as fast as the broker takes them,"
              f" with {args.sos_rate:g} SOS/s mixed in ...", flush=True)
        stop, sent, stored_at, watch_stop = threading.Event(), {}, {}, threading.Event()
        sos = threading.Thread(target=publish_sos, args=(s, args.sos_rate, stop, sent, tprefix, args.terminals))
        watcher = threading.Thread(target=watch_stored, args=(dsn, watch_stop, stored_at))
        watcher.start()
        holder = {}
        load = threading.Thread(target=lambda: holder.setdefault("stats", publish_fixes(
            args.fixes, args.terminals, s.mqtt_host, s.mqtt_port, prefix=s.topic_prefix, terminal_prefix=tprefix,
            username=s.mqtt_username, password=s.mqtt_password)))
        t0 = time.time()
        sos.start()
        load.start()
        backlog_max, samples = 0, []
        with psycopg.connect(dsn, autocommit=True) as c:
            while load.is_alive():
                n = c.execute("SELECT count(*) FROM terminal_event e WHERE received_at > now() - interval '5 minutes' AND NOT EXISTS"
                              " (SELECT 1 FROM alert_seen_event s WHERE (s.terminal_id, s.seq, s.ts) = (e.terminal_id, e.seq, e.ts))"
                              ).fetchone()[0]
                backlog_max = max(backlog_max, n)
                samples.append(n)
                time.sleep(0.5)
            stop.set()
            sos.join()
            offered_s = time.time() - t0
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                got = c.execute("SELECT count(*) FROM alert WHERE kind = 'sos'").fetchone()[0]
                if got >= len(sent):
                    break
                time.sleep(0.2)
            evaluated_s = time.time() - t0
            watch_stop.set()
            watcher.join()
            opened = dict(c.execute("SELECT terminal_id, extract(epoch FROM opened_at) FROM alert WHERE kind = 'sos'").fetchall())
            stored = c.execute("SELECT count(*) FROM gps_fix").fetchone()[0]
            events = c.execute("SELECT count(*) FROM alert_seen_event").fetchone()[0]
        time.sleep(2.5)  # one more stats line from the engine
        stats = holder.get("stats")
        lat = sorted(float(opened[t]) - sent[t] for t in sent if t in opened)
        ing = sorted(stored_at[t] - sent[t] for t in sent if t in stored_at)
        eng = sorted(float(opened[t]) - stored_at[t] for t in sent if t in opened and t in stored_at)
        state_lines = re.findall(r"state cycle (\d+) ms avg / (\d+) ms max", engine.text())
        busy = [int(b) for b in re.findall(r"busy (\d+)%", engine.text())]
    finally:
        for p in reversed(procs):
            p.stop()
        drop_database(dsn)
        r = redis.Redis.from_url(base.redis_url)
        for k in r.scan_iter(match=f"gwbench:{tag}:*", count=1000):
            r.delete(k)
    fix_rate = stats.rate if stats else 0.0
    print()
    print(f"offered: {fix_rate:,.0f} fixes/s ({stats.n_fixes if stats else 0:,} fixes) + {len(sent) / offered_s:.1f} SOS/s "
          f"({len(sent)} SOS) over {offered_s:.1f} s; ingest stored {stored:,} fixes")
    print(f"engine: {events:,} events evaluated in {evaluated_s:.1f} s ({events / evaluated_s:.1f}/s against "
          f"{len(sent) / offered_s:.1f}/s offered); largest unevaluated backlog during the stream: {backlog_max} events "
          f"(median {statistics.median(samples) if samples else 0:.0f})")
    if state_lines:
        avg = statistics.mean(int(a) for a, _ in state_lines)
        mx = max(int(m) for _, m in state_lines)
        print(f"state cycle ({args.terminals:,} registered terminals' newest fixes, every {s.alerts_state_s:g} s): "
              f"{avg:.0f} ms avg, {mx} ms max; engine busy {max(busy) if busy else 0}% at most")
    if lat:
        print(f"SOS publish -> alert stored: p50 {statistics.median(lat) * 1000:.0f} ms, p99 {_pct(lat, 0.99) * 1000:.0f} ms,"
              f" max {lat[-1] * 1000:.0f} ms ({len(lat)} of {len(sent)} SOS became alerts)")
        print(f"  of which publish -> event stored by ingest (20 ms polls): p50 {_pct(ing, 0.5) * 1000:.0f} ms,"
              f" p99 {_pct(ing, 0.99) * 1000:.0f} ms; stored -> alert opened (engine): p50 {_pct(eng, 0.5) * 1000:.0f} ms,"
              f" p99 {_pct(eng, 0.99) * 1000:.0f} ms (the two are measured apart: they need not add up)")
    else:
        print("SOS publish -> alert stored: no SOS became an alert (see artifacts/bench-alerts-engine.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
