"""What a terminal holds until the platform confirms it: an ordered, bounded, optionally persisted buffer.

Every fix and event stays here from the moment it is made until a delivery receipt
(``schemas.receipt``) names its ``seq`` — a PUBACK only says the broker has it, and a broker
restart or crash can still lose it. Messages without a seq (command acks) leave once the broker
has PUBACKed them (the orders dispatcher re-sends a command until it hears an answer).

Each entry is unsent (made while offline), or sent and awaiting its receipt. A sent entry is due
for a re-send ``timeout`` after its last send, the wait doubling with each re-send up to
``max_wait`` so a long platform outage does not multiply traffic. Re-sends repeat the bytes
(same ``seq`` and ``ts``): the platform's exactly-once key absorbs them.

Persisted as an append-only log of JSON lines (``+`` an entry, ``-`` keys removed), compacted when
the removals outgrow what is held: a restart re-reads what is unconfirmed and sends it again.
Beyond ``maxlen`` the oldest fix is dropped (events are kept longer) and counted in ``dropped``:
the only loss the design allows, and never a silent one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.topics import Channel


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: Channel
    payload: bytes
    seq: int | None = None  # fixes and events: held until a receipt names it


@dataclass(slots=True)
class Entry:
    key: int
    item: Outgoing
    sent_at: float | None = None  # monotonic time of the last send; None: not sent yet
    sends: int = 0


@dataclass
class BufferStats:
    confirmed: int = 0  # entries a receipt released
    resent: int = 0  # re-sends of unconfirmed entries
    extra: dict[str, int] = field(default_factory=dict)


class DeliveryBuffer:
    def __init__(self, maxlen: int, path: Path | None = None) -> None:
        self.maxlen = maxlen
        self.path = path
        self.entries: dict[int, Entry] = {}  # insertion (= making) order
        self.by_seq: dict[int, int] = {}
        self.dropped = 0
        self.stats = BufferStats()
        self._next_key = 0
        self._fh: Any = None
        self._log_lines = 0
        if path is not None:
            if path.exists():
                self._load(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a")
            self._compact()

    # --- what is held -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def unsent(self) -> int:
        return sum(1 for e in self.entries.values() if e.sent_at is None)

    @property
    def unconfirmed(self) -> int:
        """Sent, awaiting a receipt."""
        return sum(1 for e in self.entries.values() if e.sent_at is not None)

    def holds(self, seq: int) -> bool:
        return seq in self.by_seq

    # --- adding and sending --------------------------------------------------------
    def append(self, item: Outgoing) -> Entry:
        entry = Entry(self._next_key, item)
        self._next_key += 1
        self.entries[entry.key] = entry
        if item.seq is not None:
            self.by_seq[item.seq] = entry.key
        self._write(f"+\t{json.dumps([entry.key, item.seq, item.channel.value])}\t{item.payload.decode()}\n")
        if len(self.entries) > self.maxlen:
            self._drop_one()
        return entry

    def take_unsent(self) -> list[Entry]:
        """Entries never sent, in the order they were made."""
        return [e for e in self.entries.values() if e.sent_at is None]

    def due(self, now: float, timeout: float, max_wait: float) -> list[Entry]:
        """Sent entries whose receipt is overdue: ``timeout * 2**(sends-1)`` (at most ``max_wait``) since the last send."""
        return [e for e in self.entries.values()
                if e.sent_at is not None and now - e.sent_at >= min(timeout * 2 ** (e.sends - 1), max_wait)]

    def mark_sent(self, entries: list[Entry], now: float) -> None:
        for e in entries:
            if e.sends:
                self.stats.resent += 1
            e.sent_at = now
            e.sends += 1

    # --- leaving ----------------------------------------------------------------
    def confirm(self, ranges: list[tuple[int, int]]) -> int:
        """A receipt: forget the entries whose seq it names. Returns how many were held."""
        keys: list[int] = []
        for first, last in ranges:
            if last - first < len(self.by_seq):
                seqs = [s for s in range(first, last + 1) if s in self.by_seq]
            else:
                seqs = [s for s in self.by_seq if first <= s <= last]
            keys += [self.by_seq.pop(s) for s in seqs]
        self._remove(keys)
        self.stats.confirmed += len(keys)
        return len(keys)

    def release(self, keys: list[int]) -> None:
        """Entries without a seq that the broker has PUBACKed."""
        self._remove([k for k in keys if k in self.entries])

    def _remove(self, keys: list[int]) -> None:
        if not keys:
            return
        for k in keys:
            e = self.entries.pop(k, None)
            if e is not None and e.item.seq is not None:
                self.by_seq.pop(e.item.seq, None)
        self._write(f"-\t{json.dumps(keys)}\n")
        if self._log_lines > 2 * len(self.entries) + 1000:
            self._compact()

    def _drop_one(self) -> None:
        victim = next((e for e in self.entries.values() if e.item.channel is Channel.GPS), None)
        if victim is None:
            victim = next(iter(self.entries.values()))
        self._remove([victim.key])
        self.dropped += 1

    # --- persistence -----------------------------------------------------------------
    def _load(self, path: Path) -> None:
        for line in path.read_text().splitlines():
            kind, _, rest = line.partition("\t")
            try:
                if kind == "+":
                    head, _, payload = rest.partition("\t")
                    key, seq, channel = json.loads(head)
                    self.entries[key] = Entry(key, Outgoing(Channel(channel), payload.encode(), seq))
                    if seq is not None:
                        self.by_seq[seq] = key
                    self._next_key = max(self._next_key, key + 1)
                elif kind == "-":
                    for key in json.loads(rest):
                        e = self.entries.pop(key, None)
                        if e is not None and e.item.seq is not None:
                            self.by_seq.pop(e.item.seq, None)
            except (ValueError, TypeError):
                continue  # a line torn by a crash mid-write: the rest of the log still counts

    def _write(self, line: str) -> None:
        if self._fh is None:
            return
        self._fh.write(line)
        self._fh.flush()
        self._log_lines += 1

    def _compact(self) -> None:
        """Rewrite the log as just what is held (write a new file, then rename over the old one)."""
        if self._fh is None or self.path is None:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w") as fh:
            for e in self.entries.values():
                fh.write(f"+\t{json.dumps([e.key, e.item.seq, e.item.channel.value])}\t{e.item.payload.decode()}\n")
        self._fh.close()
        tmp.replace(self.path)
        self._fh = self.path.open("a")
        self._log_lines = len(self.entries)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
