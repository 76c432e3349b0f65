"""The delivery buffer and the seq state: pure, on temporary files."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.topics import Channel
from terminal.buffer import DeliveryBuffer, Outgoing
from terminal.chunking import chunk_entries
from terminal.seqstate import SeqState


def fix(seq: int) -> Outgoing:
    return Outgoing(Channel.GPS, f'{{"seq":{seq}}}'.encode(), seq)


def test_a_full_buffer_drops_the_oldest_fix_keeps_events_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    buf = DeliveryBuffer(3, path)
    ev = Outgoing(Channel.EVENT, b'{"seq":0,"kind":"sos"}', 0)
    fixes = [fix(i) for i in range(1, 4)]
    for item in [ev, *fixes]:
        buf.append(item)
    assert [e.item for e in buf.take_unsent()] == [ev, fixes[1], fixes[2]] and buf.dropped == 1
    buf.close()
    again = DeliveryBuffer(3, path)  # what a restart reads back
    assert [e.item for e in again.take_unsent()] == [ev, fixes[1], fixes[2]]
    again.close()


def test_sent_entries_stay_until_a_receipt_names_them_and_the_file_follows(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    buf = DeliveryBuffer(100, path)
    for s in range(10, 20):
        buf.append(fix(s))
    ack = buf.append(Outgoing(Channel.ACK, b'{"status":"received"}'))
    buf.mark_sent(buf.take_unsent(), now=0.0)
    assert buf.unsent == 0 and buf.unconfirmed == 11
    assert buf.confirm([(5, 12), (15, 15), (30, 40)]) == 4  # 10, 11, 12 and 15; others unknown
    buf.release([ack.key])  # the ack leaves at its PUBACK
    assert sorted(buf.by_seq) == [13, 14, 16, 17, 18, 19]
    buf.close()
    again = DeliveryBuffer(100, path)  # a restart: what is unconfirmed comes back unsent, to send again
    assert [e.item.seq for e in again.take_unsent()] == [13, 14, 16, 17, 18, 19]
    again.close()


def test_overdue_entries_are_resent_with_a_doubling_wait(tmp_path: Path) -> None:
    buf = DeliveryBuffer(100)
    entries = [buf.append(fix(s)) for s in range(3)]
    buf.mark_sent(entries, now=100.0)
    assert buf.due(109.0, timeout=10, max_wait=25) == []
    due = buf.due(110.0, timeout=10, max_wait=25)
    assert due == entries
    buf.mark_sent(due, now=110.0)  # second send: next one after 20 s
    assert buf.due(129.0, 10, 25) == [] and buf.due(130.0, 10, 25) == entries
    buf.mark_sent(entries, now=130.0)
    buf.mark_sent(entries, now=130.0)  # 4th send: 80 s, capped at 25
    assert buf.due(155.0, 10, 25) == entries and buf.stats.resent == 9


def test_chunks_carry_their_entries_in_order() -> None:
    buf = DeliveryBuffer(2000)
    for s in range(1200):
        buf.append(fix(s))
    buf.append(Outgoing(Channel.EVENT, b'{"seq":1200}', 1200))
    buf.append(fix(1201))
    chunks = chunk_entries(buf.take_unsent(), 500, 64 * 1024)
    assert [len(c) for _, c in chunks] == [500, 500, 200, 1, 1]
    assert [e.item.seq for _, c in chunks for e in c] == list(range(1202))
    assert [len(json.loads(m.payload)) for m, _ in chunks[:3]] == [500, 500, 200]
    assert chunks[4][0] == fix(1201)  # a lone fix goes as itself, not as an array of one


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.one_of(st.tuples(st.just("add"), st.integers(1, 5)),
                              st.tuples(st.just("confirm"), st.integers(0, 60), st.integers(0, 8))), max_size=40))
def test_held_is_made_minus_confirmed_across_restarts(tmp_path_factory, ops) -> None:
    path = tmp_path_factory.mktemp("buf") / "b.jsonl"
    buf = DeliveryBuffer(10_000, path)
    held: set[int] = set()
    nxt = 0
    for op in ops:
        if op[0] == "add":
            for _ in range(op[1]):
                buf.append(fix(nxt))
                held.add(nxt)
                nxt += 1
        else:
            first, span = op[1], op[2]
            got = buf.confirm([(first, first + span)])
            gone = {s for s in held if first <= s <= first + span}
            assert got == len(gone)
            held -= gone
        assert set(buf.by_seq) == held
    buf.close()
    again = DeliveryBuffer(10_000, path)
    assert [e.item.seq for e in again.take_unsent()] == sorted(held)
    again.close()


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
