"""Fixtures for the orders tests: a small registry of this test's own (unique codes and terminal
ids, so tests sharing the session database and the broker never see each other's), live
positions written the way ingest writes them, a signing key pair, and running processes."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import pytest
import redis

from ingest.store_redis import last_fix_json
from schemas.settings import Settings
from schemas.signing import generate_keypair, load_private_key, load_public_key
from schemas.topics import RedisKeys
from tests.support import ServiceProcess, wait_until

SQUARE = {"type": "Polygon", "coordinates": [[[117.0, 28.2], [117.1, 28.2], [117.1, 28.3], [117.0, 28.3], [117.0, 28.2]]]}


@dataclass
class City:
    """Level-1 ``L1`` holds level-2 ``A``, ``B``, ``C`` (A-B and B-C adjacent); ``L2`` holds ``D``
    (adjacent to C). Two officers' terminals per level-2 grid, a level-1 supervisor for L1."""

    tag: str
    grids: dict[str, str] = field(default_factory=dict)  # short name -> code
    terminals: dict[str, list[str]] = field(default_factory=dict)  # grid short name -> terminal ids
    supervisor: str = ""

    def code(self, short: str) -> str:
        return self.grids[short]

    def all_terminals(self) -> list[str]:
        return sorted([t for ts in self.terminals.values() for t in ts] + [self.supervisor])


def seed_city(conn, tag: str, per_grid: int = 2) -> City:
    city = City(tag)
    for s in ("L1", "L2", "A", "B", "C", "D"):
        city.grids[s] = f"{tag}{s}"
    g = city.grids
    conn.execute("INSERT INTO branch_office (code, name_zh) VALUES ('BRT', '测试分局') ON CONFLICT DO NOTHING")
    for s in ("L1", "L2"):
        conn.execute("INSERT INTO grid_level1 (code, name_zh, branch_code, geom) VALUES (%s, %s, 'BRT', %s)",
                     (g[s], f"街道{s}", json.dumps(SQUARE)))
    for s, parent in (("A", "L1"), ("B", "L1"), ("C", "L1"), ("D", "L2")):
        conn.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom) VALUES (%s, %s, %s, %s)",
                     (g[s], f"社区{s}", g[parent], json.dumps(SQUARE)))
    for a, b in (("A", "B"), ("B", "C"), ("C", "D")):
        conn.execute("INSERT INTO grid_adjacency (a, b) VALUES (%s, %s), (%s, %s)", (g[a], g[b], g[b], g[a]))
    n = 0
    for s in ("A", "B", "C", "D"):
        city.terminals[s] = []
        for _ in range(per_grid):
            n += 1
            pid, tid = f"{tag}P{n:03d}", f"{tag}T{n:03d}"
            conn.execute("INSERT INTO person (person_id, name, role) VALUES (%s, %s, 'level2_supervisor')",
                         (pid, f"Officer {n}"))
            conn.execute("INSERT INTO person_grid (person_id, grid_code, role) VALUES (%s, %s, 'level2_supervisor')",
                         (pid, g[s]))
            conn.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (tid, pid))
            city.terminals[s].append(tid)
    pid, tid = f"{tag}P900", f"{tag}T900"
    conn.execute("INSERT INTO person (person_id, name, role) VALUES (%s, 'Supervisor', 'level1_supervisor')", (pid,))
    conn.execute("INSERT INTO person_grid (person_id, grid_code, role) VALUES (%s, %s, 'level1_supervisor')", (pid, g["L1"]))
    conn.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (tid, pid))
    city.supervisor = tid
    return city


@pytest.fixture
def city(db) -> City:
    return seed_city(db, "x" + uuid.uuid4().hex[:6])


@pytest.fixture
def live(test_settings):
    return redis.Redis.from_url(test_settings.redis_url, decode_responses=True), RedisKeys(test_settings.redis_prefix)


def put_position(live, terminal_id: str, lat: float, lon: float, seen_ago_s: float = 1.0) -> None:
    """A live position exactly as ingest stores it (live:last record and live:seen score)."""
    r, keys = live
    ts = time.time() - seen_ago_s
    r.hset(keys.last_fix, terminal_id, last_fix_json(ts, 1, lat, lon, None, None, None, None, None, None))
    r.zadd(keys.last_seen, {terminal_id: ts})


@pytest.fixture
def keys(tmp_path):
    """A signing key pair of this test's own: (private key, public key, private path, public path)."""
    priv, pub = tmp_path / "keys" / "order_signing.pem", tmp_path / "keys" / "order_signing.pub.pem"
    generate_keypair(priv, pub)
    return load_private_key(priv), load_public_key(pub), priv, pub


@pytest.fixture
def order_settings(test_settings: Settings, keys) -> Settings:
    """Test settings with this test's keys, a dispatcher client id of its own and short re-send times."""
    return test_settings.model_copy(update={
        "order_signing_key": keys[2], "order_public_key": keys[3],
        "orders_client_id": f"gw-test-orders-{uuid.uuid4().hex[:8]}",
        "order_resend_critical_s": 3.0, "order_resend_urgent_s": 3.0, "order_resend_normal_s": 3.0,
        "order_poll_s": 0.2, "stats_interval_s": 2.0,
    })


@pytest.fixture
def ingest(order_settings, tmp_path):
    proc = ServiceProcess("ingest", order_settings, tmp_path / "ingest.log").start()
    proc.wait_for_log("subscribed to", "ingest to subscribe", timeout=30)
    yield proc
    proc.stop()


@pytest.fixture
def dispatcher_factory(order_settings, tmp_path):
    """Start ``python -m orders`` (as many times as a test needs); all stopped afterwards."""
    started: list[ServiceProcess] = []

    def start(settings: Settings | None = None) -> ServiceProcess:
        proc = ServiceProcess("orders", settings or order_settings, tmp_path / f"orders{len(started)}.log").start()
        started.append(proc)
        wait_until(lambda: "dispatcher ready" in proc.log_text() or proc.proc.poll() is not None,
                   what="the dispatcher to connect", timeout=30)
        assert proc.proc.poll() is None, proc.log_text()
        return proc

    yield start
    for p in started:
        p.stop()


class CommandTap:
    """A plain paho subscriber on ``cmd/t/+`` recording every command copy (it never answers:
    to the platform it is a silent terminal)."""

    def __init__(self, settings: Settings):
        import threading

        import paho.mqtt.client as paho

        self.copies: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
        settings.secure_mqtt_client(c, "tap")
        c.on_message = lambda cl, ud, m: self._add(m.topic, m.payload)
        c.on_subscribe = lambda *a: subscribed.set()
        c.connect(settings.mqtt_host, settings.mqtt_port)
        c.subscribe(f"{settings.topic_prefix}/cmd/t/+", qos=1)
        c.loop_start()
        assert subscribed.wait(10), "command tap: no SUBACK"
        self.client = c

    def _add(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.copies.append((topic, payload))

    def commands(self, public_key) -> list:
        """Every copy verified with the platform key, as (terminal id from the topic, Command)."""
        from schemas.signing import verify_command

        with self._lock:
            copies = list(self.copies)
        out = []
        for topic, payload in copies:
            tid = topic.rsplit("/", 1)[-1]
            from datetime import UTC, datetime

            out.append((tid, verify_command(public_key, payload, tid, datetime.now(UTC))))
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def tap(order_settings):
    t = CommandTap(order_settings)
    yield t
    t.close()


@pytest.fixture
def fleet(order_settings, keys):
    """Reference terminals (TerminalFleet, one network thread) verifying with this test's key.
    ``fleet.add(tid)`` -> TerminalClient; commands each terminal acted on in ``fleet.got[tid]``."""
    from terminal.client import TerminalConfig
    from terminal.fleet import TerminalFleet

    class Fleet(TerminalFleet):
        got: dict[str, list] = {}

        def add_terminal(self, terminal_id: str, **kw):
            self.got.setdefault(terminal_id, [])
            return self.add(TerminalConfig(terminal_id, prefix=order_settings.topic_prefix, platform_key=keys[1], **kw),
                            on_command=lambda client, command, topic: self.got[client.id].append(command))

    f = Fleet(order_settings.mqtt_host, order_settings.mqtt_port, username=order_settings.mqtt_username,
              password=order_settings.mqtt_password, connect_rate=200)
    f.got = {}
    yield f
    f.stop(graceful=False, timeout=5)


class SilentBroker:
    """Accepts MQTT connections, answers CONNACK, then swallows everything: a publish to it never
    gets its PUBACK. Lets a test catch the dispatcher between claiming recipients and marking them."""

    CONNACK_V5 = b"\x20\x03\x00\x00\x00"  # session present 0, reason success, no properties

    def __init__(self):
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = 0
        self._conns: list = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn) -> None:
        try:
            conn.recv(65536)  # CONNECT
            conn.sendall(self.CONNACK_V5)
            while chunk := conn.recv(65536):
                self.received += len(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()
        for c in self._conns:
            c.close()


@pytest.fixture
def silent_broker():
    b = SilentBroker()
    yield b
    b.close()
