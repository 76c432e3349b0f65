"""Terminal events: ``{prefix}/t/{terminal_id}/event``.

An event is ``seq``, ``ts``, ``kind``, an optional position and a body whose shape depends
on ``kind``. Attachments (photo, voice, video, documents, signatures) travel as references
to an object store, never as bytes in an MQTT payload.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, model_validator

from schemas.base import Seq, TerminalMessage, Timestamp, WireModel

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the object")]
EntityCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{18}$", description="Unified social credit code of the entity")]
ShortText = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=8000)]


class Attachment(WireModel):
    """A reference to an uploaded object: a URL or an object-store key, with its type, size and hash."""

    url: Annotated[str | None, Field(None, max_length=2000, pattern=r"^https?://")]
    key: Annotated[str | None, Field(None, max_length=1000, description="Object-store key")]
    media_type: Annotated[str, Field(pattern=r"^(image|audio|video|text|application)/[A-Za-z0-9.+-]+$")]
    size_bytes: Annotated[int, Field(ge=0, le=5 * 2**30)]
    sha256: Sha256

    @model_validator(mode="after")
    def _one_location(self) -> "Attachment":
        if not (self.url or self.key):
            raise ValueError("an attachment needs a url or an object key")
        return self


class EventKind(StrEnum):
    INSPECTION_STARTED = "inspection.started"
    INSPECTION_COMPLETED = "inspection.completed"
    REPORT = "report"
    SOS = "sos"
    PATROL_STARTED = "patrol.started"
    PATROL_ENDED = "patrol.ended"
    HEARTBEAT = "heartbeat"


class InspectionMode(StrEnum):
    DAILY = "daily"
    DOUBLE_RANDOM = "double_random"  # random entity, random inspectors
    SPECIAL = "special"
    COMPLAINT = "complaint"


class InspectionResult(StrEnum):
    COMPLIANT = "compliant"
    RECTIFY = "rectify"  # ordered to correct within a deadline
    VIOLATION = "violation"
    SERIOUS_VIOLATION = "serious_violation"


class ChecklistAnswer(WireModel):
    item_id: ShortText
    answer: Literal["pass", "fail", "na"]
    note: ShortText | None = None


class Signature(WireModel):
    signer_role: Literal["officer", "entity_representative"]
    name: ShortText
    signed_at: Timestamp
    image: Attachment


class InspectionStartedBody(WireModel):
    inspection_id: ShortText
    entity_uscc: EntityCode
    mode: InspectionMode = InspectionMode.DAILY
    template_id: ShortText | None = None


class InspectionCompletedBody(InspectionStartedBody):
    answers: list[ChecklistAnswer] = Field(default_factory=list, max_length=500)
    result: InspectionResult
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    signatures: list[Signature] = Field(default_factory=list, max_length=4)
    qr_pushed: bool = Field(False, description="Checklist pushed to the entity's representative as a QR code")


class ReportCategory(StrEnum):
    COMPLAINT = "complaint"
    CONSULTATION = "consultation"
    TIP = "tip"  # a report of a violation (举报)
    CLUE = "clue"  # a problem the officer found in the field
    HELP = "help"  # asking the center for support


class ReportBody(WireModel):
    report_id: ShortText
    category: ReportCategory
    text: LongText
    serious: bool = False
    entity_uscc: EntityCode | None = None
    lat: Annotated[float | None, Field(None, ge=-90, le=90)]
    lon: Annotated[float | None, Field(None, ge=-180, le=180)]
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)


class SosBody(WireModel):
    text: LongText | None = None


class PatrolStartedBody(WireModel):
    patrol_id: ShortText
    grid_code: ShortText | None = None


class PatrolEndedBody(PatrolStartedBody):
    distance_m: Annotated[float | None, Field(None, ge=0)]


class HeartbeatBody(WireModel):
    """Sent when no fix was sent for a while (indoors, GPS off): "alive" needs no position."""

    battery_pct: Annotated[float | None, Field(None, ge=0, le=100)]


class _EventBase(TerminalMessage):
    seq: Seq
    ts: Timestamp
    lat: Annotated[float | None, Field(None, ge=-90, le=90, description="Where it happened, WGS-84")]
    lon: Annotated[float | None, Field(None, ge=-180, le=180)]

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        return self


class InspectionStarted(_EventBase):
    kind: Literal["inspection.started"]
    body: InspectionStartedBody


class InspectionCompleted(_EventBase):
    kind: Literal["inspection.completed"]
    body: InspectionCompletedBody


class Report(_EventBase):
    kind: Literal["report"]
    body: ReportBody


class Sos(_EventBase):
    kind: Literal["sos"]
    body: SosBody = Field(default_factory=SosBody)


class PatrolStarted(_EventBase):
    kind: Literal["patrol.started"]
    body: PatrolStartedBody


class PatrolEnded(_EventBase):
    kind: Literal["patrol.ended"]
    body: PatrolEndedBody


class Heartbeat(_EventBase):
    kind: Literal["heartbeat"]
    body: HeartbeatBody = Field(default_factory=HeartbeatBody)


TerminalEvent = Annotated[
    Union[InspectionStarted, InspectionCompleted, Report, Sos, PatrolStarted, PatrolEnded, Heartbeat],
    Field(discriminator="kind"),
]
terminal_event_adapter: TypeAdapter[TerminalEvent] = TypeAdapter(TerminalEvent)


def parse_event(raw: bytes) -> TerminalEvent:
    """Raw JSON -> the event model for its kind; raises pydantic.ValidationError."""
    return terminal_event_adapter.validate_json(raw)


def event_position(event: _EventBase) -> tuple[float, float] | None:
    """(lon, lat) of the event, falling back to a report's own location."""
    if event.lat is not None and event.lon is not None:
        return event.lon, event.lat
    body = getattr(event, "body", None)
    if isinstance(body, ReportBody) and body.lat is not None and body.lon is not None:
        return body.lon, body.lat
    return None
