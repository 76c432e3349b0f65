"""The platform's processes on their own accounts, as ./gw start runs them: ingest as
gridwatch-ingest-1 and the dispatcher as gridwatch-orders-1 (passwords from the secrets file),
a terminal as itself, on the real topics. On a private broker with the project's configuration,
so no running ./gw start loses its session to this test."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from bench.local_broker import LocalBroker
from broker import accounts
from broker.control import DynsecControl
from ingest.inbox import Inbox
from ingest.mqtt_client import MqttReceiver
from orders.sender import MqttOrderSender
from schemas.topics import Topics
from tests.broker.conftest import Probe, broker_cli, wait_for
from tests.ingest.conftest import fix, register_terminals
from tests.support import ServiceProcess


@pytest.fixture
def platform_settings(test_settings, tmp_path):
    broker = LocalBroker(tmp_path / "broker").start()
    yield test_settings.model_copy(update={
        "mqtt_host": "127.0.0.1", "mqtt_port": broker.port, "mqtt_username": None, "mqtt_password": None,
        "topic_prefix": "gw/v1", "ingest_client_id": accounts.INGEST, "orders_client_id": accounts.ORDERS})
    broker.stop()


def test_ingest_and_the_dispatcher_work_on_their_own_accounts(platform_settings, db, tmp_path):
    s, topics = platform_settings, Topics("gw/v1")
    tid, password = f"T-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with DynsecControl(s) as broker:
        broker.run(accounts.add_terminal(topics, tid, password))
    register_terminals(s.pg_dsn, [tid])
    ingest = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    sender = MqttOrderSender(s)
    terminal = Probe(s.mqtt_host, s.mqtt_port, tid, tid, password)
    try:
        ingest.wait_for_log("subscribed to", "ingest (as gridwatch-ingest-1) to subscribe")
        assert terminal.subscribe(topics.cmd_terminal(tid), topics.receipt(tid)) == ["Granted QoS 1"] * 2
        assert terminal.publish(topics.terminal(tid, "gps"), json.dumps(fix(1)).encode()) == "Success"
        stored = lambda: db.execute("SELECT count(*) FROM gps_fix WHERE terminal_id = %s", (tid,)).fetchone()[0]  # noqa: E731
        assert wait_for(lambda: stored() == 1, 20), ingest.log_text()[-2000:]
        terminal.wait(lambda: any(t == topics.receipt(tid) for t, _ in terminal.messages), "ingest's receipt")
        assert sender.start(wait_s=15), "the dispatcher was refused"
        sender.client.publish(topics.cmd_terminal(tid), b"order", qos=1).wait_for_publish(10)
        terminal.wait(lambda: (topics.cmd_terminal(tid), b"order") in terminal.messages, "the dispatcher's order")
    finally:
        terminal.close()
        sender.close()
        ingest.stop()


def test_a_platform_password_rotated_on_the_running_broker_is_taken_up_without_a_restart(platform_settings, tmp_path):
    """``broker account rotate``: the broker disconnects the account's process, which reads the
    secrets file again before reconnecting; the old password is refused from then on."""
    secrets_file = tmp_path / "mqtt.json"  # a copy: the checkout's own file is not this test's to change
    shutil.copy(platform_settings.mqtt_secrets_file, secrets_file)
    name = f"gridwatch-ingest-t{uuid.uuid4().hex[:6]}"
    s = platform_settings.model_copy(update={"mqtt_secrets_file": secrets_file, "ingest_client_id": name})

    def cli(*args: str):
        return broker_cli(s, "account", *args)

    assert cli("add", name, "--duty", "ingest").returncode == 0
    old = json.loads(secrets_file.read_text())[name]
    receiver = MqttReceiver(s, Inbox(100, 1 << 20))
    receiver.start()
    try:
        assert receiver.subscribed.wait(10), "ingest could not subscribe on its new account"
        rotated = cli("rotate", name)
        assert rotated.returncode == 0, rotated.stderr
        assert json.loads(secrets_file.read_text())[name] != old
        assert wait_for(lambda: receiver.connection >= 2 and receiver.connected.is_set(), timeout=15), \
            "ingest did not come back with the rotated password"
        stale = Probe(s.mqtt_host, s.mqtt_port, name, name, old)
        assert stale.connack == "Not authorized"
        stale.close()
        assert receiver.connected.is_set()  # the refused attempt with the old password did not take its session
    finally:
        receiver.stop()
    assert cli("rotate", accounts.ADMIN).returncode == 2  # it would cut the very connection that rotates it


def test_the_dispatcher_takes_up_a_rotated_password_too(platform_settings, tmp_path):
    secrets_file = tmp_path / "mqtt.json"
    shutil.copy(platform_settings.mqtt_secrets_file, secrets_file)
    name = f"gridwatch-orders-t{uuid.uuid4().hex[:6]}"
    s = platform_settings.model_copy(update={"mqtt_secrets_file": secrets_file, "orders_client_id": name})
    assert broker_cli(s, "account", "add", name, "--duty", "orders").returncode == 0
    sender = MqttOrderSender(s)
    try:
        assert sender.start(10)
        assert broker_cli(s, "account", "rotate", name).returncode == 0
        assert wait_for(lambda: not sender.connected.is_set(), timeout=5)  # the broker cut it off
        assert sender.connected.wait(15), "the dispatcher did not come back with the rotated password"
        sender.publish(Topics("gw/v1").cmd_terminal("T-nobody"), b"{}")  # and it may publish again
    finally:
        sender.close()


def test_a_refused_login_is_read_again_before_the_next_attempt(platform_settings, tmp_path):
    """A process whose file held a stale password keeps retrying, and connects once the file has
    the right one: paho calls on_disconnect after a refused CONNACK, where the login is re-read."""
    secrets_file = tmp_path / "mqtt.json"
    shutil.copy(platform_settings.mqtt_secrets_file, secrets_file)
    name = f"gridwatch-orders-t{uuid.uuid4().hex[:6]}"
    s = platform_settings.model_copy(update={"mqtt_secrets_file": secrets_file, "orders_client_id": name})
    assert broker_cli(s, "account", "add", name, "--duty", "orders").returncode == 0
    right = json.loads(secrets_file.read_text())[name]
    secrets_file.write_text(json.dumps({**json.loads(secrets_file.read_text()), name: "stale"}))
    sender = MqttOrderSender(s)
    try:
        assert not sender.start(2)  # refused with the stale password
        secrets_file.write_text(json.dumps({**json.loads(secrets_file.read_text()), name: right}))
        assert sender.connected.wait(15), "the dispatcher did not retry with the password now in the file"
    finally:
        sender.close()
