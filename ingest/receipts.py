"""Which seqs each terminal should hear are stored: collected per committed batch, sent coalesced.

Pure (no I/O): the service feeds it the batches it committed and publishes what ``due()`` returns.
Nothing here needs to survive a restart: a receipt that is never sent (ingest died between the
commit and the publish) makes the terminal re-send, and the repeat is absorbed by the exactly-once
key and confirmed then. So a lost receipt, a restart or a broker outage cost re-sends, never data.
"""

from __future__ import annotations

from collections import defaultdict

import orjson

from ingest.pipeline import Decoded, EventRow, FixRow
from schemas.receipt import to_ranges
from schemas.topics import Channel, Topics


def handled_seqs(decoded: Decoded, topics: Topics) -> dict[str, list[int]]:
    """terminal_id -> every seq of a committed batch: rows stored or already there, and dead letters.

    A dead letter is handled too: the platform refuses it for good, and a terminal that re-sent it
    would do so forever. Its seqs are read from the raw payload when it is readable JSON (the
    reference client never sends anything else); an unreadable payload names no seq.
    """
    out: dict[str, list[int]] = defaultdict(list)
    rows: list[FixRow | EventRow] = [*decoded.fixes, *decoded.events]
    for r in rows:
        out[r.terminal_id].append(r.seq)
    for d in decoded.dead:
        parsed = topics.parse_terminal(d.topic)
        if parsed is None or parsed.channel not in (Channel.GPS, Channel.EVENT):
            continue
        out[parsed.terminal_id].extend(payload_seqs(d.payload))
    return out


def payload_seqs(payload: bytes) -> list[int]:
    """The integer ``seq`` fields of a fix, an event or an array of them; [] when there are none."""
    try:
        doc = orjson.loads(payload)
    except (orjson.JSONDecodeError, RecursionError):
        return []
    items = doc if isinstance(doc, list) else [doc]
    return [it["seq"] for it in items
            if isinstance(it, dict) and type(it.get("seq")) is int and 0 <= it["seq"] <= 2**62]


class ReceiptBook:
    """Seqs committed but not yet told, per terminal; at most one receipt per terminal per ``interval_s``.

    A batch's seqs are only appended here; they become ranges once, when the receipt is due:
    merging ranges at every batch cost 3 µs a message, more than half of what decoding it costs.
    What waits is bounded by what ingest stores in ``interval_s``: a few MB at its highest rate."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.pending: dict[str, list[int]] = {}
        self.last_sent: dict[str, float] = {}

    def add(self, seqs_by_terminal: dict[str, list[int]]) -> None:
        pending = self.pending
        for tid, seqs in seqs_by_terminal.items():
            if tid in pending:
                pending[tid] += seqs
            elif seqs:
                pending[tid] = list(seqs)

    def due(self, now: float) -> list[tuple[str, list[tuple[int, int]]]]:
        """The receipts to send now (and forget); a terminal told less than interval_s ago waits."""
        out = []
        for tid in [t for t in self.pending if now - self.last_sent.get(t, float("-inf")) >= self.interval_s]:
            out.append((tid, to_ranges(self.pending.pop(tid))))
            self.last_sent[tid] = now
        if len(self.last_sent) > 4 * max(len(self.pending), 1000):  # forget terminals long quiet
            self.last_sent = {t: s for t, s in self.last_sent.items() if now - s < self.interval_s}
        return out

    def __len__(self) -> int:
        return len(self.pending)
