"""The broker is part of the product: overload ingest and count every fix.

Ingest is slowed on purpose (tiny batches: one transaction per 50 messages) and frozen
(SIGSTOP, as a long GC pause or a stalled disk would) while a stream is published, then let go:
ingest has become fast enough to keep up with one test publisher, so without the freeze
nothing would pile up. With Mosquitto's defaults the broker would discard QoS 1
messages beyond 1,000 queued for the lagging subscriber; with deploy/mosquitto/gridwatch.conf
it must queue them all, and ingest must store every one exactly once.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from tests.ingest.conftest import count_fixes, fix
from tests.support import ServiceProcess, wait_until

N_TERMINALS = 50
N_FIXES = 30_000


def broker_dropped(settings) -> int:
    """Mosquitto's own count of messages it discarded.

    Mosquitto publishes ``.../dropped`` only once it is non-zero, and ``.../received`` and
    ``.../dropped`` together at each tick: so "received arrived, dropped did not" means 0.
    """
    got: dict[str, int] = {}
    seen_tree = threading.Event()

    def on_message(client, userdata, msg):
        got[msg.topic.rsplit("/", 1)[-1]] = int(msg.payload)
        if "received" in got:
            seen_tree.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    settings.secure_mqtt_client(c, "sys-reader")
    c.on_message = on_message
    c.connect(settings.mqtt_host, settings.mqtt_port)
    c.subscribe([("$SYS/broker/publish/messages/dropped", 0), ("$SYS/broker/publish/messages/received", 0)])
    c.loop_start()
    # Mosquitto publishes a $SYS counter at the next tick after it changes, and a new subscriber
    # is not sure to get the retained value: a publish of our own makes "received" change.
    c.publish(f"{settings.topic_prefix}/sys-probe", b"1", qos=1)
    assert seen_tree.wait(25), "the broker publishes no $SYS tree: is sys_interval set in its config?"
    time.sleep(0.5)  # both retained values arrive together on subscribe
    c.loop_stop()
    c.disconnect()
    return got.get("dropped", 0)


def test_overloaded_ingest_stores_every_fix(test_settings, tmp_path, terminal, db):
    slow = test_settings.model_copy(update={"ingest_batch_max": 50, "ingest_batch_ms": 5})
    dropped_before = broker_dropped(slow)
    prefix = "OV" + uuid.uuid4().hex[:6]
    proc = ServiceProcess("ingest", slow, tmp_path / "ingest.log").start()
    proc.wait_for_log("subscribed to", "ingest to subscribe")
    try:
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGSTOP)  # connected, reading nothing: the broker must queue
        infos = [terminal.publish(f"{prefix}{i % N_TERMINALS:03d}", "gps", fix(i // N_TERMINALS), wait=False)
                 for i in range(N_FIXES)]
        for info in infos:
            info.wait_for_publish(timeout=30)
        published_in = time.monotonic() - started
        backlog_seen = N_FIXES - count_fixes(db, prefix)
        proc.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: count_fixes(db, prefix) == N_FIXES, timeout=180, interval=1, what=f"all {N_FIXES} fixes")
    finally:
        proc.proc.send_signal(signal.SIGCONT)
        proc.stop()
    assert backlog_seen > 1000, f"ingest kept up (backlog {backlog_seen} after {published_in:.1f} s): not an overload"
    assert broker_dropped(slow) == dropped_before
    assert db.execute("SELECT count(*) FROM (SELECT DISTINCT terminal_id, seq FROM gps_fix WHERE terminal_id LIKE %s) d",
                      (prefix + "%",)).fetchone()[0] == N_FIXES
