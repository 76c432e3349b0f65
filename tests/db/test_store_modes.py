"""The store in its two modes this machine can run for real: Apache TimescaleDB and native partitions.

The same ingest write path and the same shared queries must behave identically in both.
(The Timescale-License DDL is checked in test_tsl_migrations.py.)
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from db.maintenance import maintain
from db.migrate import MIGRATIONS_DIR, StoreMode, drop_database, ensure_database, migrate, plan, recorded_mode
from ingest.pipeline import Decoded, EventRow, FixRow
from ingest.store_pg import EVENT_COLUMNS, FIX_COLUMNS, PgStore
from tests.support import migrated_database


@pytest.fixture(params=[StoreMode.APACHE, StoreMode.NATIVE])
def store_dsn(request, base_settings):
    with migrated_database(base_settings.pg_dsn, f"gw_mode_{uuid.uuid4().hex[:8]}", 400, mode=request.param) as dsn:
        yield dsn, request.param


def rows(n: int, start: datetime, terminal: str = "T1", grid: str | None = "G1") -> list[FixRow]:
    return [FixRow(start + timedelta(seconds=i), terminal, i, 28.26, 117.03, None, None, None, None,
                   datetime.now(timezone.utc), None, grid, "L1" if grid else None) for i in range(n)]


def test_mode_is_recorded_and_migrations_are_idempotent(store_dsn):
    dsn, mode = store_dsn
    assert migrate(dsn, 400) == []  # second run applies nothing
    with psycopg.connect(dsn) as conn:
        assert recorded_mode(conn) is mode
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'gps_fix'").fetchone()[0]
        is_hyper = conn.execute("SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL AND EXISTS"
                                " (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()[0]
    assert kind == ("p" if mode is StoreMode.NATIVE else "r")
    assert is_hyper == (mode is StoreMode.APACHE)


def test_write_path_is_exactly_once_and_rolls_up(store_dsn):
    dsn, _ = store_dsn
    store = PgStore(dsn)
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = store.write(Decoded(fixes=rows(100, start)))
    again = store.write(Decoded(fixes=rows(100, start)[40:60] + rows(100, start)[:1]))
    store.close()
    assert (len(first.fixes), first.duplicates) == (100, 0)
    assert (len(again.fixes), again.duplicates) == (0, 21)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM gps_fix").fetchone()[0] == 100
        # the shared query (date_bin, not time_bucket) over the one name every mode provides
        got = conn.execute(
            "SELECT date_bin('1 day', bucket, timestamptz '2000-01-01'), grid2_code, kind, sum(n)::int"
            " FROM activity_hourly GROUP BY 1, 2, 3").fetchall()
    assert [(g, k, n) for _, g, k, n in got] == [("G1", "gps", 100)]


def test_a_batch_part_new_part_repeated_hands_on_exactly_its_new_rows(store_dsn):
    """The write returns only a count when every row was new; otherwise the keys, matched here."""
    dsn, _ = store_dsn
    store = PgStore(dsn)
    batch = rows(10, datetime.now(timezone.utc).replace(microsecond=0))
    store.write(Decoded(fixes=batch[:4]))
    mixed = batch[2:8] + batch[6:7]  # two stored before, four new, one repeated inside the batch
    got = store.write(Decoded(fixes=mixed))
    fresh = store.write(Decoded(fixes=batch[8:]))
    store.close()
    assert [r.key for r in got.fixes] == [r.key for r in batch[4:8]]
    assert got.duplicates == 3
    assert ([r.key for r in fresh.fixes], fresh.duplicates) == ([r.key for r in batch[8:]], 0)


def test_binary_copy_names_each_column_with_its_table_type(store_dsn):
    """The stage COPY is binary: a type named differently from the table's would fail every batch."""
    dsn, _ = store_dsn
    with psycopg.connect(dsn) as conn:
        for table, columns in (("gps_fix", FIX_COLUMNS), ("terminal_event", EVENT_COLUMNS)):
            actual = dict(conn.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())
            named = {c: conn.execute("SELECT format_type(%s::regtype, NULL)", (t,)).fetchone()[0] for c, t in columns.items()}
            assert named == actual, table


def test_events_with_json_bodies_and_unknown_fields_are_stored_as_sent(store_dsn):
    dsn, _ = store_dsn
    store = PgStore(dsn)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    body = r'{"note": "caf\u00e9 \"quoted\"", "n": [1, 2.5]}'
    got = store.write(Decoded(
        events=[EventRow(now, "T1", 1, "sos", body, 28.26, 117.03, now, '{"x": 1}', "G1", "L1")],
        fixes=[FixRow(now, "T1", 2, 28.26, 117.03, 4.5, None, 359.5, 100.0, now, '{"fw": "1.2"}', None, None)]))
    store.close()
    assert (len(got.events), len(got.fixes)) == (1, 1)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT body, extra, lat FROM terminal_event").fetchone() == (
            {"note": 'café "quoted"', "n": [1, 2.5]}, {"x": 1}, 28.26)
        assert conn.execute("SELECT acc_m, speed_mps, heading_deg, battery_pct, extra, grid2_code FROM gps_fix"
                            ).fetchone() == (4.5, None, 359.5, 100.0, {"fw": "1.2"}, None)


def test_year_of_history_queries_use_indexes(store_dsn):
    """The wall's reads name a terminal or grid and a window: the planner must not scan everything."""
    dsn, _ = store_dsn
    store = PgStore(dsn)
    now = datetime.now(timezone.utc)
    for t in ("T1", "T2", "T3"):  # three days of fixes, one a minute, in every partition or chunk
        store.write(Decoded(fixes=[FixRow(now - timedelta(minutes=m), t, m, 28.26, 117.03, None, None, None, None,
                                          now, None, "G1", "L1") for m in range(3 * 24 * 60)]))
    store.close()
    with psycopg.connect(dsn) as conn:
        conn.execute("ANALYZE gps_fix")
        conn.execute("SET enable_seqscan = off")  # on a small table the planner would scan anyway
        plan_text = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT ts, lat, lon FROM gps_fix WHERE terminal_id = 'T1' AND ts > now() - interval '30 minutes'"
            " ORDER BY ts"))
    assert "Index Cond: ((terminal_id = 'T1'::text) AND (ts >" in plan_text, plan_text
    assert "Seq Scan" not in plan_text, plan_text


def test_one_unique_index_keeps_each_fix_once_and_serves_a_terminal(store_dsn):
    """Migration 0015: one index, UNIQUE (terminal_id, ts, seq), is both the exactly-once key and
    the terminal's track; a repeat of (terminal, seq, ts) is refused, a new ts or seq is not."""
    dsn, _ = store_dsn
    with psycopg.connect(dsn) as conn:
        indexes = dict(conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'gps_fix' AND indexdef LIKE '%(terminal_id%'"))
        assert list(indexes) == ["gps_fix_terminal_ts_seq"], indexes
        assert "UNIQUE" in indexes["gps_fix_terminal_ts_seq"]
    store = PgStore(dsn)
    t0 = datetime(2026, 11, 25, 8, tzinfo=timezone.utc)
    row = lambda seq, ts: FixRow(ts, "T9", seq, 28.26, 117.03, None, None, None, None, ts, None)  # noqa: E731
    first = store.write(Decoded(fixes=[row(1, t0), row(2, t0)]))
    again = store.write(Decoded(fixes=[row(1, t0), row(1, t0 + timedelta(seconds=1)), row(3, t0)]))
    store.close()
    assert (len(first.fixes), first.duplicates) == (2, 0)
    assert [(r.seq, r.ts) for r in again.fixes] == [(1, t0 + timedelta(seconds=1)), (3, t0)]
    assert again.duplicates == 1


def test_retention_drops_old_history(store_dsn, base_settings):
    dsn, mode = store_dsn
    old = datetime.now(timezone.utc) - timedelta(days=45)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if mode is StoreMode.NATIVE:
            conn.execute("SELECT gw_ensure_partitions('gps_fix', (now() - interval '45 days')::date, 1)")
        store = PgStore(dsn)
        store.write(Decoded(fixes=rows(10, old) + rows(10, datetime.now(timezone.utc), terminal="T2")))
        store.close()
        report = maintain(conn, retention_days=30, days_ahead=3)
        left = conn.execute("SELECT terminal_id, count(*) FROM gps_fix GROUP BY 1").fetchall()
        if mode is StoreMode.NATIVE:
            ahead = conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s",
                                 (f"gps_fix_p{(datetime.now() + timedelta(days=3)).strftime('%Y%m%d')}",)).fetchone()[0]
            assert ahead == 1
    assert report.dropped >= 1
    assert left == [("T2", 10)]


def test_plan_picks_one_variant_per_version():
    files = list(MIGRATIONS_DIR.glob("*.sql"))
    for mode in StoreMode:
        chosen = plan(files, mode)
        versions = [m.version for m in chosen]
        assert versions == sorted(set(versions))
        assert {2, 4}.issubset(versions)
    assert [m.variant for m in plan(files, StoreMode.TSL) if m.version in (2, 4)] == ["hyper", "tsl"]
    assert [m.variant for m in plan(files, StoreMode.APACHE) if m.version in (2, 4)] == ["hyper", "app"]
    assert [m.variant for m in plan(files, StoreMode.NATIVE) if m.version in (2, 4)] == ["native", "app"]
    assert 7 not in [m.version for m in plan(files, StoreMode.APACHE)]


def test_plan_rejects_ambiguous_and_unknown_files(tmp_path: Path):
    (tmp_path / "0001_a.sql").touch()
    (tmp_path / "0001_b.sql").touch()
    with pytest.raises(ValueError, match="two migrations"):
        plan(list(tmp_path.glob("*.sql")), StoreMode.NATIVE)
    with pytest.raises(ValueError, match="not understood"):
        plan([tmp_path / "readme.sql"], StoreMode.NATIVE)


def test_native_day_that_fell_into_the_default_partition_gets_its_own(base_settings):
    """Ingest down longer than the partitions made ahead: those rows wait in the default partition,
    and maintenance must still be able to create their day (moving them) rather than fail every hour."""
    dsn = psycopg.conninfo.make_conninfo(base_settings.pg_dsn, dbname=f"gw_mode_{uuid.uuid4().hex[:8]}")
    ensure_database(dsn)
    try:
        migrate(dsn, 400, mode=StoreMode.NATIVE)
        later = datetime.now(timezone.utc).replace(hour=12) + timedelta(days=20)
        store = PgStore(dsn)
        store.write(Decoded(fixes=rows(5, later)))
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM gps_fix_default").fetchone()[0] == 5
            made = conn.execute("SELECT gw_ensure_partitions('gps_fix', %s::date, 1)", (later.date(),)).fetchone()[0]
            part = f"gps_fix_p{later.strftime('%Y%m%d')}"
            assert made == 1
            assert conn.execute("SELECT count(*) FROM gps_fix_default").fetchone()[0] == 0
            assert conn.execute(f"SELECT count(*) FROM {part}").fetchone()[0] == 5
            assert conn.execute("SELECT count(*) FROM gps_fix").fetchone()[0] == 5
    finally:
        drop_database(dsn)
