"""BulkClient (ingest's paho client) over the real broker: what reaches on_message, and the PUBACKs."""

from __future__ import annotations

import queue
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt_client import BulkClient
from tests.support import wait_until


def _subscriber(settings, topic: str, got: queue.Queue, manual_ack: bool = True) -> BulkClient:
    c = BulkClient(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-bulk-{uuid.uuid4().hex[:8]}",
                   protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    c.on_message = lambda client, userdata, msg: got.put((msg.topic, msg.payload, msg.mid, msg.qos))
    c.on_subscribe = lambda *a: got.put("subscribed")
    settings.secure_mqtt_client(c, "test-bulk")
    c.connect(settings.mqtt_host, settings.mqtt_port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    assert got.get(timeout=10) == "subscribed"
    return c


def _publisher(settings) -> mqtt.Client:
    p = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    settings.secure_mqtt_client(p, "test-pub")
    p.connect(settings.mqtt_host, settings.mqtt_port)
    p.loop_start()
    return p


def test_many_messages_with_and_without_properties_arrive_whole_and_in_order(test_settings):
    """Small and large payloads across many 64 KiB reads (packets cut at every kind of boundary),
    and among them messages with MQTT 5 properties and at QoS 0 (paho's own path): every one
    reaches on_message with its topic, payload, packet id and QoS."""
    topic = f"{test_settings.topic_prefix}/bulk/{uuid.uuid4().hex[:6]}"
    got: queue.Queue = queue.Queue()
    sub = _subscriber(test_settings, topic, got)
    pub = _publisher(test_settings)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("k", "v")
    sent: dict[int, list[bytes]] = {0: [], 1: []}
    for i in range(3000):
        payload = (f"{i}:" + "x" * (70_000 if i % 500 == 7 else i % 50)).encode()
        qos = 0 if i % 700 == 5 else 1
        sent[qos].append(payload)
        pub.publish(topic, payload, qos=qos, properties=props if i % 1000 == 3 else None)
    received = [got.get(timeout=20) for _ in range(3000)]
    sub.ack_many([m[2] for m in received if m[3] == 1])
    pub.loop_stop()
    sub.loop_stop()
    # in order within a QoS; the broker may let a QoS 0 message overtake QoS 1 ones in flight
    assert [p for _, p, _, qos in received if qos == 1] == sent[1]
    assert [p for _, p, _, qos in received if qos == 0] == sent[0]
    assert {t for t, _, _, _ in received} == {topic}
    assert all(mid > 0 for _, _, mid, qos in received if qos == 1)


def test_ack_many_acknowledges_so_the_broker_does_not_redeliver(test_settings):
    """A persistent session that acked everything with ack_many gets nothing again on reconnect;
    one that acked nothing gets every message again."""
    topic = f"{test_settings.topic_prefix}/bulk/{uuid.uuid4().hex[:6]}"
    for acked in (True, False):
        client_id = f"test-bulk-{uuid.uuid4().hex[:8]}"
        got: queue.Queue = queue.Queue()

        def connect() -> BulkClient:
            c = BulkClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)
            c.on_message = lambda client, userdata, msg: got.put(msg.mid)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 60
            test_settings.secure_mqtt_client(c, "test-bulk")
            c.connect(test_settings.mqtt_host, test_settings.mqtt_port, clean_start=False, properties=props)
            c.subscribe(topic + ("/a" if acked else "/n"), qos=1)
            c.loop_start()
            return c

        sub = connect()
        pub = _publisher(test_settings)
        wait_until(lambda: sub.is_connected(), what="subscriber to connect")
        time.sleep(0.3)  # the subscription is in place
        for i in range(50):
            pub.publish(topic + ("/a" if acked else "/n"), str(i).encode(), qos=1).wait_for_publish(5)
        mids = [got.get(timeout=10) for _ in range(50)]
        if acked:
            sub.ack_many(mids)
        time.sleep(0.5)  # the PUBACKs are written
        sub.disconnect()
        sub.loop_stop()
        pub.loop_stop()
        sub = connect()
        again = []
        try:
            while True:
                again.append(got.get(timeout=2))
        except queue.Empty:
            pass
        sub.disconnect()
        sub.loop_stop()
        assert len(again) == (0 if acked else 50), (acked, len(again))


def test_publish_many_qos0_delivers_each_message_whole(test_settings):
    """A bundle of QoS 0 publishes in one write (receipts): every one reaches a subscriber with its
    own topic and payload, short and long (a two-byte remaining length) alike."""
    base = f"{test_settings.topic_prefix}/bundle"
    got: queue.Queue = queue.Queue()
    sub = _subscriber(test_settings, f"{base}/#", got, manual_ack=False)
    sender = _subscriber(test_settings, f"{base}/none", queue.Queue(), manual_ack=False)
    try:
        messages = [(f"{base}/t{i}", (b"r" * (i * 37)) + str(i).encode()) for i in range(300)]
        sender.publish_many_qos0(messages)
        received = [got.get(timeout=10)[:2] for _ in messages]
    finally:
        for c in (sub, sender):
            c.disconnect()
            c.loop_stop()
    assert sorted(received) == sorted(messages)
