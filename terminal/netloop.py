"""One thread, one ``selectors`` selector, many MQTT connections (terminal.mqtt.MqttConnection).

The loop also runs timers and callbacks handed over from other threads, so everything that
touches paho happens on the loop's thread (paho clients are not shared across threads). 1,000
terminals cost one thread instead of the 1,000 that paho's ``loop_start()`` would start. It knows
a connection only by the two hooks it calls (``_service`` on socket events, ``_misc`` for paho's
housekeeping): no paho import here.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from terminal.mqtt import MqttConnection

log = logging.getLogger(__name__)


class TimerHandle:
    __slots__ = ("args", "cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class NetworkLoop:
    """A single-threaded selector loop servicing many :class:`MqttConnection` objects.

    ``call_soon``/``call_later`` must be called on the loop's thread;
    ``call_soon_threadsafe`` from anywhere. ``start()`` runs the loop in a daemon thread,
    ``run()`` in the calling thread until ``stop()``.
    """

    MISC_INTERVAL_S = 1.0

    def __init__(self, name: str = "gw-netloop") -> None:
        self.name = name
        self._sel = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._incoming: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._incoming_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._connections: set[MqttConnection] = set()
        self._running = False
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._next_misc = 0.0
        self._stopped = threading.Event()

    # --- scheduling -------------------------------------------------------
    def in_loop_thread(self) -> bool:
        return self._thread_id == threading.get_ident()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._ready.append((fn, args))

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(0.0, delay), fn, args)
        heapq.heappush(self._timers, (handle.when, next(self._counter), handle))
        return handle

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._incoming_lock:
            self._incoming.append((fn, args))
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def run_sync(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn`` on the loop's thread and return its result (runs inline when already there
        or when the loop is not running)."""
        if self.in_loop_thread() or not self._running:
            return fn(*args)
        done = threading.Event()
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["result"] = fn(*args)
            except BaseException as exc:  # handed back to the caller
                box["error"] = exc
            finally:
                done.set()

        self.call_soon_threadsafe(call)
        if not done.wait(timeout):
            raise TimeoutError(f"{self.name}: call did not run within {timeout} s")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    # --- sockets (called by MqttConnection on the loop thread) -------------
    def _add_connection(self, conn: MqttConnection) -> None:
        self._connections.add(conn)

    def _remove_connection(self, conn: MqttConnection) -> None:
        self._connections.discard(conn)

    def _watch(self, sock: Any, conn: MqttConnection, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        try:
            self._sel.modify(sock, events, conn)
        except KeyError:
            self._sel.register(sock, events, conn)
        except (ValueError, OSError):  # socket already closed
            pass

    def _unwatch(self, sock: Any) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass

    # --- running ----------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def run(self) -> None:
        self._running = True
        self._run()

    def stop(self, join: bool = True, timeout: float = 10.0) -> None:
        def halt() -> None:
            self._running = False

        self.call_soon_threadsafe(halt)
        if join and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._running

    def _run(self) -> None:
        self._thread_id = threading.get_ident()
        self._stopped.clear()
        try:
            while self._running:
                self._once()
        finally:
            self._stopped.set()

    def _once(self) -> None:
        now = time.monotonic()
        if self._ready:
            timeout = 0.0
        else:
            deadline = self._next_misc
            if self._timers:
                deadline = min(deadline, self._timers[0][0])
            timeout = min(max(0.0, deadline - now), self.MISC_INTERVAL_S)
        for key, mask in self._sel.select(timeout):
            conn = key.data
            if conn is None:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
                continue
            conn._service(key.fileobj, mask)
        if self._incoming:
            with self._incoming_lock:
                self._ready.extend(self._incoming)
                self._incoming.clear()
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self._ready.append((handle.fn, handle.args))
        for _ in range(len(self._ready)):
            fn, args = self._ready.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("%s: callback %r failed", self.name, fn)
        if now >= self._next_misc:
            self._next_misc = now + self.MISC_INTERVAL_S
            for conn in list(self._connections):
                conn._misc()
