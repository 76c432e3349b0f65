"""Ingest benchmark: Gridwatch ingest against a low-code batched flow, on one broker and stream, in one run.

Everything runs on a private Mosquitto started for the run with the project's configuration
(bench/local_broker.py: queues of 1,000,000, no in-flight cap) and a private PostgreSQL cluster
with the project's configuration plus commit timestamps (bench/local_postgres.py), so other users
of the shared services do not disturb the counts, with the demo city imported (so every fix is
grid-tagged, as in production). Three consumers take the same stream
(60,000 single-fix QoS 1 messages from 1,000 terminals by default) at four loads: "drain" (the
whole stream queued in the broker while the consumers are stopped, then drained: their own
capacity, with no publisher competing for the CPU), as fast as the publisher goes, 10,000/s and
5,000/s:

- ``flow``: what a bureau's integrator builds in Node-RED (``mqtt in`` -> function -> one
  multi-row ``INSERT ... ON CONFLICT DO NOTHING`` per 500 rows or 100 ms), written here the same
  way in Python: one plain subscriber acknowledging on receipt, JSON parse, no validation, no
  grid, no live state, into a table with ingest's exactly-once key (``python -m bench.ingest flow``);
- ``ingest x1``: ``python -m ingest`` (receipts on, as shipped);
- ``ingest x2``: two ingest processes on one shared subscription.

Each consumer first takes a 2 s warm-up stream from other terminal ids (warm_up: not counted).
Printed per run: stored/s (first publish -> last row committed), rows lost, untagged fixes,
p50/p99 publish -> committed (the commit time PostgreSQL itself records for the row's
transaction, ``track_commit_timestamp``, so no poll competes with the consumers), and CPU
seconds per 10,000 stored fixes of the consumer processes, of their PostgreSQL backends and of
Redis (Redis is the machine's, shared: its figure is an upper bound). Ratios are against the
flow of the same load in the same run. Figures are printed, never asserted.
Usage: python -m bench.ingest [--fixes 60000] [--terminals 1000] [--rates drain,full,10000,5000] [--only flow,x1,x2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg
import redis

from bench.cpu_limit import cpu_limit
from bench.local_broker import LocalBroker
from bench.local_postgres import LocalPostgres
from broker.dev import dev_settings
from db.migrate import ensure_database, migrate
from schemas.settings import Settings, get_settings
from schemas.topics import Topics
from terminal.loadgen import LoadStats, publish_fixes
from tests.support import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
FLOW_APP = "bench-flow"
PUBLISHER_NICE = 10  # the load generator yields the CPU to the consumers it measures (_publish)
FLOW_BATCH, FLOW_WINDOW_S = 500, 0.1
FLOW_COLUMNS = ("ts", "terminal_id", "seq", "lat", "lon", "acc_m", "speed_mps", "heading_deg", "battery_pct")
_FLOW_ROW = "(" + ", ".join(["%s"] * len(FLOW_COLUMNS)) + ")"


def bench_client(s: Settings, role: str) -> mqtt.Client:
    """Every MQTT client of this benchmark (ingest's own are built by ingest): one construction."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{role}-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    s.secure_mqtt_client(client, f"bench-{role}")  # the development account (dev_settings in main)
    return client


# --- the comparison consumer: the low-code flow ---------------------------------------------------
def flow_consumer(s: Settings) -> None:
    """mqtt in -> JSON.parse -> batch 500 rows / 100 ms -> one multi-row INSERT ... ON CONFLICT DO NOTHING.

    Like Node-RED's ``mqtt in`` node it acknowledges each message on receipt (paho's default)."""
    rows: list[tuple] = []
    cond = threading.Condition()

    def on_message(client, userdata, msg):
        d = orjson.loads(msg.payload)
        row = (d["ts"], msg.topic.split("/")[-2], d["seq"], d["lat"], d["lon"], d.get("acc_m"), d.get("speed_mps"),
               d.get("heading_deg"), d.get("battery_pct"))
        with cond:
            rows.append(row)
            if len(rows) == 1 or len(rows) >= FLOW_BATCH:
                cond.notify()

    c = bench_client(s, "flow")
    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe(Topics(s.topic_prefix).terminal_subscription("gps"), qos=1)
    c.connect(s.mqtt_host, s.mqtt_port)
    c.loop_start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    with psycopg.connect(s.pg_dsn, autocommit=True, application_name=FLOW_APP) as conn:
        print("flow ready", flush=True)
        while not stop.is_set():
            with cond:
                if not cond.wait_for(lambda: rows, timeout=0.2):
                    continue
                first = time.monotonic()
                cond.wait_for(lambda: len(rows) >= FLOW_BATCH, timeout=max(0.0, first + FLOW_WINDOW_S - time.monotonic()))
                batch, rows[:FLOW_BATCH] = rows[:FLOW_BATCH], []
            conn.execute(f"INSERT INTO flow_fix ({', '.join(FLOW_COLUMNS)}) VALUES "
                         + ", ".join([_FLOW_ROW] * len(batch)) + " ON CONFLICT DO NOTHING",
                         [v for row in batch for v in row])
    c.loop_stop()


def create_flow_table(dsn: str) -> None:
    """The flow's table: gps_fix's columns, the same exactly-once key, a hypertable when gps_fix is one."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE flow_fix (LIKE gps_fix INCLUDING DEFAULTS)")
        conn.execute("ALTER TABLE flow_fix ALTER received_at SET DEFAULT now()")  # the flow does not set it
        conn.execute("CREATE UNIQUE INDEX flow_fix_once ON flow_fix (terminal_id, seq, ts)")
        hyper = conn.execute("SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL").fetchone()[0]
        if hyper and conn.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'gps_fix'").fetchone():
            conn.execute("SELECT create_hypertable('flow_fix', 'ts', chunk_time_interval => interval '1 day')")


# --- one measured run ------------------------------------------------------------------------------
def start_consumers(kind: str, s: Settings, log: Path) -> tuple[list[ServiceProcess], str, str]:
    """(processes, their PostgreSQL application_name, the table they write) once they are ready."""
    if kind == "flow":
        proc = ServiceProcess("bench.ingest", s, log, "flow").start()
        proc.wait_for_log("flow ready", what="the flow consumer to connect", timeout=30)
        return [proc], FLOW_APP, "flow_fix"
    n = 2 if kind == "ingest x2" else 1
    procs = []
    for i in range(n):
        si = s.model_copy(update={"ingest_client_id": f"{s.ingest_client_id}-{i}", "ingest_shared": n > 1})
        procs.append(ServiceProcess("ingest", si, log.with_name(f"{log.stem}-{i}.log")).start())
    for p in procs:
        p.wait_for_log("subscribed to", what="ingest to subscribe", timeout=30)
        p.wait_for_log("grid loaded", what="ingest to load the grid", timeout=30)
    return procs, "gridwatch-ingest", "gps_fix"


class CpuMeter:
    """CPU seconds of the consumer processes, of their PostgreSQL backends and of Redis, between two reads."""

    def __init__(self, dsn: str, procs: list[ServiceProcess], app: str, r: redis.Redis):
        with psycopg.connect(dsn, autocommit=True) as conn:
            self.backends = [pid for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s", (app,))]
        self.pids = [p.proc.pid for p in procs]
        self.r = r
        self.start = self._read()

    def _read(self) -> tuple[float, float, float]:
        info = self.r.info("cpu")
        return (sum(cpu_seconds(p) for p in self.pids), sum(cpu_seconds(p) for p in self.backends),
                info["used_cpu_user"] + info["used_cpu_sys"])

    def used(self) -> tuple[float, float, float]:
        return tuple(b - a for a, b in zip(self.start, self._read()))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pace(load: str) -> float | None:
    """Fixes/s the publisher is held to: None for 'full' (as fast as it goes) and 'drain'."""
    return None if load in ("full", "drain") else float(load)


def run(kind: str, s: Settings, n_fixes: int, n_terminals: int, load: str, logs: Path, r: redis.Redis) -> dict:
    """One consumer, one load. 'drain': the consumers are stopped (SIGSTOP) while the whole stream
    is published, then resumed: the rate they empty the broker's queue at is their own capacity,
    with no publisher competing for the two cores (latency there is only the backlog's age)."""
    prefix = f"b{uuid.uuid4().hex[:5]}-"
    # Fresh client ids and log files per run: no session, and no "ready" line, left from an earlier
    # run; a fresh group (an earlier run's offline members would still be dealt their share); and
    # fresh topics: an earlier run's ingest keeps its persistent session, and the broker queued a
    # copy of every later message for it, so its store grew by 60,000 messages a run and each 30 s
    # autosave, which rewrites the store in the broker's one thread, stalled delivery for up to ~1 s.
    s = s.model_copy(update={"ingest_client_id": f"{s.ingest_client_id}-{prefix[:-1]}",
                             "ingest_share_group": f"{s.ingest_share_group}{prefix[:-1]}",
                             "topic_prefix": s.topic_prefix.replace("/gw/v1", f"/{prefix[:-1]}/gw/v1")})
    log = logs / f"bench-ingest-{kind.replace(' ', '')}-{load}.log"
    for old in logs.glob(f"{log.stem}*.log"):
        old.unlink()
    procs, app, table = start_consumers(kind, s, log)
    warm_up(s, table, prefix, n_terminals)
    rcpt = bench_client(s, "rcpt")  # what receipts add to broker traffic
    got = {"n": 0}
    rcpt.on_message = lambda *a: got.__setitem__("n", got["n"] + 1)
    rcpt.connect(s.mqtt_host, s.mqtt_port)
    rcpt.subscribe(f"{s.topic_prefix}/rcpt/t/+", qos=0)
    rcpt.loop_start()
    holder: dict[str, LoadStats] = {}
    # The publisher runs in a process of its own: in a thread here it shared one GIL with the
    # commit watcher, and its messages waited for it after being stamped.
    ctx = multiprocessing.get_context("spawn")
    results, child = ctx.Pipe(duplex=False)
    publisher = ctx.Process(target=_publish, args=(child, dict(
        n_fixes=n_fixes, n_terminals=n_terminals, host=s.mqtt_host, port=s.mqtt_port, rate=pace(load),
        prefix=s.topic_prefix, terminal_prefix=prefix, username=s.mqtt_username, password=s.mqtt_password)))
    try:
        meter = CpuMeter(s.pg_dsn, procs, app, r)
        # alive until the publisher has sent its stats (a big pickle: it waits for this read)
        t = threading.Thread(target=lambda: holder.__setitem__("stats", results.recv()))
        if load == "drain":
            _signal_all(procs, signal.SIGSTOP)
        publisher.start()
        t.start()
        if load == "drain":
            t.join()
            resumed = time.time()
            _signal_all(procs, signal.SIGCONT)
        wait_stored(s.pg_dsn, table, prefix, n_fixes, t)
        cpu = meter.used()
        counts = _counts(s.pg_dsn, table, prefix)
        stored_at = commit_times(s.pg_dsn, table, prefix)
        _clear(s.pg_dsn, table)
    finally:
        if publisher.pid is not None:
            publisher.join(60)
        for p in procs:
            p.stop()
        rcpt.loop_stop()
        rcpt.disconnect()
    publish_times = holder["stats"].publish_times
    lat = sorted(stored_at[k] - publish_times[k] for k in stored_at if k in publish_times)
    first = resumed if load == "drain" else min(publish_times.values())
    span = max(stored_at.values()) - first if stored_at else float("inf")
    stored = counts[0]
    return {"kind": kind, "load": load, "stored": stored, "lost": n_fixes - stored, "untagged": counts[1],
            "per_s": stored / span, "offered": holder["stats"].rate, "receipts": got["n"],
            "p50": statistics.median(lat) * 1000 if lat else float("nan"),
            "p99": lat[max(int(len(lat) * 0.99) - 1, 0)] * 1000 if lat else float("nan"),
            "worst": worst_seconds(stored_at, publish_times, first),
            "cpu": [c / max(stored, 1) * 10_000 for c in cpu]}


def worst_seconds(stored_at: dict, publish_times: dict, first: float, n: int = 3) -> list[tuple[int, float]]:
    """The ``n`` seconds of the run (by publish time, from ``first``) whose slowest fix was slowest:
    (second, ms). A p99 made by one stall shows as one bad second; a slow design as many."""
    slowest: dict[int, float] = {}
    for k, t in stored_at.items():
        if k in publish_times:
            sec = int(publish_times[k] - first)
            slowest[sec] = max(slowest.get(sec, 0.0), (t - publish_times[k]) * 1000)
    return sorted(slowest.items(), key=lambda kv: -kv[1])[:n]


WARM_UP_FIXES, WARM_UP_RATE = 10_000, 5_000.0


def warm_up(s: Settings, table: str, prefix: str, n_terminals: int) -> None:
    """2 s of fixes at 5,000/s before the measured stream, from other terminal ids (not counted),
    for every consumer alike. A process's first second pays one-off costs (its first statements
    and plans, the day's chunk, caches filling): in runs without this the first second was often a
    run's worst (65-100 ms at 5,000/s), a cold start, not the steady latency measured here. (The
    stalls of up to ~1 s seen then were the broker's, see run().)"""
    warm = f"w{prefix}"
    publish_fixes(WARM_UP_FIXES, n_terminals, s.mqtt_host, s.mqtt_port, rate=WARM_UP_RATE, prefix=s.topic_prefix,
                  terminal_prefix=warm, username=s.mqtt_username, password=s.mqtt_password)
    deadline = time.monotonic() + 60
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if count_stored(conn, table, warm) >= WARM_UP_FIXES:
                return
            time.sleep(0.1)
    raise RuntimeError(f"warm-up: the consumer stored only part of {WARM_UP_FIXES} fixes in 60 s")


def _publish(results, kwargs: dict) -> None:
    """The load generator in its own process; its LoadStats go back over ``results``.

    At a lower CPU priority (nice 10): it stands in for terminals that live elsewhere, and at
    10,000/s on two cores its quarter of a core was taken from the consumers it measures. It still
    offers the set rate (printed as offered/s). It stamps each message just before writing it, so
    a send it delays is not the consumer's latency; a delay between stamp and write would count
    against the consumer, never for it."""
    os.nice(PUBLISHER_NICE)
    results.send(publish_fixes(**kwargs))


def _signal_all(procs: list[ServiceProcess], sig: signal.Signals) -> None:
    for p in procs:
        os.kill(p.proc.pid, sig)


def _clear(dsn: str, table: str) -> None:
    """Empty the table once a run is counted: the next run's count starts from nothing."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {table}")


def _counts(dsn: str, table: str, prefix: str) -> tuple[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*), count(*) FILTER (WHERE grid2_code IS NULL) FROM {table}"
                            " WHERE terminal_id LIKE %s", (prefix + "%",)).fetchone()


def count_stored(conn: psycopg.Connection, table: str, prefix: str) -> int:
    """Rows of ``table`` from the terminals whose ids start with ``prefix``."""
    return conn.execute(f"SELECT count(*) FROM {table} WHERE terminal_id LIKE %s", (prefix + "%",)).fetchone()[0]


def wait_stored(dsn: str, table: str, prefix: str, expected: int, publisher: threading.Thread) -> None:
    """Until every fix is stored, or the publisher is done and nothing new came for 15 s.

    A count every 250 ms, nothing finer: when a row was committed comes from the server itself
    (commit_times), so this loop only has to notice the end, and costs the consumers next to nothing."""
    last, last_progress = -1, time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            n = count_stored(conn, table, prefix)
            if n >= expected:
                return
            if n != last:
                last, last_progress = n, time.monotonic()
            elif not publisher.is_alive() and time.monotonic() - last_progress > 15:
                return  # published and acknowledged, yet nothing new for 15 s: report what was stored
            time.sleep(0.25)


def commit_times(dsn: str, table: str, prefix: str) -> dict[tuple[str, int], float]:
    """(terminal, seq) -> when the transaction that stored it committed (epoch s), as PostgreSQL
    recorded it (track_commit_timestamp, on in the benchmark's own cluster)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(f"SELECT terminal_id, seq, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
                            f" FROM {table} WHERE terminal_id LIKE %s", (prefix + "%",)).fetchall()
    return {(tid, seq): t for tid, seq, t in rows}


# --- the whole comparison ------------------------------------------------------------------------
def print_table(results: list[dict]) -> None:
    print(f"\n{'load':<10}{'consumer':<12}{'stored/s':>10}{'vs flow':>9}{'lost':>7}{'untagged':>10}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'CPU s/10k: proc':>17}{'+PG':>6}{'+Redis':>8}{'total':>7}{'vs flow':>9}{'receipts':>10}")
    for load in dict.fromkeys(r["load"] for r in results):
        group = [r for r in results if r["load"] == load]
        flow = next((r for r in group if r["kind"] == "flow"), None)
        for r in group:
            own = sum(r["cpu"][:2]) + (r["cpu"][2] if r["kind"] != "flow" else 0.0)  # the flow keeps nothing in Redis
            base = sum(flow["cpu"][:2]) if flow else float("nan")
            print(f"{load if pace(load) is None else f'{pace(load):,.0f}/s':<10}{r['kind']:<12}{r['per_s']:>10,.0f}"
                  f"{r['per_s'] / flow['per_s'] if flow else float('nan'):>9.0%}{r['lost']:>7,}{r['untagged']:>10,}"
                  f"{r['p50']:>8.0f}{r['p99']:>8.0f}{r['cpu'][0]:>17.2f}{r['cpu'][1]:>6.2f}{r['cpu'][2]:>8.2f}"
                  f"{own:>7.2f}{own / base:>9.2f}{r['receipts']:>10,}")
    print("offered/s (publisher): " + ", ".join(f"{r['kind']}@{r['load']}: {r['offered']:,.0f}" for r in results))
    print("flow untagged = every row (it tags no grid); its Redis figure is the machine's other traffic only.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="bench", choices=("bench", "flow"))
    ap.add_argument("--fixes", type=int, default=60_000)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--rates", default="drain,full,10000,5000",
                    help="comma-separated fixes/s; 'full': as fast as the publisher goes; 'drain': see run()")
    ap.add_argument("--only", default="flow,x1,x2", help="consumers to run: flow, x1 (one ingest), x2 (two ingests)")
    ap.add_argument("--cpu-limit", type=float, metavar="CPUS",
                    help="run everything (broker, PostgreSQL, consumers, publisher) within this many CPUs: a slow host"
                         " on demand (bench/cpu_limit.py; root, cgroup cpu controller)")
    args = ap.parse_args()
    if args.cpu_limit:
        print(f"everything of this run shares {args.cpu_limit:g} CPUs (Redis excepted)", flush=True)
        with cpu_limit(args.cpu_limit):
            return _bench(args)
    return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    base = dev_settings(get_settings())  # the broker admits no anonymous client
    if args.mode == "flow":
        flow_consumer(base)
        return 0
    kinds = [{"flow": "flow", "x1": "ingest x1", "x2": "ingest x2"}[k] for k in args.only.split(",")]
    loads = args.rates.split(",")
    tag = uuid.uuid4().hex[:6]
    # the project's PostgreSQL settings (shared buffers included), and commit times recorded
    pg = LocalPostgres(dbname=f"gw_bench_{tag}", settings=("track_commit_timestamp = on",), small=False)
    dsn = pg.dsn
    broker = LocalBroker(ROOT / "var" / f"bench-broker-{tag}")
    r = redis.Redis.from_url(base.redis_url)
    results = []
    try:
        print("starting a private PostgreSQL cluster and Mosquitto for the run ...", flush=True)
        pg.init().start()
        ensure_database(dsn)
        broker.start()
        migrate(dsn, base.retention_days)
        create_flow_table(dsn)
        print("importing the demo city into the benchmark database ...", flush=True)
        subprocess.run([sys.executable, "-m", "grid", "--dsn", dsn, "demo", "--out", str(ROOT / "var" / "bench-city")],
                       cwd=ROOT, check=True, capture_output=True)
        s = base.model_copy(update={"pg_dsn": dsn, "mqtt_port": broker.port, "redis_prefix": f"gwbench:{tag}:",
                                    "topic_prefix": f"bench/{tag}/gw/v1", "ingest_client_id": f"gw-bench-{tag}",
                                    "ingest_share_group": f"bench{tag}", "log_level": "INFO", "stats_interval_s": 5.0,
                                    # the load generator's ids are synthetic, not the demo registry's
                                    "accept_unregistered": True})
        logs = ROOT / "artifacts"
        logs.mkdir(exist_ok=True)
        for load in loads:
            for kind in kinds:
                print(f"{kind}, load {load} ...", flush=True)
                results.append(run(kind, s, args.fixes, args.terminals, load, logs, r))
                worst = ", ".join(f"s{sec} {ms:.0f} ms" for sec, ms in results[-1]["worst"])
                print(f"  {results[-1]['per_s']:,.0f} stored/s, p99 {results[-1]['p99']:.0f} ms; slowest fix in the worst"
                      f" seconds: {worst}", flush=True)
    finally:
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)  # its persistence file: nothing to keep
        pg.destroy()
        for k in r.scan_iter(match=f"gwbench:{tag}:*", count=1000):
            r.delete(k)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
