"""Delivery receipts: ``{prefix}/rcpt/t/{terminal_id}`` tells a terminal which of its messages are safe.

A PUBACK from the broker only says the broker has a message; a broker restart or crash can still
lose it (see docs/protocol). A receipt is published by ingest **after** the batch holding the
messages has committed to PostgreSQL, and names them by ``seq`` as inclusive ranges. "Handled"
means stored, already stored (a repeat), or dead-lettered (a message the platform refuses: a
re-send could not change that, so the terminal must stop sending it).

The terminal keeps every fix and event until a receipt names its ``seq`` and re-sends what stays
unnamed after a timeout, byte for byte (same ``seq`` and ``ts``: the platform's exactly-once key
is ``(terminal_id, seq, ts)``, so a repeat is never stored twice). Receipts are coalesced (at most
one per terminal per ``GRIDWATCH_INGEST_RECEIPT_INTERVAL_S``) and sent with QoS 0: a lost receipt
costs one harmless re-send, never data. A receipt says nothing about seqs it does not list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from schemas.base import Seq, Timestamp, WireModel

# A receipt lists at most this many ranges; more are split over several receipts (a terminal's
# seqs are nearly contiguous, so one range per receipt is the common case).
MAX_RANGES = 500

SeqRange = Annotated[tuple[Seq, Seq], Field(description="Inclusive range [first, last] of seq, first <= last")]


class Receipt(WireModel):
    """Platform -> one terminal: these of your messages are stored (or refused for good); forget them."""

    seqs: Annotated[list[SeqRange], Field(min_length=1, max_length=MAX_RANGES,
                                          description="Handled seqs as sorted, non-overlapping inclusive ranges")]
    ts: Timestamp = Field(description="When ingest issued the receipt (after the commit)")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Receipt:
        last = -1
        for first, end in self.seqs:
            if first > end or first <= last:
                raise ValueError("seqs must be sorted, non-overlapping ranges [first, last] with first <= last")
            last = end
        return self

    def covers(self, seq: int) -> bool:
        return any(first <= seq <= end for first, end in self.seqs)


def to_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges of ``seqs`` (duplicates allowed)."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [(a, b) for a, b in out]


def receipts_for(ranges: list[tuple[int, int]], ts: datetime) -> list[Receipt]:
    """One receipt per MAX_RANGES ranges (almost always exactly one)."""
    return [Receipt(seqs=ranges[i:i + MAX_RANGES], ts=ts) for i in range(0, len(ranges), MAX_RANGES)]
