"""The receive queue between the MQTT network thread and the worker, bounded by count AND bytes.

The broker accepts payloads up to 256 KiB, so a count bound alone (200,000) could hold ~50 GB.
When either bound is reached, ``put`` blocks: the network thread stops reading its socket, TCP
back-pressure reaches the broker, and the broker holds the rest in ingest's persistent session
(nothing is dropped; what is not yet stored is not yet acknowledged either).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from ingest.pipeline import Received

# What one queued message costs beyond its payload and topic: the Received object, its bytes
# and str headers, the deque slot. Rounded up; it only has to keep many tiny messages honest.
PER_MESSAGE_OVERHEAD = 256


def message_cost(msg: Received) -> int:
    return len(msg.payload) + len(msg.topic) + PER_MESSAGE_OVERHEAD


@dataclass
class Budget:
    """The pure accounting: what is held, and whether one more message may join."""

    max_count: int
    max_bytes: int
    count: int = 0
    bytes: int = 0

    def admits(self, cost: int) -> bool:
        # An empty queue takes any message, even one larger than max_bytes: never a deadlock.
        if self.count == 0:
            return True
        return self.count < self.max_count and self.bytes + cost <= self.max_bytes

    def add(self, cost: int) -> None:
        self.count += 1
        self.bytes += cost

    def remove(self, cost: int) -> None:
        self.count -= 1
        self.bytes -= cost


class Inbox:
    """A FIFO: the network thread puts, the worker takes batches (``take_batch``, the batching
    policy under one lock)."""

    def __init__(self, max_count: int, max_bytes: int):
        self.budget = Budget(max_count, max_bytes)
        self._items: deque[tuple[Received, int]] = deque()
        self._cond = threading.Condition()
        self.blocked_s = 0.0  # total time put() waited for room: how long back-pressure held the broker
        self._last_put = 0.0  # received_at of the newest message
        self._wanted: int | None = None  # a batch being collected wakes its taker at this many

    def put(self, msg: Received) -> None:
        cost = message_cost(msg)
        with self._cond:
            if not self.budget.admits(cost):
                started = time.monotonic()
                self._cond.wait_for(lambda: self.budget.admits(cost))
                self.blocked_s += time.monotonic() - started
            self._items.append((msg, cost))
            self.budget.add(cost)
            self._last_put = msg.received_at
            # Wake a taker only when it waits for this: a first message, or a full batch. Waking
            # it per message cost a thread switch per message while a batch was collecting.
            n = len(self._items)
            if n == 1 or (self._wanted is not None and n >= self._wanted):
                self._cond.notify_all()

    def take_batch(self, max_n: int, first_timeout: float, window_s: float, idle_s: float) -> list[Received]:
        """Up to ``max_n`` messages, [] if none came within ``first_timeout`` s. Once the first is
        there, collecting ends when ``max_n`` are queued, the first arrived ``window_s`` ago, or
        nothing arrived for ``idle_s``; meanwhile the taker wakes once per ``idle_s``, not per message."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, first_timeout):
                return []
            # received_at is time.time(); min(): a clock set back meanwhile must not stretch the window
            deadline = min(self._items[0][0].received_at, time.time()) + window_s
            self._wanted = max_n
            try:
                while len(self._items) < max_n:
                    now = time.time()
                    quiet = now - min(self._last_put, now)
                    if quiet >= idle_s or now >= deadline:
                        break
                    self._cond.wait(min(idle_s - quiet, deadline - now))
            finally:
                self._wanted = None
            batch = []
            for _ in range(min(max_n, len(self._items))):
                msg, cost = self._items.popleft()
                self.budget.remove(cost)
                batch.append(msg)
            self._cond.notify_all()  # a put() waiting for room
            return batch

    def qsize(self) -> int:
        return self.budget.count

    @property
    def bytes(self) -> int:
        return self.budget.bytes
