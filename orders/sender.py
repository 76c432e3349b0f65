"""How the dispatcher publishes: the ``OrderSender`` protocol and its paho-mqtt v5 implementation
(the only paho import of orders/).

``publish_all`` returns only when the broker has acknowledged (PUBACK, QoS 1) every message, and
raises ``SendFailed`` otherwise: the dispatcher marks recipients ``sent`` only after it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from schemas.settings import Settings

log = logging.getLogger("gridwatch.orders.mqtt")


class SendFailed(RuntimeError):
    """Not every message was acknowledged by the broker (not connected, refused, or timed out)."""


class OrderSender(Protocol):
    def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message (QoS 1); return after its PUBACK, else raise SendFailed."""

    def publish_all(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Publish many, each as soon as it is produced (pipelined); return how many after every
        PUBACK, else raise SendFailed."""

    def close(self) -> None: ...


class MqttOrderSender:
    """paho-mqtt v5, client id ``Settings.orders_client_id``, persistent session (clean_start off,
    session expiry ``Settings.mqtt_session_expiry_s``), QoS 1, automatic reconnect with backoff."""

    def __init__(self, settings: Settings, timeout_s: float = 15.0):
        self.settings = settings
        self.timeout_s = timeout_s
        self.connected = threading.Event()
        self._closing = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.orders_client_id,
                                  protocol=mqtt.MQTTv5)
        settings.secure_mqtt_client(self.client, settings.orders_client_id)  # its own account, TLS if set
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(2000)  # a 1,000-terminal order goes out in one window
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def start(self, wait_s: float = 30.0) -> bool:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        return self.connected.wait(wait_s)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the dispatcher's connection: %s", reason_code)
            return
        log.info("connected to %s:%s as %s (session present: %s)", self.settings.mqtt_host, self.settings.mqtt_port,
                 self.settings.orders_client_id, flags.session_present)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if self._closing:
            return
        # the broker disconnects an account whose password was rotated: reconnect with the new one
        # (paho calls this after a refused CONNACK too, so a login refused meanwhile is re-read here)
        self.settings.refresh_mqtt_login(client, self.settings.orders_client_id)
        log.warning("disconnected from the broker (%s); reconnecting with backoff", reason_code)

    def publish(self, topic: str, payload: bytes) -> None:
        self.publish_all([(topic, payload)])

    def publish_all(self, messages: Iterable[tuple[str, bytes]]) -> int:
        if not self.connected.is_set():
            raise SendFailed("not connected to the broker")
        # Each copy goes to paho's network thread as soon as it is signed: the first terminals
        # have the order while later copies are still being signed.
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + self.timeout_s + len(infos) / 1000
        for info in infos:
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS,):
                raise SendFailed(f"publish refused: {mqtt.error_string(info.rc)}")
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                raise SendFailed(str(exc)) from None
            if not info.is_published():
                raise SendFailed(f"no PUBACK within {self.timeout_s:.0f} s")
        return len(infos)

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
