"""The demo city's simulated terminals through the real broker into ingest (issue 3's end to end)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from db.migrate import drop_database, ensure_database, migrate
from terminal.client import TerminalClient, TerminalConfig
from terminal.simulator import Simulator, load_registry
from tests.ingest.conftest import register_terminals
from tests.support import ROOT, ServiceProcess, wait_until


@pytest.fixture(scope="module")
def city_dsn(base_settings, tmp_path_factory):
    """A database of its own holding a small demo city (real divisions, 3,000 entities)."""
    dsn = psycopg.conninfo.make_conninfo(base_settings.pg_dsn, dbname=f"gw_city_{uuid.uuid4().hex[:8]}")
    ensure_database(dsn)
    migrate(dsn, base_settings.retention_days)
    out = tmp_path_factory.mktemp("city")
    subprocess.run([sys.executable, "-m", "grid", "--dsn", dsn, "-q", "demo", "--entities", "3000", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    yield dsn
    drop_database(dsn)


@pytest.fixture
def city_ingest(test_settings, city_dsn, tmp_path):
    s = test_settings.model_copy(update={"pg_dsn": city_dsn})
    proc = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    proc.wait_for_log("grid loaded", "ingest to load the demo grid")
    # ready only once subscribed: what a terminal publishes before that reaches no one (the broker
    # acknowledges it all the same), and the test would wait for fixes ingest never saw
    proc.wait_for_log("subscribed to", "ingest to subscribe")
    yield s
    proc.stop()


def test_simulated_officers_are_stored_in_their_own_grids(city_ingest, city_dsn):
    s = city_ingest
    specs = [sp for sp in load_registry(city_dsn) if sp.role == "level2_supervisor"][:20]
    assert len(specs) == 20
    sim = Simulator(specs, host=s.mqtt_host, port=s.mqtt_port, prefix=s.topic_prefix, interval_s=5, speedup=25, seed=7,
                    username=s.mqtt_username, password=s.mqtt_password)
    stats = sim.run_for(6)
    assert stats.fixes > 100
    ids = [sp.terminal_id for sp in specs]
    with psycopg.connect(city_dsn, autocommit=True) as db:
        wait_until(lambda: db.execute("SELECT count(*) FROM gps_fix WHERE terminal_id = ANY(%s)", (ids,)).fetchone()[0]
                   == stats.fixes, what="every fix the simulator sent, stored")
        tagged, own = db.execute(
            """SELECT count(f.grid2_code), count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM terminal t JOIN person_grid pg ON pg.person_id = t.person_id
                   WHERE t.terminal_id = f.terminal_id AND pg.grid_code = f.grid2_code))
               FROM gps_fix f WHERE terminal_id = ANY(%s)""", (ids,)).fetchone()
        total = db.execute("SELECT count(*) FROM gps_fix WHERE terminal_id = ANY(%s)", (ids,)).fetchone()[0]
    # officers walk inside their own grids; a few wander out on purpose (and are still stored)
    assert tagged / total > 0.9
    assert own / total > 0.8


def test_buffered_offline_fixes_arrive_in_order_after_reconnect(city_ingest, city_dsn):
    s = city_ingest
    t = "TBUF" + uuid.uuid4().hex[:6]
    register_terminals(city_dsn, [t])
    client = TerminalClient(TerminalConfig(terminal_id=t, prefix=s.topic_prefix), host=s.mqtt_host, port=s.mqtt_port,
                            username=s.mqtt_username, password=s.mqtt_password).start()
    try:
        assert client.wait_connected(10)
        client.send_fix(28.26, 117.03)
        client.go_offline()
        wait_until(lambda: not client.connected, what="the terminal to drop its link")
        for i in range(120):  # two minutes of walking while out of coverage
            client.send_fix(28.26 + i * 1e-5, 117.03)
            time.sleep(0.002)
        assert client.buffered >= 120
        back_online = datetime.now(timezone.utc)
        client.go_online()
        assert client.wait_delivered(20)
    finally:
        client.stop()
    with psycopg.connect(city_dsn, autocommit=True) as db:
        wait_until(lambda: db.execute("SELECT count(*) FROM gps_fix WHERE terminal_id = %s", (t,)).fetchone()[0] == 121,
                   what="all 121 fixes")
        rows = db.execute("SELECT seq, ts, received_at, grid2_code FROM gps_fix WHERE terminal_id = %s ORDER BY seq",
                          (t,)).fetchall()
    seqs = [r[0] for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + 121))  # contiguous: nothing lost in the buffer
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)  # made in the order of their seq
    assert all(r[2] >= back_online for r in rows[1:])  # the buffered ones came after the reconnect
    assert all(r[3] is not None for r in rows)  # and were tagged with their grid like any other
