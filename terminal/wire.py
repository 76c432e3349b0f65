"""MQTT 5 packets as bytes, for the load generator (terminal/loadgen.py): no client library.

A benchmark's publisher must not be what it measures. Through paho, publishing one QoS 1 fix
costs about 80 µs of CPU (a whole core at 12,000 fixes/s), so on two cores a "full load" run
measured mostly the publisher's share of the CPU. Pre-encoded packets written in bulk cost a
few µs each. Only what the load generator sends and reads is here: CONNECT, CONNACK, PUBLISH
QoS 1, PUBACK and DISCONNECT (MQTT 5.0, sections 3.1-3.4 and 3.14).
"""

from __future__ import annotations

import struct

PROTOCOL_LEVEL = 5
CONNACK, PUBLISH_QOS1, PUBACK, DISCONNECT = 0x20, 0x32, 0x40, 0xE0


class WireError(Exception):
    """The broker answered with something the load generator cannot go on from."""


def varint(n: int) -> bytes:
    """MQTT's Variable Byte Integer (1-4 bytes, 7 bits each, high bit = more)."""
    if not 0 <= n <= 268_435_455:
        raise ValueError(f"{n} does not fit a variable byte integer")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when ``buf`` ends inside it."""
    value, shift = 0, 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise WireError("malformed variable byte integer")


def _text(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def connect(client_id: str, username: str | None = None, password: str | None = None, keepalive_s: int = 600) -> bytes:
    """CONNECT with clean start and no session kept (the load generator resends nothing)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _text("MQTT") + bytes([PROTOCOL_LEVEL, flags]) + struct.pack("!H", keepalive_s) + varint(0)
    body += _text(client_id)
    if username is not None:
        body += _text(username)
    if password is not None:
        body += _text(password)
    return bytes([0x10]) + varint(len(body)) + body


def publish_qos1(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """PUBLISH, QoS 1, no properties. ``topic`` already carries its 2-byte length (``topic_field``)."""
    remaining = len(topic) + 3 + len(payload)  # packet id (2) + properties length (1, zero)
    return b"".join((b"\x32", varint(remaining), topic, struct.pack("!HB", packet_id, 0), payload))


def topic_field(topic: str) -> bytes:
    """A topic as a PUBLISH carries it, encoded once per terminal rather than once per message."""
    return _text(topic)


DISCONNECT_NORMAL = bytes([DISCONNECT, 0])


def packets(buf: bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """The complete packets at the start of ``buf`` as (first byte, body), and how many bytes they took."""
    out, pos = [], 0
    while pos < len(buf):
        head = read_varint(buf, pos + 1)
        if head is None:
            break
        length, start = head
        if start + length > len(buf):
            break
        out.append((buf[pos], bytes(buf[start:start + length])))
        pos = start + length
    return out, pos


def connack_reason(body: bytes) -> int:
    """The CONNACK's reason code (0 = accepted)."""
    if len(body) < 2:
        raise WireError(f"CONNACK too short ({len(body)} bytes)")
    return body[1]


def puback(body: bytes) -> tuple[int, int]:
    """(packet id, reason code) of a PUBACK; no reason code means 0 (success)."""
    if len(body) < 2:
        raise WireError(f"PUBACK too short ({len(body)} bytes)")
    return struct.unpack_from("!H", body)[0], body[2] if len(body) > 2 else 0
