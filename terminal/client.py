"""The reference terminal client: protocol v1 as docs/protocol/asyncapi.yaml specifies it.

* One MQTT v5 session per terminal, client id = terminal id, QoS 1 (transport: ``terminal.mqtt``).
* Last Will: retained ``{"online":false}`` on ``{prefix}/t/{id}/status``; on every connect the
  client publishes a retained ``TerminalStatus(online=True)``; a clean stop publishes
  ``online: false`` itself before its DISCONNECT.
* ``seq``: one per-terminal counter shared by fixes and events, monotonically increasing across
  restarts (``terminal.seqstate``: persisted in blocks in a small state file when ``state_path`` is
  given; without one it starts at the current Unix time in milliseconds, which still increases
  across restarts as long as the terminal averages under one message per millisecond).
* Delivery (end to end): every fix and event goes into an ordered, bounded buffer
  (``terminal.buffer``, optionally persisted) and STAYS there until a delivery receipt from the
  platform (``{prefix}/rcpt/t/{id}``, ``schemas.receipt``) names its ``seq``: a PUBACK only means
  the broker has it, and a broker restart or crash can lose it. What no receipt names within
  ``receipt_timeout_s`` of sending is re-sent byte for byte (same ``seq`` and ``ts``: the
  platform stores a repeat once), the wait doubling per re-send up to ``receipt_max_wait_s``.
  Acks (no seq) leave the buffer at their PUBACK.
* Offline: while not connected, new messages wait in the buffer unsent. After reconnecting — and
  after paho has re-sent what was in flight when the connection broke — the unsent ones are sent
  IN ORDER: each run of consecutive fixes as JSON arrays of at most ``max_array`` fixes and
  ``max_payload_bytes`` bytes (``terminal.chunking``), events and acks one by one in between.
* Commands: subscribes to ``cmd/t/{id}``, ``cmd/grid/{g}`` for each of its grids and ``cmd/all``.
  Each is a ``SignedCommand``: verified with the platform's public key (``platform_key``), its
  address (``to``) and expiry first; a refused one is answered ``rejected`` with the reason
  (a copy for another terminal on a shared topic is ignored). A valid new command is answered
  ``received`` at once and handed to ``on_command``; a re-send (same ``command_id``) is answered
  ``received`` again and not handed over twice; the caller answers ``accepted``/``done``/``rejected``
  later with :meth:`send_ack`.
* Every payload is a schema model's ``model_dump_json`` (arrays are those dumps joined, byte-for-byte
  what ``TypeAdapter(list[GpsFix]).dump_json`` gives).

Threading: all network work happens on a :class:`~terminal.netloop.NetworkLoop` thread. ``send_*``
may be called from any thread: the message is built (and its ``seq`` taken) at once, in call order,
and handed to the loop.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

from pydantic import BaseModel

from schemas.ack import AckStatus, CommandAck
from schemas.commands import Command
from schemas.events import (
    EventKind,
    Heartbeat,
    InspectionCompleted,
    InspectionStarted,
    PatrolEnded,
    PatrolStarted,
    Report,
    Sos,
)
from schemas.gps import GpsFix
from schemas.receipt import Receipt
from schemas.signing import CommandRefused, CommandRejection, verify_command
from schemas.status import TerminalStatus
from schemas.topics import Channel, Topics
from terminal.buffer import DeliveryBuffer, Entry, Outgoing
from terminal.chunking import chunk_entries
from terminal.mqtt import ConnectionOptions, MqttConnection
from terminal.netloop import NetworkLoop, TimerHandle
from terminal.seqstate import SeqState

log = logging.getLogger(__name__)

APP_VERSION = "gridwatch-terminal/1.0"

EVENT_MODELS: dict[str, type[BaseModel]] = {
    EventKind.INSPECTION_STARTED: InspectionStarted,
    EventKind.INSPECTION_COMPLETED: InspectionCompleted,
    EventKind.REPORT: Report,
    EventKind.SOS: Sos,
    EventKind.PATROL_STARTED: PatrolStarted,
    EventKind.PATROL_ENDED: PatrolEnded,
    EventKind.HEARTBEAT: Heartbeat,
}


def utc_now() -> datetime:
    """Wall-clock UTC, millisecond precision (what a phone's GPS stack gives)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def dump(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


@dataclass
class TerminalConfig:
    terminal_id: str
    grids: tuple[str, ...] = ()
    prefix: str = "gw/v1"
    state_path: Path | None = None  # seq and seen command ids survive restarts
    buffer_path: Path | None = None  # the offline buffer survives restarts (at-least-once)
    buffer_max: int = 20_000  # held entries (unsent + unconfirmed); beyond it the oldest fix is dropped, and counted
    # Held until a receipt names them; re-sent when none has after this long (doubling per re-send, up to the max).
    # False: a platform without receipts; fixes and events leave at their PUBACK (a broker restart can lose them).
    await_receipts: bool = True
    receipt_timeout_s: float = 30.0
    receipt_max_wait_s: float = 300.0
    max_array: int = 500  # fixes per flushed array
    max_payload_bytes: int = 64 * 1024  # the platform's limit (Settings.max_payload_bytes)
    app_version: str = APP_VERSION
    keepalive_s: int = 30
    session_expiry_s: int = 24 * 3600  # the broker keeps commands for us while we are away
    seen_commands_max: int = 1000
    # The platform's Ed25519 public key (schemas.signing.load_public_key): commands that do not
    # verify with it are refused. Without one every command is refused (``no_key``).
    platform_key: Any = None


@dataclass
class ClientStats:
    fixes: int = 0  # fixes made (sent or buffered)
    events: int = 0
    acks: int = 0
    commands: int = 0  # new commands received
    duplicate_commands: int = 0
    invalid_commands: int = 0
    flushed_messages: int = 0  # messages published by buffer flushes
    buffer_dropped: int = 0
    receipts: int = 0  # receipts received
    bad_receipts: int = 0


CommandHandler = Callable[["TerminalClient", Command, str], None]


class TerminalClient:
    """One terminal. Construct, ``start()``, ``send_fix``/``send_event``/``send_ack``, ``stop()``.

    Pass ``loop`` to share a :class:`NetworkLoop` (the fleet does); without one the client owns
    a loop thread of its own, started by :meth:`start`.
    """

    _no_key_logged = False  # "no platform key" is logged at ERROR once per process

    def __init__(
        self,
        config: TerminalConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 1884,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        loop: NetworkLoop | None = None,
        on_command: CommandHandler | None = None,
        clock: Callable[[], datetime] = utc_now,
        battery: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.config = config
        self.id = config.terminal_id
        self.topics = Topics(config.prefix)
        self.on_command = on_command
        self.clock = clock
        self.battery = battery
        self.stats = ClientStats()
        self.seq = SeqState(config.state_path, seen_max=config.seen_commands_max)
        self.buffer = DeliveryBuffer(config.buffer_max, config.buffer_path)
        self._own_loop = loop is None
        self.loop = loop or NetworkLoop(name=f"gw-terminal-{self.id}")
        self._ready = False  # connected AND the buffer flushed: new messages go straight out
        self._unacked: set[int] = set()  # mids handed to paho, not yet PUBACKed
        self._release_at_puback: dict[int, list[int]] = {}  # mid -> buffer keys that leave at its PUBACK
        self._resend_timer: TimerHandle | None = None
        self._build_lock = threading.Lock()
        self._started = False
        will = TerminalStatus(online=False)
        self.conn = MqttConnection(
            self.loop,
            ConnectionOptions(
                host=host,
                port=port,
                client_id=self.id,
                keepalive=config.keepalive_s,
                clean_start=False,
                session_expiry_s=config.session_expiry_s,
                username=username,
                password=password,
                tls=tls,
                will_topic=self.topics.terminal(self.id, Channel.STATUS),
                will_payload=dump(will),
                will_retain=True,
            ),
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_message=self._on_message,
            on_published=self._on_published,
        )

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> "TerminalClient":
        if self._own_loop:
            self.loop.start()
        self.loop.run_sync(self.conn.open)
        self._started = True
        return self

    def stop(self, *, graceful: bool = True, timeout: float = 5.0) -> None:
        """Stop. ``graceful``: publish retained ``online: false``, wait for in-flight PUBACKs
        (up to ``timeout``), DISCONNECT. Not graceful: drop the socket (the broker sends the Will)."""
        if not self._started:
            return
        if graceful:
            self.loop.run_sync(self._publish_status, False)
            deadline = time.monotonic() + timeout
            while self.connected and self._unacked and time.monotonic() < deadline:
                if self.loop.in_loop_thread() or not self.loop.running:
                    break
                time.sleep(0.02)
        self.loop.run_sync(lambda: self.conn.close(graceful=graceful))
        self._started = False
        self.buffer.close()
        if self._own_loop:
            self.loop.stop()

    def kill(self) -> None:
        """Die uncleanly: the socket is cut, nothing more is sent; the broker publishes the Will."""
        self.stop(graceful=False)

    def go_offline(self) -> None:
        """Lose the network (abruptly: the broker sends the Will) until :meth:`go_online`."""
        self._call(self.conn.drop, suspend=True)

    def go_online(self) -> None:
        self._call(self.conn.resume)

    def set_server(self, host: str, port: int) -> None:
        self._call(self.conn.set_server, host, port)

    @property
    def connected(self) -> bool:
        return self.conn.connected

    @property
    def buffered(self) -> int:
        """Made while offline, not sent yet."""
        return self.buffer.unsent

    @property
    def unconfirmed(self) -> int:
        """Sent, no receipt yet."""
        return self.buffer.unconfirmed

    @property
    def in_flight(self) -> int:
        return len(self._unacked)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready:
                return True
            time.sleep(0.01)
        return self._ready

    def wait_delivered(self, timeout: float = 10.0) -> bool:
        """Until connected, the buffer is empty and every message published is PUBACKed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready and not self.buffer.unsent and not self._unacked:
                return True
            time.sleep(0.01)
        return False

    def wait_confirmed(self, timeout: float = 30.0) -> bool:
        """Until the buffer is empty: every fix and event named by a receipt (stored by the platform)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready and not len(self.buffer) and not self._unacked:
                return True
            time.sleep(0.02)
        return False

    # --- sending ----------------------------------------------------------------------
    def send_fix(
        self,
        lat: float,
        lon: float,
        *,
        acc_m: float | None = None,
        speed_mps: float | None = None,
        heading_deg: float | None = None,
        battery_pct: float | None = None,
        ts: datetime | None = None,
    ) -> GpsFix:
        with self._build_lock:
            fix = GpsFix(
                seq=self.seq.next(),
                ts=ts or self.clock(),
                lat=lat,
                lon=lon,
                acc_m=acc_m,
                speed_mps=speed_mps,
                heading_deg=heading_deg,
                battery_pct=battery_pct,
            )
            self.stats.fixes += 1
            self._call(self._submit, Outgoing(Channel.GPS, dump(fix), fix.seq))
        return fix

    def send_event(
        self,
        kind: EventKind | str,
        body: BaseModel | None = None,
        *,
        lat: float | None = None,
        lon: float | None = None,
        ts: datetime | None = None,
    ) -> BaseModel:
        model = EVENT_MODELS[EventKind(kind)]
        with self._build_lock:
            fields: dict[str, Any] = {"seq": self.seq.next(), "ts": ts or self.clock(), "kind": EventKind(kind).value}
            if lat is not None and lon is not None:
                fields.update(lat=lat, lon=lon)
            if body is not None:
                fields["body"] = body
            event = model(**fields)
            self.stats.events += 1
            self._call(self._submit, Outgoing(Channel.EVENT, dump(event), event.seq))
        return event

    def send_ack(self, command_id: UUID | str, status: AckStatus | str, note: str | None = None) -> CommandAck:
        ack = CommandAck(command_id=command_id, ts=self.clock(), status=AckStatus(status), note=note)
        with self._build_lock:
            self.stats.acks += 1
            self._call(self._submit, Outgoing(Channel.ACK, dump(ack)))
        return ack

    # --- loop-thread internals ---------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if self.loop.in_loop_thread() or not self.loop.running:
            fn(*args, **kwargs)
        else:
            self.loop.call_soon_threadsafe(lambda: fn(*args, **kwargs))

    def _submit(self, item: Outgoing) -> None:
        entry = self.buffer.append(item)  # held from now until a receipt (or, for an ack, its PUBACK)
        self.stats.buffer_dropped = self.buffer.dropped
        if self._ready and self.conn.connected:
            self._send([entry])

    def _send(self, entries: list[Entry]) -> int:
        """Publish held entries (runs of fixes as arrays); returns the number of messages."""
        sent = 0
        for message, carried in chunk_entries(entries, self.config.max_array, self.config.max_payload_bytes):
            mid = self._publish(message)
            sent += 1
            leave = [e.key for e in carried if e.item.seq is None or not self.config.await_receipts]
            if leave:
                self._release_at_puback[mid] = leave
        self.buffer.mark_sent(entries, time.monotonic())
        return sent

    def _publish(self, item: Outgoing, *, retain: bool = False) -> int:
        mid = self.conn.publish(self.topics.terminal(self.id, item.channel), item.payload, retain=retain)
        self._unacked.add(mid)
        return mid

    def _publish_status(self, online: bool) -> None:
        if not self.conn.connected:
            return
        status = TerminalStatus(online=online, ts=self.clock(), battery_pct=self.battery(), app_version=self.config.app_version)
        self._publish(Outgoing(Channel.STATUS, dump(status)), retain=True)

    def _on_connected(self) -> None:
        self._publish_status(True)
        t = self.topics
        self.conn.subscribe([t.cmd_terminal(self.id), *(t.cmd_grid(g) for g in self.config.grids), t.cmd_all,
                             t.receipt(self.id)])
        if self.config.await_receipts and self._resend_timer is None:
            self._resend_timer = self.loop.call_later(self._resend_check_s, self._resend_overdue)
        # paho re-sends what was in flight when the link broke right after this callback returns;
        # flushing on the next loop turn keeps the buffered messages after those.
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if not self.conn.connected:
            return
        entries = self.buffer.take_unsent()
        if entries:
            self.stats.flushed_messages += self._send(entries)
            log.debug("%s: flushed %d buffered messages", self.id, len(entries))
        self._ready = True

    @property
    def _resend_check_s(self) -> float:
        return max(0.2, min(self.config.receipt_timeout_s / 4, 5.0))

    def _resend_overdue(self) -> None:
        """Re-send what no receipt has named in time (the platform may never have stored it)."""
        self._resend_timer = None
        if not self.conn._wanted:  # stopped
            return
        if self._ready and self.conn.connected:
            due = self.buffer.due(time.monotonic(), self.config.receipt_timeout_s, self.config.receipt_max_wait_s)
            if due:
                log.debug("%s: re-sending %d unconfirmed messages", self.id, len(due))
                self._send(due)
        self._resend_timer = self.loop.call_later(self._resend_check_s, self._resend_overdue)

    def _on_disconnected(self, reason: str) -> None:
        self._ready = False
        # whatever paho still holds un-acked it re-sends after reconnecting
        log.debug("%s: disconnected (%s)", self.id, reason)

    def _on_published(self, mid: int) -> None:
        self._unacked.discard(mid)
        keys = self._release_at_puback.pop(mid, None)
        if keys:
            self.buffer.release(keys)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.receipt(self.id):
            self._on_receipt(payload)
            return
        try:
            command = verify_command(self.config.platform_key, payload, self.id, self.clock())
        except CommandRefused as refused:
            self._refuse(topic, payload, refused)
            return
        if self.seq.seen_command(str(command.command_id)):
            # A re-send: the platform has not stored our answer yet (or it was lost); say it again.
            self.stats.duplicate_commands += 1
            self.send_ack(command.command_id, AckStatus.RECEIVED)
            return
        self.stats.commands += 1
        self.send_ack(command.command_id, AckStatus.RECEIVED)
        if self.on_command is not None:
            try:
                self.on_command(self, command, topic)
            except Exception:
                log.exception("%s: command handler failed", self.id)

    def _on_receipt(self, payload: bytes) -> None:
        try:
            receipt = Receipt.model_validate_json(payload)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            self.stats.bad_receipts += 1
            log.warning("%s: unreadable receipt ignored (%s); payload %r", self.id, str(exc)[:200], payload[:200])
            return
        self.stats.receipts += 1
        self.buffer.confirm([tuple(r) for r in receipt.seqs])

    def _refuse(self, topic: str, payload: bytes, refused: CommandRefused) -> None:
        """Answer ``rejected`` with the reason when the command could be read; count and log it either way."""
        self.stats.invalid_commands += 1
        command = refused.command
        if refused.reason is CommandRejection.NO_KEY:
            # a provisioning problem of the whole process (a fleet would say it once per terminal)
            level = logging.DEBUG if TerminalClient._no_key_logged else logging.ERROR
            TerminalClient._no_key_logged = True
            log.log(level, "%s: refused command on %s: no platform public key provisioned (every order is refused)", self.id, topic)
        else:
            log.warning("%s: refused command on %s: %s; payload %r", self.id, topic, refused, payload[:200])
        if command is None:
            return  # nothing to name in an ack
        if refused.reason is CommandRejection.NOT_ADDRESSED and topic != self.topics.cmd_terminal(self.id):
            return  # a copy for someone else on a shared topic: not ours to answer
        self.send_ack(command.command_id, AckStatus.REJECTED, str(refused))
