"""Fixtures for the alerts engine's tests: a registry (grids, people, terminals) in the session's
database, rows written as ingest writes them, an in-process engine, and the real processes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from alerts.engine import AlertEngine
from tests.ingest.conftest import GRID_A, GRID_B, Terminal, ingest, terminal, two_grids  # noqa: F401  (fixtures re-exported)
from tests.support import ServiceProcess, wait_until

GRID_C = {"type": "Polygon", "coordinates": [[[117.10, 28.24], [117.13, 28.24], [117.13, 28.28], [117.10, 28.28], [117.10, 28.24]]]}


@pytest.fixture(scope="session")
def registry(pg_dsn, two_grids):
    """Grids A, B (adjacent) and C (far); person P-A assigned to A."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom, centroid_lat, centroid_lon)"
                     " VALUES ('C', '测试社区C', 'L1', %s, 28.26, 117.115) ON CONFLICT DO NOTHING", (json.dumps(GRID_C),))
        conn.execute("INSERT INTO grid_adjacency (a, b) VALUES ('A', 'B'), ('B', 'A') ON CONFLICT DO NOTHING")
    return ("A", "B", "C")


@pytest.fixture
def person(pg_dsn, registry):
    """A fresh person with a terminal of their own, assigned to grid A: returns the terminal id."""
    tag = uuid.uuid4().hex[:6]
    tid, pid = f"T{tag}", f"P{tag}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO person (person_id, name, role, phone) VALUES (%s, %s, 'level2_supervisor', '13800000000')",
                     (pid, f"王{tag}"))
        conn.execute("INSERT INTO person_grid (person_id, grid_code, role) VALUES (%s, 'A', 'level2_supervisor')", (pid,))
        conn.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (tid, pid))
    return tid


@pytest.fixture
def db(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn


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
                 lat: float | None = 28.26, lon: float | None = 117.01, grid: str | None = "A",
                 received_at: datetime | None = None) -> None:
    ts = ts or datetime.now(timezone.utc)
    db.execute("INSERT INTO terminal_event (ts, terminal_id, seq, kind, body, lat, lon, grid2_code, received_at)"
               " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
               (ts, tid, seq, kind, json.dumps(body or {}), lat, lon, grid, received_at or ts))


def insert_fix(db, tid: str, seq: int, ts: datetime, grid: str | None = "A", battery: float | None = 80.0,
               lat: float = 28.26, lon: float = 117.01) -> None:
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
    wait_until(lambda: "alerts engine started" in proc.log_text(), what="the alerts engine to start", timeout=30)
    yield proc
    proc.stop()


