"""Fixtures for the wall's tests: a scratch PostgreSQL database with every migration applied,
a unique Redis key prefix, known data, and the Dash app built on them.

Services come from GRIDWATCH_* settings (tests/conftest.py ``base_settings``: the project's
cluster, Redis and broker). If one is not reachable the suite fails at once with a message
naming it: it never skips silently.
"""

from __future__ import annotations

import json
import time
import uuid
from zoneinfo import ZoneInfo
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import redis

from schemas.settings import Settings
from tests.support import migrated_database

TEST_SECRET = "test-secret-" + "x" * 32  # at least 32 bytes, as the web requires


@pytest.fixture(scope="session")
def scratch_dsn(base_settings):
    """A database of our own on the project's cluster (base_settings checked it answers), migrated."""
    with migrated_database(base_settings.pg_dsn, f"gw_dash_test_{uuid.uuid4().hex[:8]}", base_settings.retention_days) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_prefix(base_settings):
    prefix = f"gwtest:dash:{uuid.uuid4().hex[:8]}:"
    r = redis.Redis.from_url(base_settings.redis_url)
    yield prefix
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)


@pytest.fixture(scope="session")
def settings(base_settings, scratch_dsn, redis_prefix):
    from tests.dashboard.auth_support import make_users

    make_users(scratch_dsn)
    return Settings(pg_dsn=scratch_dsn, redis_url=base_settings.redis_url, redis_prefix=redis_prefix, language="zh-CN",
                    web_secret=TEST_SECRET, online_window_s=120)


@pytest.fixture()
def rds(settings):
    return redis.Redis.from_url(settings.redis_url)


# ----------------------------------------------------------------- known data
_NOW: list[datetime] = []


def _now() -> datetime:
    """The known data's "now": fixed by the first fixture that asks, not at import. The web judges
    "online" (120 s) against the clock, and every test directory run before this one would age it."""
    if not _NOW:
        _NOW.append(datetime.now(timezone.utc).replace(microsecond=0))
    return _NOW[0]


def _sq(x0, y0, d=0.01):
    return json.dumps({"type": "Polygon", "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]})


KNOWN = {
    "level2": ["360602001001", "360602001002", "360602002001"],
    "terminals": {"T1": "P2", "T2": "P3", "T3": "P4"},
}


@pytest.fixture(scope="session")
def known_now():
    return _now()


@pytest.fixture(scope="session")
def known_db(scratch_dsn):
    """Registry: 2 level-1 grids, 3 level-2 grids, 4 people, 3 terminals; history; alerts."""
    with psycopg.connect(scratch_dsn, autocommit=True) as c:
        c.execute("INSERT INTO branch_office VALUES ('360602', '月湖区', 'Yuehu', true)")
        c.execute("INSERT INTO grid_level1 VALUES ('360602001', '江边街道', 'Jiangbian', '360602', %s, 28.2, 117.0, true),"
                  " ('360602002', '东湖街道', 'Donghu', '360602', %s, 28.2, 117.1, true)", (_sq(117.0, 28.2, 0.02), _sq(117.1, 28.2, 0.02)))
        c.execute("INSERT INTO grid_level2 VALUES"
                  " ('360602001001', '江边村', 'Jiangbian V', '360602001', %s, 28.205, 117.005, 1, true),"
                  " ('360602001002', '胜利社区', 'Shengli C', '360602001', %s, 28.205, 117.015, 1, true),"
                  " ('360602002001', '东湖社区', 'Donghu C', '360602002', %s, 28.205, 117.105, 1, true)",
                  (_sq(117.0, 28.2), _sq(117.01, 28.2), _sq(117.1, 28.2)))
        c.execute("INSERT INTO person VALUES ('P1', '张建国', 'level1_supervisor', '', true), ('P2', '李明', 'level2_supervisor', '', true),"
                  " ('P3', '王芳', 'level2_supervisor', '', true), ('P4', '赵协', 'co_manager', '', true)")
        c.execute("INSERT INTO person_grid VALUES ('P1', '360602001', 'level1_supervisor'), ('P2', '360602001001', 'level2_supervisor'),"
                  " ('P2', '360602001002', 'level2_supervisor'), ('P3', '360602002001', 'level2_supervisor'), ('P4', '360602001001', 'co_manager')")
        c.execute("INSERT INTO terminal VALUES ('T1', 'P2', 'x'), ('T2', 'P3', 'x'), ('T3', 'P4', 'x')")
        c.execute("INSERT INTO market_entity (uscc, name, kind, lat, lon, risk_level, grid2_code, grid1_code, synthetic) VALUES"
                  " ('913606000000000001', 'A店', 'enterprise', 28.205, 117.005, 'A', '360602001001', '360602001', true),"
                  " ('913606000000000002', 'B店', 'individual_business', 28.206, 117.006, 'C', '360602001001', '360602001', true)")
        c.execute("INSERT INTO gw_meta (key, value) VALUES ('grid_version', 'v-test-1') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
        # Fixes of T1: one a minute for the last 40 minutes.
        with c.cursor() as cur:
            with cur.copy("COPY gps_fix (ts, terminal_id, seq, lat, lon, battery_pct, grid2_code, grid1_code, received_at) FROM STDIN") as cp:
                for i in range(40):
                    ts = _now() - timedelta(minutes=40 - i)
                    cp.write_row((ts, "T1", i, 28.2 + i * 0.0001, 117.0 + i * 0.0001, 90, "360602001001", "360602001", ts))
        # Events and the hourly rollup (known totals: 3 completed inspections and 2 reports, earlier this year).
        c.execute("INSERT INTO terminal_event (ts, terminal_id, seq, kind, body, grid2_code, grid1_code, received_at) VALUES"
                  " (%(t)s, 'T1', 100, 'inspection.started', '{\"inspection_id\": \"I9\", \"entity_uscc\": \"913606000000000001\"}', '360602001001', '360602001', %(t)s),"
                  " (%(t)s - interval '1 hour', 'T2', 100, 'report', '{\"report_id\": \"R1\", \"category\": \"complaint\", \"text\": \"x\"}', '360602002001', '360602002', %(t)s),"
                  " (%(t)s - interval '2 hour', 'T2', 101, 'report', '{\"report_id\": \"R2\", \"category\": \"tip\", \"text\": \"x\"}', '360602002001', '360602002', %(t)s),"
                  " (%(t)s - interval '3 hour', 'T2', 102, 'report', '{\"report_id\": \"R3\", \"category\": \"complaint\", \"text\": \"x\"}', '360602002001', '360602002', %(t)s)",
                  {"t": _now() - timedelta(minutes=5)})
        kind = c.execute("SELECT relkind FROM pg_class WHERE relname = 'event_hourly'").fetchone()[0]
        assert kind in ("r", "p"), "these tests write the rollup tables the way ingest does (app/native mode)"
        jan2 = _now().replace(month=1, day=2, hour=3, minute=0, second=0)
        # "today" in the bureau's zone: between 00:00 and 02:00 there, _now() - 2 h is yesterday
        local_midnight = _now().astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=0, minute=0, second=0)
        today_bucket = max(_now() - timedelta(hours=2), local_midnight.astimezone(timezone.utc))
        c.execute("INSERT INTO event_hourly VALUES (%s, '360602001001', 'inspection.completed', 3), (%s, '360602002001', 'report', 2),"
                  " (date_trunc('hour', %s::timestamptz), '360602001001', 'inspection.completed', 4),"
                  " (date_trunc('hour', %s::timestamptz), '360602002001', 'inspection.completed', 1)",
                  (jan2, jan2, today_bucket, today_bucket))
        c.execute("INSERT INTO alert (kind, severity, state, terminal_id, grid2_code, lat, lon, title, opened_at) VALUES"
                  " ('sos', 'critical', 'open', 'T2', '360602002001', 28.205, 117.105, 'SOS 王芳', %s),"
                  " ('offline', 'warning', 'open', 'T3', '360602001001', 28.205, 117.005, '终端离线 T3', %s),"
                  " ('outside_grid', 'info', 'resolved', 'T1', '360602001001', null, null, 'old', %s)",
                  (_now() - timedelta(minutes=1), _now() - timedelta(minutes=10), _now() - timedelta(days=1)))
    return scratch_dsn


@pytest.fixture(scope="session")
def known_live(settings, known_db):
    """Live state: T1 online in grid 001001, T2 online in 002001, T3 last seen 10 min ago (offline)."""
    now = _now().timestamp()
    _write_live(settings, now)
    return now


@pytest.fixture
def live_on_the_clock(settings, known_live):
    """For a test whose web request reads the clock (not a ``now=``): the same live state stamped
    against the clock at this moment, put back afterwards (the suite runs for minutes; online is 120 s)."""
    _write_live(settings, time.time())
    yield
    _write_live(settings, known_live)


def _write_live(settings, now: float) -> None:
    from schemas.topics import RedisKeys
    from dashboard.live import local_day

    r = redis.Redis.from_url(settings.redis_url)
    k = RedisKeys(settings.redis_prefix)
    r.hset(k.last_fix, mapping={
        "T1": json.dumps({"lat": 28.2039, "lon": 117.0039, "ts": now - 5, "seq": 39, "hdg": 45, "bat": 90, "g2": "360602001001", "g1": "360602001"}),
        "T2": json.dumps({"lat": 28.205, "lon": 117.105, "ts": now - 3, "seq": 7, "hdg": None, "bat": 55, "g2": "360602002001", "g1": "360602002"}),
        "T3": json.dumps({"lat": 28.206, "lon": 117.006, "ts": now - 600, "seq": 3, "hdg": 10, "bat": 12, "g2": "360602001001", "g1": "360602001"}),
    })
    r.zadd(k.last_seen, {"T1": now - 5, "T2": now - 3, "T3": now - 600})
    r.hset(k.session, mapping={"T1": "1", "T2": "1", "T3": "0"})
    r.hset(k.counters(local_day(settings, now)), mapping={
        "360602001001|inspection.completed": 4, "360602002001|inspection.completed": 1,
        "360602002001|report": 3, "-|gps": 10, "360602001001|gps": 40,
    })
    r.set(k.version, 42)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (browser tests only)."""
    from playwright.sync_api import sync_playwright

    from tests.dashboard.browser_support import launch, require_chromium

    require_chromium()
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
