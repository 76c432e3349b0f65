"""The offline buffer and the seq state: pure, on temporary files."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.topics import Channel
from terminal.buffer import OfflineBuffer, Outgoing
from terminal.seqstate import SeqState


def test_a_full_buffer_drops_the_oldest_fix_and_keeps_events(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    buf = OfflineBuffer(3, path)
    ev = Outgoing(Channel.EVENT, b'{"kind":"sos"}')
    fixes = [Outgoing(Channel.GPS, f'{{"seq":{i}}}'.encode()) for i in range(3)]
    for item in [ev, *fixes]:
        buf.append(item)
    assert list(buf.items) == [ev, fixes[1], fixes[2]] and buf.dropped == 1
    buf.close()
    again = OfflineBuffer(3, path)  # what a restart reads back
    assert list(again.items) == [ev, fixes[1], fixes[2]]
    assert again.drain() == [ev, fixes[1], fixes[2]] and len(again) == 0
    again.forget_persisted()
    again.close()
    assert path.read_text() == ""


def test_seq_never_goes_back_and_seen_commands_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    first = SeqState(path, block=10, seen_max=2)
    taken = [first.next() for _ in range(15)]
    assert first.seen_command("a") is False and first.seen_command("a") is True
    first.seen_command("b")
    first.seen_command("c")
    assert json.loads(path.read_text())["seen_commands"] == ["b", "c"]
    second = SeqState(path, block=10, seen_max=2)  # a crash without saving the last numbers
    assert second.next() > max(taken)
    assert second.seen_command("c") is True and second.seen_command("a") is False
