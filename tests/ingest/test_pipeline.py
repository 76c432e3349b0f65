"""The pure steps of ingest: captured payloads, limits, identity, arrays, grid tagging."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid.model import GridRef
from ingest import pipeline
from ingest.pipeline import Decoded, Limits, Received, RejectReason, decode, decode_batch, tag_grids, terminal_ids
from schemas.gps import MAX_FIXES_PER_ARRAY, GpsFix
from schemas.topics import Topics

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
TOPICS = Topics("gw/v1")
LIMITS = Limits()
ARRIVAL = datetime(2026, 11, 25, 0, 5, tzinfo=timezone.utc).timestamp()  # 08:05 in Yingtan

EXPECTED_REASON = {
    "malformed_json": RejectReason.MALFORMED_JSON,
    "invalid_fields": RejectReason.INVALID_FIELDS,
    "terminal_mismatch": RejectReason.TERMINAL_MISMATCH,
    "naive_timestamp": RejectReason.INVALID_FIELDS,
    "attachment_without_location": RejectReason.INVALID_FIELDS,
    "unknown_event_kind": RejectReason.INVALID_FIELDS,
    "too_many_items": RejectReason.TOO_MANY_ITEMS,
}


def one(topic: str, payload: bytes, arrival: float = ARRIVAL) -> Decoded:
    return decode_batch([Received(topic, payload, arrival)], TOPICS, LIMITS)


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_captured_payloads(path: Path):
    channel = "event" if "event" in path.stem else "gps"
    out = one(f"gw/v1/t/T00001/{channel}", path.read_bytes())
    if path.stem.startswith("valid_"):
        assert out.dead == [] and len(out.fixes) + len(out.events) >= 1
    else:
        assert out.fixes == [] and out.events == []
        assert [d.reason for d in out.dead] == [EXPECTED_REASON[path.stem.removeprefix("reject_")]]
        assert out.dead[0].payload == path.read_bytes()  # the raw bytes are kept for the operator


def test_unknown_fields_are_kept_apart():
    out = one("gw/v1/t/T00001/gps", (PAYLOADS / "valid_fix_unknown_field.json").read_bytes())
    assert out.fixes[0].extra == '{"firmware":"2.1.0"}'


def test_oversized_payload_is_rejected_before_parsing():
    out = decode_batch([Received("gw/v1/t/T1/gps", b"[" + b" " * 70_000 + b"]", ARRIVAL)], TOPICS, Limits(max_payload_bytes=65536))
    assert [d.reason for d in out.dead] == [RejectReason.PAYLOAD_TOO_LARGE]
    assert "70002 bytes" in out.dead[0].detail


def test_time_window():
    future = datetime.fromtimestamp(ARRIVAL, timezone.utc) + timedelta(hours=2)
    old = datetime.fromtimestamp(ARRIVAL, timezone.utc) - timedelta(days=40)
    for ts, reason in ((future, RejectReason.TS_IN_FUTURE), (old, RejectReason.TS_TOO_OLD)):
        fix = GpsFix(seq=1, ts=ts, lat=28.2, lon=117.0)
        out = one("gw/v1/t/T1/gps", fix.model_dump_json().encode())
        assert [d.reason for d in out.dead] == [reason]


def test_array_keeps_good_fixes_and_one_dead_letter_names_the_bad_items():
    ts = datetime.fromtimestamp(ARRIVAL, timezone.utc)
    good = [GpsFix(seq=i, ts=ts, lat=28.2, lon=117.0).model_dump_json() for i in range(6)]
    future = GpsFix(seq=9, ts=ts + timedelta(hours=2), lat=28.2, lon=117.0).model_dump_json()
    payload = f'[{good[0]}, {{"seq": 2}}, {good[3]}, 0, {future}, {good[5]}]'.encode()
    out = one("gw/v1/t/T1/gps", payload)
    assert [f.seq for f in out.fixes] == [0, 3, 5]
    [letter] = out.dead
    assert letter.reason == RejectReason.INVALID_FIELDS and letter.payload == payload  # the payload, once
    assert letter.detail.startswith("3 of 6 array items rejected (3 stored): item 1 [invalid_fields]")
    assert "; item 3 [invalid_fields]" in letter.detail and "; item 4 [ts_in_future]" in letter.detail


def test_the_64_kib_array_of_zeros_is_one_dead_letter():
    payload = (PAYLOADS / "reject_too_many_items.json").read_bytes()
    assert len(payload) == 65535 and payload.count(b"0") == 32767  # issue 14: 32,767 bad items
    out = one("gw/v1/t/X/gps", payload)
    assert out.fixes == [] and [d.reason for d in out.dead] == [RejectReason.TOO_MANY_ITEMS]
    assert out.dead[0].detail == f"array of 32767 items > limit {MAX_FIXES_PER_ARRAY}"


def test_an_array_of_bad_items_under_the_cap_is_still_one_short_dead_letter():
    out = one("gw/v1/t/X/gps", b"[" + b",".join([b"0"] * MAX_FIXES_PER_ARRAY) + b"]")
    [letter] = out.dead
    assert letter.detail.startswith(f"{MAX_FIXES_PER_ARRAY} of {MAX_FIXES_PER_ARRAY} array items rejected (0 stored)")
    assert letter.detail.endswith(f"... and {MAX_FIXES_PER_ARRAY - 20} more") and len(letter.detail) <= 2000


def test_the_array_cap_is_the_protocols():
    assert MAX_FIXES_PER_ARRAY >= 500  # what the reference terminal flushes (TerminalConfig.max_array)
    ts = datetime.fromtimestamp(ARRIVAL, timezone.utc).isoformat()
    fixes = [f'{{"seq":{i},"ts":"{ts}","lat":1,"lon":1}}' for i in range(MAX_FIXES_PER_ARRAY + 1)]
    over = one("gw/v1/t/T1/gps", ("[" + ",".join(fixes) + "]").encode())
    assert over.fixes == [] and [d.reason for d in over.dead] == [RejectReason.TOO_MANY_ITEMS]
    at_cap = one("gw/v1/t/T1/gps", ("[" + ",".join(fixes[:-1]) + "]").encode())
    assert len(at_cap.fixes) == MAX_FIXES_PER_ARRAY and at_cap.dead == []


@pytest.mark.parametrize("topic", ["gw/v1/t/T1/unknown", "gw/v1/t/T1", "other/t/T1/gps", "gw/v1/t/bad id!/gps"])
def test_unknown_topics(topic):
    assert [d.reason for d in one(topic, b"{}").dead] == [RejectReason.UNKNOWN_TOPIC]


def test_status_last_will_without_ts_uses_arrival():
    out = one("gw/v1/t/T1/status", b'{"online": false}')
    assert out.statuses[0].online is False
    assert out.statuses[0].ts.timestamp() == ARRIVAL


def test_ack():
    out = one("gw/v1/t/T1/ack", b'{"command_id": "4b0f7c1e-8e53-4a5e-9d7c-0d7f2a1c3b11", "ts": "2026-11-25T08:01:00+08:00", "status": "accepted"}')
    assert out.acks[0].status == "accepted" and out.acks[0].terminal_id == "T1"


class _Locator:
    """A pure stand-in for grid.locate: west of 117.0 is grid A, east is outside."""

    def locate_many(self, lons, lats):
        return [GridRef("A", "A1") if lon < 117.0 else None for lon in lons]


def test_tag_grids_marks_outside_points_none_and_keeps_them():
    ts = datetime.fromtimestamp(ARRIVAL, timezone.utc).isoformat()
    payload = f'[{{"seq":1,"ts":"{ts}","lat":28.2,"lon":116.9}},{{"seq":2,"ts":"{ts}","lat":28.2,"lon":117.1}}]'
    out = one("gw/v1/t/T1/gps", payload.encode())
    tag_grids(out, _Locator())
    assert [(f.grid2_code, f.grid1_code) for f in out.fixes] == [("A", "A1"), (None, None)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["gps", "event", "ack", "status"]))
def test_any_bytes_give_rows_or_dead_letters_never_an_exception(payload, channel):
    out = Decoded()
    decode(Received(f"gw/v1/t/T1/{channel}", payload, ARRIVAL), TOPICS, LIMITS, out)
    assert len(out) >= 1  # every message becomes something: a row or a dead letter, never nothing


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-90, 90), st.floats(-180, 180)), min_size=1, max_size=20))
def test_valid_arrays_store_every_fix(points):
    ts = datetime.fromtimestamp(ARRIVAL, timezone.utc)
    fixes = [GpsFix(seq=i, ts=ts, lat=lat, lon=lon) for i, (lat, lon) in enumerate(points)]
    payload = "[" + ",".join(f.model_dump_json() for f in fixes) + "]"
    out = one("gw/v1/t/T1/gps", payload.encode())
    assert [(f.seq, f.lat, f.lon) for f in out.fixes] == [(i, lat, lon) for i, (lat, lon) in enumerate(points)]


def test_issue_14_poison_payloads_are_stored_with_their_unknown_fields_made_safe():
    sos = one("gw/v1/t/T9/event", (PAYLOADS / "valid_event_sos_unknown_field_huge_int.json").read_bytes())
    assert sos.dead == [] and sos.events[0].extra == '{"x":"18446744073709551616"}'  # kept, as text
    deep = one("gw/v1/t/T1/gps", (PAYLOADS / "valid_fix_unknown_field_nested_300_deep.json").read_bytes())
    assert deep.dead == [] and len(deep.fixes) == 1
    assert "dropped: nested deeper than 32 levels" in deep.fixes[0].extra


def test_an_exception_in_decoding_is_one_dead_letter_and_takes_back_the_message_rows(monkeypatch):
    calls = []

    def extra_json_failing_on_the_second_fix(extra):
        calls.append(extra)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return None

    monkeypatch.setattr(pipeline, "extra_json", extra_json_failing_on_the_second_fix)
    ts = datetime.fromtimestamp(ARRIVAL, timezone.utc).isoformat()
    array = f'[{{"seq":1,"ts":"{ts}","lat":1,"lon":1}},{{"seq":2,"ts":"{ts}","lat":1,"lon":1}}]'.encode()
    good = f'{{"seq":3,"ts":"{ts}","lat":1,"lon":1}}'.encode()
    out = decode_batch([Received("gw/v1/t/T1/gps", array, ARRIVAL), Received("gw/v1/t/T2/gps", good, ARRIVAL)],
                       TOPICS, LIMITS)
    assert [(f.terminal_id, f.seq) for f in out.fixes] == [("T2", 3)]  # seq 1 was taken back with its message
    assert [(d.topic, d.reason) for d in out.dead] == [("gw/v1/t/T1/gps", RejectReason.DECODE_ERROR)]
    assert out.dead[0].detail.startswith("RuntimeError: boom (at test_pipeline.py:")
    assert out.dead[0].payload == array


def test_a_message_from_an_unregistered_terminal_is_one_dead_letter():
    ts = datetime.fromtimestamp(ARRIVAL, timezone.utc).isoformat()
    array = f'[{{"seq":1,"ts":"{ts}","lat":1,"lon":1}},{{"seq":2,"ts":"{ts}","lat":1,"lon":1}}]'.encode()
    batch = [Received("gw/v1/t/STRANGER/gps", array, ARRIVAL), Received("gw/v1/t/T1/gps", array, ARRIVAL),
             Received("gw/v1/t/STRANGER/status", b'{"online": true}', ARRIVAL)]
    out = decode_batch(batch, TOPICS, LIMITS, registered={"T1"})
    assert [f.terminal_id for f in out.fixes] == ["T1", "T1"] and out.statuses == []
    assert [(d.topic, d.reason) for d in out.dead] == [("gw/v1/t/STRANGER/gps", RejectReason.UNREGISTERED_TERMINAL),
                                                      ("gw/v1/t/STRANGER/status", RejectReason.UNREGISTERED_TERMINAL)]
    assert "'STRANGER' is not in the registry" in out.dead[0].detail
    assert len(decode_batch(batch, TOPICS, LIMITS, registered=None).fixes) == 4  # None: accept every id


def test_terminal_ids_of_a_batch():
    batch = [Received(t, b"{}", ARRIVAL) for t in ("gw/v1/t/A/gps", "gw/v1/t/B/event", "gw/v1/t/A/ack", "junk")]
    assert terminal_ids(batch, TOPICS) == {"A", "B"}
