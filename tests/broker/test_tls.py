"""The TLS listener (GRIDWATCH_MQTT_TLS_PORT) and the clients that use it (GRIDWATCH_MQTT_TLS_CA):
ingest, the orders dispatcher and the reference terminal, on a private broker of this test; and
mutual TLS (GRIDWATCH_MQTT_TLS_REQUIRE_CLIENT_CERT) with certificates from ``python -m broker cert issue``."""

from __future__ import annotations

import ssl
import uuid

import pytest

from bench.local_broker import LocalBroker
from orders.sender import MqttOrderSender
from schemas.topics import Topics
from terminal.client import TerminalClient, TerminalConfig
from broker.tls import issue_client_cert, make_self_signed
from tests.broker.conftest import Probe, broker_cli
from tests.support import ServiceProcess, wait_until


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


@pytest.fixture
def mtls_broker(tmp_path):
    broker = LocalBroker(tmp_path / "broker", tls=True, require_client_cert=True).start()
    yield broker
    broker.stop()


@pytest.fixture
def mtls_settings(test_settings, mtls_broker):
    """A client of the mutual-TLS listener: the broker's CA, no certificate of its own yet."""
    return test_settings.model_copy(update={"mqtt_host": "127.0.0.1", "mqtt_port": mtls_broker.tls_port,
                                            "mqtt_tls_ca": mtls_broker.settings.mqtt_tls_cafile,
                                            "mqtt_tls_cafile": mtls_broker.settings.mqtt_tls_cafile})


def issued(settings, name: str, out) -> object:
    """``settings`` with the certificate ``python -m broker cert issue`` made for ``name``."""
    done = broker_cli(settings, "cert", "issue", name, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"GRIDWATCH_MQTT_TLS_CLIENT_CERT={out / (name + '.crt')}" in done.stdout
    return settings.model_copy(update={"mqtt_tls_client_cert": out / f"{name}.crt", "mqtt_tls_client_key": out / f"{name}.key"})


def refused(settings, broker: LocalBroker, why: str) -> None:
    """A client of ``settings`` gets no CONNACK: the broker ends the TLS session, and logs ``why``."""
    probe = Probe(settings.mqtt_host, settings.mqtt_port, f"x-{uuid.uuid4().hex[:6]}", settings.mqtt_username,
                  settings.mqtt_password, tls=settings.mqtt_tls_context(), reconnect=True)
    try:
        probe.wait(lambda: probe.disconnects, "the broker to end the session")
        assert probe.connack is None
        wait_until(lambda: why in broker.log_tail(50), what=f"the broker's log to say {why!r}", context=broker.log_tail)
    finally:
        probe.client.loop_stop()


def test_mutual_tls_admits_a_terminal_with_an_issued_certificate(mtls_settings, tmp_path):
    s = issued(mtls_settings, "T-mtls-1", tmp_path / "clients")
    assert (tmp_path / "clients" / "T-mtls-1.key").stat().st_mode & 0o077 == 0
    tid = f"T-{uuid.uuid4().hex[:8]}"
    terminal = TerminalClient(TerminalConfig(tid, prefix=s.topic_prefix), host=s.mqtt_host, port=s.mqtt_port,
                              username=s.mqtt_username, password=s.mqtt_password, tls=s.mqtt_tls_context()).start()
    watcher = Probe(s.mqtt_host, s.mqtt_port, f"watch-{tid}", s.mqtt_username, s.mqtt_password, tls=s.mqtt_tls_context())
    try:
        assert watcher.connack == "Success"
        watcher.subscribe(Topics(s.topic_prefix).terminal(tid, "gps"))
        assert terminal.wait_connected(15), "the reference terminal did not connect with its certificate"
        terminal.send_fix(28.26, 117.01)
        watcher.wait(lambda: watcher.messages, "the terminal's fix, over mutual TLS")
    finally:
        watcher.close()
        terminal.stop()


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_settings, mtls_broker):
    refused(mtls_settings, mtls_broker, "peer did not return a certificate")


def test_mutual_tls_refuses_a_certificate_from_another_ca(mtls_settings, mtls_broker, tmp_path):
    other = tmp_path / "other"
    make_self_signed(other / "ca.crt", other / "server.crt", other / "server.key")
    issue_client_cert(other / "ca.crt", "T-stranger", other / "T-stranger.crt", other / "T-stranger.key")
    s = mtls_settings.model_copy(update={"mqtt_tls_client_cert": other / "T-stranger.crt",
                                         "mqtt_tls_client_key": other / "T-stranger.key"})
    refused(s, mtls_broker, "certificate verify failed")


def test_issuing_needs_the_ca_key_and_a_proper_name(mtls_settings, tmp_path):
    no_key = tmp_path / "pki" / "ca.crt"
    no_key.parent.mkdir()
    no_key.write_bytes(mtls_settings.mqtt_tls_cafile.read_bytes())  # the certificate without its key
    done = broker_cli(mtls_settings.model_copy(update={"mqtt_tls_cafile": no_key}), "cert", "issue", "T-1",
                      "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "the CA's key is not here" in done.stderr
    done = broker_cli(mtls_settings, "cert", "issue", "../evil", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and not (tmp_path / "evil.crt").exists()
