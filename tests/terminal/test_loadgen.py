"""The benchmarks' load generator: MQTT packets written by hand must be what a broker and a
subscriber take, and its fixes what a terminal sends."""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from schemas.gps import GpsFix
from terminal import wire
from terminal.loadgen import fix_json, publish_fixes


@given(st.integers(min_value=0, max_value=268_435_455))
def test_varint_round_trips(n):
    encoded = wire.varint(n)
    assert 1 <= len(encoded) <= 4
    assert wire.read_varint(encoded + b"\xff", 0) == (n, len(encoded))
    assert wire.read_varint(encoded[:-1], 0) is None  # cut short: not yet a value


def test_varint_known_values():
    # MQTT 5.0, 1.5.5: the boundaries of 1, 2, 3 and 4 bytes
    assert [wire.varint(n) for n in (0, 127, 128, 16_383, 16_384, 2_097_152)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01", b"\x80\x80\x80\x01"]
    with pytest.raises(ValueError):
        wire.varint(268_435_456)


def test_packets_split_a_stream_and_keep_the_rest():
    one = wire.publish_qos1(wire.topic_field("a/b"), 7, b"x" * 200)  # two-byte length
    stream = bytearray(one + b"\x40\x02\x00\x07" + one[:5])
    got, used = wire.packets(stream)
    assert [kind for kind, _ in got] == [0x32, 0x40]
    assert used == len(one) + 4
    assert wire.puback(got[1][1]) == (7, 0)
    assert wire.puback(b"\x00\x09\x87") == (9, 0x87)  # a refusal carries its reason code


@given(st.integers(min_value=0, max_value=2**53), st.floats(min_value=1.6e9, max_value=2.2e9))
def test_fix_json_is_what_gpsfix_writes(seq, epoch_s):
    text = fix_json(seq, epoch_s)
    fix = GpsFix.model_validate_json(text)
    assert fix.seq == seq
    assert abs(fix.ts.timestamp() - epoch_s) < 1e-5
    # byte for byte what the schema's own serialisation gives (fractional seconds aside)
    assert orjson.loads(fix.model_dump_json(exclude_none=True)) | {"ts": None} == orjson.loads(text) | {"ts": None}


def test_published_fixes_reach_a_subscriber_once_each(broker, prefix):
    """Every message the generator counts as acknowledged arrives, intact, at a QoS 1 subscriber."""
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"lg-sub-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv5)
    if broker.username:
        sub.username_pw_set(broker.username, broker.password)
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(broker.host, broker.port)
    sub.subscribe(f"{prefix}/t/+/gps", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        stats = publish_fixes(3_000, 40, broker.host, broker.port, prefix=prefix, connections=3, batch=2,
                              username=broker.username, password=broker.password, window=500)
        deadline = time.time() + 10
        while len(got) < stats.n_messages and time.time() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert (stats.n_fixes, stats.n_messages, stats.pubacks) == (3_000, 1_500, 1_500)
    fixes = [(topic.split("/")[-2], GpsFix.model_validate(item).seq) for topic, payload in got
             for item in orjson.loads(payload)]
    assert len(fixes) == len(set(fixes)) == 3_000
    assert set(fixes) == set(stats.publish_times)


def test_a_refusing_broker_is_an_error_not_a_count(broker):
    """Without an account the broker refuses the connection: the generator says so."""
    with pytest.raises(wire.WireError, match="refused"):
        publish_fixes(10, 1, broker.host, broker.port, prefix="lg/none", username="nobody", password="wrong")
