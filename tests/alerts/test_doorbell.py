"""The alerts engine's doorbell on the real Redis: it wakes on an event added to ingest's stream,
waits at most its poll interval otherwise, and falls back to plain polling when Redis is away."""

from __future__ import annotations

import socket
import threading
import time

import redis

from alerts.doorbell import Doorbell, doorbell_client
from schemas.topics import RedisKeys


def timed(bell: Doorbell) -> float:
    started = time.monotonic()
    bell.wait()
    return time.monotonic() - started


def test_an_event_added_to_the_stream_rings_at_once(base_settings, redis_prefix):
    client = redis.Redis.from_url(base_settings.redis_url)
    key = RedisKeys(redis_prefix).events
    bell = Doorbell(client, key, poll_s=5.0, stop_event=threading.Event())
    threading.Timer(0.3, lambda: client.xadd(key, {"kind": "sos"})).start()
    assert 0.2 < timed(bell) < 2.0  # woken by the event, well before the 5 s poll
    client.xadd(key, {"kind": "report"})  # added while nobody listened: the next wait sees it at once
    assert timed(bell) < 0.5


def test_without_events_it_waits_its_poll_interval(base_settings, redis_prefix):
    bell = Doorbell(redis.Redis.from_url(base_settings.redis_url), RedisKeys(redis_prefix).events, poll_s=0.4,
                    stop_event=threading.Event())
    assert 0.35 < timed(bell) < 2.0


def test_with_redis_away_it_polls_on_its_timer_and_does_not_raise():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bell = Doorbell(doorbell_client(f"redis://127.0.0.1:{port}/0", 0.3), "gw:stream:events", poll_s=0.3,
                    stop_event=threading.Event())
    assert 0.25 < timed(bell) < 1.0  # the refused connection (no retries), then one poll interval
    assert 0.25 < timed(bell) < 1.0  # marked down: no new connection attempt, just the interval
