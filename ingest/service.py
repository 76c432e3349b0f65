"""The ingest worker: drain the inbox in batches, store, update live state, then acknowledge."""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
import redis

from db.maintenance import maintain
from ingest.connections import pg_connect, redis_client
from ingest.grids import GridCache
from ingest.inbox import Inbox
from ingest.mqtt_client import MqttReceiver
from ingest.pipeline import (DeadLetter, Decoded, Limits, Received, RejectReason, dead_letter, decode_batch, tag_grids,
                             terminal_ids)
from ingest.receipts import ReceiptBook, handled_seqs
from ingest.registry import TerminalRegistry
from ingest.store_pg import PgStore, Stored
from ingest.store_redis import LiveStore
from schemas.logs import fields
from schemas.receipt import receipts_for
from schemas.settings import Settings
from schemas.topics import RedisKeys, Topics

log = logging.getLogger("gridwatch.ingest")

MAINTENANCE_EVERY_S = 3600
# The cyclic garbage collector, tuned for a stream: nearly everything ingest allocates per message
# is freed by reference counting, yet at 10,000 fixes/s the collector ran about 30 times a second,
# and each full collection walked every object loaded at start-up (the grid, the libraries) with
# the GIL held: 30-43 ms in which no message moved. Start-up's objects are frozen out of every
# collection, and a larger first generation makes collections rare (measured at 10,000/s: GC
# time per 10 s from ~190 ms with 43 ms pauses to ~2 ms, 1.3 ms at most).
GC_THRESHOLDS = (10_000, 20, 50)
# What PostgreSQL refuses because of the data itself: retrying cannot help, isolating can.
# ValueError/TypeError: the driver could not even encode a value (e.g. text PostgreSQL cannot
# hold); decode is meant to stop those first, and if one slips through it must cost one message,
# not the worker. Anything else is an outage: retry, never ack. That includes a permission or
# schema error (ProgrammingError: InsufficientPrivilege, UndefinedTable, UndefinedColumn ...;
# NotSupportedError): it says nothing about the message, and dead-lettering would acknowledge,
# and so throw away, every message until someone fixes the database.
REFUSED = (psycopg.DataError, psycopg.IntegrityError, ValueError, TypeError)
MISCONFIGURED = (psycopg.ProgrammingError, psycopg.NotSupportedError)


class Laps:
    """Where one round of the worker went: the milliseconds of each named step, in order."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._t = time.perf_counter()

    def mark(self, step: str) -> None:
        now = time.perf_counter()
        self.steps.append((step, (now - self._t) * 1000))
        self._t = now

    @property
    def total_ms(self) -> float:
        return sum(ms for _, ms in self.steps)

    def text(self) -> str:
        return f"{self.total_ms:.0f} ms (" + ", ".join(f"{step} {ms:.0f}" for step, ms in self.steps) + ")"


@dataclass
class Stats:
    received: int = 0
    fixes: int = 0
    events: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    receipts: int = 0
    db_errors: int = 0
    redis_errors: int = 0
    window_started: float = field(default_factory=time.monotonic)
    # where a batch's time goes, worst of the window (ms): waiting for company, storing, acknowledging
    age_max_ms: float = 0.0  # first message's arrival -> its batch acknowledged
    store_max_ms: float = 0.0
    batch_max: int = 0
    round_max: Laps | None = None  # the worker's longest round (batch taken -> ready for the next), by step

    def round_done(self, laps: Laps) -> None:
        if self.round_max is None or laps.total_ms > self.round_max.total_ms:
            self.round_max = laps

    def batch_done(self, size: int, age_ms: float, store_ms: float) -> None:
        self.batches += 1
        self.batch_max = max(self.batch_max, size)
        self.age_max_ms = max(self.age_max_ms, age_ms)
        self.store_max_ms = max(self.store_max_ms, store_ms)

    def line(self, backlog: int, backlog_bytes: int = 0) -> str:
        secs = max(time.monotonic() - self.window_started, 1e-6)
        return (f"{self.received / secs:.0f} msg/s, {self.fixes / secs:.0f} fixes/s stored, {self.events} events, "
                f"{self.duplicates} duplicates, {self.dead} dead letters, {self.batches} batches, {self.receipts} receipts, "
                f"backlog {backlog} "
                f"({backlog_bytes / 2**20:.1f} MiB), "
                f"largest batch {self.batch_max}, slowest store {self.store_max_ms:.0f} ms, "
                f"oldest message at its ack {self.age_max_ms:.0f} ms, "
                f"longest round {self.round_max.text() if self.round_max else '-'}, "
                f"{self.db_errors} database errors, {self.redis_errors} Redis errors")


class IngestService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.limits = Limits(settings.max_payload_bytes, settings.max_future_skew_s, settings.max_past_age_days)
        self.inbox = Inbox(settings.ingest_queue_max, settings.ingest_queue_max_bytes)
        self.pg = PgStore(settings.pg_dsn, lambda: pg_connect(settings, "gridwatch-ingest"))
        self.live = LiveStore(redis_client(settings), RedisKeys(settings.redis_prefix),
                              settings.timezone, settings.event_stream_maxlen)
        self.grids = GridCache(settings.pg_dsn, lambda: pg_connect(settings, "gridwatch-ingest-grid"))
        self.registry = TerminalRegistry(lambda: pg_connect(settings, "gridwatch-ingest-registry"))
        self.refresher = threading.Thread(target=self._refresh_loop, name="ingest-refresher", daemon=True)
        self.receiver = MqttReceiver(settings, self.inbox)
        self.receipts = ReceiptBook(settings.ingest_receipt_interval_s)
        self.stop_event = threading.Event()
        self.stats = Stats()
        self.totals = Stats()
        self._live_stale = False  # a batch failed to reach Redis: rebuild even if the keys are there
        self._last_maintenance = 0.0

    # --- lifecycle -------------------------------------------------------------------------
    def run(self) -> None:
        """Run until stop() is called; the caller's thread becomes the worker."""
        self._connect_store()
        self.grids.refresh()  # load the grid before the first batch, not during it
        if not self.stop_event.is_set():
            # housekeeping too: run from the loop, it came with the first batch, whose messages waited for it
            self._maintain()
        if not self.settings.accept_unregistered:
            try:
                self.registry.registered(())  # likewise the terminal registry
            except psycopg.Error as exc:
                log.error("could not load the terminal registry (%s); will retry with the first batch", exc)
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.refresher.start()
        self.receiver.start()
        try:
            self._loop()
        finally:
            self.stop_event.set()
            self.receiver.stop()
            self.refresher.join(timeout=10)
            self.pg.close()
            self.registry.close()
            log.info("ingest stopped", extra=fields(**_totals(self.totals)))

    def stop(self) -> None:
        self.stop_event.set()

    def _refresh_loop(self) -> None:
        """Check for a re-imported grid and a changed terminal registry every grid_reload_s, off
        the worker's thread: each check is a round trip or a new connection, and in the worker it
        held up every message that arrived meanwhile. The worker only reads what this swaps in."""
        while not self.stop_event.wait(self.settings.grid_reload_s):
            self.grids.refresh()
            if not self.settings.accept_unregistered:
                self.registry.refresh()

    def _connect_store(self) -> None:
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                self.pg.connect()
                return
            except (psycopg.OperationalError, RuntimeError) as exc:
                log.error("PostgreSQL not ready (%s); retrying in %.0f s", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30)

    # --- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        last_report = time.monotonic()
        while not self.stop_event.is_set():
            batch = self._next_batch()
            laps = Laps()
            if batch:
                self._process(batch, laps)
            now = time.monotonic()
            if self.receipts:
                self._send_receipts(now)
                laps.mark("receipts")
            if batch:
                self.stats.round_done(laps)
            if now - last_report >= self.settings.stats_interval_s:
                log.info("throughput: %s", self.stats.line(self.inbox.qsize(), self.inbox.bytes))
                self.stats = Stats()
                last_report = now
            if now - self._last_maintenance >= MAINTENANCE_EVERY_S:
                self._maintain()

    def _next_batch(self) -> list[Received]:
        """Up to ingest_batch_max messages, closed once the first has waited ingest_batch_ms since it
        arrived, or early once the stream pauses for ingest_idle_ms (Inbox.take_batch).

        Under load the inbox is never idle, so batches fill (what was queued while the previous
        batch committed is the next batch: group commit). At low load a fixed window would be pure
        latency: a lone ack or fix would wait the whole window for company that is not coming.
        The window counts from the first message's arrival, not from when the worker got to it:
        a message that already waited out the previous batch's commit waits no second window."""
        s = self.settings
        return self.inbox.take_batch(s.ingest_batch_max, 0.2, s.ingest_batch_ms / 1000, s.ingest_idle_ms / 1000)

    def _process(self, batch: list[Received], laps: Laps) -> None:
        registered = None  # accept every terminal id
        if not self.settings.accept_unregistered:
            registered = self._registered_until_known(batch)
            if registered is None:  # stopping while the database is down: nothing acked
                return
        decoded = decode_batch(batch, self.topics, self.limits, registered)
        for d in decoded.dead:
            _log_dead_letter(d)
        tag_grids(decoded, self.grids.locator())
        laps.mark("decode")
        self._rebuild_live_if_lost()  # before the write: the rebuild must not already hold this batch
        laps.mark("live check")
        stored = self._store_until_done(batch, decoded, registered)
        laps.mark("store")
        if stored is None:  # stopping while the database is down: nothing acked, the broker keeps it
            return
        self._update_live(stored)
        laps.mark("live")
        self.receiver.ack(batch)
        if self.settings.ingest_receipts:
            # after the commit: every message of the batch is now stored, a repeat, or a dead letter
            self.receipts.add(handled_seqs(decoded, self.topics))
        laps.mark("ack")
        store_ms = dict(laps.steps)["store"]
        for s in (self.stats, self.totals):
            s.received += len(batch)
            s.fixes += len(stored.fixes)
            s.events += len(stored.events)
            s.duplicates += stored.duplicates
            s.dead += stored.dead
            s.batch_done(len(batch), (time.time() - batch[0].received_at) * 1000, store_ms)

    def _send_receipts(self, now: float) -> None:
        """Publish the receipts that are due (coalesced per terminal), in one write. While the
        broker is away they are dropped, not kept: the terminals re-send, and the repeats are
        confirmed then."""
        ts = datetime.now(timezone.utc)
        due = [(tid, receipt.model_dump_json().encode()) for tid, ranges in self.receipts.due(now)
               for receipt in receipts_for(ranges, ts)]
        sent = self.receiver.publish_receipts(due)
        self.stats.receipts += sent
        self.totals.receipts += sent

    def _registered_until_known(self, batch: list[Received]) -> set[str] | None:
        """The registry's ids, current for this batch; waits out a database outage (None: stopping)."""
        delay = 0.5
        while True:
            try:
                return self.registry.registered(terminal_ids(batch, self.topics))
            except psycopg.Error as exc:
                self.stats.db_errors += 1
                log.error("cannot read the terminal registry (%s: %s); batch of %d kept unacknowledged, retry in %.1f s",
                          type(exc).__name__, str(exc).strip()[:200], len(batch), delay)
                if self.stop_event.wait(delay):
                    return None
                delay = min(delay * 2, 15)

    def _store_until_done(self, batch: list[Received], decoded: Decoded, registered: set[str] | None) -> Stored | None:
        """Retry a batch until PostgreSQL takes it: a database outage delays, never loses."""
        delay = 0.5
        while True:
            try:
                try:
                    return self.pg.write(decoded)
                except REFUSED as exc:
                    log.warning("PostgreSQL refused a batch of %d (%s: %s); storing its messages one by one",
                                len(batch), type(exc).__name__, str(exc).strip()[:200])
                    return self._store_one_by_one(batch, registered)
            except psycopg.Error as exc:
                self.stats.db_errors += 1
                hint = " (a permission or schema problem: fix the database)" if isinstance(exc, MISCONFIGURED) else ""
                log.error("PostgreSQL write failed (%s: %s)%s; batch of %d kept unacknowledged, retry in %.1f s",
                          type(exc).__name__, str(exc).strip()[:200], hint, len(batch), delay)
                self.pg.close()
                if self.stop_event.wait(delay):
                    return None
                delay = min(delay * 2, 15)

    def _store_one_by_one(self, batch: list[Received], registered: set[str] | None) -> Stored:
        """One bad message must not stall every terminal: the ones PostgreSQL refuses become dead letters."""
        total = Stored()
        locator = self.grids.locator()
        for msg in batch:
            one = decode_batch([msg], self.topics, self.limits, registered)
            tag_grids(one, locator)
            try:
                total.merge(self.pg.write(one))
            except REFUSED as exc:
                letter = dead_letter(msg, RejectReason.STORE_REJECTED, f"{type(exc).__name__}: {exc}")
                _log_dead_letter(letter)
                total.merge(self.pg.write(Decoded(dead=[letter])))
        return total

    def _rebuild_live_if_lost(self) -> None:
        """A Redis restart or flush loses the live keys; one EXISTS per batch notices it."""
        try:
            if self._live_stale or self.live.needs_rebuild():
                # its own connection: the writer's must never be left inside a read transaction
                with pg_connect(self.settings, "gridwatch-ingest-rebuild") as conn:
                    self.live.rebuild(conn)
                self._live_stale = False
        except (redis.RedisError, psycopg.Error) as exc:
            log.error("live state rebuild failed (%s); will retry", exc)

    def _update_live(self, stored: Stored) -> None:
        """Live state is derived: a Redis failure is logged and repaired by a rebuild later."""
        try:
            self.live.apply(stored)
        except redis.RedisError as exc:
            self.stats.redis_errors += 1
            self._live_stale = True
            log.error("Redis update failed (%s); live state will be rebuilt when Redis is back", exc)

    def _maintain(self) -> None:
        self._last_maintenance = time.monotonic()
        try:
            self.live.prune()
        except redis.RedisError as exc:
            log.error("pruning live state failed: %s", exc)
        try:
            maintain(self.pg.connection(), self.settings.retention_days, self.settings.partitions_ahead_days)
        except psycopg.Error as exc:
            log.error("maintenance failed (%s); will retry in an hour", exc)
            self.pg.close()  # the next write reconnects


def _log_dead_letter(d: DeadLetter) -> None:
    log.warning("dead letter: %s", d.reason.value, extra=fields(topic=d.topic, detail=d.detail[:200], payload=d.payload[:200]))


def _totals(s: Stats) -> dict:
    return {"received": s.received, "fixes": s.fixes, "events": s.events, "duplicates": s.duplicates, "dead": s.dead,
            "receipts": s.receipts}
