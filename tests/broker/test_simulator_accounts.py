"""The simulator provisions its terminals' accounts and each terminal logs in as itself."""

from __future__ import annotations

import os
import subprocess
import sys

from broker import accounts, secrets
from broker.control import DynsecControl
from schemas.topics import Topics
from tests.broker.conftest import Probe
from tests.support import ROOT

IDS = [f"SIM-{i:05d}" for i in range(3)]  # what `simulate --synthetic 3` names its terminals


def test_simulated_terminals_get_and_use_accounts_of_their_own(base_settings, topic_prefix, tmp_path):
    s = base_settings
    own_secrets = tmp_path / "mqtt.json"
    secrets.save(own_secrets, {accounts.ADMIN: secrets.load(s.mqtt_secrets_file)[accounts.ADMIN]})
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWATCH_MQTT_")}
    env.update(GRIDWATCH_MQTT_HOST=s.mqtt_host, GRIDWATCH_MQTT_PORT=str(s.mqtt_port),
               GRIDWATCH_MQTT_SECRETS_FILE=str(own_secrets))
    watcher = Probe(s.mqtt_host, s.mqtt_port, f"watch-{tmp_path.name[-8:]}", s.mqtt_username, s.mqtt_password)
    watcher.subscribe(Topics(topic_prefix).terminal_subscription("gps"))
    try:
        run = subprocess.run([sys.executable, "-m", "terminal", "simulate", "--synthetic", "3", "--prefix", topic_prefix,
                              "--speedup", "20", "--duration-s", "6"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "3 terminals log in with accounts of their own" in run.stderr
        assert "Not authorized" not in run.stderr
        kept = secrets.load(own_secrets)
        assert set(IDS) <= kept.keys(), "the simulator did not keep its terminals' passwords"
        watcher.wait(lambda: {t.split("/")[-2] for t, _ in watcher.messages} == set(IDS), "a fix from each terminal")
        # each password is the terminal's own: it logs in as that terminal only
        lone = Probe(s.mqtt_host, s.mqtt_port, IDS[0], IDS[0], kept[IDS[0]])
        assert lone.connack == "Success"
        lone.close()
        other = Probe(s.mqtt_host, s.mqtt_port, IDS[1], IDS[1], kept[IDS[0]])
        other.close()
        assert other.connack == "Not authorized"
    finally:
        watcher.close()
        with DynsecControl(s) as broker:
            for tid in IDS:
                broker.run(accounts.revoke_terminal(tid), tolerate=["Client not found", "Role not found"])
            broker.run([accounts.command("deleteRole", rolename=accounts.grid_role(Topics(topic_prefix), f"SYN{i:06d}"))
                        for i in range(3)], tolerate=["Role not found"])
