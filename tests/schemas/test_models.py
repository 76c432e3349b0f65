"""Wire models of protocol v1: one rule per test (a minimal valid payload, one change), plus properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.ack import AckStatus, CommandAck
from schemas.commands import Command
from schemas.events import (
    Attachment,
    EventKind,
    Heartbeat,
    InspectionCompleted,
    PatrolStarted,
    Report,
    Sos,
    event_position,
    parse_event,
)
from schemas.gps import GpsFix, parse_gps_payload
from schemas.status import TerminalStatus


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# --- strategies ---------------------------------------------------------------------------
aware_ts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
)
lat = st.floats(min_value=-90, max_value=90, allow_nan=False)
lon = st.floats(min_value=-180, max_value=180, allow_nan=False)
opt = lambda s: st.none() | s  # noqa: E731
fixes = st.builds(
    GpsFix,
    seq=st.integers(min_value=0, max_value=2**62),
    ts=aware_ts,
    lat=lat,
    lon=lon,
    acc_m=opt(st.floats(min_value=0, max_value=100_000)),
    speed_mps=opt(st.floats(min_value=0, max_value=150)),
    heading_deg=opt(st.floats(min_value=0, max_value=360, exclude_max=True)),
    battery_pct=opt(st.floats(min_value=0, max_value=100)),
)


FIX = {"seq": 1, "ts": "2025-06-01T09:30:00+08:00", "lat": 28.26, "lon": 117.03}


# --- GPS ------------------------------------------------------------------------------------
@given(fixes)
def test_valid_fix_round_trips(fix: GpsFix) -> None:
    again = parse_gps_payload(fix.model_dump_json().encode())
    assert again == [fix]
    assert again[0].ts == fix.ts and again[0].ts.utcoffset() == fix.ts.utcoffset()


@given(st.lists(fixes, min_size=1, max_size=50))
def test_arrays_of_fixes_round_trip_in_order(items: list[GpsFix]) -> None:
    payload = b"[" + b",".join(f.model_dump_json(exclude_none=True).encode() for f in items) + b"]"
    assert parse_gps_payload(payload) == items


def test_empty_array_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_gps_payload(b"[]")


@settings(max_examples=50)
@given(st.one_of(st.floats(max_value=-90.0001), st.floats(min_value=90.0001)).filter(lambda v: v == v))
def test_latitude_out_of_range_rejected(bad: float) -> None:
    with pytest.raises(ValidationError):
        GpsFix.model_validate({**FIX, "lat": bad})


@settings(max_examples=50)
@given(st.one_of(st.floats(max_value=-180.0001), st.floats(min_value=180.0001)).filter(lambda v: v == v))
def test_longitude_out_of_range_rejected(bad: float) -> None:
    with pytest.raises(ValidationError):
        GpsFix.model_validate({**FIX, "lon": bad})


@settings(max_examples=50)
@given(st.one_of(st.floats(max_value=-0.0001), st.floats(min_value=360)).filter(lambda v: v == v))
def test_heading_out_of_range_rejected(bad: float) -> None:
    with pytest.raises(ValidationError):
        GpsFix.model_validate({**FIX, "heading_deg": bad})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_latitude_rejected(fix: dict[str, Any], value: float) -> None:
    with pytest.raises(ValidationError):
        GpsFix.model_validate({**fix, "lat": value})


@pytest.mark.parametrize("ts", ["2025-06-01T09:30:00", "2025-06-01 09:30:00", "2025-06-01", "yesterday"])
def test_naive_timestamps_rejected(fix: dict[str, Any], ts: Any) -> None:
    with pytest.raises(ValidationError):
        GpsFix.model_validate_json(raw({**fix, "ts": ts}))


@pytest.mark.parametrize("ts", [1717205400, 1717205400000, 1717205400.5])
def test_numeric_timestamp_rejected(fix: dict[str, Any], ts: Any) -> None:
    with pytest.raises(ValidationError, match="RFC 3339"):
        GpsFix.model_validate_json(raw({**fix, "ts": ts}))


@pytest.mark.parametrize("field, value", [("seq", -1), ("seq", 2**62 + 1), ("speed_mps", 151), ("battery_pct", 101), ("acc_m", -1)])
def test_fields_out_of_range_rejected(fix: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        GpsFix.model_validate({**fix, field: value})


@pytest.mark.parametrize("missing", ["seq", "ts", "lat", "lon"])
def test_required_fields(fix: dict[str, Any], missing: str) -> None:
    del fix[missing]
    with pytest.raises(ValidationError):
        GpsFix.model_validate(fix)


def test_unknown_fields_kept_not_trusted(fix: dict[str, Any]) -> None:
    parsed = GpsFix.model_validate_json(raw({**fix, "satellites": 9, "vendor": {"x": 1}}))
    assert parsed.unknown_fields() == {"satellites": 9, "vendor": {"x": 1}}
    assert json.loads(parsed.model_dump_json())["satellites"] == 9  # kept on the way through


@given(st.dictionaries(st.from_regex(r"\Ax_[a-z]{1,8}\Z"), st.integers() | st.text(max_size=10), max_size=5))
def test_any_unknown_fields_kept(extra: dict[str, Any]) -> None:
    base = {"seq": 1, "ts": "2025-06-01T01:30:00Z", "lat": 1.0, "lon": 2.0}
    assert GpsFix.model_validate({**base, **extra}).unknown_fields() == extra


def test_terminal_id_in_payload_must_match_pattern(fix: dict[str, Any]) -> None:
    assert GpsFix.model_validate({**fix, "terminal_id": "T-0001"}).terminal_id == "T-0001"
    with pytest.raises(ValidationError):
        GpsFix.model_validate({**fix, "terminal_id": "T/0001"})


def test_models_are_frozen(fix: dict[str, Any]) -> None:
    parsed = GpsFix.model_validate(fix)
    with pytest.raises(ValidationError):
        parsed.lat = 0.0  # type: ignore[misc]


# --- events -----------------------------------------------------------------------------------
def event(kind: str, body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"seq": 5, "ts": "2025-06-01T01:30:00Z", "kind": kind, **extra}
    if body is not None:
        e["body"] = body
    return e


def test_attachment_needs_url_or_key(attachment: dict[str, Any]) -> None:
    assert Attachment.model_validate(attachment).key
    assert Attachment.model_validate({**attachment, "key": None, "url": "https://oss.example/a.jpg"}).url
    with pytest.raises(ValidationError, match="url or an object key"):
        Attachment.model_validate({**attachment, "key": None})


@pytest.mark.parametrize(
    "field, value",
    [("sha256", "A" * 64), ("sha256", "a" * 63), ("url", "ftp://x/y"), ("media_type", "jpeg"), ("size_bytes", -1)],
)
def test_attachment_fields(attachment: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Attachment.model_validate({**attachment, field: value})


def test_discriminated_event_kinds(attachment: dict[str, Any]) -> None:
    uscc = "91360600MA35K2LQ7K"
    cases = {
        "sos": (event("sos"), Sos),
        "heartbeat": (event("heartbeat", {"battery_pct": 50}), Heartbeat),
        "patrol.started": (event("patrol.started", {"patrol_id": "P1"}), PatrolStarted),
        "report": (event("report", {"report_id": "R1", "category": "tip", "text": "x", "attachments": [attachment]}), Report),
        "inspection.completed": (
            event(
                "inspection.completed",
                {"inspection_id": "I1", "entity_uscc": uscc, "result": "serious_violation", "answers": [{"item_id": "a", "answer": "fail"}]},
            ),
            InspectionCompleted,
        ),
    }
    for kind, (payload, model) in cases.items():
        parsed = parse_event(raw(payload))
        assert isinstance(parsed, model) and parsed.kind == kind
    assert {k.value for k in EventKind} >= set(cases)


@pytest.mark.parametrize(
    "payload",
    [
        event("teleport"),  # unknown kind
        event("report", {"report_id": "R1"}),  # body of the wrong shape
        event("inspection.started", {"inspection_id": "I1", "entity_uscc": "not-a-code"}),
        event("sos", lat=28.0),  # lat without lon
        event("inspection.completed", {"inspection_id": "I1", "entity_uscc": "91360600MA35K2LQ7K", "result": "fine"}),
        {"seq": 1, "ts": "2025-06-01T01:30:00Z"},  # no kind
    ],
)
def test_invalid_events_rejected(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_event(raw(payload))


def test_event_position_falls_back_to_report_location() -> None:
    rep = parse_event(raw(event("report", {"report_id": "R", "category": "clue", "text": "t", "lat": 28.1, "lon": 117.1})))
    assert event_position(rep) == (117.1, 28.1)
    assert event_position(parse_event(raw(event("sos", lat=28.0, lon=117.0)))) == (117.0, 28.0)
    assert event_position(parse_event(raw(event("sos")))) is None


@given(st.sampled_from([k.value for k in EventKind if k not in ("inspection.started", "inspection.completed", "report", "patrol.started", "patrol.ended")]), st.integers(0, 2**62), aware_ts)
def test_bodyless_events_round_trip(kind: str, seq: int, ts: datetime) -> None:
    parsed = parse_event(raw({"seq": seq, "ts": ts.isoformat(), "kind": kind}))
    assert parse_event(parsed.model_dump_json().encode()) == parsed


# --- acks, status, commands --------------------------------------------------------------------
@pytest.mark.parametrize("status", ["received", "accepted", "done", "rejected"])
def test_ack_statuses(ack: dict[str, Any], status: str) -> None:
    assert CommandAck.model_validate({**ack, "status": status}).status == AckStatus(status)


@pytest.mark.parametrize("field, value", [("status", "ignored"), ("command_id", "42"), ("ts", "2025-06-01T01:30:00"), ("note", "x" * 2001)])
def test_ack_rejects(ack: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        CommandAck.model_validate({**ack, field: value})


def test_last_will_is_minimal() -> None:
    assert TerminalStatus(online=False).model_dump_json(exclude_none=True) == '{"online":false}'
    assert TerminalStatus.model_validate_json(b'{"online":false}').online is False


def test_command_round_trip_and_title_required() -> None:
    cmd = {"command_id": "6f1d3c1e-2b7a-4c1e-9f3a-0a5b2c7d8e90", "issued_at": "2025-06-01T01:30:00Z", "kind": "emergency", "title": "Go", "issued_by": "duty"}
    parsed = Command.model_validate_json(raw(cmd))
    assert Command.model_validate_json(parsed.model_dump_json()) == parsed
    assert parsed.requires_ack and parsed.priority == "normal"
    with pytest.raises(ValidationError):
        Command.model_validate({**cmd, "title": ""})
    with pytest.raises(ValidationError):
        Command.model_validate({**cmd, "kind": "party"})
