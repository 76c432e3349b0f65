"""What a terminal makes while offline: an ordered, bounded buffer, optionally persisted."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.topics import Channel


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: Channel
    payload: bytes


class OfflineBuffer:
    """Ordered, bounded buffer of messages made while offline, optionally persisted (JSON lines)."""

    def __init__(self, maxlen: int, path: Path | None = None) -> None:
        self.maxlen = maxlen
        self.path = path
        self.items: deque[Outgoing] = deque()
        self.dropped = 0
        self._fh: Any = None
        if path is not None:
            if path.exists():
                for line in path.read_text().splitlines():
                    if line.strip():
                        ch, _, payload = line.partition("\t")
                        self.items.append(Outgoing(Channel(ch), payload.encode()))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a")

    def __len__(self) -> int:
        return len(self.items)

    def append(self, item: Outgoing) -> None:
        self.items.append(item)
        if self._fh is not None:
            self._fh.write(f"{item.channel.value}\t{item.payload.decode()}\n")
            self._fh.flush()
        if len(self.items) > self.maxlen:
            self._drop_one()

    def _drop_one(self) -> None:
        for i, it in enumerate(self.items):
            if it.channel is Channel.GPS:
                del self.items[i]
                break
        else:
            self.items.popleft()
        self.dropped += 1
        self._rewrite()

    def drain(self) -> list[Outgoing]:
        out = list(self.items)
        self.items.clear()
        return out

    def forget_persisted(self) -> None:
        """Everything drained has been acknowledged by the broker: empty the file."""
        if self._fh is not None and not self.items:
            self._fh.truncate(0)
            self._fh.seek(0)

    def _rewrite(self) -> None:
        if self._fh is None:
            return
        self._fh.truncate(0)
        self._fh.seek(0)
        self._fh.writelines(f"{i.channel.value}\t{i.payload.decode()}\n" for i in self.items)
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
