"""The pure steps of ingest: one received MQTT message -> rows to store, or dead letters.

No I/O here. Order of checks (each failure is a named RejectReason, stored with the raw bytes):
topic -> registered terminal -> size -> JSON/fields -> identity -> time window. A GPS array (at most the protocol's
MAX_FIXES_PER_ARRAY items, or it is one dead letter) is checked fix by fix, so one bad fix does
not cost the good ones; its bad items make one dead letter that lists them, never one each.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from ingest.jsonsafe import extra_json
from schemas.ack import CommandAck
from schemas.events import event_position, terminal_event_adapter
from schemas.gps import MAX_FIXES_PER_ARRAY, GpsFix
from schemas.status import TerminalStatus
from schemas.topics import Channel, Topics


class RejectReason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_FIELDS = "invalid_fields"
    TERMINAL_MISMATCH = "terminal_mismatch"
    TS_IN_FUTURE = "ts_in_future"
    TS_TOO_OLD = "ts_too_old"
    UNKNOWN_TOPIC = "unknown_topic"
    STORE_REJECTED = "store_rejected"  # valid here, refused by PostgreSQL (set by the service, not by decode)
    TOO_MANY_ITEMS = "too_many_items"  # a GPS array longer than the protocol allows
    UNREGISTERED_TERMINAL = "unregistered_terminal"  # the topic's terminal id is not in the registry
    DECODE_ERROR = "decode_error"  # decoding raised: a defect of ours, isolated to the one message


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as the network thread hands it over."""

    topic: str
    payload: bytes
    received_at: float  # epoch seconds, on arrival at ingest
    mid: int = 0
    qos: int = 0
    connection: int = 0  # which MQTT connection delivered it: a packet id is only valid on its own


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 64 * 1024
    max_future_skew_s: int = 300
    max_past_age_days: int = 30
    max_fixes_per_array: int = MAX_FIXES_PER_ARRAY


@dataclass(slots=True)
class FixRow:
    ts: datetime
    terminal_id: str
    seq: int
    lat: float
    lon: float
    acc_m: float | None
    speed_mps: float | None
    heading_deg: float | None
    battery_pct: float | None
    received_at: datetime
    extra: str | None
    grid2_code: str | None = None
    grid1_code: str | None = None

    @property
    def key(self) -> tuple[str, int, datetime]:
        return (self.terminal_id, self.seq, self.ts)


@dataclass(slots=True)
class EventRow:
    ts: datetime
    terminal_id: str
    seq: int
    kind: str
    body: str  # JSON
    lat: float | None
    lon: float | None
    received_at: datetime
    extra: str | None
    grid2_code: str | None = None
    grid1_code: str | None = None

    @property
    def key(self) -> tuple[str, int, datetime]:
        return (self.terminal_id, self.seq, self.ts)


@dataclass(frozen=True, slots=True)
class AckRow:
    command_id: str
    terminal_id: str
    status: str
    ts: datetime
    note: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StatusRow:
    terminal_id: str
    ts: datetime
    online: bool
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    payload: bytes
    reason: RejectReason
    detail: str


@dataclass
class Decoded:
    """What one batch of messages becomes."""

    fixes: list[FixRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    acks: list[AckRow] = field(default_factory=list)
    statuses: list[StatusRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.fixes) + len(self.events) + len(self.acks) + len(self.statuses) + len(self.dead)


class Locator(Protocol):
    """What ingest needs of grid.locate: many points at once -> (grid2, grid1) or None each."""

    def locate_many(self, lons: Sequence[float], lats: Sequence[float]) -> Sequence[Any]: ...


def _storable_text(text: str, limit: int) -> str:
    """Text PostgreSQL takes: no NUL, valid UTF-8 (a lone surrogate would fail in the driver, not the server)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit]


def dead_letter(msg: Received, reason: RejectReason, detail: str) -> DeadLetter:
    return DeadLetter(datetime.fromtimestamp(msg.received_at, timezone.utc), _storable_text(msg.topic, 1000),
                      msg.payload, reason, _storable_text(detail, 2000))


def terminal_ids(messages: Iterable[Received], topics: Topics) -> set[str]:
    """The terminal ids named by the topics of ``messages`` (ill-formed topics left out)."""
    return {parsed.terminal_id for m in messages if (parsed := topics.parse_terminal(m.topic)) is not None}


def decode_batch(messages: Iterable[Received], topics: Topics, limits: Limits,
                 registered: Container[str] | None = None) -> Decoded:
    out = Decoded()
    for msg in messages:
        decode_guarded(msg, topics, limits, out, registered)
    return out


def decode_guarded(msg: Received, topics: Topics, limits: Limits, out: Decoded,
                   registered: Container[str] | None = None) -> None:
    """decode(), but whatever it raises becomes a dead letter for this message alone.

    Without this, one message that trips a defect in decoding kills the worker before anything
    is acknowledged; the broker redelivers it after every restart and every terminal stalls.
    Rows the message had already added are taken back, so it is all dead letter or not at all.
    """
    marks = (len(out.fixes), len(out.events), len(out.acks), len(out.statuses), len(out.dead))
    try:
        decode(msg, topics, limits, out, registered)
    except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes
        for rows, mark in zip((out.fixes, out.events, out.acks, out.statuses, out.dead), marks):
            del rows[mark:]
        out.dead.append(dead_letter(msg, RejectReason.DECODE_ERROR, _describe(exc)))


def _describe(exc: BaseException) -> str:
    """``Type: message (at file:line)``: enough for a developer to find the defect from the dead letter."""
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" (at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def decode(msg: Received, topics: Topics, limits: Limits, out: Decoded, registered: Container[str] | None = None) -> None:
    """Append the rows (or dead letters) of one message to ``out``.

    ``registered``: the terminal ids of the registry; a message from any other id is one dead
    letter (quarantine). None accepts every id (GRIDWATCH_ACCEPT_UNREGISTERED)."""
    received_at = datetime.fromtimestamp(msg.received_at, timezone.utc)

    def reject(reason: RejectReason, detail: str) -> None:
        out.dead.append(dead_letter(msg, reason, detail))

    parsed = topics.parse_terminal(msg.topic)
    if parsed is None:
        return reject(RejectReason.UNKNOWN_TOPIC, f"topic does not match {topics.prefix}/t/{{terminal_id}}/{{gps|event|ack|status}}")
    if registered is not None and parsed.terminal_id not in registered:
        return reject(RejectReason.UNREGISTERED_TERMINAL, f"terminal {parsed.terminal_id!r} is not in the registry "
                      "(table terminal: import it with `python -m grid import --terminals`)")
    if len(msg.payload) > limits.max_payload_bytes:
        return reject(RejectReason.PAYLOAD_TOO_LARGE, f"{len(msg.payload)} bytes > limit {limits.max_payload_bytes}")
    if b"\\u0000" in msg.payload:
        # JSON allows it, PostgreSQL text and jsonb do not: refuse it here, not in the database.
        return reject(RejectReason.INVALID_FIELDS, "text must not contain the NUL character (\\u0000)")
    handler = _HANDLERS[parsed.channel]
    handler(msg.payload, parsed.terminal_id, received_at, limits, out, reject)


def _validation_reason(err: ValidationError) -> tuple[RejectReason, str]:
    errors = err.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return RejectReason.MALFORMED_JSON, "; ".join(e["msg"] for e in errors)[:500]
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:10]]
    return RejectReason.INVALID_FIELDS, "; ".join(parts)


def _check_identity_and_time(model, terminal_id: str, received_at: datetime, limits: Limits) -> tuple[RejectReason, str] | None:
    if model.terminal_id is not None and model.terminal_id != terminal_id:
        return RejectReason.TERMINAL_MISMATCH, f"payload names terminal {model.terminal_id!r}, topic is {terminal_id!r}"
    ts = getattr(model, "ts", None)
    if ts is None:
        return None
    skew, max_age = _time_window(limits)
    if ts > received_at + skew:
        return RejectReason.TS_IN_FUTURE, f"ts {ts.isoformat()} is more than {limits.max_future_skew_s} s after arrival {received_at.isoformat()}"
    if ts < received_at - max_age:
        return RejectReason.TS_TOO_OLD, f"ts {ts.isoformat()} is more than {limits.max_past_age_days} days before arrival"
    return None


@lru_cache(maxsize=8)
def _time_window(limits: Limits) -> tuple[timedelta, timedelta]:
    """(future skew, past age) of ``limits`` as timedeltas, built once rather than twice per fix."""
    return timedelta(seconds=limits.max_future_skew_s), timedelta(days=limits.max_past_age_days)


def _extra_json(model) -> str | None:
    return extra_json(model.unknown_fields())


def _gps(payload, terminal_id, received_at, limits, out, reject) -> None:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return reject(RejectReason.MALFORMED_JSON, str(exc))
    if not isinstance(doc, list):
        fix, problem = _gps_fix(doc, terminal_id, received_at, limits)
        if problem:
            return reject(*problem)
        out.fixes.append(fix)
        return None
    if not doc:
        return reject(RejectReason.INVALID_FIELDS, "empty array: send at least one fix")
    if len(doc) > limits.max_fixes_per_array:
        return reject(RejectReason.TOO_MANY_ITEMS, f"array of {len(doc)} items > limit {limits.max_fixes_per_array}")
    bad: list[tuple[int, RejectReason, str]] = []
    for i, item in enumerate(doc):
        fix, problem = _gps_fix(item, terminal_id, received_at, limits)
        if problem:
            bad.append((i, *problem))
        else:
            out.fixes.append(fix)
    if bad:  # one dead letter for the message, carrying the payload once, naming every bad item
        reject(bad[0][1], _bad_items_detail(bad, len(doc)))


def _gps_fix(item, terminal_id, received_at, limits) -> tuple[FixRow | None, tuple[RejectReason, str] | None]:
    try:
        fix = GpsFix.model_validate(item)
    except ValidationError as err:
        return None, _validation_reason(err)
    problem = _check_identity_and_time(fix, terminal_id, received_at, limits)
    if problem:
        return None, problem
    return FixRow(fix.ts, terminal_id, fix.seq, fix.lat, fix.lon, fix.acc_m, fix.speed_mps, fix.heading_deg,
                  fix.battery_pct, received_at, _extra_json(fix)), None


BAD_ITEMS_LISTED = 20


def _bad_items_detail(bad: list[tuple[int, RejectReason, str]], total: int) -> str:
    """``3 of 5 array items rejected (2 stored): item 1 [invalid_fields] seq: ...; ...``, the list truncated.

    The dead letter's reason is the first bad item's; each listed item carries its own."""
    listed = "; ".join(f"item {i} [{reason.value}] {detail[:80]}" for i, reason, detail in bad[:BAD_ITEMS_LISTED])
    more = f"; ... and {len(bad) - BAD_ITEMS_LISTED} more" if len(bad) > BAD_ITEMS_LISTED else ""
    return f"{len(bad)} of {total} array items rejected ({total - len(bad)} stored): {listed}{more}"


def _event(payload, terminal_id, received_at, limits, out, reject) -> None:
    try:
        event = terminal_event_adapter.validate_json(payload)
    except ValidationError as err:
        return reject(*_validation_reason(err))
    problem = _check_identity_and_time(event, terminal_id, received_at, limits)
    if problem:
        return reject(*problem)
    pos = event_position(event)
    out.events.append(
        EventRow(event.ts, terminal_id, event.seq, event.kind, event.body.model_dump_json(), pos[1] if pos else None,
                 pos[0] if pos else None, received_at, _extra_json(event))
    )


def _ack(payload, terminal_id, received_at, limits, out, reject) -> None:
    try:
        ack = CommandAck.model_validate_json(payload)
    except ValidationError as err:
        return reject(*_validation_reason(err))
    problem = _check_identity_and_time(ack, terminal_id, received_at, limits)
    if problem:
        return reject(*problem)
    out.acks.append(AckRow(str(ack.command_id), terminal_id, ack.status.value, ack.ts, ack.note, received_at))


def _status(payload, terminal_id, received_at, limits, out, reject) -> None:
    try:
        status = TerminalStatus.model_validate_json(payload)
    except ValidationError as err:
        return reject(*_validation_reason(err))
    problem = _check_identity_and_time(status, terminal_id, received_at, limits)
    if problem:
        return reject(*problem)
    # A Last Will carries no ts: the broker sends it when the terminal is already gone.
    out.statuses.append(StatusRow(terminal_id, status.ts or received_at, status.online, received_at))


_HANDLERS = {Channel.GPS: _gps, Channel.EVENT: _event, Channel.ACK: _ack, Channel.STATUS: _status}


def tag_grids(decoded: Decoded, locator: Locator | None) -> None:
    """Tag every fix and located event with its level-2 and level-1 grid (None: outside all)."""
    if locator is None:
        return
    located = [r for r in decoded.fixes] + [e for e in decoded.events if e.lat is not None]
    if not located:
        return
    refs = locator.locate_many([r.lon for r in located], [r.lat for r in located])
    for row, ref in zip(located, refs):
        if ref is not None:
            row.grid2_code, row.grid1_code = ref.grid2_code, ref.grid1_code
