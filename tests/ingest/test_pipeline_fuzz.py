"""Fuzz of ingest's decode path: whatever a terminal sends becomes rows or dead letters, never an exception.

Issue 14 found two payloads (an integer over 64 bits, nesting 300 deep, both in unknown fields)
that raised out of decode and put ingest in a crash loop. These properties run the unguarded
``decode`` so a new cause is found here, not hidden by the per-message guard, and check that
what it returns can be stored (valid UTF-8, no NUL, ``extra`` readable by orjson).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.pipeline import Decoded, Limits, Received, decode
from schemas.topics import Topics

TOPICS = Topics("gw/v1")
LIMITS = Limits()
ARRIVAL = datetime(2026, 11, 25, 0, 5, tzinfo=timezone.utc).timestamp()
TS = datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc).isoformat()

# One valid message per channel (and per event kind worth reaching): mutations start from these,
# so the fuzz gets past the parser into validation, extra fields and row building.
BASES = {
    "gps": [{"seq": 1, "ts": TS, "lat": 28.26, "lon": 117.03, "battery_pct": 80}],
    "event": [
        {"seq": 1, "ts": TS, "kind": "sos"},
        {"seq": 2, "ts": TS, "kind": "heartbeat", "body": {"battery_pct": 50}},
        {"seq": 3, "ts": TS, "kind": "report", "lat": 28.2, "lon": 117.0,
         "body": {"report_id": "R1", "category": "tip", "text": "x"}},
        {"seq": 4, "ts": TS, "kind": "patrol.ended", "body": {"patrol_id": "P1", "distance_m": 10.5}},
    ],
    "ack": [{"command_id": "4b0f7c1e-8e53-4a5e-9d7c-0d7f2a1c3b11", "ts": TS, "status": "done", "note": "ok"}],
    "status": [{"online": True, "ts": TS}, {"online": False}],
}

HUGE_INTS = st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**40, -(10**100)]) | st.integers()
ODD_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "\udfff", "\u202e", "\ufeff", "𝔘𝔫𝔦", "\U0010ffff", "", " " * 10])
SCALARS = st.none() | st.booleans() | HUGE_INTS | st.floats(allow_nan=True, allow_infinity=True) | ODD_TEXT
JUNK = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_TEXT, inner, max_size=4),
                    max_leaves=12)
FIELDS = ["seq", "ts", "lat", "lon", "kind", "body", "terminal_id", "acc_m", "speed_mps", "heading_deg", "battery_pct",
          "command_id", "status", "note", "online", "text", "x"]


def nested(depth: int, leaf: str = "0") -> str:
    """JSON text nested ``depth`` arrays deep (built as text: json.dumps would hit Python's own limit)."""
    return "[" * depth + leaf + "]" * depth


@st.composite
def payloads(draw) -> tuple[str, bytes]:
    channel = draw(st.sampled_from(sorted(BASES)))
    doc = dict(draw(st.sampled_from(BASES[channel])))
    for _ in range(draw(st.integers(0, 3))):  # change or add fields, known names and unknown
        doc[draw(st.sampled_from(FIELDS) | ODD_TEXT)] = draw(JUNK)
    if "body" in doc and isinstance(doc["body"], dict) and draw(st.booleans()):
        doc["body"] = {**doc["body"], draw(ODD_TEXT): draw(JUNK)}
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True)
    depth = draw(st.sampled_from([0, 0, 5, 64, 200, 254, 255, 300, 1100]))
    if depth:  # a deep unknown field, in the message or in its body
        text = text[:-1] + (", " if len(doc) else "") + f'"deep": {nested(depth)}' + "}"
    shape = draw(st.sampled_from(["one", "array", "junk_array", "truncated"]))
    if shape == "array":
        text = "[" + ",".join([text] * draw(st.integers(1, 5))) + "]"
    elif shape == "junk_array":
        text = json.dumps(draw(st.lists(JUNK, max_size=20)))
    elif shape == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
    return channel, text.encode("utf-8", "surrogatepass")


def assert_storable(out: Decoded) -> None:
    for row in [*out.fixes, *out.events]:
        if row.extra is not None:
            orjson.loads(row.extra)  # every reader of extra can take it back
        for text in (row.extra, getattr(row, "body", None), row.terminal_id):
            if text is not None:
                text.encode("utf-8")  # a lone surrogate would raise in the driver
                assert "\x00" not in text and "\\u0000" not in text
    for ack in out.acks:
        if ack.note is not None:
            ack.note.encode("utf-8")
            assert "\x00" not in ack.note
    for d in out.dead:
        d.detail.encode("utf-8")
        assert "\x00" not in d.detail


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
@example(("event", f'{{"seq":1,"ts":"{TS}","kind":"sos","x":18446744073709551616}}'.encode()))
@example(("gps", f'{{"seq":1,"ts":"{TS}","lat":1,"lon":1,"x":{nested(300)}}}'.encode()))
def test_json_ish_payloads_give_storable_rows_or_dead_letters(case):
    channel, payload = case
    out = Decoded()
    decode(Received(f"gw/v1/t/T1/{channel}", payload, ARRIVAL), TOPICS, LIMITS, out)  # must not raise
    assert len(out) >= 1
    assert_storable(out)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(BASES)), st.integers(0, 2000), st.sampled_from(["[", "{\"a\":"]))
def test_any_nesting_depth_gives_rows_or_dead_letters(channel, depth, opener):
    closer = "]" if opener == "[" else "}"
    base = json.dumps(BASES[channel][0])
    payload = (base[:-1] + f', "x": {opener * depth}0{closer * depth}' + "}").encode()
    out = Decoded()
    decode(Received(f"gw/v1/t/T1/{channel}", payload, ARRIVAL), TOPICS, LIMITS, out)
    assert len(out) >= 1
    assert_storable(out)


def test_a_message_with_a_huge_int_is_still_checked_for_its_time():
    far = (datetime.fromtimestamp(ARRIVAL, timezone.utc) + timedelta(days=3)).isoformat()
    out = Decoded()
    decode(Received("gw/v1/t/T1/event", f'{{"seq":1,"ts":"{far}","kind":"sos","x":{2**70}}}'.encode(), ARRIVAL),
           TOPICS, LIMITS, out)
    assert out.events == [] and [d.reason.value for d in out.dead] == ["ts_in_future"]
