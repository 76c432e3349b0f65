"""Signed commands against the real broker: the reference client acts only on orders signed by
the platform, meant for it and not expired, and answers everything else ``rejected`` with why."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Iterator

import pytest

from schemas.ack import AckStatus, CommandAck
from schemas.commands import Command, SignedCommand
from schemas.signing import CommandRejection, sign_command
from schemas.topics import Topics
from terminal.client import TerminalClient, TerminalConfig


class Terminal:
    """A started reference client with a raw subscriber on its ack topic and a record of what its
    handler was given."""

    def __init__(self, broker, prefix, raw_subscriber, clear_retained, *, tid: str | None = None, **cfg) -> None:
        self.id = tid or f"T-{uuid.uuid4().hex[:10]}"
        self.topics = Topics(prefix)
        self.handled: list[Command] = []
        clear_retained.append(self.topics.terminal(self.id, "status"))
        self.sub = raw_subscriber([self.topics.terminal(self.id, "ack")])
        self.config = TerminalConfig(self.id, prefix=prefix, session_expiry_s=300, **cfg)
        self.broker = broker
        self.client = self._client().start()
        assert self.client.wait_connected(15)
        time.sleep(0.3)  # SUBACKs

    def _client(self) -> TerminalClient:
        b = self.broker
        return TerminalClient(
            self.config, host=b.host, port=b.port, username=b.username, password=b.password,
            on_command=lambda cl, cmd, topic: self.handled.append(cmd),
        )

    def restart(self) -> None:
        self.client = self._client().start()
        assert self.client.wait_connected(15)

    def publish(self, topic: str, payload: bytes) -> None:
        self.sub.publish(topic, payload)

    def acks(self, n: int, timeout: float = 20.0) -> list[CommandAck]:
        msgs = self.sub.wait_for(lambda ms: len(ms) >= n, timeout=timeout)
        return [CommandAck.model_validate_json(m.payload) for m in msgs]


@pytest.fixture
def terminal(broker, prefix, raw_subscriber, clear_retained, order_key) -> Iterator[Terminal]:
    t = Terminal(broker, prefix, raw_subscriber, clear_retained, platform_key=order_key.public_key())
    yield t
    t.client.stop()


def rejected_reason(ack: CommandAck) -> CommandRejection:
    assert ack.status is AckStatus.REJECTED and ack.note
    return CommandRejection(ack.note.split(":", 1)[0])


def test_forged_order_is_rejected_bad_signature_and_moves_nobody(terminal, forger_key, order_key, make_command) -> None:
    forged = make_command(kind="emergency", title="Everyone to the river")
    terminal.publish(terminal.topics.cmd_terminal(terminal.id), sign_command(forger_key, forged))
    # a real envelope whose cmd was edited after signing: the signature covers the exact bytes
    genuine = make_command()
    env = SignedCommand.model_validate_json(sign_command(order_key, genuine))
    tampered = env.model_copy(update={"cmd": env.cmd.replace("Check the market", "Leave the market")})
    terminal.publish(terminal.topics.cmd_all, tampered.model_dump_json().encode())
    acks = terminal.acks(2)
    time.sleep(0.3)
    assert [(a.command_id, rejected_reason(a)) for a in acks] == [
        (forged.command_id, CommandRejection.BAD_SIGNATURE),
        (genuine.command_id, CommandRejection.BAD_SIGNATURE),
    ]
    assert terminal.handled == [] and terminal.client.stats.invalid_commands == 2


def test_expired_order_is_rejected(terminal, order_key, make_command) -> None:
    late = make_command(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    terminal.publish(terminal.topics.cmd_terminal(terminal.id), sign_command(order_key, late))
    (ack,) = terminal.acks(1)
    assert ack.command_id == late.command_id and rejected_reason(ack) is CommandRejection.EXPIRED
    assert terminal.handled == []


def test_copy_for_another_terminal_rejected_on_own_topic_ignored_on_shared(terminal, order_key, make_command) -> None:
    t = terminal.topics
    mine_but_not = make_command(to="T-someone-else")
    shared_copy = make_command(to="T-someone-else")
    sentinel = make_command(to=terminal.id)
    terminal.publish(t.cmd_terminal(terminal.id), sign_command(order_key, mine_but_not))
    terminal.publish(t.cmd_all, sign_command(order_key, shared_copy))
    terminal.publish(t.cmd_all, sign_command(order_key, sentinel))  # after the shared copy on the same topic
    acks = terminal.acks(2)
    time.sleep(0.5)
    acks = terminal.acks(2)
    assert [(a.command_id, a.status) for a in acks] == [
        (mine_but_not.command_id, AckStatus.REJECTED),
        (sentinel.command_id, AckStatus.RECEIVED),
    ]
    assert rejected_reason(acks[0]) is CommandRejection.NOT_ADDRESSED
    assert [c.command_id for c in terminal.handled] == [sentinel.command_id]


def test_valid_order_received_handled_once_and_a_resend_answered_again(terminal, order_key, make_command) -> None:
    cmd = make_command(kind="emergency", priority="critical", lat=28.26, lon=117.03, to=terminal.id)
    payload = sign_command(order_key, cmd)
    terminal.publish(terminal.topics.cmd_terminal(terminal.id), payload)
    (first,) = terminal.acks(1)
    terminal.publish(terminal.topics.cmd_terminal(terminal.id), payload)  # the dispatcher's re-send
    acks = terminal.acks(2)
    time.sleep(0.3)
    assert [(a.command_id, a.status, a.note) for a in acks] == [(cmd.command_id, AckStatus.RECEIVED, None)] * 2
    assert terminal.handled == [cmd], "the handler ran once, with the command as signed"
    assert terminal.client.stats.commands == 1 and terminal.client.stats.duplicate_commands == 1


def test_client_without_platform_key_refuses_every_order(broker, prefix, raw_subscriber, clear_retained, order_key, make_command) -> None:
    t = Terminal(broker, prefix, raw_subscriber, clear_retained, platform_key=None)
    try:
        cmd = make_command()
        t.publish(t.topics.cmd_all, sign_command(order_key, cmd))
        (ack,) = t.acks(1)
    finally:
        t.client.stop()
    assert ack.command_id == cmd.command_id and rejected_reason(ack) is CommandRejection.NO_KEY
    assert t.handled == []


def test_offline_terminal_gets_the_order_when_it_reconnects(broker, prefix, raw_subscriber, clear_retained, order_key, make_command) -> None:
    t = Terminal(broker, prefix, raw_subscriber, clear_retained, platform_key=order_key.public_key())
    t.client.stop()  # a clean stop keeps the session (clean start off, session expiry 300 s)
    away = make_command(kind="emergency", to=t.id)
    t.publish(t.topics.cmd_terminal(t.id), sign_command(order_key, away))
    time.sleep(0.3)
    assert t.sub.messages == [] and t.handled == [], "nobody answers while the terminal is away"
    t.restart()
    try:
        (ack,) = t.acks(1)
        assert (ack.command_id, ack.status) == (away.command_id, AckStatus.RECEIVED)
        assert t.handled == [away]
        # the network dropping (no clean stop) keeps the session just the same
        t.client.go_offline()
        deadline = time.monotonic() + 10
        while t.client.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not t.client.connected
        later = make_command(to=t.id)
        t.publish(t.topics.cmd_terminal(t.id), sign_command(order_key, later))
        time.sleep(0.3)
        t.client.go_online()
        acks = t.acks(2)
    finally:
        t.client.stop()
    assert [(a.command_id, a.status) for a in acks] == [(away.command_id, AckStatus.RECEIVED), (later.command_id, AckStatus.RECEIVED)]
    assert [c.command_id for c in t.handled] == [away.command_id, later.command_id]
