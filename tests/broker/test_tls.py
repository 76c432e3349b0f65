"""The TLS listener (GRIDWATCH_MQTT_TLS_PORT) and the clients that use it (GRIDWATCH_MQTT_TLS_CA):
ingest, the orders dispatcher and the reference terminal, on a private broker of this test."""

from __future__ import annotations

import ssl
import uuid

import pytest

from bench.local_broker import LocalBroker
from orders.sender import MqttOrderSender
from schemas.topics import Topics
from terminal.client import TerminalClient, TerminalConfig
from tests.broker.conftest import Probe
from tests.support import ServiceProcess


@pytest.fixture
def tls_broker(tmp_path):
    broker = LocalBroker(tmp_path / "broker", tls=True).start()
    yield broker
    broker.stop()


@pytest.fixture
def tls_settings(test_settings, tls_broker):
    return test_settings.model_copy(update={"mqtt_host": "127.0.0.1", "mqtt_port": tls_broker.tls_port,
                                            "mqtt_tls_ca": tls_broker.settings.mqtt_tls_cafile})


def test_the_platform_and_a_terminal_talk_over_tls(tls_settings, tmp_path):
    s = tls_settings
    ingest = ServiceProcess("ingest", s, tmp_path / "ingest.log").start()
    sender = MqttOrderSender(s.model_copy(update={"orders_client_id": f"orders-{uuid.uuid4().hex[:6]}"}))
    tid = f"T-{uuid.uuid4().hex[:8]}"
    terminal = TerminalClient(TerminalConfig(tid, prefix=s.topic_prefix), host=s.mqtt_host, port=s.mqtt_port,
                              username=s.mqtt_username, password=s.mqtt_password, tls=s.mqtt_tls_context()).start()
    try:
        ingest.wait_for_log("subscribed to", "ingest to subscribe over TLS")
        assert sender.start(wait_s=15), "the orders dispatcher did not connect over TLS"
        assert terminal.wait_connected(15), "the reference terminal did not connect over TLS"
        watcher = Probe(s.mqtt_host, s.mqtt_port, f"watch-{tid}", s.mqtt_username, s.mqtt_password, tls=s.mqtt_tls_context())
        watcher.subscribe(Topics(s.topic_prefix).terminal(tid, "gps"))
        terminal.send_fix(28.26, 117.01)
        watcher.wait(lambda: watcher.messages, "the terminal's fix, over TLS")
        watcher.close()
    finally:
        terminal.stop()
        sender.close()
        ingest.stop()


def test_a_client_that_cannot_verify_the_broker_is_not_connected(tls_settings):
    s = tls_settings
    strict = ssl.create_default_context()  # the system's CAs: our self-signed broker is not among them
    with pytest.raises(ssl.SSLCertVerificationError):
        Probe(s.mqtt_host, s.mqtt_port, f"x-{uuid.uuid4().hex[:6]}", s.mqtt_username, s.mqtt_password, tls=strict)
