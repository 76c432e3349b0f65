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
import struct
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.inbox import Inbox
from ingest.pipeline import Received
from schemas.settings import Settings
from schemas.topics import Topics

log = logging.getLogger("gridwatch.ingest.mqtt")

READ_CHUNK = 65536
# Packets read per wake-up at most, so that PUBACKs and pings are written in between (~10 ms of messages)
DRAIN_PACKETS = 256
# A wake-up that found fewer packets than this pauses COALESCE_S before the next select(): at a
# few thousand messages/s each one otherwise arrives alone and costs a select(), a recv() and a
# pass through paho's loop. The pause lets them gather in the socket buffer (2 ms of latency at
# most; under load wake-ups find many packets and never pause).
COALESCE_BELOW = 32
COALESCE_S = 0.002
_PUBACK = struct.Struct("!BBH")  # MQTT 5 PUBACK, reason "success" left out: type, remaining length 2, packet id
# The command paho files a bundle of ready-made packets under: none of the types its writer treats
# specially after a write (a QoS 0 PUBLISH's on_publish and MessageInfo, DISCONNECT's close).
_BUNDLE = 0


@dataclass(frozen=True, slots=True)
class Publish:
    """What on_message reads of a paho MQTTMessage, for the lean path below."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool
    retain: bool
    properties: None = None


class BulkClient(mqtt.Client):
    """paho's client with the two per-message costs ingest measured taken out (see README, "Ingest
    performance"); what goes over the wire is unchanged.

    - Reading: paho reads one packet per select() and each packet with 3-4 recv() calls (1 byte for
      the type, 1 byte at a time for the length). Here recv() fills a 64 KiB buffer that the packet
      reader is served from, and ``loop_read`` goes on while data is there: one select() and one
      recv() for many messages. A run of whole lean packets in that buffer is framed and delivered
      by ``_read_lean_publishes`` without paho's per-packet state machine (5.9 -> 2.6 µs of CPU a
      message draining 100,000 fixes).
    - Acknowledging: ``ack()`` queues one 4-byte packet and wakes the network thread (a send() on
      its socket pair) per message; ``ack_many`` queues a whole batch's PUBACKs as one write.
    - Publishing receipts: ``publish()`` costs tens of µs per message (a MessageInfo, a queued
      packet and a wake-up each); ``publish_many_qos0`` queues a whole round of receipts as one write.
    - Decoding: for a QoS 1 PUBLISH without MQTT 5 properties (what terminals send), a few slices
      replace paho's struct formats, its Properties object, its MQTTMessage (which builds a
      threading.Condition per message) and its per-message topic-filter match; on_message gets a
      ``Publish`` with the same attributes. Anything else takes paho's own path.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rbuf_sock = None  # the socket the buffer came from: a reconnect starts afresh
        self._reads_left = DRAIN_PACKETS

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rbuf_sock is not self._sock or self._rpos >= len(self._rbuf):
            self._rbuf, self._rpos, self._rbuf_sock = b"", 0, self._sock
            if self._reads_left <= 0:
                # enough for this wake-up: paho keeps a half-read packet, select() wakes us for the rest
                raise BlockingIOError()
            data = super()._sock_recv(READ_CHUNK)  # raises BlockingIOError when nothing is there
            if len(data) <= bufsize:
                return data  # b"" (connection closed) included
            self._rbuf = data
        chunk = self._rbuf[self._rpos:self._rpos + bufsize]
        self._rpos += len(chunk)
        return chunk

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        # Never return with data in our buffer: select() cannot see it, and it would wait there.
        self._reads_left = DRAIN_PACKETS
        while True:
            rc = super().loop_read(max_packets)
            self._reads_left -= 1
            if not rc and self._sock is not None and self._rbuf_sock is self._sock and self._in_packet["command"] == 0:
                self._read_lean_publishes()
            if rc or self._sock is None or self._rpos >= len(self._rbuf):
                if not rc and DRAIN_PACKETS - self._reads_left < COALESCE_BELOW:
                    time.sleep(COALESCE_S)
                return rc

    def _read_lean_publishes(self) -> None:
        """Deliver the whole lean PUBLISH packets waiting in the buffer, straight from it.

        paho reads a packet in 3-4 _sock_recv calls through a state machine that builds a dict
        and a bytearray per packet; for a run of complete lean packets this loop does the same
        framing in a few slices. It stops at anything else (another packet type, a packet cut at
        the end of the buffer, properties), and paho's reader takes it from there; it runs only
        when paho is between packets, so the two never share one."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        delivered = 0
        while pos < end and delivered < self._reads_left:
            header = buf[pos]
            if (header & 0xF6) != 0x32:  # not a QoS 1 PUBLISH (DUP and RETAIN may be set)
                break
            length, shift, i = 0, 0, pos + 1
            while i < end and i - pos <= 4:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if byte < 0x80:
                    break
            else:
                break  # the length is cut off, or malformed: paho's reader decides
            if i + length > end:
                break
            message = self._lean_publish(header, buf[i:i + length])
            if message is None:
                break
            pos = i + length
            self._rpos = pos  # before the callback: the packet is consumed whatever it does
            self._deliver(message)
            delivered += 1
        if delivered:
            self._reads_left -= delivered
            with self._msgtime_mutex:
                self._last_bytes_received = mqtt.time_func()  # what paho's reader records: keep-alive

    def _lean_publish(self, header: int, packet: bytes) -> Publish | None:
        """The Publish of a QoS 1 PUBLISH packet's body without MQTT 5 properties (what terminals
        send), read in a few slices; None for anything paho must read itself."""
        if (header & 0x06) != 0x02 or not self._manual_ack or self._protocol != mqtt.MQTTv5:
            return None
        end = 2 + int.from_bytes(packet[0:2], "big")
        if len(packet) < end + 3 or packet[end + 2] != 0:  # short (paho reports it) or has properties
            return None
        try:
            topic = packet[2:end].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Publish(topic, bytes(packet[end + 3:]), int.from_bytes(packet[end:end + 2], "big"), 1,
                       bool(header & 0x08), bool(header & 0x01))

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        message = self._lean_publish(self._in_packet["command"], self._in_packet["packet"])
        if message is None:
            return super()._handle_publish()
        self._deliver(message)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _deliver(self, message: Publish) -> None:
        with self._callback_mutex:
            on_message = self.on_message
        if on_message:
            with self._in_callback_mutex:
                try:
                    on_message(self, self._userdata, message)
                except Exception as err:  # paho's rule for callbacks, kept
                    self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                    if not self.suppress_exceptions:
                        raise

    def message_callback_add(self, sub, callback) -> None:
        raise NotImplementedError("BulkClient delivers every message to on_message")

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK these QoS 1 packet ids (manual_ack) in one queued write."""
        if mids:
            self._packet_queue(mqtt.PUBACK, b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids), 0, 0)

    def publish_many_qos0(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish these (topic, payload) pairs at QoS 0 without properties (MQTT 5) in one queued write."""
        if messages:
            self._packet_queue(_BUNDLE, b"".join(self._qos0_publish(t.encode(), p) for t, p in messages), 0, 0)

    def _qos0_publish(self, topic: bytes, payload: bytes) -> bytes:
        packet = bytearray((mqtt.PUBLISH,))
        self._pack_remaining_length(packet, 2 + len(topic) + 1 + len(payload))  # topic, properties length 0
        return b"".join((packet, struct.pack("!H", len(topic)), topic, b"\x00", payload))


class MqttReceiver:
    def __init__(self, settings: Settings, inbox: Inbox):
        self.settings = settings
        self.inbox = inbox
        self.topics = Topics(settings.topic_prefix)
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker routes terminals' messages to us from here on
        self.connection = 0  # incremented on every (re)connect
        self.client = BulkClient(
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
        current = self.connection
        self.client.ack_many([m.mid for m in messages if m.qos == 1 and m.connection == current])
        for m in messages:
            if m.qos == 2 and m.connection == current:  # terminals publish QoS 1; a QoS 2 one still gets its PUBCOMP
                self.client.ack(m.mid, m.qos)

    def publish_receipts(self, receipts: list[tuple[str, bytes]]) -> int:
        """Publish (terminal_id, payload) receipts; how many went out (none while disconnected).

        QoS 0, fire and forget: a receipt that is lost (or not sent while the broker is away)
        costs the terminal one re-send, so it needs no PUBACK, no retry and no queue here."""
        if not self.connected.is_set() or not receipts:
            return 0
        self.client.publish_many_qos0([(self.topics.receipt(tid), payload) for tid, payload in receipts])
        return len(receipts)

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
        # the broker disconnects an account whose password was rotated: reconnect with the new one
        # (paho calls this after a refused CONNACK too, so a login refused meanwhile is re-read here)
        self.settings.refresh_mqtt_login(client, self.settings.ingest_client_id)
        log.warning("disconnected from broker (%s); reconnecting with backoff", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # Blocks when the worker is far behind (the inbox holds ingest_queue_max messages or
        # ingest_queue_max_bytes): the socket stops being read and the broker holds the rest
        # (TCP back-pressure), instead of this process growing without bound or dropping.
        self.inbox.put(Received(msg.topic, msg.payload, time.time(), msg.mid, msg.qos, self.connection))
