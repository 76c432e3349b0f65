"""Per-process connections, opened lazily (never at import) and re-opened after a fork.

Nothing here is state another gunicorn worker needs: a worker holds only its own
connection pool and Redis client; every shared cache lives in Redis.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from psycopg_pool import ConnectionPool

from schemas.settings import Settings
from schemas.topics import RedisKeys

log = logging.getLogger("gridwatch.dashboard")
T = TypeVar("T")


class ServiceUnavailable(RuntimeError):
    """A backing service (PostgreSQL or Redis) cannot be reached; the message names it."""


class Deps:
    """Settings plus lazily opened PostgreSQL pool and Redis client for this process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.keys = RedisKeys(settings.redis_prefix)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._pool: ConnectionPool | None = None
        self._redis: redis.Redis | None = None

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # After a fork the parent's sockets are not ours: start afresh (do not close them).
            self._pool = None
            self._redis = None
            self._pid = os.getpid()

    @property
    def pool(self) -> ConnectionPool:
        with self._lock:
            self._check_fork()
            if self._pool is None:
                pool = ConnectionPool(
                    self.settings.pg_dsn,
                    min_size=1,
                    max_size=4,
                    open=False,
                    name="dashboard",
                    timeout=5.0,
                    kwargs={"autocommit": True},
                )
                try:
                    pool.open(wait=True, timeout=5.0)
                except Exception as exc:  # PoolTimeout carries no reason; name the service
                    pool.close()
                    raise ServiceUnavailable(f"PostgreSQL not reachable at {_safe_dsn(self.settings.pg_dsn)}: {exc}") from exc
                self._pool = pool
            return self._pool

    @property
    def redis(self) -> redis.Redis:
        with self._lock:
            self._check_fork()
            if self._redis is None:
                self._redis = redis.Redis.from_url(
                    self.settings.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0, decode_responses=False
                )
            return self._redis

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            if self._redis is not None:
                self._redis.close()
            self._pool = None
            self._redis = None

    # --- short server-side cache, shared by every worker through Redis ---
    def cache_key(self, name: str) -> str:
        return f"{self.settings.redis_prefix}dash:cache:{name}"

    def cached(self, name: str, ttl_s: float, compute: Callable[[], T]) -> T:
        """JSON value of ``compute()`` cached in Redis for ``ttl_s`` seconds under ``name``."""
        key = self.cache_key(name)
        raw = self.redis.get(key)
        if raw is not None:
            return json.loads(raw)
        value = compute()
        self.redis.set(key, json.dumps(value, ensure_ascii=False, separators=(",", ":")), px=int(ttl_s * 1000))
        return value

    def cache_drop(self, *names: str) -> None:
        if names:
            self.redis.delete(*(self.cache_key(n) for n in names))


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def to_jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
