"""Fixtures for the terminal tests: the real broker (never skipped), a unique topic prefix per
test, and a raw paho subscriber that records what actually went over the wire."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable, Iterator

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from schemas.commands import Command
from broker.dev import dev_settings
from schemas.settings import Settings


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None
    password: str | None


@pytest.fixture(scope="session")
def broker() -> Broker:
    s = dev_settings(Settings())
    try:
        socket.create_connection((s.mqtt_host, s.mqtt_port), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"MQTT broker (Mosquitto) is not reachable at {s.mqtt_host}:{s.mqtt_port} ({exc}): "
            "run `./gw setup` or set GRIDWATCH_MQTT_HOST/GRIDWATCH_MQTT_PORT",
            pytrace=False,
        )
    return Broker(s.mqtt_host, s.mqtt_port, s.mqtt_username, s.mqtt_password)


@pytest.fixture
def prefix() -> str:
    return f"test/{uuid.uuid4().hex[:12]}/gw/v1"


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    retain: bool


class RawSubscriber:
    """A plain paho client recording every message on its filters, in arrival order."""

    def __init__(self, broker: Broker, filters: list[str]) -> None:
        self.messages: list[Msg] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
        if broker.username:
            c.username_pw_set(broker.username, broker.password)
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self._subscribed.set()
        connected = threading.Event()

        def on_connect(cl: paho.Client, *a: object) -> None:
            connected.set()
            if filters:
                cl.subscribe([(f, 1) for f in filters])

        c.on_connect = on_connect
        c.connect(broker.host, broker.port)
        c.loop_start()
        self.client = c
        assert connected.wait(5), "raw subscriber: no CONNACK"
        assert not filters or self._subscribed.wait(5), "raw subscriber: no SUBACK"

    def _on_message(self, client: object, userdata: object, m: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Msg(m.topic, m.payload, bool(m.retain)))

    def wait_for(self, pred: Callable[[list[Msg]], bool], timeout: float = 10.0) -> list[Msg]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snap = list(self.messages)
            if pred(snap):
                return snap
            time.sleep(0.02)
        with self._lock:
            return list(self.messages)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def raw_subscriber(broker: Broker) -> Iterator[Callable[[list[str]], RawSubscriber]]:
    made: list[RawSubscriber] = []

    def make(filters: list[str]) -> RawSubscriber:
        s = RawSubscriber(broker, filters)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def clear_retained(broker: Broker, prefix: str) -> Iterator[list[str]]:
    """Topics listed here get their retained message cleared after the test."""
    topics: list[str] = []
    yield topics
    if topics:
        s = RawSubscriber(broker, [])
        for t in topics:
            s.publish(t, b"", retain=True)
        s.close()


# --- signed commands -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def order_key() -> Ed25519PrivateKey:
    """The platform's signing key for this test session (made here, never written anywhere)."""
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def forger_key() -> Ed25519PrivateKey:
    """Somebody else's key: what a forged order is signed with."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def make_command() -> Callable[..., Command]:
    """Builds a valid task command issued now; keyword arguments override its fields."""

    def make(**fields: object) -> Command:
        base: dict[str, object] = dict(
            command_id=uuid.uuid4(), order_id=uuid.uuid4(), issued_at=datetime.now(UTC), kind="task",
            title="Check the market", issued_by="duty-1",
        )
        base.update(fields)
        return Command(**base)  # type: ignore[arg-type]

    return make
