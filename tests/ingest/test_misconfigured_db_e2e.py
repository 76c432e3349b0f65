"""A permission or schema error from PostgreSQL is an outage, not bad data (issue 14, Also).

Treated as bad data, every batch would be dead-lettered and acknowledged: everything sent while
the database is misconfigured would be thrown away. Treated as an outage, nothing is
acknowledged, the broker keeps it, and all of it is stored once the database is fixed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.ingest.conftest import count_fixes, fix
from tests.support import ServiceProcess, wait_until

TABLES = "gps_fix, terminal_event, command_ack, terminal_status, dead_letter, fix_hourly, event_hourly, gw_meta, terminal"


def dead_letters_of(db, terminal_id: str) -> int:
    return db.execute("SELECT count(*) FROM dead_letter WHERE topic LIKE %s", (f"%/t/{terminal_id}/%",)).fetchone()[0]


@pytest.fixture
def ingest_role(pg_dsn, db):
    """A login role with just what ingest needs (the operator's setup), dropped afterwards."""
    role = f"gw_ingest_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    db.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db.info.dbname}" TO {role}')
    db.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    db.execute(f"GRANT INSERT, UPDATE ON {TABLES} TO {role}")
    db.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    yield role
    db.execute(f"DROP OWNED BY {role}")
    db.execute(f"DROP ROLE {role}")


def test_revoked_insert_holds_messages_unacknowledged_until_it_is_granted_again(test_settings, tmp_path, terminal, db,
                                                                                 ingest_role):
    s = test_settings.model_copy(update={"pg_dsn": psycopg.conninfo.make_conninfo(test_settings.pg_dsn, user=ingest_role)})
    proc = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    try:
        proc.wait_for_log("subscribed to", "ingest to subscribe")
        t = "TPRIV" + uuid.uuid4().hex[:6]
        terminal.publish(t, "gps", fix(0))
        wait_until(lambda: count_fixes(db, t) == 1, what="a fix stored with the privilege")
        db.execute(f"REVOKE INSERT ON gps_fix FROM {ingest_role}")
        for seq in range(1, 51):
            terminal.publish(t, "gps", fix(seq))
        proc.wait_for_log("InsufficientPrivilege", "ingest to report the missing privilege")
        assert "permission or schema problem" in proc.log_text()
        assert count_fixes(db, t) == 1 and dead_letters_of(db, t) == 0  # held, not thrown away
        db.execute(f"GRANT INSERT ON gps_fix TO {ingest_role}")
        wait_until(lambda: count_fixes(db, t) == 51, timeout=40, what="every fix once the privilege is back")
        assert dead_letters_of(db, t) == 0 and proc.proc.poll() is None
    finally:
        proc.stop()


def test_a_renamed_table_holds_messages_until_it_is_back(ingest, terminal, db):
    t = "TREN" + uuid.uuid4().hex[:6]
    too_old = (datetime.now(timezone.utc) - timedelta(days=90)).isoformat()
    terminal.publish(t, "event", {"seq": 0, "ts": too_old, "kind": "sos"})  # a dead letter: proves a batch went through
    wait_until(lambda: dead_letters_of(db, t) == 1, what="a first batch through")
    db.execute("ALTER TABLE terminal_status RENAME TO terminal_status_away")
    try:
        terminal.publish(t, "status", {"online": True})
        terminal.publish(t, "gps", fix(1))
        ingest.wait_for_log("UndefinedTable", "ingest to report the missing table")
        assert count_fixes(db, t) == 0 and dead_letters_of(db, t) == 1
    finally:
        db.execute("ALTER TABLE terminal_status_away RENAME TO terminal_status")
    wait_until(lambda: count_fixes(db, t) == 1, timeout=40, what="the fix once the table is back")
    assert db.execute("SELECT count(*) FROM terminal_status WHERE terminal_id = %s", (t,)).fetchone()[0] == 1
    assert dead_letters_of(db, t) == 1
