"""Ingest end to end: real broker, real PostgreSQL/TimescaleDB, real Redis, ``python -m ingest``."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import psycopg

from tests.ingest.conftest import count_fixes, fix
from tests.support import ServiceProcess, wait_until


def tid() -> str:
    return "T" + uuid.uuid4().hex[:10]


def test_round_trip_fixes_and_events_reach_history_and_live_state(two_grids, ingest, terminal, db, live):
    r, keys = live
    t = tid()
    for seq, lon in enumerate((117.01, 117.02, 117.05)):
        terminal.publish(t, "gps", fix(seq, lon=lon, battery_pct=80 - seq))
    terminal.publish(t, "event", {"seq": 10, "ts": datetime.now(timezone.utc).isoformat(), "kind": "report",
                                  "lat": 28.25, "lon": 117.02,
                                  "body": {"report_id": "R1", "category": "complaint", "text": "过期食品"}})
    terminal.publish(t, "status", {"online": True, "ts": datetime.now(timezone.utc).isoformat()})
    wait_until(lambda: count_fixes(db, t) == 3, what="3 fixes stored")

    rows = db.execute("SELECT seq, grid2_code, grid1_code FROM gps_fix WHERE terminal_id = %s ORDER BY seq", (t,)).fetchall()
    assert rows == [(0, "A", "L1"), (1, "A", "L1"), (2, "B", "L1")]
    wait_until(lambda: db.execute("SELECT kind, grid2_code FROM terminal_event WHERE terminal_id = %s", (t,)).fetchall()
               == [("report", "A")], what="the report stored with its grid")
    wait_until(lambda: r.hget(keys.last_fix, t), what="live position")
    last = json.loads(r.hget(keys.last_fix, t))
    assert (last["seq"], last["g2"], last["bat"]) == (2, "B", 78)
    lon, lat = r.geopos(keys.geo, t)[0]
    assert abs(lon - 117.05) < 1e-5 and abs(lat - 28.26) < 1e-5
    assert r.zscore(keys.last_seen, t) is not None
    wait_until(lambda: r.hget(keys.session, t) == "1", what="session online")
    day = datetime.now(timezone.utc).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d")
    counters = r.hgetall(keys.counters(day))
    assert (int(counters["A|gps"]), int(counters["B|gps"]), int(counters["A|report"])) == (2, 1, 1)
    stream = r.xrange(keys.events)
    assert any(e[1]["kind"] == "report" and e[1]["terminal_id"] == t for e in stream)


def test_redelivery_and_arrays_store_each_fix_once(ingest, terminal, db, live):
    r, keys = live
    day = datetime.now(timezone.utc).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d")

    def counted() -> int:
        return sum(int(n) for k, n in r.hgetall(keys.counters(day)).items() if k.endswith("|gps"))

    first = tid()
    terminal.publish(first, "gps", fix(0))  # the first batch also rebuilds live state from the shared database
    wait_until(lambda: count_fixes(db, first) == 1, what="a first fix")
    counted_before = counted()
    rolled_before = db.execute("SELECT coalesce(sum(n), 0) FROM fix_hourly").fetchone()[0]
    t = tid()
    ts = datetime.now(timezone.utc)
    batch = [fix(i, ts=ts + timedelta(seconds=i)) for i in range(50)]
    terminal.publish(t, "gps", batch)
    terminal.publish(t, "gps", batch[10])  # a redelivered single fix
    terminal.publish(t, "gps", batch[:20])  # a re-flushed array
    terminal.publish(t, "gps", [batch[49], batch[49]])  # the same fix twice in one message
    marker = tid()
    terminal.publish(marker, "gps", fix(0))  # published last: once it is stored, all of the above is
    wait_until(lambda: count_fixes(db, marker) == 1, what="the fixes")
    assert count_fixes(db, t) == 50
    rolled = db.execute("SELECT coalesce(sum(n), 0) FROM fix_hourly").fetchone()[0]
    assert rolled - rolled_before == 51  # 50 + the marker: the hourly rollup counted no repeat
    assert counted() - counted_before == 51  # nor did today's live counter
    assert db.execute("SELECT count(DISTINCT seq) FROM gps_fix WHERE terminal_id = %s", (t,)).fetchone()[0] == 50


def test_bad_messages_are_dead_lettered_and_ingest_keeps_going(ingest, terminal, db):
    t = tid()
    now = datetime.now(timezone.utc)
    bad = {
        "malformed_json": b'{"seq": 1, "lat": ',
        "invalid_fields": fix(1, lat=123.0) | {"seq": "one"},
        "terminal_mismatch": fix(2) | {"terminal_id": "SOMEONE-ELSE"},
        "payload_too_large": json.dumps([fix(i) for i in range(1000)]).encode(),
        "ts_in_future": fix(3, ts=now + timedelta(days=1)),
    }
    for payload in bad.values():
        terminal.publish(t, "gps", payload)
    terminal.publish(t, "gps", fix(4))
    wait_until(lambda: count_fixes(db, t) == 1, what="the good fix after the bad ones")
    rows = db.execute("SELECT reason, detail, payload FROM dead_letter WHERE topic LIKE %s", (f"%/t/{t}/gps",)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(bad)
    for reason, detail, payload in rows:
        assert detail, f"{reason} has no explanation"
        sent = bad[reason]
        assert bytes(payload) == (sent if isinstance(sent, bytes) else json.dumps(sent).encode())
    assert ingest.proc.poll() is None  # still running


def test_nothing_lost_while_ingest_is_down(test_settings, tmp_path, terminal, db):
    t = tid()
    first = ServiceProcess("ingest", test_settings, tmp_path / "ingest-1.log").start()
    first.wait_for_log("subscribed to", "ingest to subscribe")
    terminal.publish(t, "gps", fix(0))
    wait_until(lambda: count_fixes(db, t) == 1, what="first fix")
    first.stop()
    for seq in range(1, 501):  # published while no ingest runs: the broker keeps them for its session
        terminal.publish(t, "gps", fix(seq), wait=False)
    terminal.publish(t, "gps", fix(501))
    assert count_fixes(db, t) == 1
    second = ServiceProcess("ingest", test_settings, tmp_path / "ingest-2.log").start()
    try:
        wait_until(lambda: count_fixes(db, t) == 502, timeout=30, what="all 502 fixes after the restart")
    finally:
        second.stop()


def test_crash_mid_stream_loses_nothing_and_duplicates_nothing(test_settings, tmp_path, terminal, db):
    """kill -9 while a stream flows: unacknowledged batches are redelivered, the key absorbs repeats."""
    t = tid()
    proc = ServiceProcess("ingest", test_settings, tmp_path / "ingest-a.log").start()
    proc.wait_for_log("subscribed to", "ingest to subscribe")
    infos = []
    for seq in range(3000):
        infos.append(terminal.publish(t, "gps", fix(seq), wait=False))
        if seq == 1500:
            proc.stop(kill=True)
            proc = ServiceProcess("ingest", test_settings, tmp_path / "ingest-b.log").start()
    for info in infos:
        info.wait_for_publish(timeout=10)
    try:
        wait_until(lambda: count_fixes(db, t) == 3000, timeout=40, what="all 3000 fixes after a crash")
    finally:
        proc.stop()
    assert db.execute("SELECT count(DISTINCT seq) FROM gps_fix WHERE terminal_id = %s", (t,)).fetchone()[0] == 3000


def test_database_outage_delays_but_loses_nothing(ingest, terminal, db, pg_dsn):
    t = tid()
    name = db.info.dbname
    terminal.publish(t, "gps", fix(0))
    wait_until(lambda: count_fixes(db, t) == 1, what="first fix")
    with psycopg.connect(psycopg.conninfo.make_conninfo(pg_dsn, dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                      " AND application_name LIKE 'gridwatch-ingest%%'", (name,))
        try:
            for seq in range(1, 201):
                terminal.publish(t, "gps", fix(seq))
            ingest.wait_for_log("PostgreSQL write failed", "ingest to notice the outage")
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_until(lambda: count_fixes(db, t) == 201, timeout=40, what="all fixes after the database returns")


def test_live_state_is_rebuilt_after_redis_loses_it(ingest, terminal, db, live):
    r, keys = live
    t = tid()
    terminal.publish(t, "gps", fix(0, lon=117.04))
    wait_until(lambda: r.hget(keys.last_fix, t), what="live position")
    r.delete(*[k for k in r.scan_iter(match=keys.prefix + "*")])  # Redis restarted: nothing kept
    terminal.publish(tid(), "gps", fix(0))  # any next batch triggers the check
    wait_until(lambda: r.hget(keys.last_fix, t), timeout=15, what="position rebuilt from PostgreSQL")
    assert json.loads(r.hget(keys.last_fix, t))["lon"] == 117.04
    assert r.get(keys.built)


def test_a_rebuild_keeps_a_terminal_heard_from_only_by_its_status(ingest, terminal, db, live):
    """Seen is what apply() says it is: a rebuild from PostgreSQL counts an "online" status too,
    or a terminal that has only connected would not count as back (the dispatcher re-sends on that)."""
    r, keys = live
    t = tid()
    terminal.publish(t, "status", {"online": True, "ts": datetime.now(timezone.utc).isoformat()})
    wait_until(lambda: r.zscore(keys.last_seen, t), what="seen from its status")
    r.delete(*[k for k in r.scan_iter(match=keys.prefix + "*")])  # Redis restarted: nothing kept
    terminal.publish(tid(), "gps", fix(0))  # the next batch rebuilds
    wait_until(lambda: r.get(keys.built), timeout=15, what="live state rebuilt")
    assert r.zscore(keys.last_seen, t)


def test_text_postgresql_cannot_store_is_dead_lettered_not_retried_forever(ingest, terminal, db):
    t = tid()
    event = {"seq": 1, "ts": datetime.now(timezone.utc).isoformat(), "kind": "report",
             "body": {"report_id": "R-NUL", "category": "tip", "text": "bad\u0000byte"}}
    terminal.publish(t, "event", json.dumps(event).encode())
    terminal.publish(t, "gps", fix(2))
    wait_until(lambda: count_fixes(db, t) == 1, what="the fix after the NUL event")
    reason, detail = db.execute("SELECT reason, detail FROM dead_letter WHERE topic LIKE %s", (f"%/t/{t}/event",)).fetchone()
    assert reason == "invalid_fields" and "NUL" in detail


def test_a_grid_imported_while_ingest_runs_tags_the_next_fixes(two_grids, ingest, terminal, db):
    """The refresher thread notices the new grid version (grid_reload_s is 1 s in tests); the
    worker's rounds never query for it."""
    t, code = tid(), "R" + uuid.uuid4().hex[:6]
    lon = 100.0 + int(uuid.uuid4().hex[:4], 16) / 1000  # a square of its own, far from A and B
    square = {"type": "Polygon", "coordinates": [[[lon, 30.0], [lon + 0.001, 30.0], [lon + 0.001, 30.001],
                                                  [lon, 30.001], [lon, 30.0]]]}
    terminal.publish(t, "gps", fix(0, lon=lon + 0.0005, lat=30.0005))
    wait_until(lambda: count_fixes(db, t) == 1, what="the fix before the import")
    db.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom) VALUES (%s, '新社区', 'L1', %s)",
               (code, json.dumps(square)))
    db.execute("UPDATE gw_meta SET value = %s WHERE key = 'grid_version'", (f"test-{uuid.uuid4().hex}",))
    ingest.wait_for_log(f"grid loaded: {len(db.execute('SELECT 1 FROM grid_level2').fetchall())} level-2 grids",
                        "ingest to load the new grid")
    terminal.publish(t, "gps", fix(1, lon=lon + 0.0005, lat=30.0005))
    wait_until(lambda: count_fixes(db, t) == 2, what="the fix after the import")
    assert db.execute("SELECT seq, grid2_code FROM gps_fix WHERE terminal_id = %s ORDER BY seq", (t,)).fetchall() \
        == [(0, None), (1, code)]
