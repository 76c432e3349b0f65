"""Platform -> terminal commands: ``{prefix}/cmd/t/{terminal_id}`` (also ``/cmd/grid/{code}``, ``/cmd/all``).

Every command travels inside a ``SignedCommand`` envelope: ``cmd`` is the command's JSON text
and ``sig`` an Ed25519 signature over exactly those bytes (no canonical-JSON rules to get
wrong in another language). A terminal acts on a command only when the signature verifies
with the platform's public key, it is addressed to that terminal (``to``) and it has not
expired; otherwise it answers ``rejected`` with the reason. Terminals answer each command on
their ``ack`` topic: ``received`` at once, then ``accepted``/``done`` or ``rejected``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.base import TerminalId, Timestamp, WireModel


class CommandKind(StrEnum):
    EMERGENCY = "emergency"  # an emergency order: go, check, report back
    TASK = "task"  # a dispatched supervision task
    MESSAGE = "message"  # information only


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    CRITICAL = "critical"


class CommandAction(StrEnum):
    """What a command does to its order. An amendment or a cancellation is a command of its own
    (its own ``command_id``, acknowledged and tracked like the first) naming the same ``order_id``."""

    ISSUE = "issue"
    AMEND = "amend"  # replaces title, body, place, deadline or expiry of the order
    CANCEL = "cancel"  # stand down


class Command(WireModel):
    command_id: UUID = Field(description="This message; acks name it. Re-sends repeat it (terminals dedupe by it)")
    order_id: UUID | None = Field(None, description="The order this command issues, amends or cancels")
    action: CommandAction = CommandAction.ISSUE
    revision: Annotated[int, Field(ge=0, description="0 for the order as issued, +1 per amendment")] = 0
    to: TerminalId | None = Field(None, description="The one terminal this copy is for; a terminal rejects a copy for another")
    issued_at: Timestamp
    kind: CommandKind
    priority: Priority = Priority.NORMAL
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(max_length=8000)] = ""
    issued_by: Annotated[str, Field(max_length=100, description="Duty officer who sent it")]
    expires_at: Timestamp | None = None
    deadline: Timestamp | None = Field(None, description="When the task should be done")
    lat: Annotated[float | None, Field(None, ge=-90, le=90, description="Where to go, if anywhere")]
    lon: Annotated[float | None, Field(None, ge=-180, le=180)]
    place_radius_m: Annotated[float | None, Field(None, gt=0, description="Within this of the place counts as arrived")]
    requires_ack: bool = Field(True, description="Whether the center waits for accepted/done from each recipient")


class SignedCommand(WireModel):
    """The envelope on every command topic."""

    cmd: Annotated[str, Field(min_length=2, max_length=32_000, description="The Command, as JSON text")]
    sig: Annotated[str, Field(min_length=10, max_length=200, description="base64 Ed25519 signature of the UTF-8 bytes of cmd")]
    kid: Annotated[str, Field(max_length=64, description="Which platform key signed it (hex prefix of its SHA-256)")] = ""
