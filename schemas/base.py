"""Shared pieces of the wire models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from schemas.topics import TERMINAL_ID_PATTERN

TerminalId = Annotated[str, Field(pattern=TERMINAL_ID_PATTERN, description="The terminal's id, as in its topic")]
Seq = Annotated[int, Field(ge=0, le=2**62, description="Per-terminal, monotonically increasing message number")]


def _rfc3339_only(value: Any) -> Any:
    """The protocol says RFC 3339 text; a bare number (epoch seconds? ms?) is ambiguous, so refuse it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("a timestamp must be RFC 3339 text with an offset, e.g. 2026-11-25T08:00:00+08:00, not a number")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_only),
    Field(description="RFC 3339 time with offset, when the terminal made it"),
]


class WireModel(BaseModel):
    """A message on the wire.

    Unknown fields are kept (a newer terminal may send more) but never trusted: they are
    stored as ``extra`` and nothing reads them for decisions.
    """

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)

    def unknown_fields(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class TerminalMessage(WireModel):
    """Every terminal->platform message may name its terminal; if it does, it must match the topic."""

    terminal_id: TerminalId | None = Field(
        None, description="Optional; when present it must equal the id in the topic, or the message is rejected"
    )
