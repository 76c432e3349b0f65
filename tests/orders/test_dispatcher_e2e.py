"""The dispatcher end to end: real broker, PostgreSQL, Redis, a real ingest storing the acks, and
reference terminals (terminal.client) verifying signatures."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from orders import desk
from schemas.ack import AckStatus
from schemas.alert import AlertKind, dedup_key
from schemas.commands import CommandAction, Priority
from schemas.orders import GridTarget, NearestTarget, OrderCancellation, OrderDraft, PeopleTarget
from orders.dispatcher import CLAIM_LEASE_S
from tests.orders.recipients import audit_actions, states
from tests.support import migrated_database, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_dsn(base_settings):
    """A database of this test's own: ingest rebuilds live state from every stored fix, and the
    nearest/radius targets read live positions, so other tests' officers must not be there."""
    with migrated_database(base_settings.pg_dsn, f"gw_test_orders_{uuid.uuid4().hex[:8]}", base_settings.retention_days) as dsn:
        yield dsn


def order_to(target, **kw) -> OrderDraft:
    return OrderDraft(title="Market fire", body="Evacuate stall row 3", target=target, **kw)


def test_grid_order_reaches_exactly_its_terminals_and_acks_move_states(db, city, live, order_settings, keys, ingest,
                                                                        dispatcher_factory, fleet):
    for grid in ("A", "B", "C", "D"):
        for tid in city.terminals[grid]:
            fleet.add_terminal(tid)
    fleet.start()
    assert fleet.wait_connected(timeout=30)
    dispatcher_factory()
    created = desk.issue(db, live[0], order_settings, order_to(GridTarget(codes=[city.code("B")])), "duty1")
    b1, b2 = city.terminals["B"]
    wait_until(lambda: states(db, created.command_id) == {b1: "received", b2: "received"}, timeout=30,
               what="grid B's terminals to acknowledge receipt")
    got = {t: [c.command_id for c in cs] for t, cs in fleet.got.items() if cs}
    assert got == {b1: [created.command_id], b2: [created.command_id]}  # nobody else got it
    cmd = fleet.got[b1][0]
    assert (cmd.to, cmd.order_id, cmd.action, cmd.title) == (b1, created.order_id, CommandAction.ISSUE, "Market fire")
    # the officer accepts, then reports done; the other rejects with a reason
    fleet.clients[b1].send_ack(created.command_id, AckStatus.ACCEPTED)
    fleet.clients[b2].send_ack(created.command_id, AckStatus.REJECTED, "off duty")
    wait_until(lambda: states(db, created.command_id) == {b1: "accepted", b2: "rejected"}, timeout=30,
               what="accepted/rejected to be stored")
    fleet.clients[b1].send_ack(created.command_id, AckStatus.DONE)
    wait_until(lambda: desk.order(db, created.order_id, recipients=False).state.value == "closed", timeout=30,
               what="the order to close when every recipient finished")
    actions = audit_actions(db, created.order_id)
    for tid in (b1, b2):
        assert actions[("state:queued", tid)] == 1 and actions[("sent", tid)] == 1 and actions[("state:received", tid)] == 1
    assert actions[("state:accepted", b1)] == 1 and actions[("state:done", b1)] == 1 and actions[("state:rejected", b2)] == 1
    assert actions[("close", None)] == 1 and actions[("create", None)] == 1
    assert desk.order(db, created.order_id).recipients[1].reason == "off duty"

    # with adjacent grids: B's neighbours A and C too, not D
    wide = desk.issue(db, live[0], order_settings, order_to(GridTarget(codes=[city.code("B")], include_adjacent=True)),
                      "duty1")
    want = set(city.terminals["A"] + city.terminals["B"] + city.terminals["C"])
    wait_until(lambda: states(db, wide.command_id) == {t: "received" for t in want}, timeout=30,
               what="A, B and C to acknowledge")
    assert {t for t, cs in fleet.got.items() if any(c.command_id == wide.command_id for c in cs)} == want


def test_nearest_from_positions_sent_by_terminals_through_ingest(db, city, live, order_settings, ingest,
                                                                 dispatcher_factory, fleet):
    a1, a2 = city.terminals["A"]
    c1, c2 = city.terminals["C"]
    spots = {a1: (28.2500, 117.0100), a2: (28.2600, 117.0100), c1: (28.2520, 117.0100), c2: (28.3000, 117.0100)}
    for tid in spots:
        fleet.add_terminal(tid)
    fleet.start()
    assert fleet.wait_connected(timeout=30)
    for tid, (lat, lon) in spots.items():
        fleet.clients[tid].send_fix(lat, lon)
    wait_until(lambda: all(live[0].hmget(live[1].last_fix, list(spots))), timeout=30, what="ingest to store the live positions",
               context=ingest.log_text)
    dispatcher_factory()
    created = desk.issue(db, live[0], order_settings, order_to(NearestTarget(lat=28.25, lon=117.01, n=2)), "duty1")
    wait_until(lambda: states(db, created.command_id) == {a1: "received", c1: "received"}, timeout=30,
               what="the two nearest to acknowledge")
    assert {t for t, cs in fleet.got.items() if cs} == {a1, c1}


def test_silent_terminal_is_resent_to_then_raises_one_alert(db, city, live, order_settings, keys, dispatcher_factory, tap):
    d1, d2 = city.terminals["D"]
    dispatcher_factory()
    created = desk.issue(db, live[0], order_settings, order_to(GridTarget(codes=[city.code("D")]), lat=28.25, lon=117.01),
                         "duty1")
    # resend time 3 s (order_settings), one re-send, then no_answer
    wait_until(lambda: states(db, created.command_id) == {d1: "no_answer", d2: "no_answer"}, timeout=30,
               what="the silent recipients to be marked no_answer")
    copies = Counter(t for t, c in tap.commands(keys[1]) if c.command_id == created.command_id)
    assert copies == {d1: 2, d2: 2}  # the first send and one re-send each, every copy signed and addressed
    attempts = db.execute("SELECT attempts FROM order_recipient WHERE command_id = %s", (created.command_id,)).fetchall()
    assert [a for (a,) in attempts] == [2, 2]
    rows = db.execute("SELECT kind, severity, state, detail, lat FROM alert WHERE dedup_key = %s",
                      (dedup_key(AlertKind.ORDER_UNACKNOWLEDGED, str(created.order_id)),)).fetchall()
    assert len(rows) == 1
    kind, severity, state, detail, lat = rows[0]
    assert (kind, severity, state, lat) == ("order_unacknowledged", "critical", "open", 28.25)
    assert sorted(s["terminal_id"] for s in detail["silent"]) == [d1, d2] and detail["count"] == 2
    actions = audit_actions(db, created.order_id)
    assert actions[("resend", d1)] == 1 and actions[("no_answer", d1)] == 1 and actions[("no_answer", d2)] == 1
    assert sum(n for (a, _), n in actions.items() if a == "alert") >= 1
    time.sleep(4)  # nothing more happens to a no_answer recipient that stays away
    assert Counter(t for t, c in tap.commands(keys[1]) if c.command_id == created.command_id) == copies


def test_offline_terminal_gets_the_order_when_it_reconnects(db, city, live, order_settings, ingest, dispatcher_factory,
                                                            fleet):
    a1, a2 = city.terminals["A"]
    t = fleet.add_terminal(a1)  # a persistent session that subscribed, then lost its network
    fleet.start()
    assert fleet.wait_connected(timeout=30)
    t.go_offline()
    wait_until(lambda: not t.connected, timeout=10, what="the terminal to drop")
    dispatcher_factory()
    created = desk.issue(db, live[0], order_settings, order_to(PeopleTarget(terminal_ids=[a1])), "duty1")
    wait_until(lambda: states(db, created.command_id) == {a1: "sent"}, timeout=30, what="the order to be published")
    time.sleep(1)
    assert fleet.got[a1] == []
    t.go_online()  # the broker delivers what it queued for the session
    wait_until(lambda: states(db, created.command_id)[a1] in ("received", "no_answer") and fleet.got[a1], timeout=30,
               what="the order to arrive on reconnect")
    wait_until(lambda: states(db, created.command_id) == {a1: "received"}, timeout=30, what="its ack to be stored")
    assert [c.command_id for c in fleet.got[a1]] == [created.command_id]


def test_terminal_without_a_session_gets_a_resend_when_it_comes_back(db, city, live, order_settings, ingest,
                                                                     dispatcher_factory, fleet):
    c1, _ = city.terminals["C"]
    slow = order_settings.model_copy(update={"order_resend_critical_s": 600.0})  # only "came back" re-sends here
    dispatcher_factory(slow)
    created = desk.issue(db, live[0], slow, order_to(PeopleTarget(terminal_ids=[c1])), "duty1")
    wait_until(lambda: states(db, created.command_id) == {c1: "sent"}, timeout=30, what="the order to be published")
    offline = db.execute("SELECT offline_at_send FROM order_recipient WHERE command_id = %s", (created.command_id,)).fetchone()[0]
    assert offline is True  # never heard from: the broker had no session to queue it in
    fleet.add_terminal(c1)
    fleet.start()  # first connection: a new session, the copy sent earlier was never queued for it
    wait_until(lambda: states(db, created.command_id) == {c1: "received"}, timeout=30,
               what="a re-send on return and its ack")
    assert [c.command_id for c in fleet.got[c1]] == [created.command_id]
    assert audit_actions(db, created.order_id)[("resend", c1)] == 1


def test_cancel_reaches_the_same_recipients_and_is_tracked(db, city, live, order_settings, ingest, dispatcher_factory,
                                                           fleet):
    for tid in city.terminals["A"]:
        fleet.add_terminal(tid)
    fleet.start()
    assert fleet.wait_connected(timeout=30)
    dispatcher_factory()
    created = desk.issue(db, live[0], order_settings, order_to(GridTarget(codes=[city.code("A")])), "duty1")
    wait_until(lambda: set(states(db, created.command_id).values()) == {"received"}, timeout=30, what="receipt")
    cancel_id = desk.cancel(db, order_settings, created.order_id, OrderCancellation(reason="false alarm"), "duty2")
    wait_until(lambda: set(states(db, cancel_id).values()) == {"received"}, timeout=30, what="the stand-down's receipt")
    assert set(states(db, created.command_id).values()) == {"cancelled"}
    for tid in city.terminals["A"]:
        assert [(c.action, c.body) for c in fleet.got[tid]] == [(CommandAction.ISSUE, "Evacuate stall row 3"),
                                                                (CommandAction.CANCEL, "false alarm")]


def test_expiry_and_arrival(db, city, live, order_settings, ingest, dispatcher_factory, fleet):
    b1, b2 = city.terminals["B"]
    for tid in (b1, b2):
        fleet.add_terminal(tid)
    fleet.start()
    assert fleet.wait_connected(timeout=30)
    dispatcher_factory()
    expires = datetime.now(UTC) + timedelta(seconds=8)
    created = desk.issue(db, live[0], order_settings,
                         order_to(GridTarget(codes=[city.code("B")]), lat=28.25, lon=117.01, place_radius_m=100,
                                  expires_at=expires), "duty1")
    wait_until(lambda: set(states(db, created.command_id).values()) == {"received"}, timeout=30, what="receipt")
    fleet.clients[b1].send_ack(created.command_id, AckStatus.ACCEPTED)
    fleet.clients[b1].send_fix(28.2504, 117.0100)  # ~45 m from the place
    fleet.clients[b2].send_fix(28.2600, 117.0100)  # ~1.1 km: not there
    wait_until(lambda: db.execute("SELECT arrived_at FROM order_recipient WHERE command_id = %s AND terminal_id = %s",
                                  (created.command_id, b1)).fetchone()[0] is not None, timeout=30, what="arrival")
    wait_until(lambda: desk.order(db, created.order_id, recipients=False).state.value == "expired", timeout=30,
               what="expiry")
    assert states(db, created.command_id) == {b1: "expired", b2: "expired"}
    view = desk.order(db, created.order_id)
    assert [r.arrived_at is not None for r in view.recipients] == [True, False]
    actions = audit_actions(db, created.order_id)
    assert actions[("arrived", b1)] == 1 and actions[("expire", None)] == 1 and actions[("state:expired", b2)] == 1


def test_dispatcher_killed_mid_send_sends_after_restart_exactly_once(db, city, live, order_settings, keys,
                                                                      dispatcher_factory, tap, silent_broker, pg_dsn):
    """kill -9 while the recipients are claimed and published but not acknowledged by the broker
    (a broker that never PUBACKs): nothing is marked, and the restarted dispatcher sends each once."""
    stuck = order_settings.model_copy(update={"mqtt_port": silent_broker.port,
                                              "orders_client_id": order_settings.orders_client_id + "-stuck"})
    first = dispatcher_factory(stuck)
    created = desk.issue(db, live[0], order_settings, order_to(GridTarget(codes=[city.code("L1")]), priority=Priority.NORMAL),
                         "duty1")
    recipients = set(states(db, created.command_id))

    def claimed() -> bool:  # the dispatcher has claimed the rows and is waiting for PUBACKs
        return all(n for (n,) in db.execute("SELECT last_sent_at IS NOT NULL FROM order_recipient"
                                            " WHERE command_id = %s", (created.command_id,)).fetchall())

    wait_until(claimed, timeout=30, what="the dispatcher to claim the recipients")
    wait_until(lambda: silent_broker.received > 0, timeout=10, what="the copies to be published (into the void)")
    first.stop(kill=True)  # SIGKILL between publish and marking
    assert set(states(db, created.command_id).values()) == {"queued"}
    assert tap.commands(keys[1]) == []
    dispatcher_factory()  # restarted, on the real broker
    # claimed again once the killed one's lease has run out
    wait_until(lambda: set(states(db, created.command_id).values()) == {"sent"}, timeout=CLAIM_LEASE_S + 30,
               what="the outbox to be sent")
    time.sleep(0.5)
    copies = Counter(t for t, c in tap.commands(keys[1]) if c.command_id == created.command_id)
    assert copies == {t: 1 for t in recipients}
    actions = audit_actions(db, created.order_id)
    assert all(actions[("sent", t)] == 1 for t in recipients)


def test_forged_order_moves_nobody(db, city, live, order_settings, keys, ingest, fleet, tap):
    """Published straight to the broker with another key: the terminal refuses it and acts on nothing."""
    from schemas.commands import Command
    from schemas.signing import sign_command
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    d1, _ = city.terminals["D"]
    fleet.add_terminal(d1)
    fleet.start()
    assert fleet.wait_connected(timeout=30)
    forged = Command(command_id="00000000-0000-4000-8000-000000000001", to=d1, issued_at=datetime.now(UTC),
                     kind="emergency", title="Leave your post", issued_by="attacker")
    tap.client.publish(f"{order_settings.topic_prefix}/cmd/t/{d1}", sign_command(Ed25519PrivateKey.generate(), forged),
                       qos=1).wait_for_publish(5)
    wait_until(lambda: db.execute("SELECT note FROM command_ack WHERE terminal_id = %s", (d1,)).fetchone(), timeout=30,
               what="the terminal's refusal to be stored")
    assert db.execute("SELECT status, note FROM command_ack WHERE terminal_id = %s", (d1,)).fetchone()[0] == "rejected"
    assert fleet.got[d1] == []
