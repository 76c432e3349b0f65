"""Many terminals on one network thread, and the simulator in-process, against the real broker."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from schemas.events import parse_event
from schemas.signing import sign_command
from schemas.gps import parse_gps_payload
from schemas.status import TerminalStatus
from schemas.topics import Topics
from terminal.__main__ import main as cli_main
from terminal.behaviour import BehaviourConfig
from terminal.client import TerminalConfig
from terminal.fleet import TerminalFleet
from terminal.response import ResponseConfig
from terminal.simulator import Simulator, synthetic_specs


def test_fleet_sessions_share_one_thread(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([f"{prefix}/t/+/gps"])
    threads_before = threading.active_count()
    fleet = TerminalFleet(broker.host, broker.port, username=broker.username, password=broker.password)
    ids = [f"F-{i:03d}" for i in range(100)]
    clear_retained.extend(Topics(prefix).terminal(t, "status") for t in ids)
    for t in ids:
        fleet.add(TerminalConfig(t, prefix=prefix))
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=30)
        assert threading.active_count() == threads_before + 1, "one network thread for the whole fleet"

        def burst() -> None:
            for k in range(5):
                for c in fleet.clients.values():
                    c.send_fix(28.26, 117.03 + k * 1e-4)

        fleet.loop.run_sync(burst)
        msgs = sub.wait_for(lambda ms: len(ms) >= 500)
    finally:
        fleet.stop()
    assert len(msgs) == 500
    per_terminal: dict[str, list[int]] = {}
    for m in msgs:
        tid = m.topic.split("/")[-2]
        per_terminal.setdefault(tid, []).extend(f.seq for f in parse_gps_payload(m.payload))
    assert sorted(per_terminal) == ids
    assert all(s == sorted(s) and len(s) == 5 for s in per_terminal.values())
    t = fleet.totals()
    assert t.connects == 100 and t.fixes == 500 and t.in_flight == 0


def test_simulator_in_process_run_for(broker, prefix, raw_subscriber, clear_retained) -> None:
    sub = raw_subscriber([f"{prefix}/t/+/+"])
    specs = synthetic_specs(8, seed=5)
    clear_retained.extend(Topics(prefix).terminal(s.terminal_id, "status") for s in specs)
    sim = Simulator(specs, host=broker.host, port=broker.port, prefix=prefix, interval_s=5, speedup=25, seed=5, progress_every_s=1,
                    username=broker.username, password=broker.password)
    started = datetime.now(UTC)
    stats = sim.run_for(4)
    msgs = sub.wait_for(lambda ms: sum(b'"online":false' in m.payload for m in ms) >= 8)
    assert stats.connected == 0 and stats.fixes > 8 * 10
    fixes = [f for m in msgs if m.topic.endswith("/gps") for f in parse_gps_payload(m.payload)]
    events = [parse_event(m.payload) for m in msgs if m.topic.endswith("/event")]
    assert len(fixes) == stats.fixes and len(events) == stats.events
    assert {m.topic.split("/")[-2] for m in msgs if m.topic.endswith("/gps")} == {s.terminal_id for s in specs}
    # real wall-clock stamps, whatever the speed-up
    now = datetime.now(UTC)
    assert all(started - timedelta(seconds=1) <= f.ts <= now for f in fixes)
    assert {e.kind for e in events} >= {"patrol.started"}
    # each terminal's fixes stay inside its own grid (wandering is rare over 100 simulated seconds)
    regions = {s.terminal_id: s.region for s in specs}
    inside = sum(regions[m.topic.split("/")[-2]].contains(f.lon, f.lat) for m in msgs if m.topic.endswith("/gps") for f in parse_gps_payload(m.payload))
    assert inside >= 0.95 * len(fixes)
    last_status = {}
    for m in msgs:
        if m.topic.endswith("/status"):
            last_status[m.topic] = TerminalStatus.model_validate_json(m.payload).online
    assert set(last_status.values()) == {False}, "a clean stop leaves every terminal offline"


def test_simulator_answers_signed_orders_like_people(broker, prefix, raw_subscriber, clear_retained, order_key, forger_key, make_command) -> None:
    specs = synthetic_specs(6, seed=1)
    t = Topics(prefix)
    clear_retained.extend(t.terminal(s.terminal_id, "status") for s in specs)
    sub = raw_subscriber([f"{prefix}/t/+/ack", f"{prefix}/t/+/gps"])
    people = BehaviourConfig(offline_per_hour=0, response=ResponseConfig(silent_share=0.0, reject_share=0.3))
    sim = Simulator(specs, host=broker.host, port=broker.port, prefix=prefix, speedup=600, seed=1, behaviour=people, platform_key=order_key.public_key(),
                    username=broker.username, password=broker.password)
    away = specs[0].terminal_id
    places = {s.terminal_id: (lambda c: (round(c.x, 6), round(c.y, 6)))(s.region.geometry.centroid) for s in specs}
    orders = {tid: make_command(kind="emergency", priority="critical", to=tid, lon=lon, lat=lat) for tid, (lon, lat) in places.items()}
    sim.start()
    try:
        assert sim.fleet.wait_connected(timeout=20)
        time.sleep(0.3)  # SUBACKs
        sim.fleet.loop.run_sync(lambda: sim.fleet.clients[away].go_offline())
        time.sleep(0.3)
        forged = make_command(kind="emergency", title="Everyone to the river")
        sub.publish(t.cmd_all, sign_command(forger_key, forged))
        for tid, cmd in orders.items():  # one signed copy per terminal, as the dispatcher sends them
            sub.publish(t.cmd_terminal(tid), sign_command(order_key, cmd))

        def acks_of(ms, tid):
            return [json.loads(m.payload) for m in ms if m.topic == t.terminal(tid, "ack")]

        def final(ms, tid):
            return any(a["status"] in ("done", "rejected") and a["command_id"] == str(orders[tid].command_id) for a in acks_of(ms, tid))

        others = [s.terminal_id for s in specs if s.terminal_id != away]
        sub.wait_for(lambda ms: all(final(ms, tid) for tid in others), timeout=30)
        assert acks_of(sub.messages, away) == [], "an officer without network answers nothing"
        sim.fleet.loop.run_sync(lambda: sim.fleet.clients[away].go_online())
        msgs = sub.wait_for(lambda ms: all(final(ms, tid) for tid in places), timeout=30)
    finally:
        sim.stop()
    answered: dict[str, list[str]] = {}
    for tid, cmd in orders.items():
        acks = acks_of(msgs, tid)
        assert [a["note"].split(":")[0] for a in acks if a["command_id"] == str(forged.command_id)] in (["bad_signature"], [])
        answered[tid] = [a["status"] for a in acks if a["command_id"] == str(cmd.command_id)]
        assert answered[tid] in (["received", "accepted", "done"], ["received", "rejected"]), answered
    assert sum(a[-1] == "done" for a in answered.values()) >= 2
    forged_refusals = [a for tid in places for a in acks_of(msgs, tid) if a["command_id"] == str(forged.command_id)]
    assert len(forged_refusals) >= len(others), "every connected terminal refused the forgery"
    # those who accepted went to the place (their fixes reach it) before reporting done
    for tid, statuses in answered.items():
        if statuses[-1] == "done":
            fixes = [f for m in msgs if m.topic == t.terminal(tid, "gps") for f in parse_gps_payload(m.payload)]
            assert any((round(f.lon, 6), round(f.lat, 6)) == places[tid] for f in fixes), tid
    assert sim.snapshot().refused >= len(others)


def test_a_fleet_without_the_platform_key_says_so_once(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="terminal.simulator"):
        sim = Simulator(synthetic_specs(5), platform_key=None)
    loud = [r for r in caplog.records if "NO PLATFORM PUBLIC KEY" in r.getMessage()]
    assert len(loud) == 1 and "refuse every one" in loud[0].getMessage()
    assert all(c.config.platform_key is None for c in sim.fleet.clients.values())


def test_cli_refuses_a_key_file_that_is_not_a_key(tmp_path, caplog) -> None:
    bad = tmp_path / "order.pub.pem"
    bad.write_text("not a key\n")
    with caplog.at_level(logging.ERROR):
        assert cli_main(["simulate", "--synthetic", "1", "--duration-s", "0", "--order-public-key", str(bad)]) == 2
    assert any(str(bad) in r.getMessage() for r in caplog.records)
