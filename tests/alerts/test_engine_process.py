"""The engine as an operator runs it (``python -m alerts``) with ingest and the real broker:
killed with SIGKILL mid-stream and restarted, or Redis flushed mid-stream — no alert lost,
none doubled, every SOS counted exactly once. And an SOS from the reference terminal client
becomes an open alert (latency printed, a generous bound asserted)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import redis

from terminal.client import TerminalClient, TerminalConfig
from tests.support import ServiceProcess, wait_until

N_TERMINALS = 30
SOS_EACH = 4


def _publish_stream(terminal, prefix: str, pause: float) -> None:
    """SOS events from N_TERMINALS terminals, SOS_EACH each, interleaved, plus one serious report each."""
    for k in range(SOS_EACH):
        for i in range(N_TERMINALS):
            tid = f"{prefix}{i:03d}"
            now = datetime.now(timezone.utc).isoformat()
            terminal.publish(tid, "event", {"seq": 10 + k, "ts": now, "kind": "sos", "lat": 28.26, "lon": 117.21,
                                            "body": {"text": f"help {k}"}}, wait=False)
            if k == 0:
                terminal.publish(tid, "event", {"seq": 1, "ts": now, "kind": "report", "body": {
                    "report_id": f"r{i}", "category": "tip", "text": "<b>gas leak</b>", "serious": True}}, wait=False)
        time.sleep(pause)


def _expect_exact(db, prefix: str) -> None:
    rows = db.execute("SELECT terminal_id, count, state FROM alert WHERE kind = 'sos' AND terminal_id LIKE %s",
                      (prefix + "%",)).fetchall()
    assert len(rows) == N_TERMINALS, f"{len(rows)} SOS alerts for {N_TERMINALS} terminals"
    assert sorted({r[1] for r in rows}) == [SOS_EACH], f"counts {sorted(r[1] for r in rows)}"
    acts = db.execute(
        "SELECT a.action, count(*) FROM alert_action a JOIN alert x ON x.id = a.alert_id"
        " WHERE x.kind = 'sos' AND x.terminal_id LIKE %s GROUP BY 1 ORDER BY 1", (prefix + "%",)).fetchall()
    assert dict(acts).get("open") == N_TERMINALS and dict(acts).get("bump") == N_TERMINALS * (SOS_EACH - 1)
    serious = db.execute("SELECT count(*), max(count) FROM alert WHERE kind = 'serious_violation' AND terminal_id LIKE %s",
                         (prefix + "%",)).fetchone()
    assert serious == (N_TERMINALS, 1)


def _sos_counted(db, prefix: str) -> int:
    return db.execute("SELECT coalesce(sum(count), 0) FROM alert WHERE kind = 'sos' AND terminal_id LIKE %s",
                      (prefix + "%",)).fetchone()[0]


def test_engine_killed_mid_stream_and_restarted_loses_and_doubles_nothing(alert_settings, ingest, terminal, db, tmp_path):
    prefix = f"K{uuid.uuid4().hex[:5]}"
    engine = ServiceProcess("alerts", alert_settings, tmp_path / "alerts1.log").start()
    engine.wait_for_log("alerts engine started", "the engine to start", timeout=30)
    pub = threading.Thread(target=_publish_stream, args=(terminal, prefix, 0.5))
    pub.start()
    wait_until(lambda: _sos_counted(db, prefix) > 0, what="the first SOS alerts", timeout=30, interval=0.02)
    engine.stop(kill=True)  # SIGKILL, mid-stream
    killed_at = _sos_counted(db, prefix)
    print(f"\nengine SIGKILLed with {killed_at} of {N_TERMINALS * SOS_EACH} SOS counted")
    time.sleep(0.5)
    again = ServiceProcess("alerts", alert_settings, tmp_path / "alerts2.log").start()
    try:
        pub.join(60)
        wait_until(lambda: _sos_counted(db, prefix) >= N_TERMINALS * SOS_EACH, what="every SOS evaluated", timeout=60)
        time.sleep(2 * alert_settings.alerts_state_s + 1)  # let any double show up
        _expect_exact(db, prefix)
        assert killed_at < N_TERMINALS * SOS_EACH, "the kill came after the stream: this test proved nothing"
    finally:
        again.stop()


def test_redis_flushed_mid_stream_loses_and_doubles_nothing(alert_settings, ingest, alerts_proc, terminal, db):
    prefix = f"F{uuid.uuid4().hex[:5]}"
    r = redis.Redis.from_url(alert_settings.redis_url)
    pub = threading.Thread(target=_publish_stream, args=(terminal, prefix, 0.5))
    pub.start()
    wait_until(lambda: _sos_counted(db, prefix) > 0, what="the first SOS alerts", timeout=30, interval=0.02)
    keys = list(r.scan_iter(match=alert_settings.redis_prefix + "*", count=1000))
    assert keys, "nothing in Redis to flush"
    r.delete(*keys)  # this test's whole Redis namespace, the event stream included
    flushed_at = _sos_counted(db, prefix)
    pub.join(60)
    wait_until(lambda: _sos_counted(db, prefix) >= N_TERMINALS * SOS_EACH, what="every SOS evaluated", timeout=60)
    time.sleep(2 * alert_settings.alerts_state_s + 1)
    _expect_exact(db, prefix)
    assert flushed_at < N_TERMINALS * SOS_EACH, "the flush came after the stream: this test proved nothing"


def test_sos_from_the_reference_terminal_is_an_open_alert(alert_settings, ingest, alerts_proc, db, person):
    s = alert_settings
    client = TerminalClient(TerminalConfig(person, prefix=s.topic_prefix), host=s.mqtt_host, port=s.mqtt_port,
                            username=s.mqtt_username, password=s.mqtt_password).start()
    try:
        assert client.wait_connected(10)
        client.send_fix(28.26, 117.21, battery_pct=70)
        time.sleep(0.5)
        t0 = time.monotonic()
        sent = client.send_event("sos", lat=28.2601, lon=117.2102)
        row = wait_until(lambda: db.execute(
            "SELECT id, state, severity, lat, lon, detail->>'person_name' FROM alert WHERE kind = 'sos' AND terminal_id = %s",
            (person,)).fetchone(), what="the SOS alert", timeout=30, interval=0.01)
        latency = time.monotonic() - t0
        print(f"\nSOS publish -> open alert in the database: {latency * 1000:.0f} ms")
        assert row[1:5] == ("open", "critical", 28.2601, 117.2102) and row[5].startswith("王")
        assert sent.seq >= 0
        assert latency < 10, "an SOS took more than 10 s to become an alert"
    finally:
        client.stop()
