"""Flushing the offline buffer: runs of single fixes become JSON arrays within the platform's limits."""

from __future__ import annotations

from schemas.topics import Channel
from terminal.buffer import Outgoing


def chunk_outgoing(items: list[Outgoing], max_array: int, max_bytes: int) -> list[Outgoing]:
    """Group runs of consecutive single-fix messages into arrays (≤ max_array fixes, ≤ max_bytes);
    everything else passes through in place. Order is preserved."""
    out: list[Outgoing] = []
    run: list[bytes] = []
    size = 2

    def close_run() -> None:
        nonlocal run, size
        if run:
            out.append(Outgoing(Channel.GPS, b"[" + b",".join(run) + b"]"))
        run, size = [], 2

    for it in items:
        if it.channel is not Channel.GPS:
            close_run()
            out.append(it)
            continue
        fix = it.payload  # always one fix: send_fix buffers single fixes
        extra = len(fix) + (1 if run else 0)
        if run and (len(run) >= max_array or size + extra > max_bytes):
            close_run()
            extra = len(fix)
        run.append(fix)
        size += extra
    close_run()
    return out
