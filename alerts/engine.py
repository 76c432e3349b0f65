"""The alerts engine: reads what ingest stored, runs the rules, keeps alerts' lifecycle.

Where it reads from, and why (Redis is not the record):

* Events (SOS, reports, inspections, heartbeats) and status messages come from PostgreSQL,
  by arrival time (``received_at``) after a committed high-water mark in
  ``alert_engine_mark``. One transaction locks the mark, reads the next batch, records each
  event in ``alert_seen_event`` (only events not recorded before reach the rules), opens or
  bumps the alerts and advances the mark. Killed at any point, the engine either committed
  all of that or none of it: a restart re-reads exactly what was not evaluated — no alert
  lost, none doubled, no count bumped twice.
* ``received_at`` is stamped on arrival, before ingest commits, so a batch can become visible
  after the mark passed it. Each cycle also evaluates events in ``(mark - alerts_overlap_s,
  mark]`` not yet seen, and once a minute a sweep does so over ``alerts_sweep_s`` (a batch
  held back by a database outage).
* ingest's Redis stream (``stream:events``) is only a doorbell (``alerts.doorbell``): the
  engine blocks on it for at most ``alerts_poll_s`` so an SOS is evaluated as soon as it is
  committed. A flushed, restarted or absent Redis only means the engine polls on its timer.
* Condition rules need each terminal's newest fix, not every fix: every ``alerts_state_s``
  one index probe per registered terminal reads its newest fix (cost by terminals, not by
  the fix rate, so the engine keeps up with any ingest rate). Terminal state (last seen,
  outside-grid and low-battery episodes) is folded in memory and checkpointed to
  ``alert_terminal_state``; re-folding fixes after a restart is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg

from alerts import lifecycle, rules, store
from alerts.doorbell import Doorbell, doorbell_client
from alerts.model import DutyHours, EventIn, TerminalState, Thresholds
from schemas.alert import AlertKind, AlertAction
from schemas.events import EventKind
from schemas.logs import fields
from schemas.settings import Settings
from schemas.topics import RedisKeys

log = logging.getLogger("gridwatch.alerts")

FIX_LOOKBACK = timedelta(minutes=10)  # a terminal's newest fix is looked for this far back each state cycle
CHECKPOINT_S = 10.0  # terminal state is written at most this often (a restart re-folds the rest)
SWEEP_EVERY_S = 60.0
SEEN_MARGIN = timedelta(minutes=30)  # evaluated-event keys are kept this much longer than the sweep reaches back
REGISTRY_EVERY_S = 30.0
FAILURE_BACKOFF_S = 5.0  # after an unexpected error, before the loop tries again
ALERTING_KINDS = {EventKind.SOS.value, EventKind.REPORT.value, EventKind.INSPECTION_COMPLETED.value}
CONDITION_KINDS = (AlertKind.OFFLINE, AlertKind.OUTSIDE_GRID, AlertKind.LOW_BATTERY, AlertKind.COMPLAINT_SURGE)


@dataclass
class Stats:
    events: int = 0
    fixes_sampled: int = 0
    opened: int = 0
    bumped: int = 0
    cleared: int = 0
    reminded: int = 0
    cycles: int = 0
    eval_s: float = 0.0
    state_cycles: int = 0
    state_s: float = 0.0
    state_max_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        secs = max(time.monotonic() - self.started, 1e-6)
        return (f"{self.events} events ({self.events / secs:.0f}/s), {self.fixes_sampled} newest fixes sampled, "
                f"{self.opened} opened, {self.bumped} bumped, {self.cleared} cleared, {self.reminded} reminders, "
                f"{self.cycles} cycles, busy {100 * self.eval_s / secs:.0f}%, state cycle "
                f"{1000 * self.state_s / max(self.state_cycles, 1):.0f} ms avg / {1000 * self.state_max_s:.0f} ms max")


class AlertEngine:
    def __init__(self, settings: Settings):
        self.s = settings
        self.th = Thresholds.from_settings(settings)
        self.duty = DutyHours.parse(settings.alerts_duty_hours)
        self.keys = RedisKeys(settings.redis_prefix)
        self.stop_event = threading.Event()
        self.conn: psycopg.Connection | None = None  # the events loop's
        self.state_conn: psycopg.Connection | None = None  # the state loop's
        self._lock = threading.Lock()  # terminal state is folded by both loops
        self.doorbell = Doorbell(doorbell_client(settings.redis_url, settings.alerts_poll_s), self.keys.events,
                                 settings.alerts_poll_s, self.stop_event)
        self.people = {}
        self.grid_names: dict[str, str] = {}
        self.centroids: dict[str, tuple[float, float]] = {}
        self.states: dict[str, TerminalState] = {}
        self.dirty: set[str] = set()
        self.stats = Stats()
        self._next = {"state": 0.0, "sweep": 0.0, "registry": 0.0, "checkpoint": 0.0, "report": 0.0, "prune": 0.0}

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        """Events on this thread (an SOS never waits behind a state cycle), condition rules on a second one."""
        self._connect()
        log.info("alerts engine started", extra=fields(states=len(self.states), people=len(self.people)))
        worker = threading.Thread(target=self._state_loop, name="alerts-state", daemon=True)
        worker.start()
        try:
            while not self.stop_event.is_set():
                try:
                    self.step()
                except psycopg.OperationalError as exc:
                    log.error("PostgreSQL unavailable (%s); reconnecting", str(exc).strip()[:200])
                    self._reconnect("conn")
                except Exception:  # a defect or a schema problem: keep the process (and the state loop) alive
                    log.exception("events step failed (nothing committed); retrying in %.0f s", FAILURE_BACKOFF_S)
                    self.stop_event.wait(FAILURE_BACKOFF_S)
                self.doorbell.wait()
        finally:
            self.stop_event.set()
            worker.join(timeout=30)
            self._close()
            log.info("alerts engine stopped: %s", self.stats.line())

    def _state_loop(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.state_step()
            except psycopg.OperationalError as exc:
                log.error("PostgreSQL unavailable to the state cycle (%s); reconnecting", str(exc).strip()[:200])
                self._reconnect("state_conn")
            except Exception:  # without this the thread would die quietly and condition alerts stop
                log.exception("state cycle failed (nothing committed); retrying in %.0f s", FAILURE_BACKOFF_S)
                self.stop_event.wait(FAILURE_BACKOFF_S)
            self.stop_event.wait(max(0.0, self.s.alerts_state_s - (time.monotonic() - started)))
        try:
            if self.state_conn is not None and not self.state_conn.closed:
                self.checkpoint()
        except psycopg.Error as exc:
            log.warning("final checkpoint failed: %s", exc)

    def _open(self) -> psycopg.Connection:
        return psycopg.connect(self.s.pg_dsn, application_name="gridwatch-alerts")

    def _connect(self) -> None:
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                self.conn = self._open()
                self.state_conn = self._open()
                with self.state_conn.transaction():
                    self.states = store.load_states(self.state_conn)
                self._reload_registry(self.state_conn)
                return
            except psycopg.OperationalError as exc:
                log.error("PostgreSQL not ready (%s); retrying in %.0f s", str(exc).strip()[:200], delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30)

    def _reconnect(self, which: str) -> None:
        old = getattr(self, which)
        if old is not None and not old.closed:
            old.close()
        setattr(self, which, None)
        delay = 1.0
        while not self.stop_event.wait(delay):
            try:
                setattr(self, which, self._open())
                return
            except psycopg.OperationalError as exc:
                log.error("PostgreSQL not ready (%s); retrying in %.0f s", str(exc).strip()[:200], delay)
                delay = min(delay * 2, 30)

    def _close(self) -> None:
        for which in ("conn", "state_conn"):
            c = getattr(self, which)
            if c is not None and not c.closed:
                c.close()
            setattr(self, which, None)

    # ------------------------------------------------------------------ one step of each loop
    def step(self) -> None:
        """The events loop's step: the next events (a backlog is drained first), and the minutely sweep."""
        t0 = time.perf_counter()
        mono = time.monotonic()
        while self.events_cycle() >= self.s.alerts_batch_max:
            pass
        if mono >= self._next["sweep"]:
            self._next["sweep"] = mono + SWEEP_EVERY_S
            self.events_cycle(sweep=True)
        self.stats.cycles += 1
        self.stats.eval_s += time.perf_counter() - t0
        if mono >= self._next["report"]:
            if self._next["report"]:
                log.info("alerts: %s", self.stats.line())
                self.stats = Stats()
            self._next["report"] = mono + self.s.stats_interval_s

    def state_step(self, now: datetime | None = None) -> None:
        """The state loop's step: registry when due, the condition rules, a checkpoint when due."""
        mono = time.monotonic()
        if mono >= self._next["registry"]:
            self._next["registry"] = mono + REGISTRY_EVERY_S
            self._reload_registry(self.state_conn)
        t1 = time.perf_counter()
        self.state_cycle(now)
        took = time.perf_counter() - t1
        self.stats.state_cycles += 1
        self.stats.state_s += took
        self.stats.state_max_s = max(self.stats.state_max_s, took)
        if mono >= self._next["checkpoint"]:
            self._next["checkpoint"] = mono + CHECKPOINT_S
            self.checkpoint()
        if mono >= self._next["prune"]:
            self._next["prune"] = mono + SWEEP_EVERY_S
            self.prune()

    def prune(self) -> int:
        """Forget evaluated-event keys older than any re-read can reach (the sweep's window, and margin)."""
        keep = timedelta(seconds=self.s.alerts_sweep_s + self.s.alerts_overlap_s) + SEEN_MARGIN
        with self.state_conn.transaction():
            n = store.prune_seen(self.state_conn, datetime.now(timezone.utc) - keep)
        if n:
            log.info("forgot %d evaluated-event keys older than %s", n, keep)
        return n

    def events_cycle(self, sweep: bool = False) -> int:
        """Evaluate the next batch of events (and status messages) in one transaction. Returns rows read."""
        conn = self.conn
        initial = datetime.now(timezone.utc) - timedelta(seconds=self.s.alerts_sweep_s)
        with conn.transaction():
            mark = store.mark(conn, "events", initial)
            if sweep:
                batch = store.unseen_events_between(conn, mark - timedelta(seconds=self.s.alerts_sweep_s), mark,
                                                    self.s.alerts_batch_max)
                read = len(batch)
            else:
                batch = store.events_after(conn, mark, self.s.alerts_batch_max)
                read = len(batch)
                batch += store.unseen_events_between(conn, mark - timedelta(seconds=self.s.alerts_overlap_s), mark,
                                                     self.s.alerts_batch_max)
            new = store.claim_new(conn, batch)
            strangers = {e.terminal_id for e in new if e.terminal_id not in self.people and e.kind in ALERTING_KINDS}
            if strangers:  # registered since the last reload? Its alert must name the person.
                found = store.lookup_people(conn, sorted(strangers))
                if found:
                    self.people = {**self.people, **found}  # copy on write: the other loop may be reading
            if new:
                if sweep:
                    log.warning("sweep found %d events committed after the mark had passed them", len(new))
                self._fold_events(new)
                lang = self.s.language
                findings = self._findings(new, lang)
                self._count(lifecycle.raise_findings(conn, findings))
                self.stats.events += len(new)
            if not sweep and read:
                store.advance_mark(conn, "events", max(e.received_at for e in batch[:read]))
            if not sweep:
                status_mark = store.mark(conn, "status", initial)
                rows = store.status_after(conn, status_mark, self.s.alerts_batch_max)
                with self._lock:
                    for tid, ts, online, rec in rows:
                        if online:
                            self._seen(tid, min(ts, rec))
                if rows:
                    store.advance_mark(conn, "status", max(r[3] for r in rows))
        return read

    def _findings(self, events: list[EventIn], lang: str) -> list:
        """The event rules' findings. Should the rules choke on one event, judge them one by one and
        skip that one (logged): one odd event must not hold back every SOS after it."""
        with self._lock:
            try:
                return rules.sos(events, self.people, self.states, lang) + rules.serious(events, self.people, lang)
            except Exception:
                out: list = []
                for e in events:
                    try:
                        out += rules.sos([e], self.people, self.states, lang) + rules.serious([e], self.people, lang)
                    except Exception:
                        log.exception("alert rules failed on event %s seq %s (%s); skipped", e.terminal_id, e.seq, e.kind)
                return out

    def _fold_events(self, events: list[EventIn]) -> None:
        with self._lock:
            self._fold_events_locked(events)

    def _fold_events_locked(self, events: list[EventIn]) -> None:
        for e in events:
            self._seen(e.terminal_id, min(e.ts, e.received_at))
            if e.kind == EventKind.HEARTBEAT and (e.body or {}).get("battery_pct") is not None:
                st = self.states.get(e.terminal_id) or TerminalState(e.terminal_id)
                try:
                    self._set(rules.observe_battery(st, float(e.body["battery_pct"]), e.ts, self.th))
                except (TypeError, ValueError):
                    log.warning("heartbeat of %s seq %s has no readable battery level; ignored", e.terminal_id, e.seq)

    def _seen(self, tid: str, at: datetime) -> None:
        if tid not in self.people and tid not in self.states:
            return  # not a registered terminal: the condition rules do not judge it
        st = self.states.get(tid) or TerminalState(tid)
        self._set(rules.observe_seen(st, at))

    def _set(self, new: TerminalState) -> None:
        if self.states.get(new.terminal_id) != new:
            self.states[new.terminal_id] = new
            self.dirty.add(new.terminal_id)

    def state_cycle(self, now: datetime | None = None) -> None:
        """Sample newest fixes, run the condition rules, clear, remind — one transaction."""
        conn = self.state_conn
        now = now or datetime.now(timezone.utc)
        lang, tz = self.s.language, self.s.timezone
        with conn.transaction():
            ids = sorted(self.people)
            samples = store.newest_fixes(conn, ids, now - FIX_LOOKBACK)
            self.stats.fixes_sampled += len(samples)
            with self._lock:
                for fx in samples:
                    st = self.states.get(fx.terminal_id) or TerminalState(fx.terminal_id)
                    self._set(rules.observe_fix(st, fx, self.people.get(fx.terminal_id), self.th))
                states = dict(self.states)
            open_ = lifecycle.open_subjects(conn, CONDITION_KINDS)
            results = {
                AlertKind.OFFLINE: rules.offline(states, self.people, now, tz, self.duty, self.th, open_[AlertKind.OFFLINE], lang),
                AlertKind.OUTSIDE_GRID: rules.outside_grid(states, self.people, now, tz, self.duty, self.th,
                                                           open_[AlertKind.OUTSIDE_GRID], lang),
                AlertKind.LOW_BATTERY: rules.low_battery(states, self.people, now, tz, self.duty, self.th,
                                                         open_[AlertKind.LOW_BATTERY], lang),
                AlertKind.COMPLAINT_SURGE: self._surge(conn, now, open_[AlertKind.COMPLAINT_SURGE]),
            }
            findings = [f for r in results.values() for f in r.findings]
            self._count(lifecycle.raise_findings(conn, findings))
            for kind, res in results.items():
                self.stats.cleared += len(lifecycle.clear(conn, kind, res.ended))
            self.stats.cleared += len(lifecycle.clear_by_key(conn, store.answered_order_alerts(conn)))
            self.stats.cleared += len(lifecycle.resolve_acknowledged_cleared(conn))
            due = rules.reminders_due(lifecycle.open_critical(conn), now, self.th)
            reminded = lifecycle.remind(conn, due, now)
            if reminded:
                log.warning("reminded the duty officer of %d unacknowledged critical alerts", len(reminded),
                            extra=fields(ids=",".join(map(str, reminded[:20]))))
            self.stats.reminded += len(reminded)

    def _surge(self, conn, now: datetime, open_subjects: set[str]):
        last_hour = store.reports_last_hour(conn, now)
        candidates = sorted(g for g, n in last_hour.items() if n >= self.th.surge_min_reports)
        baseline, hours = store.report_baseline(conn, candidates, now, self.s.alerts_surge_baseline_days) if candidates else ({}, 0.0)
        return rules.surge({g: last_hour[g] for g in candidates}, baseline, hours, self.centroids, self.grid_names, now,
                           self.th, open_subjects, self.s.language)

    def checkpoint(self) -> None:
        with self._lock:
            dirty, self.dirty = self.dirty, set()
            states = [self.states[t] for t in dirty]
        if not states:
            return
        try:
            with self.state_conn.transaction():
                store.save_states(self.state_conn, states)
        except psycopg.Error:
            with self._lock:
                self.dirty |= dirty  # written next time
            raise

    def _count(self, raised: list[lifecycle.Raised]) -> None:
        for r in raised:
            if r.action is AlertAction.OPEN:
                self.stats.opened += 1
                log.info("alert opened: %s", r.finding.kind.value,
                         extra=fields(id=r.alert_id, subject=r.finding.subject, severity=r.finding.severity.value))
            else:
                self.stats.bumped += 1

    def _reload_registry(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            people = store.load_people(conn)
            self.grid_names, self.centroids = store.load_grids(conn)
        self.people = people  # one assignment: the other loop sees the old map or the new one
