"""Fixtures for the broker's accounts: terminals provisioned on the real broker for one test (and
revoked after it), and a paho client that records what the broker answered."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from broker import accounts
from broker.control import ControlError, DynsecControl
from schemas.settings import Settings
from schemas.topics import Topics
from tests.support import ROOT


class Probe:
    """One MQTT v5 client; every CONNACK, DISCONNECT, SUBACK, PUBACK and message kept as text."""

    def __init__(self, host: str, port: int, client_id: str, username: str | None = None, password: str | None = None,
                 tls=None, reconnect: bool = False):
        self.connack: str | None = None
        self.disconnects: list[str] = []
        self.subacks: list[list[str]] = []
        self.pubacks: list[str] = []
        self.messages: list[tuple[str, bytes]] = []
        self._event = threading.Condition()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            c.username_pw_set(username, password)
        if tls is not None:
            c.tls_set_context(tls)
        c.on_connect = lambda cl, u, f, rc, p: self._note("connack", str(rc))
        c.on_disconnect = lambda cl, u, f, rc, p: self._note("disconnects", str(rc))
        c.on_subscribe = lambda cl, u, mid, rcs, p: self._note("subacks", [str(r) for r in rcs])
        c.on_publish = lambda cl, u, mid, rc, p: self._note("pubacks", str(rc))
        c.on_message = lambda cl, u, m: self._note("messages", (m.topic, m.payload))
        self.client = c
        c.connect(host, port, keepalive=10)
        c.loop_start()
        if not reconnect:
            self.wait(lambda: self.connack is not None, "CONNACK")

    def _note(self, what: str, value) -> None:
        with self._event:
            if what == "connack":
                self.connack = value
            else:
                getattr(self, what).append(value)
            self._event.notify_all()

    def wait(self, predicate, what: str, timeout: float = 10.0):
        with self._event:
            if not self._event.wait_for(predicate, timeout):
                raise AssertionError(f"timed out waiting for {what}: connack={self.connack} disconnects={self.disconnects} "
                                     f"subacks={self.subacks} pubacks={self.pubacks}")

    def subscribe(self, *topics: str) -> list[str]:
        n = len(self.subacks)
        self.client.subscribe([(t, 1) for t in topics])
        self.wait(lambda: len(self.subacks) > n, "SUBACK")
        return self.subacks[n]

    def publish(self, topic: str, payload: bytes = b"{}") -> str:
        n = len(self.pubacks)
        self.client.publish(topic, payload, qos=1)
        self.wait(lambda: len(self.pubacks) > n, "PUBACK")
        return self.pubacks[n]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def probes():
    made: list[Probe] = []

    def make(*args, **kwargs) -> Probe:
        made.append(Probe(*args, **kwargs))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.fixture
def provision(base_settings, topic_prefix):
    """``provision(grids=...)`` -> (terminal id, password): a terminal account on the real broker for
    this test's topic prefix; revoked afterwards."""
    made: list[str] = []
    grid_roles: set[str] = set()
    topics = Topics(topic_prefix)

    def make(grids=()) -> tuple[str, str]:
        grid_roles.update(accounts.grid_role(topics, g) for g in grids)
        tid = f"T-{uuid.uuid4().hex[:10]}"
        password = f"pw-{uuid.uuid4().hex}"
        with DynsecControl(base_settings) as broker:
            broker.run(accounts.add_terminal(topics, tid, password, grids), tolerate=["Role already exists"])
        made.append(tid)
        return tid, password

    yield make
    with DynsecControl(base_settings) as broker:
        for tid in made:
            try:
                broker.run(accounts.revoke_terminal(tid))
            except ControlError:
                pass  # the test revoked it itself
        for role in grid_roles:  # this test's prefix: no other terminal uses them
            broker.run([accounts.command("deleteRole", rolename=role)], tolerate=["Role not found"])


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def broker_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """``python -m broker ARGS`` as an operator runs it, with ``settings`` as its environment."""
    return subprocess.run([sys.executable, "-m", "broker", *args], cwd=ROOT, env=settings.as_env(os.environ),
                          capture_output=True, text=True, timeout=30)
