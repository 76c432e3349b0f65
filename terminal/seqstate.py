"""The terminal's ``seq`` counter and the ids of the commands it has seen, kept across restarts."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path


class SeqState:
    """The per-terminal ``seq`` counter and the ids of commands already seen.

    Persisted (atomically, temp file + rename) only every ``block`` messages: the file stores a
    reserved high-water mark, and a restart continues from it, so seq never goes back (gaps are
    allowed; duplicates are not).
    """

    def __init__(self, path: Path | None, *, block: int = 100, seen_max: int = 1000) -> None:
        self.path = path
        self.block = block
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.seen_max = seen_max
        start = time.time_ns() // 1_000_000
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            start = int(data["next_seq"])
            for cid in data.get("seen_commands", []):
                self.seen[cid] = None
        self._next = start
        self._reserved = start
        self._lock = threading.Lock()
        self._reserve()

    def next(self) -> int:
        with self._lock:
            n = self._next
            self._next += 1
            if self._next >= self._reserved:
                self._reserve()
            return n

    @property
    def peek(self) -> int:
        return self._next

    def seen_command(self, command_id: str) -> bool:
        """True if already seen; otherwise remembers it (and persists) and returns False."""
        with self._lock:
            if command_id in self.seen:
                return True
            self.seen[command_id] = None
            while len(self.seen) > self.seen_max:
                self.seen.popitem(last=False)
            self._save()
            return False

    def _reserve(self) -> None:
        self._reserved = self._next + self.block
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"next_seq": self._reserved, "seen_commands": list(self.seen)}
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)
