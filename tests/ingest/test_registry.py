"""Quarantine of terminal ids the registry does not know (issue 14, Also)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from ingest.connections import pg_connect
from ingest.registry import TerminalRegistry
from tests.ingest.conftest import Terminal, count_fixes, fix, register_terminals
from tests.support import ServiceProcess, wait_until


def tid() -> str:
    return "R" + uuid.uuid4().hex[:10]


def dead_letters(db, terminal_id: str) -> list[tuple[str, str]]:
    return db.execute("SELECT split_part(topic, '/', -1), reason FROM dead_letter WHERE topic LIKE %s ORDER BY id",
                      (f"%/t/{terminal_id}/%",)).fetchall()


@pytest.fixture
def stranger(test_settings):
    """A publisher whose terminal ids are not registered."""
    t = Terminal(test_settings, register=False)
    yield t
    t.close()


def test_registry_loads_notices_removals_and_looks_up_new_ids(test_settings, pg_dsn, db):
    a, b, c = tid(), tid(), tid()
    register_terminals(pg_dsn, [a, b])
    registry = TerminalRegistry(lambda: pg_connect(test_settings, "gridwatch-ingest-test"))
    try:
        assert {a, b} <= registry.registered([a])
        register_terminals(pg_dsn, [c])  # registered after the load: found by its id when it speaks
        assert c in registry.registered([c])
        db.execute("DELETE FROM terminal WHERE terminal_id = %s", (b,))
        assert b in registry.registered([a])  # the worker's call never re-reads the table
        registry.refresh()  # the refresher's does
        assert b not in registry.registered([a])  # the table changed: re-read
    finally:
        registry.close()


def test_unregistered_terminals_are_quarantined_and_never_reach_live_state(ingest, terminal, stranger, db, live, pg_dsn):
    r, keys = live
    t, known = tid(), tid()
    stranger.publish(t, "gps", [fix(0), fix(1), fix(2)])
    stranger.publish(t, "event", {"seq": 3, "ts": fix(3)["ts"], "kind": "sos"})
    stranger.publish(t, "status", {"online": True})
    terminal.publish(known, "gps", fix(0))  # a registered terminal, after them
    wait_until(lambda: count_fixes(db, known) == 1, what="the registered terminal's fix")
    wait_until(lambda: len(dead_letters(db, t)) == 3, what="one dead letter per message of the stranger")
    assert dead_letters(db, t) == [("gps", "unregistered_terminal"), ("event", "unregistered_terminal"),
                                   ("status", "unregistered_terminal")]
    assert count_fixes(db, t) == 0
    assert db.execute("SELECT count(*) FROM terminal_event WHERE terminal_id = %s", (t,)).fetchone()[0] == 0
    assert r.hget(keys.last_fix, known) and not r.hget(keys.last_fix, t)
    assert r.zscore(keys.last_seen, t) is None and r.hget(keys.session, t) is None
    # registered by the operator: its next message is accepted at once
    register_terminals(pg_dsn, [t])
    stranger.publish(t, "gps", fix(4))
    wait_until(lambda: count_fixes(db, t) == 1, what="the fix once the terminal is registered")
    wait_until(lambda: r.hget(keys.last_fix, t), what="its live position")
    assert json.loads(r.hget(keys.last_fix, t))["seq"] == 4


def test_accept_unregistered_stores_them(test_settings, tmp_path, stranger, db):
    s = test_settings.model_copy(update={"accept_unregistered": True})
    proc = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    try:
        proc.wait_for_log("subscribed to", "ingest to subscribe")
        t = tid()
        stranger.publish(t, "gps", [fix(0), fix(1)])
        wait_until(lambda: count_fixes(db, t) == 2, what="the unregistered terminal's fixes")
        assert dead_letters(db, t) == []
        assert "terminal registry loaded" not in proc.log_text()  # not even read
    finally:
        proc.stop()


def test_registry_unreadable_at_first_is_an_outage_not_a_quarantine(test_settings, pg_dsn):
    bad = test_settings.model_copy(update={"pg_connect_timeout_s": 1})
    dsn = psycopg.conninfo.make_conninfo(pg_dsn, dbname=f"gw_missing_{uuid.uuid4().hex[:6]}")
    registry = TerminalRegistry(lambda: pg_connect(bad, "gridwatch-ingest-test", dsn))
    registry.refresh()  # the refresher logs and goes on; nothing loaded
    with pytest.raises(psycopg.OperationalError):
        registry.registered(["T1"])
