"""Fault suite: a steady simulated fleet while, in turn, each part of the platform fails.

Everything runs on infrastructure of its own, so the shared services are never touched:
a project-local Mosquitto (deploy/mosquitto/gridwatch.conf on a free port, stopped by PID), a
fresh database (on a throwaway PostgreSQL cluster with --own-postgres, the default of a full run;
else on the project cluster), a Redis key prefix and a topic prefix of its own; two ingest
processes on one shared subscription, the orders dispatcher and the alerts engine, as the
Procfile runs them. The fleet's terminals are registered (ingest quarantines unknown ids) and
use the reference client: every fix/event is held until ingest's receipt names it.

Rows (each with a fresh set of terminals, so its counts are its own):
  ingest-kill     kill -9 one of the two ingest processes, restart it after the outage
  broker-restart  SIGTERM the broker (it saves), start it again with its config
  broker-kill     kill -9 the broker (what it accepted since its last autosave is gone)
  postgres-stop   stop PostgreSQL for 10 s (own cluster: pg_ctl stop/start; on the shared cluster
                  instead: CONNECT revoked and ingest's sessions terminated for the outage)
  redis-flush     delete every live key of this run's prefix (on a shared Redis, a FLUSHALL would
                  hit everyone: deleting the prefix is the honest equivalent)
  orders-kill     kill -9 the orders dispatcher, restart it
  alerts-kill     kill -9 the alerts engine, restart it; caught up = an SOS sent after the restart
                  has its alert
For each: fixes and events made, stored, duplicated (rows beyond one per (terminal, seq)), lost
(made, never stored) with per-terminal seq gaps, dropped by a full terminal buffer (the one loss
the design allows, counted), re-sends, and seconds from the end of the outage until live state
(Redis: every terminal's newest fix) had caught up.

Usage: python -m bench.faults [--short] [--rows a,b] [--terminals N] [--json FILE]
``--short`` (CI, well under 90 s): 40 terminals, 3 s outages, rows ingest-kill, broker-restart,
broker-kill. Exit status 1 if any row lost or duplicated anything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import psycopg.sql
import redis

from bench.local_broker import LocalBroker
from bench.local_postgres import LocalPostgres
from broker.dev import dev_settings
from db.migrate import drop_database, ensure_database, migrate
from schemas.events import EventKind, SosBody
from schemas.settings import Settings, get_settings
from schemas.topics import RedisKeys
from terminal.client import TerminalClient, TerminalConfig
from terminal.fleet import TerminalFleet

ROOT = Path(__file__).resolve().parent.parent
ALL_ROWS = ("ingest-kill", "broker-restart", "broker-kill", "postgres-stop", "redis-flush", "orders-kill", "alerts-kill")
SHORT_ROWS = ("ingest-kill", "broker-restart", "broker-kill")


@dataclass
class Profile:
    terminals: int
    period_s: float  # each terminal sends a fix this often
    warm_s: float  # steady sending before the fault
    down_s: float  # the outage
    after_s: float  # steady sending after the fault is over
    receipt_timeout_s: float  # terminals re-send what no receipt named after this long
    drain_s: float  # longest wait for every fix to be confirmed at the end of a row


RECEIPT_SHARE = Settings.model_fields["ingest_receipt_interval_s"].default / TerminalConfig.receipt_timeout_s
SHORT = Profile(terminals=40, period_s=0.5, warm_s=2, down_s=3, after_s=3, receipt_timeout_s=3, drain_s=40)
FULL = Profile(terminals=300, period_s=1.0, warm_s=5, down_s=10, after_s=10, receipt_timeout_s=10, drain_s=120)


# --- processes ------------------------------------------------------------------------------
class Proc:
    """A Gridwatch process (``python -m module``) as the Procfile runs it; killed or stopped by its PID."""

    def __init__(self, module: str, settings: Settings, log: Path):
        self.module, self.settings, self.log = module, settings, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                     env=self.settings.as_env(os.environ))
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_for(pred, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- the fleet ------------------------------------------------------------------------------
class SteadyFleet:
    """``n`` registered reference terminals, each sending a fix every ``period_s`` (a heartbeat event
    every 10th tick), recording every seq it made."""

    def __init__(self, s: Settings, id_prefix: str, n: int, profile: Profile):
        self.ids = [f"{id_prefix}{i:04d}" for i in range(n)]
        self.fleet = TerminalFleet(s.mqtt_host, s.mqtt_port, username=s.mqtt_username, password=s.mqtt_password,
                                   connect_rate=500, name=f"gw-faults-{id_prefix}")
        for tid in self.ids:
            self.fleet.add(TerminalConfig(tid, prefix=s.topic_prefix, receipt_timeout_s=profile.receipt_timeout_s,
                                          receipt_max_wait_s=4 * profile.receipt_timeout_s))
        self.period = profile.period_s
        self.fixes: dict[str, list[int]] = {t: [] for t in self.ids}
        self.events: dict[str, list[int]] = {t: [] for t in self.ids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gw-faults-driver", daemon=True)
        self._rng = random.Random(id_prefix)

    @property
    def clients(self) -> list[TerminalClient]:
        return list(self.fleet.clients.values())

    def start(self) -> None:
        self.fleet.start()
        if not self.fleet.wait_connected(timeout=60):
            raise TimeoutError("the fleet did not connect")
        self._thread.start()

    def _run(self) -> None:
        tick = 0
        nxt = time.monotonic()
        while not self._stop.is_set():
            for c in self.clients:
                lat, lon = 28.24 + self._rng.random() * 0.04, 117.00 + self._rng.random() * 0.06
                self.fixes[c.id].append(c.send_fix(lat, lon, acc_m=5.0, battery_pct=80.0).seq)
                if tick % 10 == 5:
                    self.events[c.id].append(c.send_event(EventKind.HEARTBEAT).seq)
            tick += 1
            nxt += self.period
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def sos(self, tid: str) -> None:
        c = self.fleet.clients[tid]
        self.events[tid].append(c.send_event(EventKind.SOS, SosBody(text="fault suite probe"), lat=28.26, lon=117.01).seq)

    def stop_sending(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_confirmed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(c.buffer) == 0 for c in self.clients):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        self.fleet.stop(graceful=False)


# --- accounting -----------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    fixes_made: int = 0
    fixes_stored: int = 0
    fixes_duplicated: int = 0
    fixes_lost: int = 0
    events_made: int = 0
    events_stored: int = 0
    events_duplicated: int = 0
    events_lost: int = 0
    gap_terminals: int = 0  # terminals with at least one seq missing
    gap_runs: int = 0  # runs of consecutive missing seqs
    buffer_dropped: int = 0
    resent: int = 0
    unconfirmed_at_end: int = 0
    catch_up_s: float | None = None
    note: str = ""

    @property
    def clean(self) -> bool:
        return not (self.fixes_lost or self.fixes_duplicated or self.events_lost or self.events_duplicated)


def ledger(dsn: str, row: Row, fleet: SteadyFleet, since: datetime) -> None:
    """Made vs stored, per terminal and seq (a bounded window, by terminal: the indexes serve it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, made, kind in (("gps_fix", fleet.fixes, "fixes"), ("terminal_event", fleet.events, "events")):
            counts: dict[tuple[str, int], int] = {}
            for tid, seq, n in conn.execute(
                    f"SELECT terminal_id, seq, count(*) FROM {table} WHERE terminal_id = ANY(%s) AND ts >= %s"
                    " GROUP BY 1, 2", (fleet.ids, since)):
                counts[(tid, seq)] = n
            n_made = sum(len(v) for v in made.values())
            lost_keys = [(t, s) for t, seqs in made.items() for s in seqs if (t, s) not in counts]
            setattr(row, f"{kind}_made", n_made)
            setattr(row, f"{kind}_stored", len(counts))
            setattr(row, f"{kind}_duplicated", sum(n - 1 for n in counts.values()))
            setattr(row, f"{kind}_lost", len(lost_keys))
    missing_by_terminal: dict[str, set[int]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = {(t, s) for t, s in conn.execute(
            "SELECT terminal_id, seq FROM gps_fix WHERE terminal_id = ANY(%s) AND ts >= %s UNION "
            "SELECT terminal_id, seq FROM terminal_event WHERE terminal_id = ANY(%s) AND ts >= %s",
            (fleet.ids, since, fleet.ids, since))}
    for tid in fleet.ids:
        seqs = sorted(fleet.fixes[tid] + fleet.events[tid])
        missing = {s for s in seqs if (tid, s) not in stored}
        if missing:
            missing_by_terminal[tid] = missing
            row.gap_runs += sum(1 for i, s in enumerate(seqs) if s in missing and (i == 0 or seqs[i - 1] not in missing))
    row.gap_terminals = len(missing_by_terminal)
    row.buffer_dropped = sum(c.buffer.dropped for c in fleet.clients)
    row.resent = sum(c.buffer.stats.resent for c in fleet.clients)
    row.unconfirmed_at_end = sum(len(c.buffer) for c in fleet.clients)


class CatchUp(threading.Thread):
    """Seconds from ``restored`` until every terminal's newest fix in Redis is younger than it."""

    def __init__(self, s: Settings, ids: list[str], timeout: float):
        super().__init__(daemon=True, name="gw-faults-catchup")
        self.r = redis.Redis.from_url(s.redis_url)
        self.key = RedisKeys(s.redis_prefix).last_fix
        self.ids, self.timeout = ids, timeout
        self.restored_wall = 0.0
        self.restored_mono = 0.0
        self.seconds: float | None = None

    def mark_restored(self) -> None:
        self.restored_wall, self.restored_mono = time.time(), time.monotonic()
        self.start()

    def run(self) -> None:
        deadline = self.restored_mono + self.timeout
        while time.monotonic() < deadline:
            try:
                vals = self.r.hmget(self.key, self.ids)
                if all(v is not None and json.loads(v)["ts"] >= self.restored_wall for v in vals):
                    self.seconds = time.monotonic() - self.restored_mono
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)


# --- the run ----------------------------------------------------------------------------------
class FaultRun:
    def __init__(self, profile: Profile, own_postgres: bool, workdir: Path):
        self.p = profile
        self.work = workdir
        self.broker = LocalBroker(workdir / "broker")
        self.pg = LocalPostgres() if own_postgres else None
        self.tag = uuid.uuid4().hex[:6]
        self.base = dev_settings(get_settings())  # the broker admits no anonymous client
        self.s: Settings | None = None
        self.ingest: list[Proc] = []
        self.orders: Proc | None = None
        self.alerts: Proc | None = None

    # setup and teardown
    def setup(self) -> None:
        self.broker.start()
        if self.pg is not None:
            self.pg.init().start()
            dsn = self.pg.dsn
        else:
            dsn = psycopg.conninfo.make_conninfo(self.base.pg_dsn, dbname=f"gw_faults_{self.tag}")
        ensure_database(dsn)
        migrate(dsn, self.base.retention_days)
        keys = self.work / "keys"
        self.s = self.base.model_copy(update={
            "pg_dsn": dsn, "mqtt_port": self.broker.port, "mqtt_host": "127.0.0.1",
            "redis_prefix": f"gwfaults:{self.tag}:", "topic_prefix": f"faults/{self.tag}/gw/v1",
            "ingest_shared": True, "ingest_share_group": f"faults{self.tag}", "accept_unregistered": False,
            "ingest_batch_ms": 50, "stats_interval_s": 5.0, "grid_reload_s": 2.0, "log_level": "INFO",
            "order_signing_key": keys / "order_signing.pem", "order_public_key": keys / "order_signing.pub.pem",
            "pg_connect_timeout_s": 3,
            # receipts as often, relative to the terminals' (shortened) wait before a re-send, as in
            # production (30 s / 5 s): a receipt slower than the wait makes every fix a re-send
            "ingest_receipt_interval_s": self.p.receipt_timeout_s * RECEIPT_SHARE,
        })
        subprocess.run([sys.executable, "-m", "orders", "keygen", "--if-missing"], cwd=ROOT, check=True,
                       env=self.s.as_env(os.environ), capture_output=True)
        for i in (1, 2):
            s = self.s.model_copy(update={"ingest_client_id": f"gw-faults-{self.tag}-ingest-{i}"})
            self.ingest.append(Proc("ingest", s, self.work / f"ingest-{i}.log").start())
        for p in self.ingest:
            wait_for(lambda p=p: "subscribed to" in p.text(), 30, f"{p.log.name} to subscribe")
        self.orders = Proc("orders", self.s, self.work / "orders.log").start()
        self.alerts = Proc("alerts", self.s, self.work / "alerts.log").start()
        wait_for(lambda: "dispatcher ready" in self.orders.text(), 30, "the orders dispatcher")
        wait_for(lambda: "alerts engine started" in self.alerts.text(), 30, "the alerts engine")

    def teardown(self) -> None:
        for p in [*self.ingest, self.orders, self.alerts]:
            if p is not None:
                p.stop()
        self.broker.stop()
        if self.s is not None:
            r = redis.Redis.from_url(self.s.redis_url)
            keys = list(r.scan_iter(match=self.s.redis_prefix + "*", count=1000))
            if keys:
                r.delete(*keys)
        if self.pg is not None:
            self.pg.destroy()
        elif self.s is not None:
            drop_database(self.s.pg_dsn)

    def register(self, ids: list[str]) -> None:
        with psycopg.connect(self.s.pg_dsn, autocommit=True) as conn:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO terminal (terminal_id, model) VALUES (%s, 'fault-suite') ON CONFLICT DO NOTHING",
                                [(t,) for t in ids])

    # one row
    def row(self, name: str) -> Row:
        row = Row(name)
        prefix = f"F{self.tag}{ALL_ROWS.index(name)}-"
        fleet = SteadyFleet(self.s, prefix, self.p.terminals, self.p)
        self.register(fleet.ids)
        since = datetime.now(UTC) - timedelta(minutes=1)
        catch = CatchUp(self.s, fleet.ids, timeout=self.p.drain_s + 60)
        try:
            fleet.start()
            time.sleep(self.p.warm_s)
            row.note = getattr(self, "_" + name.replace("-", "_"))(catch, fleet)
            time.sleep(self.p.after_s)
            fleet.stop_sending()
            if not fleet.wait_confirmed(self.p.drain_s):
                row.note += "; not every fix confirmed in time"
            if catch.ident is not None:
                catch.join(timeout=max(0.0, catch.restored_mono + catch.timeout - time.monotonic()))
            row.catch_up_s = catch.seconds
            ledger(self.s.pg_dsn, row, fleet, since)
        finally:
            fleet.close()
        return row

    # the faults: each injects, waits out the outage, restores, and starts the catch-up clock
    def _ingest_kill(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        victim = self.ingest[0]
        victim.kill()
        time.sleep(self.p.down_s)
        victim.start()
        catch.mark_restored()
        return "kill -9 of ingest-1 (ingest-2 kept running), restarted"

    def _broker_restart(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        self.broker.restart(kill=False, down_s=self.p.down_s)
        catch.mark_restored()
        return "SIGTERM, started again"

    def _broker_kill(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        self.broker.restart(kill=True, down_s=self.p.down_s)
        catch.mark_restored()
        return "kill -9, started again"

    def _postgres_stop(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        down = max(self.p.down_s, 10)
        if self.pg is not None:
            self.pg.stop()
            time.sleep(down)
            self.pg.start()
            catch.mark_restored()
            return f"own cluster: pg_ctl stop -m fast, {down:.0f} s, start"
        dbname = psycopg.conninfo.conninfo_to_dict(self.s.pg_dsn)["dbname"]
        admin = psycopg.conninfo.make_conninfo(self.s.pg_dsn, dbname="postgres")
        db = psycopg.sql.Identifier(dbname)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(db))
            conn.execute(psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(db))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                         (dbname,))
            time.sleep(down)
            conn.execute(psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(db))
            conn.execute(psycopg.sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(db))
        catch.mark_restored()
        return f"shared cluster: connections refused and terminated for {down:.0f} s (not a real stop)"

    def _redis_flush(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        r = redis.Redis.from_url(self.s.redis_url)
        keys = list(r.scan_iter(match=self.s.redis_prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        catch.mark_restored()
        return f"deleted the run's {len(keys)} Redis keys (its prefix only: Redis is shared)"

    def _orders_kill(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        self.orders.kill()
        time.sleep(self.p.down_s)
        started = time.monotonic()
        before = self.orders.text().count("dispatcher ready")
        self.orders.start()
        catch.mark_restored()
        wait_for(lambda: self.orders.text().count("dispatcher ready") > before, 30, "the dispatcher to be ready again")
        return f"kill -9, restarted; dispatcher ready after {time.monotonic() - started:.1f} s"

    def _alerts_kill(self, catch: CatchUp, fleet: SteadyFleet) -> str:
        self.alerts.kill()
        time.sleep(self.p.down_s)
        self.alerts.start()
        catch.mark_restored()
        probe = fleet.ids[0]
        sent = time.monotonic()
        fleet.sos(probe)
        try:
            with psycopg.connect(self.s.pg_dsn, autocommit=True) as conn:
                wait_for(lambda: conn.execute("SELECT 1 FROM alert WHERE terminal_id = %s AND kind = 'sos'",
                                              (probe,)).fetchone(), 60, "the SOS alert", every=0.2)
            return f"kill -9, restarted; an SOS sent after the restart raised its alert in {time.monotonic() - sent:.1f} s"
        except TimeoutError:
            return "kill -9, restarted; the SOS sent after the restart raised NO alert within 60 s"


def print_table(rows: list[Row]) -> None:
    head = (f"{'fault':<15}{'fixes made':>11}{'stored':>8}{'dup':>5}{'lost':>6}{'events':>8}{'stored':>8}{'dup':>5}"
            f"{'lost':>6}{'gaps (term/runs)':>18}{'dropped':>9}{'re-sent':>9}{'caught up s':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        cu = f"{r.catch_up_s:.1f}" if r.catch_up_s is not None else "never"
        print(f"{r.name:<15}{r.fixes_made:>11,}{r.fixes_stored:>8,}{r.fixes_duplicated:>5}{r.fixes_lost:>6}"
              f"{r.events_made:>8,}{r.events_stored:>8,}{r.events_duplicated:>5}{r.events_lost:>6}"
              f"{f'{r.gap_terminals}/{r.gap_runs}':>18}{r.buffer_dropped:>9}{r.resent:>9,}{cu:>13}")
    for r in rows:
        print(f"  {r.name}: {r.note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="the CI version: small fleet, short outages, three rows")
    ap.add_argument("--rows", help=f"comma-separated subset of {','.join(ALL_ROWS)}")
    ap.add_argument("--terminals", type=int)
    ap.add_argument("--own-postgres", action=argparse.BooleanOptionalAction, default=None,
                    help="a throwaway PostgreSQL cluster (default: yes for a full run, no for --short)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    args = ap.parse_args(argv)
    profile = SHORT if args.short else FULL
    if args.terminals:
        profile.terminals = args.terminals
    rows = tuple(args.rows.split(",")) if args.rows else (SHORT_ROWS if args.short else ALL_ROWS)
    unknown = set(rows) - set(ALL_ROWS)
    if unknown:
        ap.error(f"unknown rows: {', '.join(sorted(unknown))}")
    own_pg = (not args.short) if args.own_postgres is None else args.own_postgres
    work = Path(tempfile.mkdtemp(prefix="gw-faults-"))
    run = FaultRun(profile, own_pg, work)
    results: list[Row] = []
    started = time.monotonic()
    try:
        print(f"fault suite: {profile.terminals} terminals, a fix every {profile.period_s} s each, outages of "
              f"{profile.down_s:.0f} s; logs in {work}", flush=True)
        run.setup()
        for name in rows:
            print(f"  {name} ...", flush=True)
            results.append(run.row(name))
    finally:
        run.teardown()
        if not args.keep and all(r.clean for r in results) and len(results) == len(rows):
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(results)
    print(f"\n{time.monotonic() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "clean": r.clean} for r in results], indent=2))
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
