"""Read-only queries against the scratch database with known data."""

from datetime import timedelta

import psycopg

from dashboard import queries
from dashboard.actions import AlertAction, act_on_alert
from dashboard.callbacks import load_replay, replay_payload



def test_replay_window_is_exact_and_ordered(known_db, known_now):
    NOW = known_now
    start, end = NOW - timedelta(minutes=30), NOW - timedelta(minutes=20)
    with psycopg.connect(known_db) as c:
        fixes = queries.track(c, "T1", start, end)
        everything = c.execute("SELECT ts FROM gps_fix WHERE terminal_id = 'T1' ORDER BY ts").fetchall()
    expected = [ts for (ts,) in everything if start <= ts < end]
    assert [f.ts for f in fixes] == expected and len(expected) == 10
    assert all(a.ts < b.ts for a, b in zip(fixes, fixes[1:]))


def test_replay_payload_by_grid_and_terminal(settings, known_db, known_now):
    NOW = known_now
    from dashboard.deps import Deps

    deps = Deps(settings)
    start = NOW - timedelta(minutes=30)
    by_t = load_replay(deps, "T1", start, 10)
    by_g = load_replay(deps, "360602001001", start, 10)
    assert by_t["ids"] == ["T1"] and len(by_t["p"]) == 10
    assert by_g["p"] == by_t["p"]
    assert [p[0] for p in by_t["p"]] == sorted(p[0] for p in by_t["p"]) and by_t["p"][0][0] == 0.0
    assert load_replay(deps, "nobody", start, 10)["p"] == []
    assert replay_payload([], start)["p"] == []


def test_acknowledge_and_resolve_write_alert_action(scratch_dsn, known_db):
    with psycopg.connect(known_db, autocommit=True) as c:
        aid = c.execute(
            "INSERT INTO alert (kind, severity, title) VALUES ('sos', 'warning', 'unit-test') RETURNING id"
        ).fetchone()[0]
        assert act_on_alert(c, aid, AlertAction.ACKNOWLEDGE, "duty")
        assert not act_on_alert(c, aid, AlertAction.ACKNOWLEDGE, "duty")  # already acknowledged
        assert act_on_alert(c, aid, AlertAction.RESOLVE, "chief")
        state, ack_by, res_by = c.execute("SELECT state, acknowledged_by, resolved_by FROM alert WHERE id = %s", (aid,)).fetchone()
        actions = c.execute("SELECT actor, action FROM alert_action WHERE alert_id = %s ORDER BY at, id", (aid,)).fetchall()
    assert (state, ack_by, res_by) == ("resolved", "duty", "chief")
    assert actions == [("duty", "acknowledge"), ("chief", "resolve")]


def test_chart_queries(known_db, known_now):
    NOW = known_now
    end = NOW + timedelta(minutes=1)
    start = end - timedelta(hours=24)
    with psycopg.connect(known_db) as c:
        cats = {r.category: r.n for r in queries.reports_by_category(c, start, end)}
        grids = queries.inspections_by_grid(c, start, end, "zh-CN")
        act = queries.activity_by_kind(c, start, end, 1)
    assert cats == {"complaint": 2, "tip": 1}
    assert [(g.code, g.name, g.n) for g in grids] == [("360602001001", "江边村", 4), ("360602002001", "东湖社区", 1)]
    assert sum(r.n for r in act if r.kind == "inspection.completed") == 5


def test_case_loop_figures_absent_until_that_issue(known_db):
    with psycopg.connect(known_db) as c:
        assert queries.case_loop_figures(c) == queries.CaseLoopFigures()


def test_grid_team(known_db):
    with psycopg.connect(known_db) as c:
        info = queries.grid_info(c, "360602001001")
        team = queries.grid_team(c, "360602001001", info.level1_code)
    assert info.level1_name_zh == "江边街道"
    assert {(m.name, m.role, m.terminal_id) for m in team} == {
        ("张建国", "level1_supervisor", None), ("李明", "level2_supervisor", "T1"), ("赵协", "co_manager", "T3")}
