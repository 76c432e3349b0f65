"""Many terminals on one network thread, and the simulator in-process, against the real broker."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

from schemas.events import parse_event
from schemas.gps import parse_gps_payload
from schemas.status import TerminalStatus
from schemas.topics import Topics
from terminal.client import TerminalConfig
from terminal.fleet import TerminalFleet
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
    sim = Simulator(specs, host=broker.host, port=broker.port, prefix=prefix, interval_s=5, speedup=25, seed=5, progress_every_s=1)
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


def test_simulator_answers_commands(broker, prefix, raw_subscriber, clear_retained) -> None:
    specs = synthetic_specs(3, seed=1)
    t = Topics(prefix)
    clear_retained.extend(t.terminal(s.terminal_id, "status") for s in specs)
    sub = raw_subscriber([f"{prefix}/t/+/ack"])
    sim = Simulator(specs, host=broker.host, port=broker.port, prefix=prefix, speedup=600, seed=1)
    sim.start()
    try:
        assert sim.fleet.wait_connected(timeout=10)
        time.sleep(0.3)
        cmd = {"command_id": "6f1d3c1e-2b7a-4c1e-9f3a-0a5b2c7d8e90", "issued_at": datetime.now(UTC).isoformat(), "kind": "task", "title": "All hands", "issued_by": "duty"}
        sub.publish(t.cmd_all, json.dumps(cmd))
        # received at once, then accepted/done (or rejected) within simulated minutes = real seconds at x600
        acks = sub.wait_for(lambda ms: sum(b'"done"' in m.payload or b'"rejected"' in m.payload for m in ms) >= 3, timeout=15)
    finally:
        sim.stop()
    by_terminal: dict[str, list[str]] = {}
    for m in acks:
        by_terminal.setdefault(m.topic.split("/")[-2], []).append(json.loads(m.payload)["status"])
    assert set(by_terminal) == {s.terminal_id for s in specs}
    for statuses in by_terminal.values():
        assert statuses[0] == "received"
        assert statuses[1:] in (["accepted", "done"], ["rejected"])
