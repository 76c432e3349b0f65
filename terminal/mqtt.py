"""The transport: the only module of ``terminal/`` that imports paho-mqtt.

:class:`MqttConnection` is one paho ``Client`` (MQTT v5, QoS 1) driven by a
:class:`~terminal.netloop.NetworkLoop` (one thread for many connections) through paho's
external-loop hooks (``on_socket_open``/``close``/``register_write``/``unregister_write`` +
``loop_read``/``loop_write``/``loop_misc``), with a Last Will and reconnection with jittered
exponential backoff.

Nothing here knows the Gridwatch protocol; ``terminal.client`` does.
"""

from __future__ import annotations

import logging
import random
import selectors
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from terminal.netloop import NetworkLoop, TimerHandle

log = logging.getLogger(__name__)

QOS = 1


@dataclass
class ConnectionOptions:
    host: str
    port: int
    client_id: str
    keepalive: int = 30
    clean_start: bool = False
    session_expiry_s: int = 24 * 3600
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None  # set: TLS to the broker, its certificate and name checked
    will_topic: str | None = None
    will_payload: bytes | None = None
    will_retain: bool = True
    max_inflight: int = 50
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 3.0


@dataclass
class ConnectionStats:
    connects: int = 0
    disconnects: int = 0
    connect_failures: int = 0
    published: int = 0
    puback: int = 0
    received: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class MqttConnection:
    """One MQTT v5 session, QoS 1, serviced by a NetworkLoop. Use only on the loop's thread.

    Callbacks (all on the loop thread): ``on_connected()``, ``on_disconnected(reason: str)``,
    ``on_message(topic: str, payload: bytes)``, ``on_published(mid: int)``.
    """

    def __init__(
        self,
        loop: NetworkLoop,
        options: ConnectionOptions,
        *,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self.loop = loop
        self.options = options
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.on_message = on_message
        self.on_published = on_published
        self.stats = ConnectionStats()
        self.connected = False
        self._wanted = False  # whether we should be connected (reconnect on loss)
        self._suspended = False
        self._retry: TimerHandle | None = None
        self._backoff = options.backoff_min_s
        self._rng = random.Random()
        self._sock: Any = None

        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=paho.MQTTv5,
        )
        c.max_inflight_messages_set(options.max_inflight)
        c.max_queued_messages_set(0)
        c.connect_timeout = options.connect_timeout_s
        if options.username:
            c.username_pw_set(options.username, options.password)
        if options.tls is not None:
            c.tls_set_context(options.tls)
        if options.will_topic is not None:
            c.will_set(options.will_topic, options.will_payload, qos=QOS, retain=options.will_retain)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_socket_register_write
        c.on_socket_unregister_write = self._on_socket_unregister_write
        c.suppress_exceptions = True
        self._client = c

    # --- public (loop thread) ----------------------------------------------
    def open(self) -> None:
        """Start connecting (now) and keep the session up until :meth:`close`."""
        self._wanted = True
        self._suspended = False
        self.loop._add_connection(self)
        self._schedule_connect(0.0)

    def close(self, *, graceful: bool = True) -> None:
        """Stop: a clean DISCONNECT (no Last Will) when ``graceful``, else drop the socket."""
        self._wanted = False
        self._cancel_retry()
        if graceful and self.connected:
            self._client.disconnect()
            # flush the DISCONNECT now: the loop may stop before servicing the write
            self._client.loop_write()
        self._hard_close()
        self.loop._remove_connection(self)

    def drop(self, *, suspend: bool = True) -> None:
        """Cut the network abruptly (the broker sees a lost connection and sends the Last Will).

        With ``suspend`` the connection stays down until :meth:`resume`; otherwise it reconnects
        with backoff like after any loss.
        """
        self._suspended = suspend
        self._cancel_retry()
        self._hard_close()  # on_disconnect schedules the reconnection unless suspended

    def resume(self) -> None:
        self._suspended = False
        if self._wanted and not self.connected and self._retry is None:
            self._backoff = self.options.backoff_min_s
            self._schedule_connect(0.0)

    def set_server(self, host: str, port: int) -> None:
        """Point later (re)connections at another broker address."""
        self.options.host, self.options.port = host, port

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> int:
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        self.stats.published += 1
        return info.mid

    def subscribe(self, topics: list[str]) -> None:
        if topics:
            self._client.subscribe([(t, QOS) for t in topics])

    # --- paho callbacks -------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("%s: connection refused: %s", self.options.client_id, reason_code)
            self.stats.connect_failures += 1
            return
        self.connected = True
        self.stats.connects += 1
        self._backoff = self.options.backoff_min_s
        if self.on_connected is not None:
            self.on_connected()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was = self.connected
        self.connected = False
        if was:
            self.stats.disconnects += 1
        if self.on_disconnected is not None:
            self.on_disconnected(str(reason_code))
        if self._wanted and not self._suspended and self._retry is None:
            self._schedule_connect(self._next_backoff())

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.stats.received += 1
        if self.on_message is not None:
            self.on_message(msg.topic, msg.payload)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self.stats.puback += 1
        if self.on_published is not None:
            self.on_published(mid)

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._sock = sock
        self.loop._watch(sock, self, write=False)

    def _on_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self.loop._unwatch(sock)
        if self._sock is sock:
            self._sock = None

    def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self.loop._watch(sock, self, write=True)

    def _on_socket_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self.loop._watch(sock, self, write=False)

    # --- driven by the loop -----------------------------------------------------
    def _service(self, sock: Any, mask: int) -> None:
        if sock is not self._sock:
            self.loop._unwatch(sock)
            return
        if mask & selectors.EVENT_READ:
            self._client.loop_read()
        if mask & selectors.EVENT_WRITE and self._sock is sock:
            self._client.loop_write()

    def _misc(self) -> None:
        if self._sock is not None:
            self._client.loop_misc()

    # --- internals ------------------------------------------------------------------
    def _hard_close(self) -> None:
        """Cut the socket without a DISCONNECT; paho notices the EOF and cleans up itself."""
        sock = self._sock
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._client.loop_read()  # reads EOF -> paho closes the socket and calls on_disconnect
        if self._sock is sock:  # paho did not see it (should not happen): close it ourselves
            self.loop._unwatch(sock)
            try:
                sock.close()
            except OSError:
                pass
            self._sock = None
            if self.connected:
                self.connected = False
                self.stats.disconnects += 1

    def _next_backoff(self) -> float:
        delay = self._backoff * (0.5 + self._rng.random())
        self._backoff = min(self._backoff * 2, self.options.backoff_max_s)
        return delay

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _schedule_connect(self, delay: float) -> None:
        self._cancel_retry()
        self._retry = self.loop.call_later(delay, self._attempt)

    def _attempt(self) -> None:
        self._retry = None
        if not self._wanted or self._suspended or self.connected:
            return
        o = self.options
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = o.session_expiry_s
        try:
            self._client.connect_async(o.host, o.port, keepalive=o.keepalive, clean_start=o.clean_start, properties=props)
            rc = self._client.reconnect()
        except (OSError, ValueError) as exc:
            rc = None
            log.debug("%s: connect to %s:%s failed: %s", o.client_id, o.host, o.port, exc)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.stats.connect_failures += 1
            if self._sock is not None:
                self._hard_close()
            self._schedule_connect(self._next_backoff())
