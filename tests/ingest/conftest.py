"""Fixtures for ingest's end-to-end tests: a terminal-side publisher, a running ingest, a tiny grid."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import psycopg
import pytest
import redis

from schemas.settings import Settings
from schemas.topics import RedisKeys, Topics
from tests.support import ServiceProcess

# Two level-2 grids side by side near Yingtan's centre: A (west of 117.03) and B (east).
GRID_A = {"type": "Polygon", "coordinates": [[[117.00, 28.24], [117.03, 28.24], [117.03, 28.28], [117.00, 28.28], [117.00, 28.24]]]}
GRID_B = {"type": "Polygon", "coordinates": [[[117.03, 28.24], [117.06, 28.24], [117.06, 28.28], [117.03, 28.28], [117.03, 28.24]]]}


def register_terminals(dsn: str, terminal_ids) -> None:
    """Put terminal ids in the registry (table ``terminal``), as an operator's import would:
    ingest quarantines messages from ids it does not know (GRIDWATCH_ACCEPT_UNREGISTERED=false)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO terminal (terminal_id, model) VALUES (%s, 'test') ON CONFLICT DO NOTHING",
                            [(t,) for t in terminal_ids])


class Terminal:
    """A bare MQTT publisher playing terminals (QoS 1, waits for each PUBACK).

    Each terminal id it publishes from is registered first (``register=False`` plays a terminal
    the registry does not know)."""

    def __init__(self, settings: Settings, register: bool = True):
        self.dsn = settings.pg_dsn if register else None
        self.registered: set[str] = set()
        self.topics = Topics(settings.topic_prefix)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        settings.secure_mqtt_client(self.client, "test-pub")
        self.client.max_queued_messages_set(0)
        self.client.connect(settings.mqtt_host, settings.mqtt_port)
        self.client.loop_start()

    def publish(self, terminal_id: str, channel: str, payload, wait: bool = True):
        if self.dsn is not None and terminal_id not in self.registered:
            register_terminals(self.dsn, [terminal_id])
            self.registered.add(terminal_id)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(self.topics.terminal(terminal_id, channel), data, qos=1)
        if wait:
            info.wait_for_publish(timeout=10)
        return info

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def fix(seq: int, lon: float = 117.01, lat: float = 28.26, ts: datetime | None = None, **more) -> dict:
    ts = ts or datetime.now(timezone.utc)
    return {"seq": seq, "ts": ts.isoformat(), "lat": lat, "lon": lon, **more}


@pytest.fixture
def terminal(test_settings):
    t = Terminal(test_settings)
    yield t
    t.close()


@pytest.fixture
def ingest(test_settings, tmp_path):
    """``python -m ingest`` running against this test's topics, database and Redis keys."""
    proc = ServiceProcess("ingest", test_settings, tmp_path / "ingest.log").start()
    proc.wait_for_log("subscribed to", "ingest to subscribe", timeout=20)
    yield proc
    proc.stop()


@pytest.fixture
def live(test_settings):
    return redis.Redis.from_url(test_settings.redis_url, decode_responses=True), RedisKeys(test_settings.redis_prefix)


@pytest.fixture(scope="session")
def two_grids(pg_dsn):
    """Grids A and B in the registry (idempotent: shared by the session's tests)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO branch_office (code, name_zh) VALUES ('BR', '测试分局') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO grid_level1 (code, name_zh, branch_code, geom) VALUES ('L1', '测试街道', 'BR', %s)"
                     " ON CONFLICT DO NOTHING", (json.dumps(GRID_A),))
        for code, geom in (("A", GRID_A), ("B", GRID_B)):
            conn.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom) VALUES (%s, %s, 'L1', %s)"
                         " ON CONFLICT DO NOTHING", (code, f"测试社区{code}", json.dumps(geom)))
        conn.execute("INSERT INTO gw_meta (key, value) VALUES ('grid_version', %s)"
                     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (f"test-{time.time()}",))
    return ("A", "B")


def count_fixes(db, terminal_prefix: str) -> int:
    return db.execute("SELECT count(*) FROM gps_fix WHERE terminal_id LIKE %s", (terminal_prefix + "%",)).fetchone()[0]
