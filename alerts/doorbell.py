"""Ingest's event stream as a doorbell: the engine wakes as soon as an event is committed.

Redis is not the record (the engine reads events from PostgreSQL); a flushed, restarted or
absent Redis only means the engine polls on its timer.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("gridwatch.alerts")

REDIS_DOWN_S = 10.0  # after a Redis error, plain polling this long before trying the stream again


def doorbell_client(url: str, poll_s: float, connect_timeout_s: float = 2.0) -> redis.Redis:
    """A client that fails at once, said explicitly: redis-py 8.1's defaults differ by
    constructor (``Redis()`` retries three times with backoff, 4.5 s against a closed port before
    it fails; ``from_url`` does not), and a retrying doorbell would hold the next SOS that long."""
    return redis.Redis.from_url(url, socket_timeout=poll_s + 5, socket_connect_timeout=connect_timeout_s,
                                retry=Retry(NoBackoff(), 0))


class Doorbell:
    def __init__(self, client: redis.Redis, stream_key: str, poll_s: float, stop_event: threading.Event):
        self.r = client
        self.key = stream_key
        self.poll_s = poll_s
        self.stop_event = stop_event
        self._last_id = "$"  # only what is added after the engine started listening
        self._down_until = 0.0

    def wait(self) -> None:
        """Return once an event was added to the stream, or after at most poll_s."""
        if time.monotonic() < self._down_until:
            self.stop_event.wait(self.poll_s)
            return
        try:
            got = self.r.xread({self.key: self._last_id}, count=1000, block=max(1, int(self.poll_s * 1000)))
            for _stream, entries in got or []:
                if entries:
                    self._last_id = entries[-1][0]
        except redis.RedisError as exc:
            log.warning("Redis doorbell unavailable (%s); polling every %.2f s", exc, self.poll_s)
            self._last_id = "$"
            self._down_until = time.monotonic() + REDIS_DOWN_S
            self.stop_event.wait(self.poll_s)
