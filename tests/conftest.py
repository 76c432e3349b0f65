"""Fixtures shared by every suite: the real services, each test isolated by its own names.

Tests talk to the real PostgreSQL/TimescaleDB, Redis and Mosquitto that ``./gw setup``
starts (or whatever GRIDWATCH_* points at). A service that does not answer fails the run at
once with a message naming it — never a silent skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import psycopg
import pytest
import redis

from broker.dev import dev_settings
from schemas.settings import Settings
from tests.support import migrated_database


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    s = dev_settings(Settings())  # the broker admits no anonymous client
    pg = psycopg.conninfo.conninfo_to_dict(s.pg_dsn)
    r = urlparse(s.redis_url)
    for name, host, port in (
        ("PostgreSQL/TimescaleDB", pg.get("host", "127.0.0.1"), int(pg.get("port", 5432))),
        ("Redis", r.hostname, r.port or 6379),
        ("Mosquitto (the project broker)", s.mqtt_host, s.mqtt_port),
    ):
        if not _reachable(host, port):
            pytest.fail(f"{name} is not reachable at {host}:{port}: run `./gw setup` (or set GRIDWATCH_*)", pytrace=False)
    return s


@pytest.fixture(scope="session")
def pg_dsn(base_settings: Settings):
    """A fresh, migrated database for this test session on the project's cluster; dropped after."""
    with migrated_database(base_settings.pg_dsn, f"gw_test_{os.getpid()}_{uuid.uuid4().hex[:6]}",
                           base_settings.retention_days) as dsn:
        yield dsn


@pytest.fixture
def redis_prefix(base_settings: Settings):
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"gwtest:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(base_settings.redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so concurrent tests never see each other's messages."""
    return f"test/{uuid.uuid4().hex[:8]}/gw/v1"


@pytest.fixture
def test_settings(base_settings: Settings, pg_dsn: str, redis_prefix: str, topic_prefix: str) -> Settings:
    """Settings for one test: its own topics, Redis keys, ingest client and share group."""
    tag = uuid.uuid4().hex[:8]
    return base_settings.model_copy(update={
        "pg_dsn": pg_dsn, "redis_prefix": redis_prefix, "topic_prefix": topic_prefix,
        "ingest_client_id": f"gw-test-ingest-{tag}", "ingest_share_group": f"test{tag}",
        "ingest_batch_ms": 50, "stats_interval_s": 2.0, "grid_reload_s": 1.0,
    })


@pytest.fixture
def db(pg_dsn):
    """An autocommit connection to this session's database (or a test's own, where it overrides pg_dsn)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn
