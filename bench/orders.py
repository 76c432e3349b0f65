"""Orders benchmark: one order to 1,000 simulated terminals, from "send" to each ``received`` ack stored.

Runs on the services ``./gw setup`` starts (project broker, TimescaleDB, Redis), in a database,
Redis prefix and topic prefix of its own, with a signing key pair of its own:

1. baseline: the broker's raw fan-out — one QoS 1 publish to N plain subscribers (the same
   network stack as the terminals: terminal.mqtt on one NetworkLoop), until every one has it;
2. orders: ``python -m ingest`` and ``python -m orders`` running, N reference terminals
   (terminal.fleet, verifying signatures) connected; ``orders.desk.issue`` an order to all of
   them; "send" is when issue() has committed; a recipient is "recorded" when a poll (every
   10 ms) sees its row moved by the stored ``received`` ack.

A second baseline, the raw round trip: the same publish answered by every subscriber with a QoS 1
message to one collecting subscriber, until all answers are in: what any acknowledged order costs
in transport alone, before signing, verifying and storing. And the per-copy cost of signing and
verifying, measured in this process.

Printed, never asserted (shared, noisy machines): p50/p99 per terminal, time until all are
recorded, and the ratios to the raw fan-out and the raw round trip. Floors from issue 12: all 1,000 within 2 s, p99 under
1 s, at most 2x the raw fan-out.
Usage: python -m bench.orders [--terminals 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

if not __package__:
    # Run as a script (`./gw bench` runs `python bench/orders.py`): this file's own directory comes
    # first on sys.path and would shadow the `orders` package with this very file.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

from broker.dev import dev_settings
from db.migrate import drop_database, ensure_database, migrate
from orders import desk
from schemas.orders import EveryoneTarget, OrderDraft
from schemas.settings import Settings
from schemas.signing import generate_keypair, load_public_key
from terminal.client import TerminalConfig
from terminal.fleet import TerminalFleet
from terminal.mqtt import ConnectionOptions, MqttConnection
from terminal.netloop import NetworkLoop

ROOT = Path(__file__).resolve().parent.parent


class Service:
    """``python -m <module>`` with these settings, output to a log file."""

    def __init__(self, module: str, settings: Settings, log: Path):
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=settings.as_env(os.environ),
                                     stdout=open(log, "wb"), stderr=subprocess.STDOUT)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.log.name}: process exited:\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        raise SystemExit(f"{self.log.name}: no '{text}' within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))]


class Rounds:
    """Numbered rounds of one publish each: round 0 warms up (published again every 0.5 s until it
    completes, which proves every subscription is in place), rounds 1.. are timed from the publish
    until :meth:`complete` is called for them (from a network thread)."""

    def __init__(self, label: str):
        self.label = label
        self.current = -1
        self.done = threading.Event()
        self.finished = 0.0

    def complete(self, r: int) -> None:
        if r == self.current:
            self.finished = time.perf_counter()
            self.done.set()

    def run(self, rounds: int, fire, progress) -> list[float]:
        """Seconds per timed round; ``fire(r)`` publishes round r, ``progress(r)`` says how far an
        incomplete one got."""
        times = []
        for r in range(rounds + 1):
            self.current = r
            for _ in range(600):
                self.done.clear()
                t0 = time.perf_counter()
                fire(r)
                if self.done.wait(0.5 if r == 0 else 30) or r:
                    break
            if r and self.done.is_set():
                times.append(self.finished - t0)
            elif r:
                print(f"  {self.label} round {r}: only {progress(r)}", flush=True)
            time.sleep(0.3)
        return times


def open_subscribers(loop: NetworkLoop, s: Settings, name: str, topic: str, handlers: list) -> list[MqttConnection]:
    """One plain subscriber of ``topic`` per handler (``handler(topic, payload)``) on ``loop``,
    started and connected in batches of 100, as a fleet does."""
    conns: list[MqttConnection] = []
    for handler in handlers:
        c = MqttConnection(loop, ConnectionOptions(s.mqtt_host, s.mqtt_port, f"{name}-{uuid.uuid4().hex[:10]}",
                                                   clean_start=True, session_expiry_s=0,
                                                   username=s.mqtt_username, password=s.mqtt_password),
                           on_message=handler)
        c.on_connected = lambda c=c: c.subscribe([topic])
        conns.append(c)
    loop.start()
    for k in range(0, len(conns), 100):
        loop.run_sync(lambda k=k: [c.open() for c in conns[k:k + 100]])
        time.sleep(0.05)
    return conns


def raw_fanout(s: Settings, n: int, rounds: int) -> list[float]:
    """Seconds from one publish until all ``n`` plain subscribers have it, per round."""
    topic = f"{s.topic_prefix}/fanout"
    loop = NetworkLoop(name="bench-fanout")
    got: dict[int, set[int]] = {}
    rounds_ = Rounds("fan-out")

    def on_message(i: int, _topic: str, payload: bytes) -> None:
        r = int(payload)
        seen = got.setdefault(r, set())
        seen.add(i)
        if len(seen) == n:
            rounds_.complete(r)

    conns = open_subscribers(loop, s, "bench-sub", topic, [lambda t, p, i=i: on_message(i, t, p) for i in range(n)])
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
                      protocol=mqtt.MQTTv5)
    s.secure_mqtt_client(pub, "bench-pub")
    pub.connect(s.mqtt_host, s.mqtt_port)
    pub.loop_start()
    times = rounds_.run(rounds, lambda r: pub.publish(topic, str(r).encode(), qos=1),
                        lambda r: f"{len(got.get(r, ()))}/{n} received")
    pub.loop_stop()
    pub.disconnect()
    loop.run_sync(lambda: [c.close() for c in conns], timeout=30)
    loop.stop()
    return times


def spawn_parts(target, s: Settings, ids: list[str], k: int):
    """``target(settings_json, ids[part::k], ready_pipe, stop)`` in ``k`` processes of their own
    (each its own GIL): (processes, the pipes each says it is ready on, the stop event)."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs, pipes = [], []
    for part in range(k):
        ready, child = ctx.Pipe()
        p = ctx.Process(target=target, args=(s.model_dump_json(), ids[part::k], child, stop))
        p.start()
        procs.append(p)
        pipes.append(ready)
    return procs, pipes, stop


def run_answerers(settings_json: str, ids: list[str], ready, stop) -> None:
    """In a process of its own: plain subscribers of ``{prefix}/rt/all`` that answer every message
    at once with a QoS 1 publish on ``{prefix}/rt/a/{id}`` (no signature, no checks)."""
    s = Settings.model_validate_json(settings_json)
    loop = NetworkLoop(name="bench-answer")

    def answer(i: str):
        return lambda _topic, payload: conns_by_id[i].publish(f"{s.topic_prefix}/rt/a/{i}", payload)

    conns = open_subscribers(loop, s, "bench-rt", f"{s.topic_prefix}/rt/all", [answer(i) for i in ids])
    conns_by_id = dict(zip(ids, conns, strict=True))
    ready.send(True)
    stop.wait()
    loop.run_sync(lambda: [c.close() for c in conns], timeout=30)
    loop.stop()


def raw_round_trip(s: Settings, n: int, rounds: int, procs: int) -> list[float]:
    """Seconds from one publish until all ``n`` subscribers' answers have reached one collecting
    subscriber (as acks reach ingest), per round: what any acknowledged order costs in transport
    alone, with the subscribers split over ``procs`` processes as the terminals are."""
    procs_, pipes, stop = spawn_parts(run_answerers, s, [f"a{i:05d}" for i in range(n)], procs)
    answers: dict[int, int] = {}
    rounds_ = Rounds("round trip")

    def on_message(_c, _u, msg) -> None:
        r = int(msg.payload)
        answers[r] = answers.get(r, 0) + 1
        if answers[r] == n:
            rounds_.complete(r)

    def fire(r: int) -> None:
        answers.pop(r, None)  # a repeated warm-up counts afresh
        col.publish(f"{s.topic_prefix}/rt/all", str(r).encode(), qos=1)

    col = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-col-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    col.on_message = on_message
    s.secure_mqtt_client(col, "bench-col")
    col.connect(s.mqtt_host, s.mqtt_port)
    col.subscribe(f"{s.topic_prefix}/rt/a/+", qos=1)
    col.loop_start()
    times: list[float] = []
    try:
        for ready in pipes:
            ready.recv()
        times = rounds_.run(rounds, fire, lambda r: f"{answers.get(r, 0)}/{n} answers")
    finally:
        stop.set()
        for p in procs_:
            p.join(30)
        col.loop_stop()
        col.disconnect()
    return times


def copy_costs(n: int = 1000) -> tuple[float, float]:
    """Seconds per copy to sign (dispatcher) and to verify (terminal), in this process."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from schemas.commands import Command
    from schemas.signing import sign_command, verify_command

    key = Ed25519PrivateKey.generate()
    cmd = Command(command_id=uuid.uuid4(), order_id=uuid.uuid4(), issued_at=datetime.now(UTC), kind="emergency",
                  title="Bench: everyone to the square", body="benchmark", issued_by="bench")
    t0 = time.perf_counter()
    signed = [sign_command(key, cmd.model_copy(update={"to": f"T{i:05d}"})) for i in range(n)]
    t1 = time.perf_counter()
    now = datetime.now(UTC)
    for i, payload in enumerate(signed):
        verify_command(key.public_key(), payload, f"T{i:05d}", now)
    t2 = time.perf_counter()
    return (t1 - t0) / n, (t2 - t1) / n


def run_fleet(settings_json: str, terminals: list[str], ready, stop) -> None:
    """In a process of its own (its own GIL): the reference terminals, until ``stop`` is set."""
    s = Settings.model_validate_json(settings_json)
    fleet = TerminalFleet(s.mqtt_host, s.mqtt_port, username=s.mqtt_username, password=s.mqtt_password, connect_rate=500)
    key = load_public_key(s.order_public_key)
    for t in terminals:
        fleet.add(TerminalConfig(t, prefix=s.topic_prefix, platform_key=key))
    fleet.start()
    ok = fleet.wait_connected(timeout=120)
    ready.send(fleet.connected_count() if ok else -fleet.connected_count())
    stop.wait()
    fleet.stop(graceful=False)


def seed_terminals(dsn: str, n: int, tag: str) -> list[str]:
    ids = [f"{tag}{i:05d}" for i in range(n)]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY person (person_id, name, role) FROM STDIN") as copy:
            for t in ids:
                copy.write_row((f"P{t}", f"Officer {t}", "level2_supervisor"))
        with cur.copy("COPY terminal (terminal_id, person_id) FROM STDIN") as copy:
            for t in ids:
                copy.write_row((t, f"P{t}"))
    return ids


def one_order(s: Settings, conn, r, n: int, timeout: float = 60) -> dict:
    draft = OrderDraft(title="Bench: everyone to the square", body="benchmark", target=EveryoneTarget())
    t_call = time.perf_counter()
    created = desk.issue(conn, r, s, draft, "bench")
    t_send = time.perf_counter()  # committed: the clock starts here
    wall_send = time.time()
    recorded: dict[str, float] = {}
    sent_all = None
    deadline = t_send + timeout
    while len(recorded) < n and time.perf_counter() < deadline:
        rows = conn.execute("SELECT terminal_id, state FROM order_recipient WHERE command_id = %s AND state <> 'queued'",
                            (created.command_id,)).fetchall()
        now = time.perf_counter()
        for tid, state in rows:
            if state != "sent":
                recorded.setdefault(tid, now - t_send)
        if sent_all is None and len(rows) == n:
            sent_all = now - t_send
        time.sleep(0.01)
    lat = list(recorded.values())
    # when ingest received each ack (command_ack.received_at): the terminals' side of the time
    got = [float(row[0]) - wall_send for row in conn.execute(
        "SELECT extract(epoch FROM received_at) FROM command_ack WHERE command_id = %s AND status = 'received'",
        (created.command_id,)).fetchall()]
    return {"issue_s": t_send - t_call, "recorded": len(lat), "p50": pct(lat, 50) if lat else float("nan"),
            "p99": pct(lat, 99) if lat else float("nan"), "all": max(lat) if len(lat) == n else float("inf"),
            "published": sent_all if sent_all is not None else float("nan"),
            "acks_in": max(got) if got else float("nan"), "acks_in_p50": pct(got, 50) if got else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fleet-procs", type=int, default=2,
                    help="processes the simulated terminals are split over (each one network thread)")
    args = ap.parse_args()
    n = args.terminals
    base = dev_settings(Settings())  # the broker admits no anonymous client
    tag = uuid.uuid4().hex[:6]
    dsn = psycopg.conninfo.make_conninfo(base.pg_dsn, dbname=f"gw_bench_orders_{tag}")
    keydir = Path(tempfile.mkdtemp(prefix="gw-bench-keys-"))
    generate_keypair(keydir / "sign.pem", keydir / "sign.pub.pem")
    s = base.model_copy(update={
        "pg_dsn": dsn, "redis_prefix": f"gwbench:{tag}:", "topic_prefix": f"bench/{tag}/gw/v1",
        "ingest_client_id": f"gw-bench-ingest-{tag}", "ingest_share_group": f"bench{tag}",
        "orders_client_id": f"gw-bench-orders-{tag}", "order_signing_key": keydir / "sign.pem",
        "order_public_key": keydir / "sign.pub.pem", "stats_interval_s": 5.0})
    logs = ROOT / "artifacts"
    logs.mkdir(exist_ok=True)
    services: list[Service] = []
    fleet = None
    ensure_database(dsn)
    try:
        migrate(dsn, base.retention_days)
        print(f"baseline: raw fan-out of one QoS 1 publish to {n} plain subscribers ({args.rounds} rounds) ...", flush=True)
        fan = raw_fanout(s, n, args.rounds)
        print("  " + ", ".join(f"{t * 1000:.0f} ms" for t in fan), flush=True)
        print(f"baseline: raw round trip: that publish answered by each of {n} plain subscribers "
              f"({args.fleet_procs} process(es)) to one collector ...", flush=True)
        trip = raw_round_trip(s, n, args.rounds, max(1, args.fleet_procs))
        print("  " + ", ".join(f"{t * 1000:.0f} ms" for t in trip), flush=True)
        sign_s, verify_s = copy_costs()
        terminals = seed_terminals(dsn, n, f"B{tag}")
        services.append(Service("ingest", s, logs / "bench-orders-ingest.log"))
        services[-1].wait_for("subscribed to")
        services.append(Service("orders", s, logs / "bench-orders-dispatcher.log"))
        services[-1].wait_for("dispatcher ready")
        k = max(1, args.fleet_procs)
        print(f"connecting {n} reference terminals (terminal.fleet, {k} process(es) of their own) ...", flush=True)
        procs, pipes, stop = spawn_parts(run_fleet, s, terminals, k)
        fleet = (procs, stop)
        connected = sum(abs(r.recv()) for r in pipes)
        if connected < n:
            print(f"  only {connected}/{n} connected", flush=True)
        time.sleep(2)  # let ingest store the terminals' online status before the clock runs
        runs = []
        rclient = redis.Redis.from_url(s.redis_url, decode_responses=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(args.rounds):
                res = one_order(s, conn, rclient, n)
                runs.append(res)
                print(f"  order {i + 1}: issue() {res['issue_s'] * 1000:.0f} ms; all published+marked "
                      f"{res['published'] * 1000:.0f} ms; acks reached ingest p50 {res['acks_in_p50'] * 1000:.0f} ms, "
                      f"all {res['acks_in'] * 1000:.0f} ms; recorded {res['recorded']}/{n}: p50 {res['p50'] * 1000:.0f} ms, "
                      f"p99 {res['p99'] * 1000:.0f} ms, all {res['all'] * 1000:.0f} ms", flush=True)
                time.sleep(1.5)
    finally:
        if fleet is not None:
            fleet[1].set()
            for p in fleet[0]:
                p.join(30)
        for svc in reversed(services):
            svc.stop()
        drop_database(dsn)
        r = redis.Redis.from_url(base.redis_url)
        for k in r.scan_iter(match=f"gwbench:{tag}:*", count=1000):
            r.delete(k)
    raw = statistics.median(fan) if fan else float("nan")
    p50 = statistics.median(x["p50"] for x in runs)
    p99 = statistics.median(x["p99"] for x in runs)
    all_ = statistics.median(x["all"] for x in runs)
    print()
    print(f"one order to {n} terminals, median of {len(runs)} orders (send = issue() committed):")
    print(f"{'':<34}{'measured':>10}{'floor':>10}")
    print(f"{'p50 per terminal':<34}{p50 * 1000:>8.0f} ms{'':>10}")
    print(f"{'p99 per terminal':<34}{p99 * 1000:>8.0f} ms{'< 1000 ms':>10}")
    print(f"{'all recorded':<34}{all_ * 1000:>8.0f} ms{'< 2000 ms':>10}")
    print(f"{'raw fan-out (1 publish -> all)':<34}{raw * 1000:>8.0f} ms")
    print(f"{'all recorded / raw fan-out':<34}{all_ / raw:>9.1f}x{'<= 2x':>10}")
    print(f"{'p99 / raw fan-out':<34}{p99 / raw:>9.1f}x")
    rt = statistics.median(trip) if trip else float("nan")
    print(f"{'raw round trip (publish -> answers)':<34}{rt * 1000:>8.0f} ms")
    print(f"{'all recorded / raw round trip':<34}{all_ / rt:>9.1f}x")
    print(f"{'sign / verify per copy':<34}{sign_s * 1e6:>6.0f} / {verify_s * 1e6:.0f} us"
          f"  ({n} copies: {n * sign_s * 1000:.0f} ms signing in the dispatcher,"
          f" {n * verify_s * 1000 / max(1, args.fleet_procs):.0f} ms verifying per terminal process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
