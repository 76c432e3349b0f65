"""Fixtures for the alerts engine's tests: a registry (grids, people, terminals) in the session's
database, rows written as ingest writes them, an in-process engine, and the real processes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from alerts.engine import AlertEngine
from tests.ingest.conftest import Terminal, ingest, terminal  # noqa: F401  (fixtures re-exported)
from tests.support import ServiceProcess


def _square(lon0: float) -> str:
    return json.dumps({"type": "Polygon", "coordinates": [[[lon0, 28.24], [lon0 + 0.03, 28.24], [lon0 + 0.03, 28.28],
                                                            [lon0, 28.28], [lon0, 28.24]]]})


# Grids of these tests' own, east of ingest's test grids A and B, so that what these tests send
# through ingest never changes the activity the ingest tests count in A and B (one session database).
X1_LON = 117.21


@pytest.fixture(scope="session")
def registry(pg_dsn):
    """Level-2 grids X1, X2 (adjacent) and X3 (far) in level-1 LX."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO branch_office (code, name_zh) VALUES ('BX', '告警测试分局') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO grid_level1 (code, name_zh, branch_code, geom) VALUES ('LX', '告警测试街道', 'BX', %s)"
                     " ON CONFLICT DO NOTHING", (_square(117.20),))
        for code, lon0 in (("X1", 117.20), ("X2", 117.23), ("X3", 117.30)):
            conn.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom, centroid_lat, centroid_lon)"
                         " VALUES (%s, %s, 'LX', %s, 28.26, %s) ON CONFLICT DO NOTHING",
                         (code, f"告警测试社区{code}", _square(lon0), lon0 + 0.015))
        conn.execute("INSERT INTO grid_adjacency (a, b) VALUES ('X1', 'X2'), ('X2', 'X1') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO gw_meta (key, value) VALUES ('grid_version', %s)"
                     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (f"alerts-test-{uuid.uuid4().hex}",))
    return ("X1", "X2", "X3")


@pytest.fixture
def person(pg_dsn, registry):
    """A fresh person with a terminal of their own, assigned to grid X1: returns the terminal id."""
    tag = uuid.uuid4().hex[:6]
    tid, pid = f"T{tag}", f"P{tag}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO person (person_id, name, role, phone) VALUES (%s, %s, 'level2_supervisor', '13800000000')",
                     (pid, f"王{tag}"))
        conn.execute("INSERT INTO person_grid (person_id, grid_code, role) VALUES (%s, 'X1', 'level2_supervisor')", (pid,))
        conn.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (tid, pid))
    return tid


@pytest.fixture
def alert_settings(test_settings):
    """Round-the-clock duty (tests run at any hour), short thresholds."""
    return test_settings.model_copy(update={
        "alerts_duty_hours": "*=00:00-24:00", "alerts_offline_s": 60.0, "alerts_outside_grid_s": 60.0,
        "alerts_remind_s": 1.0, "alerts_state_s": 0.5, "alerts_poll_s": 0.1, "stats_interval_s": 2.0,
    })


@pytest.fixture
def engine(alert_settings):
    e = AlertEngine(alert_settings)
    e._connect()
    yield e
    e._close()


def insert_event(db, tid: str, seq: int, kind: str, body: dict | None = None, ts: datetime | None = None,
                 lat: float | None = 28.26, lon: float | None = X1_LON, grid: str | None = "X1",
                 received_at: datetime | None = None) -> None:
    ts = ts or datetime.now(timezone.utc)
    db.execute("INSERT INTO terminal_event (ts, terminal_id, seq, kind, body, lat, lon, grid2_code, received_at)"
               " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
               (ts, tid, seq, kind, json.dumps(body or {}), lat, lon, grid, received_at or ts))


def insert_fix(db, tid: str, seq: int, ts: datetime, grid: str | None = "X1", battery: float | None = 80.0,
               lat: float = 28.26, lon: float = X1_LON) -> None:
    db.execute("INSERT INTO gps_fix (ts, terminal_id, seq, lat, lon, battery_pct, grid2_code, received_at)"
               " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", (ts, tid, seq, lat, lon, battery, grid, ts))


def alerts_of(db, subject: str) -> list[tuple]:
    return db.execute("SELECT id, kind, state, count, cleared_at IS NOT NULL FROM alert WHERE subject = %s ORDER BY id",
                      (subject,)).fetchall()


def actions_of(db, alert_id: int) -> list[tuple[str, str]]:
    return [tuple(r) for r in db.execute("SELECT action, actor FROM alert_action WHERE alert_id = %s ORDER BY id", (alert_id,))]


@pytest.fixture
def alerts_proc(alert_settings, tmp_path):
    """``python -m alerts`` running against this test's database and Redis keys."""
    proc = ServiceProcess("alerts", alert_settings, tmp_path / "alerts.log").start()
    proc.wait_for_log("alerts engine started", "the alerts engine to start", timeout=30)
    yield proc
    proc.stop()


