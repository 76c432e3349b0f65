"""The dispatcher process (``python -m orders``): publishes what the desk committed, and follows up.

One turn, on ``NOTIFY gw_orders`` or every ``Settings.order_poll_s``:

1. outbox: claim queued recipients for a lease (SKIP LOCKED, committed at once: no lock is held
   while publishing), sign one copy per terminal with ``to`` set, publish on
   ``cmd/t/{terminal_id}`` (QoS 1), and only after every PUBACK mark them ``sent``. Killed
   before or during the publish: still queued, claimed and sent again when the lease has run
   out (terminals dedupe by command_id and answer ``received`` again, which changes nothing).
2. expire orders past expires_at, close orders whose recipients have all finished.
3. follow-up: re-send to the silent, ``no_answer`` + one ``order_unacknowledged`` alert per order
   after the re-sends, re-send at once to a terminal that was offline and came back
   (orders/followup.py has the timing).
4. arrivals: accepted recipients within the place's radius (live positions) get arrived_at.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import psycopg
import redis
from pydantic import ValidationError

from orders import followup, outbox, store
from orders.desk import NOTIFY_CHANNEL
from orders.sender import OrderSender, SendFailed
from schemas.commands import Command
from schemas.orders import AuditAction
from schemas.settings import Settings
from schemas.signing import sign_command
from schemas.topics import TERMINAL_ID_PATTERN, RedisKeys, Topics

log = logging.getLogger("gridwatch.orders.dispatcher")

TERMINAL_ID = re.compile(TERMINAL_ID_PATTERN)

# Recipients per claim. No lock is held while they are published (see outbox.claim_queued), so
# a city-wide order goes out in one claim, one stream of signed copies and one UPDATE.
BATCH = 5000
# How long a claim keeps other dispatchers (or this one, restarted) off its recipients: longer
# than the sender waits for the PUBACKs of a full claim (OrderSender: 15 s + 1 s per 1,000).
CLAIM_LEASE_S = 30.0


@dataclass
class Counters:
    sent: int = 0
    resent: int = 0
    acks: int = 0
    no_answer: int = 0
    alerts: int = 0
    expired: int = 0
    closed: int = 0
    arrived: int = 0
    send_failures: int = 0

    def line(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Dispatcher:
    def __init__(self, settings: Settings, sender: OrderSender, signing_key, redis):
        self.settings = settings
        self.sender = sender
        self.key = signing_key
        self.redis = redis
        self.keys = RedisKeys(settings.redis_prefix)
        self.topics = Topics(settings.topic_prefix)
        self.stop_event = threading.Event()
        self.counters = Counters()
        self._conn: psycopg.Connection | None = None
        self._listen: psycopg.Connection | None = None
        self._audit_id = 0
        self._min_resend = min(settings.order_resend_critical_s, settings.order_resend_urgent_s,
                               settings.order_resend_normal_s)

    # ---------------------------------------------------------------- connections
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.settings.pg_dsn, autocommit=True, connect_timeout=10)
            self._audit_id = outbox.last_audit_id(self._conn)
        return self._conn

    def _listener(self) -> psycopg.Connection:
        if self._listen is None or self._listen.closed:
            self._listen = psycopg.connect(self.settings.pg_dsn, autocommit=True, connect_timeout=10)
            self._listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return self._listen

    def close(self) -> None:
        for c in (self._conn, self._listen):
            if c is not None and not c.closed:
                c.close()

    # ---------------------------------------------------------------- the loop
    def run(self) -> None:
        last_summary = time.monotonic()
        backoff = 1.0
        while not self.stop_event.is_set():
            try:
                self.turn()
                self._wait()
                backoff = 1.0
            except redis.RedisError as exc:
                log.warning("redis unavailable (%s); retrying in %.0f s", str(exc)[:200], backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retrying in %.0f s", str(exc).strip()[:200], backoff)
                self.close()
                self._conn = self._listen = None
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception:
                # A defect or a row nobody foresaw must not stop orders going out: log it loudly,
                # start again on fresh connections (nothing half-done was committed).
                log.exception("dispatcher turn failed; retrying in %.0f s", backoff)
                self.close()
                self._conn = self._listen = None
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            if time.monotonic() - last_summary >= self.settings.stats_interval_s:
                self._summary()
                last_summary = time.monotonic()
        self.close()

    def _wait(self) -> None:
        """Until a NOTIFY (an order committed) or the poll interval."""
        for _ in self._listener().notifies(timeout=self.settings.order_poll_s, stop_after=1):
            pass

    def turn(self) -> None:
        while self.send_queued() == BATCH and not self.stop_event.is_set():
            pass  # a big order: keep going until the outbox is empty
        self.expire_and_close()  # first: an order that has just expired gets no more re-sends
        self.follow_up()
        self.mark_arrivals()

    def _summary(self) -> None:
        try:
            conn = self._connection()
            acks, self._audit_id = outbox.acks_since(conn, self._audit_id)
            self.counters.acks += acks
            queued = outbox.outbox_size(conn)
        except psycopg.Error:
            return
        log.info("orders", extra={"fields": {"queued": queued, **self.counters.line()}})

    # ---------------------------------------------------------------- steps
    def _signed_copies(self, targets, contents: dict, unsendable: list):
        """(topic, signed envelope) per (command_id, terminal_id), lazily: the sender publishes each
        as it comes. The Command is validated once per command; each copy only sets ``to``.
        A copy that cannot be made (stored content or terminal id not valid on the wire) is put in
        ``unsendable`` with the reason instead of stopping the others."""
        base: dict = {}
        for command_id, terminal_id in targets:
            if not TERMINAL_ID.match(terminal_id):
                unsendable.append((command_id, terminal_id, "cannot be sent: not a valid terminal id for a topic"))
                continue
            cmd = base.get(command_id)
            if cmd is None:
                try:
                    cmd = base[command_id] = Command.model_validate({**contents[command_id], "command_id": command_id})
                except ValidationError as exc:
                    cmd = base[command_id] = exc
            if isinstance(cmd, ValidationError):
                unsendable.append((command_id, terminal_id, f"cannot be sent: stored command has {cmd.error_count()} field error(s)"))
                continue
            copy = cmd.model_copy(update={"to": terminal_id})  # the id matches the wire's pattern (checked above)
            yield self.topics.cmd_terminal(terminal_id), sign_command(self.key, copy)

    def _seen(self, terminal_ids: list[str]) -> dict[str, float] | None:
        """When each terminal was last heard from; None when Redis is down (orders still go out:
        live state only refines re-sends, it never holds up a send)."""
        try:
            return store.load_seen(self.redis, self.keys, terminal_ids)
        except redis.RedisError as exc:
            log.warning("redis unavailable, sending without live state: %s", str(exc)[:200])
            return None

    def _offline(self, terminal_ids: list[str], now: float) -> dict[str, bool]:
        seen = self._seen(terminal_ids)
        if seen is None:
            return dict.fromkeys(terminal_ids, False)  # unknown: no "came back" re-send, the timed ones still run
        return {t: followup.is_offline(seen.get(t), now, self.settings.online_window_s) for t in terminal_ids}

    def send_queued(self) -> int:
        """Publish one claim of the outbox; returns how many recipients it handled."""
        conn = self._connection()
        t0 = time.perf_counter()
        with conn.transaction():
            rows = outbox.claim_queued(conn, BATCH, CLAIM_LEASE_S)
        if not rows:
            return 0
        t1 = time.perf_counter()
        contents = {cid: content for cid, _, content in rows}
        bad: list[tuple] = []
        try:
            self.sender.publish_all(self._signed_copies([(cid, tid) for cid, tid, _ in rows], contents, bad))
        except SendFailed as exc:
            self.counters.send_failures += 1
            log.warning("publish failed, recipients stay queued: %s", exc)
            outbox.release_claim(conn, [(cid, tid) for cid, tid, _ in rows])
            self.stop_event.wait(1.0)
            return 0
        t2 = time.perf_counter()
        # Looked up after the publish: live state only annotates the send, it must not delay it.
        offline = self._offline([tid for _, tid, _ in rows], time.time())
        now = datetime.now(UTC)
        skip = {(cid, tid) for cid, tid, _ in bad}
        with conn.transaction():
            n = outbox.mark_sent(conn, [(cid, tid, offline[tid]) for cid, tid, _ in rows if (cid, tid) not in skip],
                                 now, AuditAction.SENT)
            outbox.mark_unsendable(conn, bad, now)
        if bad:
            log.error("recipients that cannot be sent to were marked rejected",
                      extra={"fields": {"recipients": len(bad), "first": f"{bad[0][1]!r}: {bad[0][2]}"}})
        self.counters.sent += n
        t3 = time.perf_counter()
        log.info("sent", extra={"fields": {"recipients": n, "commands": len({r[0] for r in rows}),
                                           "claim_ms": round((t1 - t0) * 1000),
                                           "sign_publish_puback_ms": round((t2 - t1) * 1000),
                                           "mark_ms": round((t3 - t2) * 1000)}})
        return len(rows)  # the whole claim was handled: the caller looks for more

    def follow_up(self) -> None:
        """Decide for the silent recipients, record what needs no publish (no answer, alerts) and
        lease the re-sends in one short transaction; then publish the re-sends holding no lock."""
        conn = self._connection()
        now = datetime.now(UTC)
        alerts: list[tuple] = []
        with conn.transaction():
            waiting = outbox.claim_waiting(conn, now, self._min_resend)
            if not waiting:
                return
            content = {w.command_id: c for w, c in waiting}
            seen = self._seen(sorted({w.terminal_id for w, _ in waiting})) or {}
            decisions = followup.plan([w for w, _ in waiting], now.timestamp(), seen, self.settings)
            again = [d for d in decisions if d.step is not followup.Step.NO_ANSWER]
            silent = [d.recipient for d in decisions if d.step is followup.Step.NO_ANSWER]
            outbox.lease_resends(conn, [(d.recipient.command_id, d.recipient.terminal_id) for d in again], now)
            orders = outbox.mark_no_answer(conn, [(w.command_id, w.terminal_id) for w in silent], now)
            self.counters.no_answer += len(silent)
            priority = {w.order_id: w.priority for w in silent}
            for order_id in orders:
                raised = outbox.raise_alert(conn, order_id, followup.severity(priority[order_id]).value, now)
                if raised:
                    alerts.append((order_id, *raised))
        for order_id, alert_id, opened, terminals in alerts:
            self.counters.alerts += 1
            log.warning("order not acknowledged", extra={"fields": {
                "order_id": str(order_id), "alert_id": alert_id, "opened": opened, "silent": ",".join(terminals[:20])}})
        if again:
            self._resend(conn, again, content, now)

    def _resend(self, conn, again: list[followup.Decision], content: dict, now: datetime) -> None:
        """Publish the leased re-sends; after the PUBACKs record them (attempts, audit), or on a
        failure give the lease back so that the next follow-up tries again at once."""
        recipients = [d.recipient for d in again]
        try:
            self.sender.publish_all(self._signed_copies([(w.command_id, w.terminal_id) for w in recipients], content, []))
        except SendFailed as exc:
            self.counters.send_failures += 1
            log.warning("re-send failed, will retry: %s", exc)
            with conn.transaction():
                outbox.release_resends(conn, [(w.command_id, w.terminal_id, w.last_sent_at) for w in recipients], now)
            return
        offline = self._offline([w.terminal_id for w in recipients], time.time())
        with conn.transaction():
            for step in (followup.Step.RESEND, followup.Step.RETURNED):
                batch = [(d.recipient.command_id, d.recipient.terminal_id, offline[d.recipient.terminal_id])
                         for d in again if d.step is step]
                outbox.mark_sent(conn, batch, now, AuditAction.RESEND, {"reason": step.value}, first=False)
        self.counters.resent += len(again)
        log.info("re-sent", extra={"fields": {"recipients": len(again),
                                              "returned": sum(d.step is followup.Step.RETURNED for d in again)}})

    def expire_and_close(self) -> None:
        conn = self._connection()
        now = datetime.now(UTC)
        with conn.transaction():
            orders, recipients = outbox.expire(conn, now)
            closed = outbox.close_finished(conn, now)
        if orders:
            self.counters.expired += orders
            log.info("orders expired", extra={"fields": {"orders": orders, "recipients": recipients}})
        if closed:
            self.counters.closed += closed
            log.info("orders closed", extra={"fields": {"orders": closed}})

    def mark_arrivals(self) -> None:
        conn = self._connection()
        heading = outbox.heading(conn, self.settings.order_arrive_m)
        if not heading:
            return
        positions = store.load_positions(self.redis, self.keys, sorted({h.terminal_id for h in heading}))
        arrived = followup.arrivals(heading, positions)
        if arrived:
            with conn.transaction():
                n = outbox.mark_arrived(conn, arrived, datetime.now(UTC))
            self.counters.arrived += n
            log.info("arrived", extra={"fields": {"recipients": n}})
