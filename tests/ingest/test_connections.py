"""Ingest's timeouts: a server that accepts and never answers fails the call instead of blocking forever."""

from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest
import redis

from ingest.connections import pg_connect, redis_client
from ingest.grids import GridCache
from ingest.service import IngestService


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never sends a byte (a hung PostgreSQL or Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for s in accepted:
        s.close()
    listener.close()


def test_ingest_sessions_carry_the_statement_and_idle_timeouts(test_settings):
    s = test_settings.model_copy(update={"pg_statement_timeout_s": 1.5, "pg_idle_in_transaction_timeout_s": 20.0})
    with pg_connect(s, "gridwatch-ingest-test") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1500ms"
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "20s"
        conn.rollback()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")


def test_every_connection_of_the_service_has_the_timeouts(test_settings):
    s = test_settings.model_copy(update={"pg_statement_timeout_s": 7.0, "redis_socket_timeout_s": 3.0,
                                         "redis_connect_timeout_s": 2.0})
    service = IngestService(s)
    try:
        conn = service.pg.connection()
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "7s"
        conn.rollback()
        kwargs = service.live.r.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (3.0, 2.0)
        with service.grids._connect() as grid_conn:
            assert grid_conn.execute("SHOW statement_timeout").fetchone()[0] == "7s"
    finally:
        service.pg.close()


def test_a_hung_postgresql_fails_the_connect_within_its_timeout(test_settings, silent_server):
    s = test_settings.model_copy(update={"pg_connect_timeout_s": 2})
    dsn = psycopg.conninfo.make_conninfo(s.pg_dsn, host="127.0.0.1", port=silent_server)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        pg_connect(s, "gridwatch-ingest-test", dsn)
    assert time.monotonic() - started < 15  # generous: the point is that it returns at all


def test_a_hung_redis_fails_the_call_within_its_timeout(test_settings, silent_server):
    s = test_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{silent_server}/0", "redis_socket_timeout_s": 1.0})
    client = redis_client(s)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.exists("gw:live:built")
    assert time.monotonic() - started < 15


def test_a_hung_database_leaves_the_grid_cache_with_what_it_had(test_settings, silent_server):
    s = test_settings.model_copy(update={"pg_connect_timeout_s": 1})
    dsn = psycopg.conninfo.make_conninfo(s.pg_dsn, host="127.0.0.1", port=silent_server)
    cache = GridCache(dsn, lambda: pg_connect(s, "gridwatch-ingest-grid", dsn))
    cache.refresh()
    assert cache.locator() is None  # logged and kept (none yet), not blocked
