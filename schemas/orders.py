"""Emergency orders: what a duty officer (or the city's decision-command platform) asks for,
whom it reaches, and the state of each recipient.

The wire message a terminal receives is ``schemas.commands.SignedCommand``; this module is
the platform side: the draft, the targets, the per-recipient states and the views the order
board and the HTTP API return. One source for all of them (the OpenAPI document is generated
from these models).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.commands import CommandKind, Priority

Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EveryoneTarget(_Target):
    """Every registered terminal."""

    type: Literal["all"] = "all"


class GridTarget(_Target):
    """The terminals of one or more grids (level-1 codes include every level-2 grid inside)."""

    type: Literal["grids"] = "grids"
    codes: Annotated[list[Code], Field(min_length=1, max_length=600)]
    include_adjacent: bool = Field(False, description="Also the level-2 grids adjacent to the chosen ones")


class PeopleTarget(_Target):
    """Chosen people (each person's terminals) and/or chosen terminals."""

    type: Literal["people"] = "people"
    person_ids: Annotated[list[Code], Field(max_length=2000)] = []
    terminal_ids: Annotated[list[Code], Field(max_length=2000)] = []

    @model_validator(mode="after")
    def _not_empty(self) -> "PeopleTarget":
        if not self.person_ids and not self.terminal_ids:
            raise ValueError("name at least one person or terminal")
        return self


class NearestTarget(_Target):
    """The ``n`` nearest online officers to a point (from live positions)."""

    type: Literal["nearest"] = "nearest"
    lat: Lat
    lon: Lon
    n: Annotated[int, Field(ge=1, le=200)] = 5


class RadiusTarget(_Target):
    """Every online terminal within ``radius_m`` of a point (from live positions)."""

    type: Literal["radius"] = "radius"
    lat: Lat
    lon: Lon
    radius_m: Annotated[float, Field(gt=0, le=50_000)]


OrderTarget = Annotated[
    EveryoneTarget | GridTarget | PeopleTarget | NearestTarget | RadiusTarget, Field(discriminator="type")
]


class OrderDraft(BaseModel):
    """What the duty officer writes; the platform resolves the target to recipients when it is created."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    kind: CommandKind = CommandKind.EMERGENCY
    priority: Priority = Priority.CRITICAL
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(max_length=8000)] = ""
    lat: Lat | None = Field(None, description="Where to go, if anywhere")
    lon: Lon | None = None
    place_radius_m: Annotated[float, Field(gt=0, le=50_000)] | None = Field(
        None, description="How close to the place counts as arrived (default: Settings.order_arrive_m)"
    )
    deadline: AwareDatetime | None = Field(None, description="When the task should be done")
    expires_at: AwareDatetime | None = Field(None, description="After this, undelivered or unanswered recipients expire")
    target: OrderTarget

    @model_validator(mode="after")
    def _place_whole(self) -> "OrderDraft":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon for the place, or neither")
        return self


class OrderAmendment(BaseModel):
    """Changes to an active order; what is not given stays. Reaches the same recipients."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    body: Annotated[str, Field(max_length=8000)] | None = None
    priority: Priority | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    deadline: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None


class OrderCancellation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    reason: Annotated[str, Field(max_length=2000)] = ""


class OrderState(StrEnum):
    ACTIVE = "active"  # recipients are being reached or are acting
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # expires_at passed
    CLOSED = "closed"  # every recipient is in a final state


class RecipientState(StrEnum):
    """One recipient of one published command. Forward only, in this order:
    queued -> sent -> received -> accepted -> done; or rejected / expired / no_answer / cancelled.
    A late ack moves a ``no_answer`` recipient forward again (someone answered after all).
    """

    QUEUED = "queued"  # committed, not yet published (the outbox)
    SENT = "sent"  # published to the broker (QoS 1)
    RECEIVED = "received"  # the terminal has it
    ACCEPTED = "accepted"  # the officer has read it and is acting
    DONE = "done"
    REJECTED = "rejected"  # the officer or the terminal refused it (reason kept)
    EXPIRED = "expired"  # the order expired before this recipient finished
    NO_ANSWER = "no_answer"  # silent after the re-sends; an alert was raised
    CANCELLED = "cancelled"  # the order was cancelled before this recipient finished


# Rank of a state on the forward path; final states are not on it.
STATE_RANK: dict[RecipientState, int] = {
    RecipientState.QUEUED: 0,
    RecipientState.SENT: 1,
    RecipientState.NO_ANSWER: 1,
    RecipientState.RECEIVED: 2,
    RecipientState.ACCEPTED: 3,
    RecipientState.DONE: 4,
}
FINAL_STATES = frozenset(
    {RecipientState.DONE, RecipientState.REJECTED, RecipientState.EXPIRED, RecipientState.CANCELLED}
)
# Recipients that have not answered at all yet.
SILENT_STATES = frozenset({RecipientState.QUEUED, RecipientState.SENT, RecipientState.NO_ANSWER})


class Recipient(BaseModel):
    """One resolved recipient: a terminal, its person and grid at the time the order was made."""

    model_config = ConfigDict(frozen=True)

    terminal_id: str
    person_id: str | None = None
    person_name: str | None = None
    role: str | None = None
    grid2_code: str | None = None
    grid1_code: str | None = None
    distance_m: float | None = Field(None, description="From the order's point, for nearest/radius targets")


class RecipientPreview(BaseModel):
    """What the panel shows before sending: how many terminals, which people, which grids."""

    terminals: int
    people: list[str]
    grids: list[str]
    recipients: list[Recipient]
    offline: int = Field(0, description="Recipients not heard from within the online window (they get it on return)")


class RecipientView(Recipient):
    state: RecipientState
    state_at: datetime
    attempts: int = 0
    reason: str | None = None
    arrived_at: datetime | None = None


class OrderView(BaseModel):
    """An order as the board and the HTTP API show it."""

    order_id: UUID
    command_id: UUID = Field(description="The command of the latest issue/amendment the recipients are tracked on")
    state: OrderState
    revision: int
    kind: CommandKind
    priority: Priority
    title: str
    body: str
    lat: float | None
    lon: float | None
    place_radius_m: float | None
    target: OrderTarget
    created_by: str
    created_at: datetime
    deadline: datetime | None
    expires_at: datetime | None
    counts: dict[RecipientState, int]
    recipients: list[RecipientView] | None = Field(None, description="Present when asked for (one order's page)")


class OrderCreated(BaseModel):
    order_id: UUID
    command_id: UUID
    recipients: int


class AuditAction(StrEnum):
    """What an ``order_audit`` row records (ack-driven changes are ``state:<state>``, written by the
    database trigger that applies acks)."""

    CREATE = "create"
    AMEND = "amend"
    CANCEL = "cancel"
    EXPIRE = "expire"  # the order expired
    CLOSE = "close"  # every recipient finished
    QUEUED = "state:queued"  # a recipient was put in the outbox
    SENT = "sent"  # first publish to a recipient (PUBACK received)
    RESEND = "resend"
    NO_ANSWER = "no_answer"
    EXPIRED = "state:expired"
    CANCELLED = "state:cancelled"
    REJECTED = "state:rejected"  # also: the platform could not make a valid copy for this terminal
    ALERT = "alert"  # an order_unacknowledged alert was raised or refreshed
    ARRIVED = "arrived"  # an accepted recipient reached the order's place
