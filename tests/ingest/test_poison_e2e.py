"""Poison messages through the real broker, PostgreSQL and Redis: one message never stops ingest.

Issue 14: a payload that raised out of decoding killed the worker before anything was
acknowledged; the broker redelivered it after every restart and every terminal stalled.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone

import pytest

from ingest import pipeline
from ingest.service import IngestService
from tests.ingest.conftest import count_fixes, fix
from tests.support import wait_until


def tid() -> str:
    return "P" + uuid.uuid4().hex[:10]


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def dead_letters(db, terminal_id: str) -> list[tuple[str, str, str]]:
    return db.execute("SELECT split_part(topic, '/', -1), reason, detail FROM dead_letter WHERE topic LIKE %s ORDER BY id",
                      (f"%/t/{terminal_id}/%",)).fetchall()


def test_poison_among_good_messages_the_good_are_stored_and_ingest_keeps_running(ingest, terminal, db):
    t = tid()
    deep = "[" * 300 + "]" * 300
    terminal.publish(t, "gps", fix(0))
    # the two payloads of the issue: stored now, their unknown fields made safe
    terminal.publish(t, "event", f'{{"seq":1,"ts":"{now()}","kind":"sos","x":18446744073709551616}}'.encode())
    terminal.publish(t, "gps", f'{{"seq":2,"ts":"{now()}","lat":28.26,"lon":117.01,"x":{deep}}}'.encode())
    # poison that cannot be stored: dead-lettered with its reason
    terminal.publish(t, "event", f'{{"seq":3,"ts":"{now()}","kind":"sos","body":{{"text":"a","y":{deep}}}}}'.encode())
    terminal.publish(t, "event", f'{{"seq":4,"ts":"{now()}","kind":"sos","body":{{"text":"\\ud800"}}}}'.encode())
    terminal.publish(t, "gps", fix(5))
    wait_until(lambda: count_fixes(db, t) == 3, what="the good fixes around the poison")
    wait_until(lambda: len(dead_letters(db, t)) == 2, what="the two poison events dead-lettered")
    assert [(ch, reason) for ch, reason, _ in dead_letters(db, t)] == [("event", "malformed_json")] * 2
    sos = db.execute("SELECT seq, extra::text FROM terminal_event WHERE terminal_id = %s", (t,)).fetchall()
    assert sos == [(1, '{"x": "18446744073709551616"}')]
    extra = db.execute("SELECT extra FROM gps_fix WHERE terminal_id = %s AND seq = 2", (t,)).fetchone()[0]
    assert "nested deeper than" in json.dumps(extra)
    # still running, and still storing what comes after
    later = tid()
    terminal.publish(later, "gps", fix(0))
    wait_until(lambda: count_fixes(db, later) == 1, what="a fix sent after the poison")
    assert ingest.proc.poll() is None
    assert "Traceback" not in ingest.log_text()


@pytest.fixture
def ingest_in_process(test_settings, monkeypatch):
    """The real service (broker, PostgreSQL, Redis) in a thread, with a defect planted in decoding:
    a fix whose unknown field says ``"explode": true`` makes the decoder raise."""
    real = pipeline.extra_json

    def defective(extra):
        if extra.get("explode") is True:
            raise KeyError("planted defect")
        return real(extra)

    monkeypatch.setattr(pipeline, "extra_json", defective)
    service = IngestService(test_settings)
    worker = threading.Thread(target=service.run, name="ingest-under-test")
    worker.start()
    wait_until(service.receiver.subscribed.is_set, what="ingest to subscribe")
    yield service, worker
    service.stop()
    worker.join(30)


def test_a_message_that_makes_decoding_raise_is_a_dead_letter_not_a_dead_worker(ingest_in_process, terminal, db):
    service, worker = ingest_in_process
    t = tid()
    terminal.publish(t, "gps", fix(0))
    terminal.publish(t, "gps", [fix(1), fix(2, explode=True), fix(3)])  # the whole message goes, not half of it
    terminal.publish(t, "gps", fix(4))
    wait_until(lambda: count_fixes(db, t) == 2, what="the good fixes")
    wait_until(lambda: dead_letters(db, t), what="the dead letter")
    [(channel, reason, detail)] = dead_letters(db, t)
    assert (channel, reason) == ("gps", "decode_error") and detail.startswith("KeyError: 'planted defect'")
    assert sorted(r[0] for r in db.execute("SELECT seq FROM gps_fix WHERE terminal_id = %s", (t,))) == [0, 4]
    assert worker.is_alive()


def test_the_64_kib_array_of_zeros_is_one_dead_letter_and_one_log_line(ingest, terminal, db):
    t = tid()
    zeros = b"[" + b",".join([b"0"] * 32767) + b"]"  # issue 14: was 32,767 dead letters, ~2 GiB of bytea
    terminal.publish(t, "gps", zeros)
    terminal.publish(t, "gps", fix(1))
    wait_until(lambda: count_fixes(db, t) == 1, what="the fix after the array")
    rows = db.execute("SELECT reason, detail, length(payload) FROM dead_letter WHERE topic LIKE %s", (f"%/t/{t}/gps",)).fetchall()
    assert rows == [("too_many_items", "array of 32767 items > limit 1000", len(zeros))]
    lines = [line for line in ingest.log_text().splitlines() if "dead letter" in line and f"/t/{t}/gps" in line]
    assert len(lines) == 1 and "too_many_items" in lines[0]


def test_a_mixed_array_stores_its_good_fixes_and_one_dead_letter_names_the_bad_ones(ingest, terminal, db):
    t = tid()
    items = [fix(0), {"seq": 1}, fix(2), fix(3, lat=95.0), fix(4), fix(5, terminal_id="OTHER")]
    terminal.publish(t, "gps", items)
    wait_until(lambda: count_fixes(db, t) == 3, what="the three good fixes of the array")
    wait_until(lambda: dead_letters(db, t), what="the dead letter")
    [(channel, reason, detail)] = dead_letters(db, t)
    assert (channel, reason) == ("gps", "invalid_fields")
    assert detail.startswith("3 of 6 array items rejected (3 stored): item 1 [invalid_fields]")
    assert "; item 3 [invalid_fields]" in detail and "; item 5 [terminal_mismatch]" in detail
    assert sorted(r[0] for r in db.execute("SELECT seq FROM gps_fix WHERE terminal_id = %s", (t,))) == [0, 2, 4]
