"""Terminals' broker grids follow the registry: the pure plan, then ``python -m broker terminal
sync`` on the real broker and database, checked by what the terminal may subscribe to."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from hypothesis import given
from hypothesis import strategies as st

from broker import accounts
from broker.control import DynsecControl
from broker.sync import plan_sync
from schemas.topics import Topics
from tests.broker.conftest import broker_cli
from tests.broker.test_broker_acl import NOT_AUTHORIZED
from tests.support import ROOT, migrated_database

TOPICS = Topics("gw/v1")


def roles(tid: str, *grids: str) -> list[str]:
    return [accounts.terminal_role(tid), *(accounts.grid_role(TOPICS, g) for g in grids)]


def test_only_terminals_whose_grids_differ_are_changed():
    registry = {"T1": ["G1"], "T2": ["G2", "G3"], "T3": [], "T4": ["G9"]}
    broker = {"T1": roles("T1", "G1"), "T2": roles("T2", "G2"), "T3": roles("T3", "G1"), "T5": roles("T5")}
    plan = plan_sync(TOPICS, registry, broker)
    assert plan.changed == {"T2": ["G2", "G3"], "T3": []}
    assert plan.without_account == ["T4"] and plan.unregistered == ["T5"] and plan.checked == 3


def test_a_grid_role_of_another_city_on_the_same_broker_is_not_this_citys():
    other = Topics("yt/gw/v1")
    plan = plan_sync(TOPICS, {"T1": ["G1"]}, {"T1": [accounts.terminal_role("T1"), accounts.grid_role(other, "G1")]})
    assert plan.changed == {"T1": ["G1"]}


codes = st.lists(st.sampled_from(["G1", "G2", "G3", "G4"]), max_size=4)


@given(st.dictionaries(st.sampled_from(["T1", "T2", "T3"]), codes), st.dictionaries(st.sampled_from(["T1", "T2", "T4"]), codes))
def test_after_the_plan_is_carried_out_nothing_is_left_to_change(registry, on_broker):
    broker = {t: roles(t, *g) for t, g in on_broker.items()}
    plan = plan_sync(TOPICS, registry, broker)
    for tid, grids in plan.changed.items():
        broker[tid] = roles(tid, *grids)
    again = plan_sync(TOPICS, registry, broker)
    assert again.changed == {}
    assert set(again.without_account) | {t for t in registry if t in broker} == set(registry)


def test_the_sync_command_moves_a_terminal_to_its_registry_grids(base_settings, pg_dsn, topic_prefix, db, provision,
                                                                probes):
    s = base_settings.model_copy(update={"pg_dsn": pg_dsn, "topic_prefix": topic_prefix})
    topics = Topics(topic_prefix)
    tid, password = provision(grids=["G1"])
    person = f"P-{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO person (person_id, name, role) VALUES (%s, 'Officer', 'level2_supervisor')", (person,))
    db.execute("INSERT INTO person_grid (person_id, grid_code, role) VALUES (%s, 'G2', 'level2_supervisor'),"
               " (%s, 'G3', 'level2_supervisor')", (person, person))
    db.execute("INSERT INTO terminal (terminal_id, person_id) VALUES (%s, %s)", (tid, person))

    def sync(*args: str) -> str:
        done = broker_cli(s, "terminal", "sync", tid, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        assert "would change the grids of 1" in sync("--dry-run")
        before = probes(s.mqtt_host, s.mqtt_port, tid, tid, password)
        assert before.subscribe(topics.cmd_grid("G1")) == ["Granted QoS 1"]  # the dry run changed nothing
        before.close()
        out = sync()
        assert "changed the grids of 1" in out and f"{tid}: G2, G3" in out
        terminal = probes(s.mqtt_host, s.mqtt_port, tid, tid, password)
        assert terminal.subscribe(topics.cmd_grid("G2"), topics.cmd_grid("G3")) == ["Granted QoS 1"] * 2
        assert terminal.subscribe(topics.cmd_grid("G1")) == [NOT_AUTHORIZED]
        assert "changed the grids of 0" in sync()  # in step: nothing to do
    finally:
        with DynsecControl(base_settings) as broker:  # the fixture removes G1's role; these came from the sync
            broker.run([accounts.command("deleteRole", rolename=accounts.grid_role(topics, g)) for g in ("G2", "G3")],
                       tolerate=["Role not found"])


def _city_of_two_grids(dsn: str) -> None:
    square = '{"type": "Polygon", "coordinates": [[[117, 28], [117.1, 28], [117.1, 28.1], [117, 28.1], [117, 28]]]}'
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO branch_office (code, name_zh) VALUES ('B', 'B')")
        conn.execute("INSERT INTO grid_level1 (code, name_zh, branch_code, geom) VALUES ('L1', 'L1', 'B', %s)", (square,))
        conn.execute("INSERT INTO grid_level2 (code, name_zh, level1_code, geom) VALUES ('G1', 'G1', 'L1', %s),"
                     " ('G2', 'G2', 'L1', %s)", (square, square))


def test_a_registry_import_into_the_citys_database_moves_the_terminals_broker_grids(base_settings, topic_prefix,
                                                                                     provision, probes, tmp_path: Path):
    """An officer moved from grid G1 to G2 in the bureau's files: after ``grid import`` the
    terminal reads G2's commands and no longer G1's, with no broker command typed."""
    topics = Topics(topic_prefix)
    tid, password = provision(grids=["G1"])
    (tmp_path / "people.csv").write_text("person_id,name,role,grids\nP1,Officer,level2_supervisor,G2\n", encoding="utf-8")
    (tmp_path / "terminals.csv").write_text(f"terminal_id,person_id\n{tid},P1\n", encoding="utf-8")
    try:
        # a database of its own: the sync then concerns this test's terminal only
        with migrated_database(base_settings.pg_dsn, f"gw_sync_{uuid.uuid4().hex[:8]}", base_settings.retention_days) as dsn:
            _city_of_two_grids(dsn)
            env = base_settings.model_copy(update={"pg_dsn": dsn, "topic_prefix": topic_prefix}).as_env(os.environ)
            done = subprocess.run([sys.executable, "-m", "grid", "import", "--people", str(tmp_path / "people.csv"),
                                   "--terminals", str(tmp_path / "terminals.csv")], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "changed the grids of 1" in done.stdout and f"{tid}: G2" in done.stdout
        terminal = probes(base_settings.mqtt_host, base_settings.mqtt_port, tid, tid, password)
        assert terminal.subscribe(topics.cmd_grid("G2")) == ["Granted QoS 1"]
        assert terminal.subscribe(topics.cmd_grid("G1")) == [NOT_AUTHORIZED]
    finally:
        with DynsecControl(base_settings) as broker:
            broker.run([accounts.command("deleteRole", rolename=accounts.grid_role(topics, "G2"))], tolerate=["Role not found"])
