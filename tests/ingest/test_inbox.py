"""The receive queue's bounds: by count and by bytes; full means the network thread waits, never a drop."""

from __future__ import annotations

import queue
import threading
import time
import uuid

import pytest
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
    got = [inbox.get(timeout=5) for _ in range(10)]
    assert done.wait(5) and [m.topic for m in got] == [m.topic for m in sent]  # all of them, in order
    assert inbox.bytes == 0 and inbox.blocked_s > 0.2
    with pytest.raises(queue.Empty):
        inbox.get_nowait()
    with pytest.raises(queue.Empty):
        inbox.get(timeout=0.05)


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
