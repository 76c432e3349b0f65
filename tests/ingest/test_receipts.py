"""What ingest confirms to terminals: pure parts (no broker, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.pipeline import Limits, Received, decode_batch
from ingest.receipts import ReceiptBook, handled_seqs, payload_seqs
from schemas.receipt import MAX_RANGES, Receipt, receipts_for
from schemas.topics import Topics

T = Topics("gw/v1")


def msg(tid: str, channel: str, payload) -> Received:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Received(T.terminal(tid, channel), data, datetime.now(UTC).timestamp())


def fix(seq: int, **more) -> dict:
    return {"seq": seq, "ts": datetime.now(UTC).isoformat(), "lat": 28.26, "lon": 117.01, **more}


def test_every_message_of_a_batch_is_handled_stored_or_dead_lettered() -> None:
    batch = [
        msg("T1", "gps", fix(1)),
        msg("T1", "gps", [fix(2), fix(3), {"seq": 4, "ts": "nonsense"}]),  # one bad item: a dead letter
        msg("T1", "event", {"seq": 5, "ts": datetime.now(UTC).isoformat(), "kind": "sos"}),
        msg("T2", "gps", fix(7, lat=999)),  # refused for good: a re-send cannot fix it
        msg("T2", "gps", b"{not json"),  # names no seq: nothing to confirm
        msg("T3", "ack", {"command_id": "00000000-0000-0000-0000-000000000000", "status": "received",
                          "ts": datetime.now(UTC).isoformat()}),  # acks have no seq
        msg("T4", "gps", fix(9)),  # not registered: quarantined, which is handled too
    ]
    decoded = decode_batch(batch, T, Limits(), registered={"T1", "T2", "T3"})
    got = {tid: sorted(set(s)) for tid, s in handled_seqs(decoded, T).items()}
    assert got == {"T1": [1, 2, 3, 4, 5], "T2": [7], "T4": [9]}


@pytest.mark.parametrize("payload, seqs", [
    (b'{"seq": 3}', [3]), (b'[{"seq": 1}, {"seq": "2"}, {"seq": 3.0}, 5, {"seq": -1}]', [1]),
    (b"[" * 5000 + b"]" * 5000, []), (b"\xff", []), (b'{"seq": true}', []),
])
def test_seqs_are_read_from_a_dead_letter_only_when_they_are_plain_integers(payload, seqs) -> None:
    assert payload_seqs(payload) == seqs


def test_receipts_are_coalesced_per_terminal_and_rate_limited() -> None:
    book = ReceiptBook(interval_s=1.0)
    book.add({"T1": [1, 2, 3], "T2": [10]})
    assert book.due(100.0) == [("T1", [(1, 3)]), ("T2", [(10, 10)])]
    book.add({"T1": [4, 5]})
    book.add({"T1": [6, 9]})
    assert book.due(100.5) == []  # T1 was told half a second ago: it waits, its seqs coalesce
    assert book.due(101.0) == [("T1", [(4, 6), (9, 9)])]
    assert len(book) == 0


def test_a_receipt_refuses_ranges_out_of_order_or_overlapping() -> None:
    now = datetime.now(UTC)
    for bad in ([(5, 1)], [(1, 3), (3, 4)], [(4, 5), (1, 2)], []):
        with pytest.raises(ValidationError):
            Receipt(seqs=bad, ts=now)
    ok = Receipt(seqs=[(1, 3), (5, 5)], ts=now)
    assert ok.covers(2) and ok.covers(5) and not ok.covers(4)


@settings(max_examples=200, deadline=None)
@given(seqs=st.lists(st.integers(0, 3000), max_size=2000), more=st.lists(st.integers(0, 3000), max_size=300))
def test_ranges_name_exactly_the_seqs(seqs, more) -> None:
    book = ReceiptBook(interval_s=1.0)
    book.add({"T1": seqs})
    book.add({"T1": more})
    ranges = dict(book.due(0.0)).get("T1", [])
    named = {s for a, b in ranges for s in range(a, b + 1)}
    assert named == set(seqs) | set(more)
    receipts = receipts_for(ranges, datetime.now(UTC)) if ranges else []
    assert all(len(r.seqs) <= MAX_RANGES for r in receipts)
    assert [tuple(r) for rc in receipts for r in rc.seqs] == ranges  # every receipt is valid and they add up
