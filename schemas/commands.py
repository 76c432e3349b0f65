"""Platform -> terminal commands: ``{prefix}/cmd/all``, ``/cmd/grid/{code}``, ``/cmd/t/{terminal_id}``.

Sent by the duty officer's panel (emergency orders with per-recipient state are a later
issue; the model is defined now so the protocol document is whole). Terminals answer each
command on their ``ack`` topic: ``received`` at once, then ``accepted``/``done`` or ``rejected``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.base import Timestamp, WireModel


class CommandKind(StrEnum):
    EMERGENCY = "emergency"  # an emergency order: go, check, report back
    TASK = "task"  # a dispatched supervision task
    MESSAGE = "message"  # information only


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    CRITICAL = "critical"


class Command(WireModel):
    command_id: UUID
    issued_at: Timestamp
    kind: CommandKind
    priority: Priority = Priority.NORMAL
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(max_length=8000)] = ""
    issued_by: Annotated[str, Field(max_length=100, description="Duty officer who sent it")]
    expires_at: Timestamp | None = None
    lat: Annotated[float | None, Field(None, ge=-90, le=90, description="Where to go, if anywhere")]
    lon: Annotated[float | None, Field(None, ge=-180, le=180)]
    requires_ack: bool = Field(True, description="Whether the center waits for accepted/done from each recipient")
