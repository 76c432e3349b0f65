"""The project broker keeps strangers out: tested against the real Mosquitto that ./gw setup runs."""

from __future__ import annotations

import json
import subprocess
import uuid

from broker import accounts
from broker.control import DynsecControl
from schemas.topics import Topics
from tests.broker.conftest import broker_cli, wait_for
from tests.ingest.conftest import fix, register_terminals
from tests.support import ServiceProcess

NOT_AUTHORIZED = "Not authorized"
ACCEPTED = ("Success", "No matching subscribers")  # PUBACK reasons of a publish the broker took


def test_an_anonymous_client_is_refused(base_settings, probes):
    p = probes(base_settings.mqtt_host, base_settings.mqtt_port, f"anon-{uuid.uuid4().hex[:6]}")
    assert p.connack == NOT_AUTHORIZED


def test_a_wrong_password_is_refused_and_the_right_one_accepted(base_settings, provision, probes):
    tid, password = provision()
    s = base_settings
    assert probes(s.mqtt_host, s.mqtt_port, tid, tid, "wrong").connack == NOT_AUTHORIZED
    assert probes(s.mqtt_host, s.mqtt_port, tid, tid, password).connack == "Success"


def test_terminal_a_cannot_publish_as_b_and_ingest_stores_only_its_own(test_settings, provision, probes, db, tmp_path):
    s = test_settings
    (a, pa), (b, _) = provision(), provision()
    register_terminals(s.pg_dsn, [a, b])
    ingest = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    try:
        ingest.wait_for_log("subscribed to", "ingest to subscribe")
        topics = Topics(s.topic_prefix)
        terminal_a = probes(s.mqtt_host, s.mqtt_port, a, a, pa)
        forged = json.dumps(fix(1)).encode()
        assert terminal_a.publish(topics.terminal(b, "gps"), forged) == NOT_AUTHORIZED
        assert terminal_a.publish(f"{s.topic_prefix}/t/{b}/status", b'{"online": false}') == NOT_AUTHORIZED
        assert terminal_a.publish(topics.terminal(a, "gps"), json.dumps(fix(1)).encode()) == "Success"
        stored = lambda t: db.execute("SELECT count(*) FROM gps_fix WHERE terminal_id = %s", (t,)).fetchone()[0]  # noqa: E731
        assert wait_for(lambda: stored(a) == 1, 20), "A's own fix was not stored"
        assert stored(b) == 0
    finally:
        ingest.stop()


def test_terminal_a_cannot_subscribe_to_or_receive_bs_orders(base_settings, topic_prefix, provision, probes):
    s, topics = base_settings, Topics(topic_prefix)
    (a, pa), (b, pb) = provision(grids=["G1"]), provision()
    terminal_a = probes(s.mqtt_host, s.mqtt_port, a, a, pa)
    terminal_b = probes(s.mqtt_host, s.mqtt_port, b, b, pb)
    assert terminal_a.subscribe(topics.cmd_terminal(b)) == [NOT_AUTHORIZED]
    assert terminal_a.subscribe(f"{topic_prefix}/cmd/#", f"{topic_prefix}/cmd/t/+") == [NOT_AUTHORIZED] * 2
    assert terminal_a.subscribe(topics.receipt(b), topics.cmd_grid("G2")) == [NOT_AUTHORIZED] * 2
    allowed = [topics.cmd_terminal(a), topics.cmd_grid("G1"), topics.cmd_all, topics.receipt(a)]
    assert terminal_a.subscribe(*allowed) == ["Granted QoS 1"] * 4
    assert terminal_b.subscribe(topics.cmd_terminal(b)) == ["Granted QoS 1"]
    dispatcher = probes(s.mqtt_host, s.mqtt_port, f"dispatch-{uuid.uuid4().hex[:6]}", s.mqtt_username, s.mqtt_password)
    assert dispatcher.publish(topics.cmd_terminal(b), b"order for B") == "Success"
    assert dispatcher.publish(topics.cmd_terminal(a), b"order for A") == "Success"
    terminal_a.wait(lambda: terminal_a.messages, "A's own order")
    terminal_b.wait(lambda: terminal_b.messages, "B's order")
    assert terminal_a.messages == [(topics.cmd_terminal(a), b"order for A")]
    assert terminal_b.messages == [(topics.cmd_terminal(b), b"order for B")]
    # a terminal cannot forge orders either
    assert terminal_a.publish(topics.cmd_terminal(b), b"forged") == NOT_AUTHORIZED
    assert terminal_a.publish(topics.cmd_all, b"forged") == NOT_AUTHORIZED


def test_a_revoked_terminal_is_cut_off_at_once_without_a_broker_restart(base_settings, topic_prefix, provision, probes):
    s = base_settings
    (a, pa), (b, pb) = provision(), provision()
    terminal_a = probes(s.mqtt_host, s.mqtt_port, a, a, pa)
    terminal_b = probes(s.mqtt_host, s.mqtt_port, b, b, pb)
    with DynsecControl(s) as broker:
        broker.run(accounts.revoke_terminal(a))
    terminal_a.wait(lambda: terminal_a.disconnects, "A disconnected by the broker")
    assert terminal_a.disconnects[0] == "Administrative action"
    assert probes(s.mqtt_host, s.mqtt_port, a, a, pa).connack == NOT_AUTHORIZED
    # the broker did not restart: B's connection is the same one, untouched
    assert terminal_b.publish(Topics(topic_prefix).terminal(b, "gps")) in ACCEPTED
    assert terminal_b.disconnects == []


def test_rotation_refuses_the_old_password(base_settings, provision, probes):
    s = base_settings
    a, old = provision()
    connected = probes(s.mqtt_host, s.mqtt_port, a, a, old)
    with DynsecControl(s) as broker:
        broker.run(accounts.rotate_password(a, "the-new-one"))
    connected.wait(lambda: connected.disconnects, "the old session ended")
    assert probes(s.mqtt_host, s.mqtt_port, a, a, old).connack == NOT_AUTHORIZED
    assert probes(s.mqtt_host, s.mqtt_port, a, a, "the-new-one").connack == "Success"


def test_nobody_else_takes_over_the_ingest_session(base_settings, provision, probes):
    s = base_settings
    a, pa = provision()
    # a terminal's account is bound to its own client id, and the platform's to theirs
    assert probes(s.mqtt_host, s.mqtt_port, accounts.INGEST, a, pa).connack == NOT_AUTHORIZED
    assert probes(s.mqtt_host, s.mqtt_port, accounts.INGEST).connack == NOT_AUTHORIZED
    assert probes(s.mqtt_host, s.mqtt_port, accounts.INGEST, accounts.INGEST, "guess").connack == NOT_AUTHORIZED
    orders = s.model_copy(update={"mqtt_username": None, "mqtt_password": None}).mqtt_login(accounts.ORDERS)
    assert orders is not None, "setup wrote no password for the orders dispatcher"
    assert probes(s.mqtt_host, s.mqtt_port, accounts.INGEST, *orders).connack == NOT_AUTHORIZED
    assert probes(s.mqtt_host, s.mqtt_port, accounts.ORDERS, *orders).connack == "Success"


def test_the_provisioning_command_adds_rotates_and_revokes(base_settings, probes, tmp_path):
    s = base_settings
    tid = f"T-cli-{uuid.uuid4().hex[:8]}"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return broker_cli(s, "terminal", *args)

    added = cli("add", tid)
    assert added.returncode == 0, added.stderr
    printed_id, password = added.stdout.split()
    assert printed_id == tid
    assert probes(s.mqtt_host, s.mqtt_port, tid, tid, password).connack == "Success"
    assert tid in cli("list").stdout.split()
    assert cli("revoke", tid).returncode == 0
    assert probes(s.mqtt_host, s.mqtt_port, tid, tid, password).connack == NOT_AUTHORIZED
    assert cli("revoke", tid).returncode == 1  # "Client not found", said and failed
