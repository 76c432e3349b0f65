"""Many terminals, one network thread.

Each terminal keeps its own MQTT session (client id = terminal id, its own Last Will): identity is
the topic and the client id, so terminals never share a connection. What they share is the
:class:`~terminal.netloop.NetworkLoop`: one thread and one epoll selector service every socket,
instead of the one thread per client that paho's ``loop_start()`` would cost.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from terminal.client import CommandHandler, TerminalClient, TerminalConfig
from terminal.netloop import NetworkLoop

log = logging.getLogger(__name__)


@dataclass
class FleetTotals:
    terminals: int
    connected: int
    fixes: int
    events: int
    acks: int
    commands: int
    refused: int
    buffered: int  # made while offline, not sent yet
    unconfirmed: int  # sent, no receipt yet
    resent: int  # re-sends of messages no receipt named in time
    in_flight: int
    buffer_dropped: int
    connects: int
    disconnects: int


class TerminalFleet:
    """A set of :class:`TerminalClient` sharing one :class:`NetworkLoop`.

    ``add()`` terminals, ``start()`` (connects them at ``connect_rate`` per second), drive them
    from the loop (``loop.call_later``) or from any thread, ``stop()``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        passwords: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        connect_rate: float = 1000.0,
        name: str = "gw-fleet",
    ) -> None:
        """A terminal in ``passwords`` logs in as itself (its id, its password), as a real one
        does; any other as ``username``/``password`` (a test run's shared account), if given."""
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.passwords = dict(passwords or {})
        self.tls = tls
        self.connect_rate = connect_rate
        self.loop = NetworkLoop(name=name)
        self.clients: dict[str, TerminalClient] = {}
        self._started = False

    def add(self, config: TerminalConfig, *, on_command: CommandHandler | None = None, **kwargs) -> TerminalClient:
        if config.terminal_id in self.clients:
            raise ValueError(f"terminal {config.terminal_id} is already in the fleet")
        client = TerminalClient(
            config,
            host=self.host,
            port=self.port,
            **self._login(config.terminal_id),
            tls=self.tls,
            loop=self.loop,
            on_command=on_command,
            **kwargs,
        )
        self.clients[config.terminal_id] = client
        if self._started:
            self.loop.call_soon_threadsafe(client.conn.open)
            client._started = True
        return client

    def _login(self, terminal_id: str) -> dict:
        if terminal_id in self.passwords:
            return {"username": terminal_id, "password": self.passwords[terminal_id]}
        return {"username": self.username, "password": self.password}

    def start(self) -> None:
        """Start the loop thread and open every session, ``connect_rate`` per second."""
        self.loop.start()
        self._started = True
        clients = list(self.clients.values())
        batch = max(1, int(self.connect_rate / 20))  # 20 batches a second

        def open_batch(i: int) -> None:
            for c in clients[i : i + batch]:
                c.conn.open()
                c._started = True
            if i + batch < len(clients):
                self.loop.call_later(0.05, open_batch, i + batch)

        if clients:
            self.loop.call_soon_threadsafe(open_batch, 0)

    def wait_connected(self, n: int | None = None, timeout: float = 60.0) -> bool:
        """Until ``n`` (default: all) terminals are connected and flushed."""
        want = len(self.clients) if n is None else n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected_count() >= want:
                return True
            time.sleep(0.05)
        return False

    def connected_count(self) -> int:
        return sum(1 for c in self.clients.values() if c._ready)

    def totals(self) -> FleetTotals:
        cs = list(self.clients.values())
        return FleetTotals(
            terminals=len(cs),
            connected=sum(1 for c in cs if c._ready),
            fixes=sum(c.stats.fixes for c in cs),
            events=sum(c.stats.events for c in cs),
            acks=sum(c.stats.acks for c in cs),
            commands=sum(c.stats.commands for c in cs),
            refused=sum(c.stats.invalid_commands for c in cs),
            buffered=sum(c.buffer.unsent for c in cs),
            unconfirmed=sum(c.buffer.unconfirmed for c in cs),
            resent=sum(c.buffer.stats.resent for c in cs),
            in_flight=sum(len(c._unacked) for c in cs),
            buffer_dropped=sum(c.buffer.dropped for c in cs),
            connects=sum(c.conn.stats.connects for c in cs),
            disconnects=sum(c.conn.stats.disconnects for c in cs),
        )

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn`` on the fleet's loop thread (from any thread)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, *, graceful: bool = True, timeout: float = 10.0) -> None:
        """Graceful: every connected terminal publishes retained ``online: false``, the fleet waits
        for the PUBACKs (up to ``timeout``), then each sends DISCONNECT. Otherwise: sockets cut."""
        if not self._started:
            return
        cs = list(self.clients.values())
        if graceful:
            self.loop.run_sync(lambda: [c._publish_status(False) for c in cs])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(c._unacked and c.conn.connected for c in cs):
                time.sleep(0.05)

        def close_all() -> None:
            for c in cs:
                c.conn.close(graceful=graceful)
                c._started = False
                c.buffer.close()

        self.loop.run_sync(close_all, timeout=timeout + 30)
        self.loop.stop()
        self._started = False
