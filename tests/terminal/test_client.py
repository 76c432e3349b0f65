"""The reference client against the real broker: what goes over the wire is protocol v1."""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from schemas.ack import AckStatus
from schemas.commands import Command
from schemas.events import EventKind, SosBody, parse_event
from schemas.gps import parse_gps_payload
from schemas.receipt import Receipt
from schemas.signing import sign_command
from schemas.status import TerminalStatus
from schemas.topics import Topics
from terminal.buffer import DeliveryBuffer
from terminal.client import TerminalClient, TerminalConfig


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_client(broker, prefix: str, tid: str | None = None, **cfg) -> TerminalClient:
    tid = tid or f"T-{uuid.uuid4().hex[:10]}"
    on_command = cfg.pop("on_command", None)
    return TerminalClient(
        TerminalConfig(tid, prefix=prefix, **cfg), host=broker.host, port=broker.port,
        username=broker.username, password=broker.password, on_command=on_command,
    )


def gps_seqs(msgs) -> list[list[int]]:
    return [[f.seq for f in parse_gps_payload(m.payload)] for m in msgs if m.topic.endswith("/gps")]


def test_fixes_published_with_increasing_seq_and_online_status(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([f"{prefix}/t/+/+"])
    c = make_client(broker, prefix).start()
    clear_retained.append(Topics(prefix).terminal(c.id, "status"))
    try:
        assert c.wait_connected(10)
        sent = [c.send_fix(28.26 + i * 1e-4, 117.03, speed_mps=1.4, heading_deg=90) for i in range(20)]
        assert c.wait_delivered(10)
        msgs = sub.wait_for(lambda ms: len(gps_seqs(ms)) >= 20)
    finally:
        c.stop()
    msgs = sub.wait_for(lambda ms: any(m.topic.endswith("/status") and b'"online":false' in m.payload for m in ms))
    seqs = [s for chunk in gps_seqs(msgs) for s in chunk]
    assert seqs == [f.seq for f in sent]
    assert seqs == list(range(seqs[0], seqs[0] + 20))
    assert all(m.topic == f"{prefix}/t/{c.id}/gps" and not m.payload.startswith(b"[") for m in msgs if m.topic.endswith("/gps"))
    status = [TerminalStatus.model_validate_json(m.payload) for m in msgs if m.topic.endswith("/status")]
    assert status[0].online is True and status[0].ts is not None
    assert status[-1].online is False  # the clean stop says so itself


def test_seq_survives_restart(broker, prefix, tmp_path: Path, clear_retained) -> None:
    state = tmp_path / "t.state.json"
    tid = f"T-{uuid.uuid4().hex[:10]}"
    clear_retained.append(Topics(prefix).terminal(tid, "status"))
    first = make_client(broker, prefix, tid, state_path=state).start()
    a = [first.send_fix(28.0, 117.0).seq for _ in range(5)]
    first.wait_delivered(10)
    first.stop()
    second = make_client(broker, prefix, tid, state_path=state).start()
    b = [second.send_fix(28.0, 117.0).seq for _ in range(5)]
    second.wait_delivered(10)
    second.stop()
    assert a == sorted(a) and b == sorted(b) and min(b) > max(a)
    # a crash between two reservations still never reuses a number
    third = make_client(broker, prefix, tid, state_path=state)
    assert third.seq.peek > max(b)


def test_offline_buffer_flushed_in_order_as_arrays(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([f"{prefix}/t/+/gps", f"{prefix}/t/+/event"])
    c = make_client(broker, prefix).start()
    clear_retained.append(Topics(prefix).terminal(c.id, "status"))
    try:
        assert c.wait_connected(10)
        online = [c.send_fix(28.26, 117.03).seq for _ in range(3)]
        assert c.wait_delivered(10)
        c.go_offline()
        deadline = time.monotonic() + 5
        while c.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not c.connected
        buffered = [c.send_fix(28.26 + i * 1e-5, 117.03, acc_m=5.0, speed_mps=1.3, heading_deg=45.0, battery_pct=77.0).seq for i in range(700)]
        ev = c.send_event(EventKind.SOS, SosBody(text="help"), lat=28.26, lon=117.03).seq
        buffered2 = [c.send_fix(28.27, 117.03).seq for _ in range(600)]
        time.sleep(0.2)
        assert c.buffered == 1301
        c.go_online()
        assert c.wait_delivered(20)
        total = 3 + 1300
        msgs = sub.wait_for(lambda ms: sum(len(s) for s in gps_seqs(ms)) >= total)
    finally:
        c.stop()
    gps = [m for m in msgs if m.topic.endswith("/gps")]
    chunks = gps_seqs(msgs)
    assert [s for ch in chunks for s in ch] == online + buffered + buffered2
    flushed = gps[3:]
    assert all(m.payload.startswith(b"[") for m in flushed), "buffered fixes are flushed as arrays"
    assert all(len(ch) <= 500 for ch in chunks) and all(len(m.payload) <= 64 * 1024 for m in gps)
    assert len(flushed) >= 3
    all_seqs = sorted([s for ch in chunks for s in ch] + [ev])
    assert all_seqs == list(range(all_seqs[0], all_seqs[0] + len(all_seqs))), "one contiguous seq per terminal"
    events = [parse_event(m.payload) for m in msgs if m.topic.endswith("/event")]
    assert [e.seq for e in events] == [ev]
    # the event sits between the two runs: it arrived after the first run's last array
    order = [m.topic.rsplit("/", 1)[1] for m in msgs]
    ev_at = order.index("event")
    before = [s for m in msgs[:ev_at] if m.topic.endswith("/gps") for s in [f.seq for f in parse_gps_payload(m.payload)]]
    assert before == online + buffered


def test_reconnects_with_backoff_after_broker_unreachable(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([f"{prefix}/t/+/gps"])
    c = make_client(broker, prefix).start()
    clear_retained.append(Topics(prefix).terminal(c.id, "status"))
    try:
        assert c.wait_connected(10)
        c.set_server("127.0.0.1", closed_port())
        c.conn.loop.run_sync(lambda: c.conn.drop(suspend=False))  # the link breaks; reconnects now fail
        time.sleep(1.5)
        assert not c.connected and c.conn.stats.connect_failures >= 1
        seqs = [c.send_fix(28.26, 117.03).seq for _ in range(10)]
        c.set_server(broker.host, broker.port)  # the network is back
        assert c.wait_delivered(30)
        msgs = sub.wait_for(lambda ms: sum(len(s) for s in gps_seqs(ms)) >= 10)
    finally:
        c.stop()
    assert [s for ch in gps_seqs(msgs) for s in ch] == seqs
    assert msgs[-1].payload.startswith(b"[")


def test_persisted_buffer_survives_a_restart(broker, prefix, tmp_path: Path, raw_subscriber, clear_retained) -> None:
    tid = f"T-{uuid.uuid4().hex[:10]}"
    clear_retained.append(Topics(prefix).terminal(tid, "status"))
    paths = dict(state_path=tmp_path / "s.json", buffer_path=tmp_path / "b.jsonl")
    offline = TerminalClient(TerminalConfig(tid, prefix=prefix, **paths), host="127.0.0.1", port=closed_port()).start()
    seqs = [offline.send_fix(28.0, 117.0).seq for _ in range(5)]
    time.sleep(0.2)
    offline.kill()  # the app dies with 5 fixes in its buffer
    assert len(paths["buffer_path"].read_text().splitlines()) == 5
    sub = raw_subscriber([f"{prefix}/t/+/gps"])
    again = make_client(broker, prefix, tid, **paths).start()
    try:
        assert again.wait_delivered(10)
        msgs = sub.wait_for(lambda ms: gps_seqs(ms))
        assert again.unconfirmed == 5  # the broker has them; only a receipt lets them go
        sub.publish(Topics(prefix).receipt(tid), Receipt(seqs=[(seqs[0], seqs[-1])], ts=datetime.now(UTC)).model_dump_json())
        assert again.wait_confirmed(10)
    finally:
        again.stop()
    assert gps_seqs(msgs) == [seqs]
    restarted = DeliveryBuffer(100, paths["buffer_path"])
    assert len(restarted) == 0, "a confirmed fix is not sent again after a restart"
    restarted.close()


def test_unconfirmed_fixes_are_resent_byte_for_byte_until_a_receipt(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([f"{prefix}/t/+/gps", f"{prefix}/t/+/event"])
    c = make_client(broker, prefix, receipt_timeout_s=1.0).start()
    clear_retained.append(Topics(prefix).terminal(c.id, "status"))
    try:
        assert c.wait_connected(10)
        fixes = [c.send_fix(28.26, 117.03).seq for _ in range(3)]
        ev = c.send_event(EventKind.SOS, SosBody(text="help"), lat=28.26, lon=117.03).seq
        first = sub.wait_for(lambda ms: len(ms) >= 4)[:4]
        # nobody confirms: after the timeout all four come again, the same bytes (same seq and ts)
        again = sub.wait_for(lambda ms: len(ms) >= 5, timeout=10)[4:]
        assert again, "nothing re-sent"
        resent = {p for m in again for p in ([json.dumps(f) for f in json.loads(m.payload)] if m.payload.startswith(b"[") else [m.payload.decode()])}
        original = {m.payload.decode() for m in first}
        assert {json.dumps(json.loads(p), sort_keys=True) for p in resent} <= {json.dumps(json.loads(p), sort_keys=True) for p in original}
        sub.publish(Topics(prefix).receipt(c.id), Receipt(seqs=[(fixes[0], ev)], ts=datetime.now(UTC)).model_dump_json())
        assert c.wait_confirmed(10) and c.stats.receipts == 1
        quiet_from = len(sub.messages)
        time.sleep(2.5)  # past two timeouts: nothing more is sent
        assert len(sub.messages) == quiet_from
    finally:
        c.stop()


def test_an_unreadable_receipt_is_ignored(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([])
    c = make_client(broker, prefix).start()
    clear_retained.append(Topics(prefix).terminal(c.id, "status"))
    try:
        assert c.wait_connected(10)
        seq = c.send_fix(28.26, 117.03).seq
        assert c.wait_delivered(10)
        for bad in (b"{", b'{"seqs":[[5,1]],"ts":"2026-01-01T00:00:00Z"}', b'{"seqs":[]}'):
            sub.publish(Topics(prefix).receipt(c.id), bad)
        deadline = time.monotonic() + 10
        while c.stats.bad_receipts < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.stats.bad_receipts == 3 and c.buffer.holds(seq) and c.connected
    finally:
        c.stop()


def test_last_will_retained_when_the_client_dies(broker, prefix, raw_subscriber, clear_retained) -> None:
    c = make_client(broker, prefix).start()
    topic = Topics(prefix).terminal(c.id, "status")
    clear_retained.append(topic)
    assert c.wait_connected(10)
    c.kill()
    time.sleep(0.5)
    late = raw_subscriber([topic])  # subscribes after the death: gets the retained Will
    msgs = late.wait_for(lambda ms: bool(ms), timeout=5)
    assert msgs and msgs[0].retain
    assert json.loads(msgs[0].payload) == {"online": False}


def test_commands_on_all_three_topics_received_deduped_and_acked(broker, prefix, raw_subscriber, clear_retained, order_key, make_command) -> None:
    got: list[tuple[Command, str]] = []
    c = make_client(
        broker, prefix, grids=("360602001001", "360602001002"), platform_key=order_key.public_key(),
        on_command=lambda cl, cmd, topic: got.append((cmd, topic)),
    ).start()
    t = Topics(prefix)
    clear_retained.append(t.terminal(c.id, "status"))
    sub = raw_subscriber([t.terminal(c.id, "ack")])
    try:
        assert c.wait_connected(10)
        time.sleep(0.2)  # SUBACKs
        ids = [uuid.uuid4() for _ in range(4)]
        targets = [t.cmd_terminal(c.id), t.cmd_grid("360602001002"), t.cmd_all, t.cmd_grid("999999999999")]
        for cid, topic in zip(ids, targets):
            sub.publish(topic, sign_command(order_key, make_command(command_id=cid)))
        sub.publish(targets[0], sign_command(order_key, make_command(command_id=ids[0], title="again")))
        sub.publish(targets[0], b'{"command_id": "not-a-uuid"}')  # not even an envelope: nothing to answer
        acks = sub.wait_for(lambda ms: len(ms) >= 4)
        time.sleep(0.3)
        assert [(cmd.command_id, topic) for cmd, topic in got] == list(zip(ids[:3], targets[:3]))
        c.send_ack(ids[0], AckStatus.ACCEPTED)
        c.send_ack(ids[0], AckStatus.DONE, "sealed the stall")
        acks = sub.wait_for(lambda ms: len(ms) >= 6)
    finally:
        c.stop()
    parsed = [json.loads(m.payload) for m in acks]
    assert [(p["command_id"], p["status"]) for p in parsed] == [(str(i), "received") for i in ids[:3]] + [
        (str(ids[0]), "received"),  # the re-send is answered again, not handled again
        (str(ids[0]), "accepted"),
        (str(ids[0]), "done"),
    ]
    assert c.stats.duplicate_commands == 1 and c.stats.invalid_commands == 1
