"""Terminal presence: ``{prefix}/t/{terminal_id}/status``, retained; the Last Will says ``online: false``."""

from __future__ import annotations

from pydantic import Field

from schemas.base import TerminalMessage, Timestamp


class TerminalStatus(TerminalMessage):
    online: bool = Field(description="true when the terminal connects; its retained Last Will says false")
    ts: Timestamp | None = Field(None, description="When the terminal said it; the Last Will may omit it")
    battery_pct: float | None = Field(None, ge=0, le=100)
    app_version: str | None = Field(None, max_length=64)
