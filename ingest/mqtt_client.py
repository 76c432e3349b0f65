"""The MQTT side of ingest: the only module that imports paho.

The network callback only enqueues a frozen ``Received``. PUBACKs are held back
(``manual_ack``) until the worker has committed the batch, so a crash or a database outage
never acknowledges what was not stored: the broker redelivers it to the persistent session.

Subscription: plain (``{prefix}/t/+/+``) for a single ingest process, because Mosquitto 2.0
restores a persistent session's plain subscription after a broker restart but not a shared one
(``$share/...``): messages published between the restart and our re-subscribe would be
discarded. ``GRIDWATCH_INGEST_SHARED`` selects the shared group for several processes; then each
member's session expires after ``GRIDWATCH_INGEST_SHARED_SESSION_EXPIRY_S``, so a member that
never returns stops holding a share of the stream. Either way we subscribe again on every
connect, and what a broker restart still loses, terminals re-send (delivery receipts).
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.inbox import Inbox
from ingest.pipeline import Received
from schemas.settings import Settings
from schemas.topics import Topics

log = logging.getLogger("gridwatch.ingest.mqtt")


class MqttReceiver:
    def __init__(self, settings: Settings, inbox: Inbox):
        self.settings = settings
        self.inbox = inbox
        self.topics = Topics(settings.topic_prefix)
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker routes terminals' messages to us from here on
        self.connection = 0  # incremented on every (re)connect
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.ingest_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        settings.secure_mqtt_client(self.client, settings.ingest_client_id)  # its own account, TLS if set
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    @property
    def subscription(self) -> str:
        plain = self.topics.terminal_subscription("+")
        return self.topics.shared(self.settings.ingest_share_group, plain) if self.settings.ingest_shared else plain

    @property
    def session_expiry_s(self) -> int:
        if self.settings.ingest_shared:
            return min(self.settings.mqtt_session_expiry_s, self.settings.ingest_shared_session_expiry_s)
        return self.settings.mqtt_session_expiry_s

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        # Keep the session (and what the broker queues for it) while ingest is away.
        props.SessionExpiryInterval = self.session_expiry_s
        # Let the broker have many unacknowledged messages in flight: batches ack thousands at once.
        props.ReceiveMaximum = 65535
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, messages: list[Received]) -> None:
        """PUBACK what was stored. A message from an earlier connection is not acked: the broker
        has redelivered it on this one, and its old packet id may now name another message."""
        for m in messages:
            if m.qos > 0 and m.connection == self.connection:
                self.client.ack(m.mid, m.qos)

    def publish_receipt(self, terminal_id: str, payload: bytes) -> bool:
        """QoS 0, fire and forget: a receipt that is lost (or not sent while the broker is away)
        costs the terminal one re-send, so it needs no PUBACK, no retry and no queue here."""
        if not self.connected.is_set():
            return False
        info = self.client.publish(self.topics.receipt(terminal_id), payload, qos=0)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        log.info("connected to %s:%s (session present: %s), subscribing %s", self.settings.mqtt_host,
                 self.settings.mqtt_port, flags.session_present, self.subscription)
        self.connection += 1
        self.subscribed.clear()
        client.subscribe(self.subscription, qos=1)
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("broker refused the subscription %s: %s", self.subscription, failed)
        else:
            # Only from here on does the broker route terminals' messages to this group.
            log.info("subscribed to %s", self.subscription)
            self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("disconnected from broker (%s); reconnecting with backoff", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # Blocks when the worker is far behind (the inbox holds ingest_queue_max messages or
        # ingest_queue_max_bytes): the socket stops being read and the broker holds the rest
        # (TCP back-pressure), instead of this process growing without bound or dropping.
        self.inbox.put(Received(msg.topic, msg.payload, time.time(), msg.mid, msg.qos, self.connection))
