"""Ingest's connections to PostgreSQL and Redis, each with timeouts: a hung server fails a call,
it never blocks the worker forever (the worker then retries or rebuilds, as for an outage)."""

from __future__ import annotations

import psycopg
import redis

from schemas.settings import Settings


def pg_connect(settings: Settings, application_name: str, dsn: str | None = None) -> psycopg.Connection:
    """A connection with connect, statement and idle-in-transaction timeouts (set per session,
    so they hold whatever the DSN or the server's defaults say)."""
    conn = psycopg.connect(dsn or settings.pg_dsn, application_name=application_name,
                           connect_timeout=settings.pg_connect_timeout_s)
    try:
        conn.execute("SELECT set_config('statement_timeout', %s, false),"
                     " set_config('idle_in_transaction_session_timeout', %s, false)",
                     (_ms(settings.pg_statement_timeout_s), _ms(settings.pg_idle_in_transaction_timeout_s)))
        conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=settings.redis_connect_timeout_s,
                                socket_timeout=settings.redis_socket_timeout_s)


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"
