"""Sending held messages: runs of single fixes become JSON arrays within the platform's limits."""

from __future__ import annotations

from typing import TypeVar

from schemas.topics import Channel
from terminal.buffer import Entry, Outgoing

T = TypeVar("T")


def chunk_entries(entries: list[Entry], max_array: int, max_bytes: int) -> list[tuple[Outgoing, list[Entry]]]:
    """Group runs of consecutive single-fix entries into arrays (≤ max_array fixes, ≤ max_bytes);
    everything else passes through in place. Order is preserved. Each message comes with the
    entries it carries (so a PUBACK or a receipt can be matched to them)."""
    out: list[tuple[Outgoing, list[Entry]]] = []
    run: list[Entry] = []
    size = 2

    def close_run() -> None:
        nonlocal run, size
        if len(run) == 1:
            out.append((run[0].item, run))
        elif run:
            out.append((Outgoing(Channel.GPS, b"[" + b",".join(e.item.payload for e in run) + b"]"), run))
        run, size = [], 2

    for e in entries:
        if e.item.channel is not Channel.GPS:
            close_run()
            out.append((e.item, [e]))
            continue
        fix = e.item.payload  # always one fix: send_fix makes single fixes
        extra = len(fix) + (1 if run else 0)
        if run and (len(run) >= max_array or size + extra > max_bytes):
            close_run()
            extra = len(fix)
        run.append(e)
        size += extra
    close_run()
    return out


def chunk_outgoing(items: list[Outgoing], max_array: int, max_bytes: int) -> list[Outgoing]:
    """:func:`chunk_entries` for bare messages."""
    return [m for m, _ in chunk_entries([Entry(i, it) for i, it in enumerate(items)], max_array, max_bytes)]
