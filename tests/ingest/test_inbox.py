"""The receive queue's bounds: by count and by bytes; full means the network thread waits, never a drop."""

from __future__ import annotations

import threading
import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.inbox import PER_MESSAGE_OVERHEAD, Budget, Inbox, message_cost
from ingest.pipeline import Received
from tests.ingest.conftest import count_fixes, fix
from tests.support import ServiceProcess, wait_until


def msg(size: int, topic: str = "gw/v1/t/T1/gps") -> Received:
    return Received(topic, b"x" * size, 0.0)


def test_cost_counts_payload_topic_and_overhead():
    assert message_cost(msg(1000, "abc")) == 1000 + 3 + PER_MESSAGE_OVERHEAD


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), st.integers(300, 50_000), st.lists(st.tuples(st.booleans(), st.integers(0, 20_000)), max_size=200))
def test_budget_never_holds_more_than_its_bounds_except_one_oversized_message(max_count, max_bytes, ops):
    budget, held = Budget(max_count, max_bytes), []
    for is_put, size in ops:
        cost = size + PER_MESSAGE_OVERHEAD
        if is_put:
            if budget.admits(cost):
                budget.add(cost)
                held.append(cost)
        elif held:
            budget.remove(held.pop(0))
        assert (budget.count, budget.bytes) == (len(held), sum(held))
        assert budget.count <= max_count
        assert budget.bytes <= max_bytes or budget.count == 1  # a lone big message may exceed it
    assert Budget(max_count, max_bytes).admits(10 * max_bytes)  # an empty queue takes anything


def test_budget_refuses_by_bytes_and_by_count():
    b = Budget(max_count=3, max_bytes=1000)
    b.add(600)
    assert not b.admits(401) and b.admits(400)
    b.add(100)
    b.add(100)
    assert not b.admits(1)  # three held: the count bound


def test_a_full_inbox_blocks_the_producer_until_the_worker_takes_and_loses_nothing():
    inbox = Inbox(max_count=1000, max_bytes=3 * message_cost(msg(1000)))
    sent = [msg(1000, f"gw/v1/t/T{i}/gps") for i in range(10)]
    done = threading.Event()

    def network_thread():
        for m in sent:
            inbox.put(m)
        done.set()

    threading.Thread(target=network_thread, daemon=True).start()
    wait_until(lambda: inbox.qsize() == 3, what="the inbox to fill")
    time.sleep(0.3)
    assert inbox.qsize() == 3 and not done.is_set()  # the producer waits: nothing dropped, nothing over
    got = [m for _ in range(10) for m in inbox.take_batch(1, first_timeout=5, window_s=0, idle_s=0)]
    assert done.wait(5) and [m.topic for m in got] == [m.topic for m in sent]  # all of them, in order
    assert inbox.bytes == 0 and inbox.blocked_s > 0.2
    assert inbox.take_batch(10, first_timeout=0.05, window_s=0, idle_s=0) == []  # nothing left


def _feed(inbox: Inbox, gaps_s: list[float]) -> threading.Thread:
    """Put one message after each gap, stamped on arrival as the network thread does."""
    def run():
        for i, gap in enumerate(gaps_s):
            time.sleep(gap)
            inbox.put(Received(f"gw/v1/t/T{i}/gps", b"{}", time.time()))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_take_batch_closes_when_the_stream_pauses():
    """A lone message waits about the idle time, not the window."""
    inbox = Inbox(1000, 10**6)
    _feed(inbox, [0.0])
    t0 = time.time()
    batch = inbox.take_batch(100, first_timeout=2, window_s=1.0, idle_s=0.02)
    assert len(batch) == 1 and time.time() - t0 < 0.5


def test_take_batch_closes_at_the_window_under_a_steady_stream():
    """Messages 5 ms apart never leave a 150 ms pause (on a loaded machine a sleep can overshoot
    by tens of ms): the batch closes when its first message has waited the window, holding what
    came meanwhile."""
    inbox = Inbox(10_000, 10**8)
    feeder = _feed(inbox, [0.005] * 200)
    batch = inbox.take_batch(10_000, first_timeout=2, window_s=0.3, idle_s=0.15)
    waited = time.time() - batch[0].received_at
    assert 0.29 <= waited < 0.8, waited
    assert 10 <= len(batch) < 200
    assert [m.topic for m in batch] == [f"gw/v1/t/T{i}/gps" for i in range(len(batch))]
    feeder.join()
    rest = inbox.take_batch(10_000, first_timeout=2, window_s=5, idle_s=0.02)
    assert len(batch) + len(rest) == 200 and inbox.qsize() == 0


def test_take_batch_closes_as_soon_as_it_is_full_and_frees_a_blocked_producer():
    inbox = Inbox(max_count=50, max_bytes=10**8)
    feeder = _feed(inbox, [0.0] * 120)  # blocks at 50 until the taker makes room
    first = inbox.take_batch(50, first_timeout=2, window_s=10.0, idle_s=5.0)
    assert len(first) == 50  # full: taken at once, not after the 5 s idle time or the 10 s window
    second = inbox.take_batch(50, first_timeout=2, window_s=10.0, idle_s=5.0)
    third = inbox.take_batch(50, first_timeout=2, window_s=0.05, idle_s=0.05)
    feeder.join(5)
    assert [len(first), len(second), len(third)] == [50, 50, 20]
    assert inbox.take_batch(50, first_timeout=0.05, window_s=1, idle_s=1) == []


def test_a_tiny_byte_bound_slows_ingest_but_loses_nothing(test_settings, tmp_path, terminal, db):
    """Back-pressure through the real broker: ingest holds ~10 messages at a time, the broker the rest."""
    s = test_settings.model_copy(update={"ingest_queue_max_bytes": 10 * (PER_MESSAGE_OVERHEAD + 200)})
    proc = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    try:
        proc.wait_for_log("subscribed to", "ingest to subscribe")
        t = "TINB" + uuid.uuid4().hex[:6]
        infos = [terminal.publish(t, "gps", fix(seq), wait=False) for seq in range(2000)]
        for info in infos:
            info.wait_for_publish(timeout=30)
        wait_until(lambda: count_fixes(db, t) == 2000, timeout=60, what="all 2000 fixes through a tiny inbox")
        assert db.execute("SELECT count(*) FROM dead_letter WHERE topic LIKE %s", (f"%/t/{t}/%",)).fetchone()[0] == 0
    finally:
        proc.stop()
