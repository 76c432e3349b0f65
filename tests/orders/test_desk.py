"""orders.desk against the real PostgreSQL and Redis: what issue/amend/cancel commit, previews
from live positions, the board, the audit trail (and that it cannot be rewritten)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from orders import desk
from orders.targeting import UnknownTarget
from schemas.commands import Command, CommandAction, Priority
from schemas.orders import (
    AuditAction,
    GridTarget,
    NearestTarget,
    OrderAmendment,
    OrderCancellation,
    OrderDraft,
    OrderState,
    PeopleTarget,
    RadiusTarget,
    RecipientState,
)
from tests.orders.conftest import put_position


def draft(target, **kw) -> OrderDraft:
    return OrderDraft(title="Fire at the market", body="Go and check", target=target, **kw)


def recipients_of(db, command_id) -> dict[str, str]:
    return dict(db.execute("SELECT terminal_id, state FROM order_recipient WHERE command_id = %s", (command_id,)).fetchall())


def test_issue_commits_order_command_recipients_and_audit_then_notifies(db, city, live, test_settings, pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as listener:
        listener.execute("LISTEN gw_orders")
        created = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("B")])), "duty1")
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notes] == ["gw_orders"]
    # exactly grid B's terminals, each queued
    assert recipients_of(db, created.command_id) == {t: "queued" for t in city.terminals["B"]}
    assert created.recipients == 2
    state, by, via = db.execute("SELECT state, created_by, created_via FROM emergency_order WHERE order_id = %s",
                                (created.order_id,)).fetchone()
    assert (state, by, via) == ("active", "duty1", "ui")
    content, action = db.execute("SELECT content, action FROM order_command WHERE command_id = %s",
                                 (created.command_id,)).fetchone()
    cmd = Command.model_validate({**content, "command_id": str(created.command_id)})
    assert (cmd.order_id, cmd.action, cmd.title, cmd.issued_by, cmd.to) == (created.order_id, CommandAction.ISSUE,
                                                                             "Fire at the market", "duty1", None)
    trail = desk.audit(db, created.order_id)
    assert [(a["action"], a["actor"]) for a in trail if a["terminal_id"] is None] == [("create", "duty1")]
    assert sorted(a["terminal_id"] for a in trail if a["action"] == AuditAction.QUEUED) == sorted(city.terminals["B"])


def test_adjacent_and_level1_targets(db, city, live, test_settings):
    c = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("B")], include_adjacent=True)), "duty1")
    want = city.terminals["A"] + city.terminals["B"] + city.terminals["C"]
    assert sorted(recipients_of(db, c.command_id)) == sorted(want)
    c1 = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("L1")])), "duty1")
    assert sorted(recipients_of(db, c1.command_id)) == sorted(want + [city.supervisor])


def test_preview_from_live_positions_radius_and_nearest(db, city, live, test_settings):
    a1, a2 = city.terminals["A"]
    b1, b2 = city.terminals["B"]
    put_position(live, a1, 28.2500, 117.0100)  # at the point
    put_position(live, a2, 28.2540, 117.0100)  # ~445 m
    put_position(live, b1, 28.2700, 117.0100)  # ~2.2 km
    put_position(live, b2, 28.2501, 117.0100, seen_ago_s=test_settings.online_window_s + 60)  # close, but offline
    p = desk.preview(db, live[0], test_settings, draft(RadiusTarget(lat=28.25, lon=117.01, radius_m=1000)))
    assert [r.terminal_id for r in p.recipients] == [a1, a2] and p.terminals == 2 and p.offline == 0
    assert p.grids == [city.code("A")] and p.people == ["Officer 1", "Officer 2"]
    p = desk.preview(db, live[0], test_settings, draft(NearestTarget(lat=28.25, lon=117.01, n=3)))
    assert [r.terminal_id for r in p.recipients] == [a1, a2, b1]
    assert p.recipients[2].distance_m == pytest.approx(2224, rel=0.01)
    p = desk.preview(db, live[0], test_settings, draft(GridTarget(codes=[city.code("B")])))
    assert {r.terminal_id for r in p.recipients} == {b1, b2} and p.offline == 1  # b2 is not heard from


def test_unknown_and_empty_targets_are_refused(db, city, live, test_settings):
    with pytest.raises(UnknownTarget):
        desk.issue(db, live[0], test_settings, draft(PeopleTarget(terminal_ids=["nobody-here"])), "duty1")
    with pytest.raises(desk.NoRecipients):
        desk.issue(db, live[0], test_settings, draft(RadiusTarget(lat=10, lon=10, radius_m=10)), "duty1")
    with pytest.raises(ValueError, match="actor"):
        desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("A")])), " ")


def test_amend_reaches_the_same_recipients_with_a_new_revision(db, city, live, test_settings):
    c = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("A")]), priority=Priority.URGENT), "duty1")
    new_expiry = datetime.now(UTC) + timedelta(hours=2)
    cid = desk.amend(db, test_settings, c.order_id, OrderAmendment(title="Fire: go to gate 2", expires_at=new_expiry), "duty2")
    assert sorted(recipients_of(db, cid)) == sorted(city.terminals["A"])
    content, rev, action = db.execute("SELECT content, revision, action FROM order_command WHERE command_id = %s",
                                      (cid,)).fetchone()
    cmd = Command.model_validate({**content, "command_id": str(cid)})
    assert (rev, action, cmd.revision, cmd.action) == (1, "amend", 1, CommandAction.AMEND)
    assert cmd.title == "Fire: go to gate 2" and cmd.body == "Go and check" and cmd.priority is Priority.URGENT
    assert abs((cmd.expires_at - new_expiry).total_seconds()) < 0.001
    view = desk.order(db, c.order_id)
    assert view.command_id == cid and view.revision == 1 and view.title == "Fire: go to gate 2"
    assert view.counts[RecipientState.QUEUED] == 2 and len(view.recipients) == 2
    assert [a["actor"] for a in desk.audit(db, c.order_id) if a["action"] == AuditAction.AMEND] == ["duty2"]


def test_cancel_stops_unfinished_and_refuses_twice(db, city, live, test_settings):
    c = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("C")])), "duty1")
    t1, t2 = city.terminals["C"]
    db.execute("UPDATE order_recipient SET state = 'done' WHERE command_id = %s AND terminal_id = %s", (c.command_id, t1))
    cid = desk.cancel(db, test_settings, c.order_id, OrderCancellation(reason="false alarm"), "duty1")
    assert recipients_of(db, c.command_id) == {t1: "done", t2: "cancelled"}
    assert recipients_of(db, cid) == {t1: "queued", t2: "queued"}
    content = db.execute("SELECT content FROM order_command WHERE command_id = %s", (cid,)).fetchone()[0]
    assert (content["action"], content["body"]) == ("cancel", "false alarm")
    assert desk.order(db, c.order_id, recipients=False).state is OrderState.CANCELLED
    assert c.order_id not in [v.order_id for v in desk.board(db, 100)]
    with pytest.raises(desk.OrderNotActive):
        desk.cancel(db, test_settings, c.order_id, OrderCancellation(), "duty1")
    with pytest.raises(desk.OrderNotActive):
        desk.amend(db, test_settings, c.order_id, OrderAmendment(title="again"), "duty1")
    actions = [(a["action"], a["terminal_id"]) for a in desk.audit(db, c.order_id)]
    assert ("state:cancelled", t2) in actions and ("cancel", None) in actions and ("state:cancelled", t1) not in actions


def test_board_counts_and_acks_move_states_through_the_trigger(db, city, live, test_settings):
    c = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("D")])), "duty1")
    d1, d2 = city.terminals["D"]
    now = datetime.now(UTC)
    # what ingest does when a terminal answers: rows in command_ack
    for status in ("received", "accepted"):
        db.execute("INSERT INTO command_ack (command_id, terminal_id, status, ts, received_at) VALUES (%s, %s, %s, %s, %s)",
                   (c.command_id, d1, status, now, now))
    db.execute("INSERT INTO command_ack (command_id, terminal_id, status, ts, note, received_at) VALUES (%s, %s, 'rejected', %s, 'sick', %s)",
               (c.command_id, d2, now, now))
    view = next(v for v in desk.board(db, 100) if v.order_id == c.order_id)
    assert view.counts[RecipientState.ACCEPTED] == 1 and view.counts[RecipientState.REJECTED] == 1
    full = desk.order(db, c.order_id)
    by_id = {r.terminal_id: r for r in full.recipients}
    assert by_id[d2].reason == "sick" and by_id[d1].state is RecipientState.ACCEPTED
    # a late 'received' never moves a recipient back
    db.execute("INSERT INTO command_ack (command_id, terminal_id, status, ts, note, received_at) VALUES (%s, %s, 'received', %s, 'dup', %s)"
               " ON CONFLICT DO NOTHING", (c.command_id, d1, now, now))
    assert recipients_of(db, c.command_id)[d1] == "accepted"
    assert [a["actor"] for a in desk.audit(db, c.order_id) if a["action"] == "state:rejected"] == [d2]


def test_audit_trail_cannot_be_changed(db, city, live, test_settings):
    c = desk.issue(db, live[0], test_settings, draft(GridTarget(codes=[city.code("A")])), "duty1")
    for stmt in ("UPDATE order_audit SET actor = 'someone else' WHERE order_id = %s",
                 "DELETE FROM order_audit WHERE order_id = %s"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            db.execute(stmt, (c.order_id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("TRUNCATE order_audit")
    assert {a["actor"] for a in desk.audit(db, c.order_id)} == {"duty1", "system"}
