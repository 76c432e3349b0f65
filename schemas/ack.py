"""Command acknowledgements: ``{prefix}/t/{terminal_id}/ack``."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from schemas.base import TerminalMessage, Timestamp


class AckStatus(StrEnum):
    RECEIVED = "received"  # the terminal has the command (sent at once, automatically)
    ACCEPTED = "accepted"  # the officer has read it and is acting on it
    DONE = "done"  # the officer reports it done
    REJECTED = "rejected"  # the officer cannot act (the note says why)


class CommandAck(TerminalMessage):
    command_id: UUID
    ts: Timestamp
    status: AckStatus
    note: str | None = Field(None, max_length=2000)
