"""The dispatcher's steps on the real database, Redis and broker, publishing through its own
sender (which keeps a copy of what the broker acknowledged): what is published equals what is
stored, nothing is marked sent without the broker's ack, two dispatchers never claim the same
recipient, keygen."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
import redis

from orders import desk, outbox
from orders.dispatcher import Dispatcher
from orders.sender import MqttOrderSender
from schemas.commands import SignedCommand
from schemas.orders import GridTarget, OrderDraft
from schemas.signing import key_id, load_private_key, load_public_key, verify_command
from tests.orders.recipients import states
from tests.support import ROOT


def copies_of(sent, command_id) -> list[tuple[str, bytes]]:
    """The copies of one command (the session database may hold other tests' queued rows)."""
    return [(t, p) for t, p in sent
            if json.loads(SignedCommand.model_validate_json(p).cmd)["command_id"] == str(command_id)]


class BrokerSender(MqttOrderSender):
    """The dispatcher's own sender on the real broker, keeping what the broker acknowledged."""

    def __init__(self, settings):
        super().__init__(settings.model_copy(update={"orders_client_id": f"{settings.orders_client_id}-{uuid.uuid4().hex[:6]}"}))
        self.sent: list[tuple[str, bytes]] = []

    def publish_all(self, messages):
        messages = list(messages)
        n = super().publish_all(messages)
        self.sent.extend(messages)
        return n


class AckingSender(BrokerSender):
    """A terminal answers while its copies are being published, stored as ingest stores it; a lock
    the dispatcher held through the publish would make that insert fail after 2 s."""

    def __init__(self, settings, pg_dsn: str, command_id, terminal_id: str):
        super().__init__(settings)
        self.pg_dsn, self.command_id, self.terminal_id = pg_dsn, command_id, terminal_id

    def publish_all(self, messages):
        n = super().publish_all(messages)
        with psycopg.connect(self.pg_dsn, autocommit=True, options="-c lock_timeout=2000") as ingest:
            ingest.execute("INSERT INTO command_ack (command_id, terminal_id, status, ts, received_at)"
                           " VALUES (%s, %s, 'received', now(), now())", (self.command_id, self.terminal_id))
        return n


@pytest.fixture
def broker_sender(order_settings):
    """Real senders for a test: ``broker_sender(cls=BrokerSender, *args, start=True)``; all closed
    afterwards. One not started is not connected, and its publish fails as the broker's absence does."""
    made = []

    def make(cls=BrokerSender, *args, start: bool = True):
        sender = cls(order_settings, *args)
        made.append(sender)
        if start:
            assert sender.start(10), "the dispatcher's sender could not connect to the broker"
        return sender

    yield make
    for sender in made:
        sender.close()


def draft(city, grid="A", **kw):
    return OrderDraft(title="Gas leak", body="Clear the hall", target=GridTarget(codes=[city.code(grid)]), **kw)


def dispatcher(order_settings, keys, sender):
    return Dispatcher(order_settings, sender, keys[0], redis.Redis.from_url(order_settings.redis_url, decode_responses=True))


def test_published_copy_is_the_stored_content_signed_and_addressed(db, city, live, order_settings, keys, broker_sender):
    created = desk.issue(db, live[0], order_settings, draft(city, lat=28.2, lon=117.0), "duty1")
    rec = broker_sender()
    d = dispatcher(order_settings, keys, rec)
    d.send_queued()
    rec.sent = copies_of(rec.sent, created.command_id)
    content = db.execute("SELECT content FROM order_command WHERE command_id = %s", (created.command_id,)).fetchone()[0]
    assert sorted(t.rsplit("/", 1)[-1] for t, _ in rec.sent) == sorted(city.terminals["A"])
    for topic, payload in rec.sent:
        tid = topic.rsplit("/", 1)[-1]
        assert topic == f"{order_settings.topic_prefix}/cmd/t/{tid}"
        env = SignedCommand.model_validate_json(payload)
        assert env.kid == key_id(keys[1])
        cmd = verify_command(keys[1], payload, tid, cmd_now())
        wire = json.loads(env.cmd)
        assert wire.pop("command_id") == str(created.command_id) and wire.pop("to") == tid
        assert wire == content  # exactly what is stored, nothing more, nothing less
        assert cmd.lat == 28.2
    assert d.send_queued() == 0  # nothing left in the outbox
    d.close()


def cmd_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_nothing_is_marked_sent_without_the_brokers_ack(db, city, live, order_settings, keys, broker_sender):
    created = desk.issue(db, live[0], order_settings, draft(city, "B"), "duty1")
    d = dispatcher(order_settings, keys, broker_sender(start=False))  # no broker connection: no PUBACK
    d.stop_event.set()  # no back-off sleep in the test
    assert d.send_queued() == 0
    rows = db.execute("SELECT state, attempts FROM order_recipient WHERE command_id = %s", (created.command_id,)).fetchall()
    assert rows == [("queued", 0), ("queued", 0)]
    assert db.execute("SELECT count(*) FROM order_audit WHERE order_id = %s AND action = 'sent'",
                      (created.order_id,)).fetchone()[0] == 0
    d.close()


def test_a_recipient_no_valid_copy_can_be_made_for_is_rejected_and_the_rest_go(db, city, live, order_settings, keys,
                                                                                 broker_sender):
    # the registry accepts any text as a terminal id; the wire does not ('.' is not allowed in a topic id)
    bad = f"{city.tag}.odd"
    db.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (bad, f"{city.tag}P001"))
    created = desk.issue(db, live[0], order_settings, draft(city, "A"), "duty1")
    rec = broker_sender()
    d = dispatcher(order_settings, keys, rec)
    d.send_queued()
    got = dict(db.execute("SELECT terminal_id, state || ':' || coalesce(reason, '') FROM order_recipient"
                          " WHERE command_id = %s", (created.command_id,)).fetchall())
    assert got == {**{t: "sent:" for t in city.terminals["A"]}, bad: "rejected:cannot be sent: not a valid terminal id for a topic"}
    assert len(copies_of(rec.sent, created.command_id)) == 2
    d.close()


def test_two_dispatchers_never_claim_the_same_recipient(db, city, live, order_settings, pg_dsn):
    created = desk.issue(db, live[0], order_settings, draft(city, "L1"), "duty1")

    def claim(conn, lease_s):  # the session database may hold other tests' rows: take all, keep ours
        return {(c, t) for c, t, _ in outbox.claim_queued(conn, 10_000, lease_s) if c == created.command_id}

    with psycopg.connect(pg_dsn, autocommit=True) as one, psycopg.connect(pg_dsn, autocommit=True) as two:
        mine = claim(one, 30)
        assert len(mine) == 7
        assert claim(two, 30) == set()  # claimed and committed: no lock is held, the lease keeps others off
        assert set(states(db, created.command_id).values()) == {"queued"}
        # the first dies before marking them sent: once its lease has run out, they are claimed again
        time.sleep(0.3)
        assert claim(two, 0.2) == mine


def test_publish_holds_no_lock_and_an_early_ack_is_kept(db, city, live, order_settings, keys, pg_dsn, broker_sender):
    """A terminal may answer before the dispatcher has marked its copy sent: ingest's insert of the
    ack is not blocked (it would hold up a whole batch of fixes), and mark_sent does not move the
    recipient back from received to sent."""
    created = desk.issue(db, live[0], order_settings, draft(city, "A"), "duty1")
    first, second = city.terminals["A"]

    d = dispatcher(order_settings, keys, broker_sender(AckingSender, pg_dsn, created.command_id, first))
    d.send_queued()
    assert states(db, created.command_id) == {first: "received", second: "sent"}
    attempts = dict(db.execute("SELECT terminal_id, attempts FROM order_recipient WHERE command_id = %s",
                               (created.command_id,)).fetchall())
    assert attempts == {first: 1, second: 1}
    d.close()


def test_a_failed_publish_releases_the_claim(db, city, live, order_settings, keys, broker_sender):
    created = desk.issue(db, live[0], order_settings, draft(city, "B"), "duty1")
    d = dispatcher(order_settings, keys, broker_sender(start=False))  # no broker connection: the publish fails
    d.stop_event.set()  # no back-off sleep in the test
    d.send_queued()
    d.sender = rec = broker_sender()  # the broker is back: the recipients go out at once, not after the lease
    d.send_queued()
    assert len(copies_of(rec.sent, created.command_id)) == 2
    assert set(states(db, created.command_id).values()) == {"sent"}
    d.close()


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path, test_settings):
    env = test_settings.model_copy(update={"order_signing_key": tmp_path / "k" / "sign.pem",
                                           "order_public_key": tmp_path / "k" / "sign.pub.pem"}).as_env(os.environ)

    def keygen(*args):
        return subprocess.run([sys.executable, "-m", "orders", "keygen", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    first = keygen("--if-missing")
    assert first.returncode == 0, first.stderr
    priv = tmp_path / "k" / "sign.pem"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    kid = key_id(load_private_key(priv).public_key())
    assert kid == key_id(load_public_key(tmp_path / "k" / "sign.pub.pem")) and kid in first.stdout
    again = keygen("--if-missing")
    assert again.returncode == 0 and key_id(load_private_key(priv).public_key()) == kid  # kept
    refused = keygen()
    assert refused.returncode == 2 and "--force" in refused.stderr
    rotated = keygen("--force")
    assert rotated.returncode == 0 and key_id(load_private_key(priv).public_key()) != kid


def test_dispatcher_without_a_key_says_what_to_do_and_starts_once_there_is_one(tmp_path, order_settings):
    from tests.support import ServiceProcess, wait_until

    s = order_settings.model_copy(update={"order_signing_key": tmp_path / "later" / "sign.pem",
                                          "order_public_key": tmp_path / "later" / "sign.pub.pem"})
    proc = ServiceProcess("orders", s, tmp_path / "orders.log").start()
    try:
        wait_until(lambda: "python -m orders keygen" in proc.log_text(), timeout=30, what="the instruction")
        assert proc.proc.poll() is None  # waiting, not exited (honcho would stop every process)
        made = subprocess.run([sys.executable, "-m", "orders", "keygen"], cwd=ROOT, env=s.as_env(os.environ),
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        wait_until(lambda: "dispatcher ready" in proc.log_text(), timeout=30, what="the dispatcher to start")
    finally:
        proc.stop()
    assert proc.proc.returncode == 0


@pytest.mark.parametrize("grid", ["C"])
def test_alert_is_one_per_order_and_refreshed(db, city, live, order_settings, keys, grid):
    created = desk.issue(db, live[0], order_settings, draft(city, grid), "duty1")
    now = cmd_now()
    c1, c2 = city.terminals[grid]
    db.execute("UPDATE order_recipient SET state = 'no_answer' WHERE command_id = %s AND terminal_id = %s",
               (created.command_id, c1))
    first = outbox.raise_alert(db, created.order_id, "critical", now)
    db.execute("UPDATE order_recipient SET state = 'no_answer' WHERE command_id = %s AND terminal_id = %s",
               (created.command_id, c2))
    second = outbox.raise_alert(db, created.order_id, "critical", now)
    assert first[0] == second[0] and first[1] is True and second[1] is False
    assert first[2] == [c1] and second[2] == [c1, c2]
    detail = db.execute("SELECT detail FROM alert WHERE id = %s", (first[0],)).fetchone()[0]
    assert detail["count"] == 2
    # once the alerts engine resolves it, a new silence opens a new alert
    db.execute("UPDATE alert SET state = 'resolved' WHERE id = %s", (first[0],))
    third = outbox.raise_alert(db, created.order_id, "critical", now)
    assert third[0] != first[0] and third[1] is True


def _due_for_resend(db, command_id) -> None:
    """As if the first send was long ago: every sent recipient is due for a re-send."""
    db.execute("UPDATE order_recipient SET last_sent_at = last_sent_at - interval '1 hour' WHERE command_id = %s",
               (command_id,))


def test_a_resend_holds_no_lock_and_an_ack_meanwhile_is_kept(db, city, live, order_settings, keys, pg_dsn,
                                                              broker_sender):
    """Re-sends are leased like first sends: an ack stored while they are published is not
    blocked, and recording the re-send does not move its recipient back to sent."""
    created = desk.issue(db, live[0], order_settings, draft(city, "A", priority="critical"), "duty1")
    first, second = city.terminals["A"]
    d = dispatcher(order_settings, keys, broker_sender())
    d.send_queued()
    _due_for_resend(db, created.command_id)
    d.sender = acking = broker_sender(AckingSender, pg_dsn, created.command_id, first)
    d.follow_up()
    assert len(copies_of(acking.sent, created.command_id)) == 2
    assert states(db, created.command_id) == {first: "received", second: "sent"}
    assert dict(db.execute("SELECT terminal_id, attempts FROM order_recipient WHERE command_id = %s",
                           (created.command_id,)).fetchall()) == {first: 2, second: 2}
    assert db.execute("SELECT count(*) FROM order_audit WHERE command_id = %s AND action = 'resend'",
                      (created.command_id,)).fetchone()[0] == 2
    d.follow_up()  # just re-sent: nothing is due
    assert len(copies_of(acking.sent, created.command_id)) == 2
    d.close()


def test_a_failed_resend_gives_the_lease_back(db, city, live, order_settings, keys, broker_sender):
    created = desk.issue(db, live[0], order_settings, draft(city, "B", priority="critical"), "duty1")
    d = dispatcher(order_settings, keys, broker_sender())
    d.send_queued()
    _due_for_resend(db, created.command_id)
    d.sender = broker_sender(start=False)  # no broker connection: the re-send fails
    d.follow_up()
    assert set(dict(db.execute("SELECT terminal_id, attempts FROM order_recipient WHERE command_id = %s",
                               (created.command_id,)).fetchall()).values()) == {1}
    d.sender = rec = broker_sender()  # the broker is back: due again at once, not after another re-send interval
    d.follow_up()
    assert len(copies_of(rec.sent, created.command_id)) == 2
    assert set(dict(db.execute("SELECT terminal_id, attempts FROM order_recipient WHERE command_id = %s",
                               (created.command_id,)).fetchall()).values()) == {2}
    d.close()
