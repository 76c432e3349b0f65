"""The broker's account data, pure: password hashes, the plugin's file, the control commands."""

from __future__ import annotations

import base64
import json
import stat

from hypothesis import given
from hypothesis import strategies as st

from broker import accounts, secrets
from schemas.settings import Settings
from schemas.topics import TERMINAL_ID_PATTERN, Topics

TOPICS = Topics("gw/v1")
terminal_ids = st.from_regex(TERMINAL_ID_PATTERN, fullmatch=True).filter(accounts.is_terminal_account)


def test_password_hash_is_the_one_mosquitto_ctrl_writes():
    # `mosquitto_ctrl dynsec init FILE admin secretpw` (Mosquitto 2.0.11) wrote this salt and hash
    entry = accounts.hashed("secretpw", base64.b64decode("cAuwx2j/ojIFCVVs"))
    assert entry == {"password": "AYUhO69An2kZUoayixKKCoYO3kvX7D6DjNZWeiGSm5qLm37cXg74iepdcE6rzJXg3fnN2+dSMeJgMq+Hzv+UTA==",
                     "salt": "cAuwx2j/ojIFCVVs", "iterations": 101}
    assert accounts.password_matches(entry, "secretpw") and not accounts.password_matches(entry, "secretpW")


def _topic_matches(filter_: str, topic: str) -> bool:
    f, t = filter_.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(f) == len(t)


@given(terminal_ids, terminal_ids)
def test_a_terminals_role_names_only_its_own_topics(a, b):
    acls = accounts.terminal_acls(TOPICS, a)
    granted = [x["topic"] for x in acls if x["allow"]]
    assert all("+" not in t for t in granted), "no wildcard across terminals"
    sends = [x["topic"] for x in acls if x["acltype"] == "publishClientSend"]
    assert any(_topic_matches(t, TOPICS.terminal(a, "gps")) for t in sends)
    if a != b:
        for topic in (TOPICS.terminal(b, "gps"), TOPICS.cmd_terminal(b), TOPICS.receipt(b)):
            assert not any(_topic_matches(t, topic) for t in granted), (a, b, topic)
        assert not any(_topic_matches(t, TOPICS.cmd_terminal(a)) for t in sends), "a terminal never sends orders"


def test_add_terminal_binds_the_client_id_and_names_its_grids():
    cmds = accounts.add_terminal(TOPICS, "T1", "pw", ["G2", "G1", "G1"])
    client = cmds[-1]
    assert client["command"] == "createClient" and client["username"] == client["clientid"] == "T1"
    assert [r["rolename"] for r in client["roles"]] == ["terminal-T1", "grid-G1@gw/v1", "grid-G2@gw/v1"]
    assert [c["rolename"] for c in cmds if c["command"] == "createRole"] == ["terminal-T1", "grid-G1@gw/v1", "grid-G2@gw/v1"]


def test_revoke_deletes_the_account_and_its_role():
    assert accounts.revoke_terminal("T1") == [{"command": "deleteClient", "username": "T1"},
                                              {"command": "deleteRole", "rolename": "terminal-T1"}]


def _passwords() -> dict[str, str]:
    return {name: f"pw-{name}" for name in accounts.PLATFORM_ACCOUNTS}


def test_reconcile_keeps_terminals_and_refreshes_platform_accounts():
    first = accounts.reconcile_config(None, _passwords(), TOPICS)
    assert all(c.get("clientid") == c["username"] for c in first["clients"] if c["username"] != accounts.DEV)
    assert first["defaultACLAccess"]["publishClientSend"] is False and first["defaultACLAccess"]["subscribe"] is False
    terminal = {"username": "T1", "roles": [{"rolename": "terminal-T1"}], **accounts.hashed("t")}
    first["clients"].append(terminal)
    first["roles"].append({"rolename": "terminal-T1", "acls": accounts.terminal_acls(TOPICS, "T1")})
    again = accounts.reconcile_config(first, _passwords(), TOPICS)
    assert terminal in again["clients"] and any(r["rolename"] == "terminal-T1" for r in again["roles"])
    assert again == accounts.reconcile_config(again, _passwords(), TOPICS), "unchanged passwords: the file does not churn"
    changed = accounts.reconcile_config(again, {**_passwords(), accounts.INGEST: "rotated"}, TOPICS)
    ingest = next(c for c in changed["clients"] if c["username"] == accounts.INGEST)
    assert accounts.password_matches(ingest, "rotated")
    assert len(changed["clients"]) == len(again["clients"])


def test_a_production_broker_has_no_development_account():
    dev = accounts.reconcile_config(None, _passwords(), TOPICS)
    production = accounts.reconcile_config(dev, _passwords(), TOPICS, with_dev=False)
    assert accounts.DEV in {c["username"] for c in dev["clients"]}
    assert accounts.DEV not in {c["username"] for c in production["clients"]}
    assert {c["username"] for c in production["clients"]} == set(accounts.PLATFORM_ACCOUNTS) - {accounts.DEV}


def test_ingest_may_read_its_shared_subscription_and_nobody_but_dev_sends_everywhere():
    ingest = accounts.duty_acls(accounts.Duty.INGEST, TOPICS)
    assert {"acltype": "subscribePattern", "topic": "$share/+/gw/v1/t/#", "allow": True} in ingest
    for duty in (accounts.Duty.ADMIN, accounts.Duty.INGEST, accounts.Duty.ORDERS):
        assert not any(a["topic"] == "#" for a in accounts.duty_acls(duty, TOPICS))


def test_secrets_file_is_private_and_keeps_existing_passwords(tmp_path):
    path = tmp_path / "secrets" / "mqtt.json"
    first = secrets.ensure(path, ["a", "b"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secrets.ensure(path, ["a", "b", "c"])["a"] == first["a"]
    assert len(set(json.loads(path.read_text()).values())) == 3


def test_an_explicit_user_name_wins_over_the_secrets_file(tmp_path):
    path = tmp_path / "mqtt.json"
    secrets.save(path, {"gridwatch-ingest-1": "from-file"})
    s = Settings(mqtt_secrets_file=path)
    assert s.mqtt_login("gridwatch-ingest-1") == ("gridwatch-ingest-1", "from-file")
    assert s.mqtt_login("somebody-else") is None
    explicit = Settings(mqtt_secrets_file=path, mqtt_username="u", mqtt_password="p")
    assert explicit.mqtt_login("gridwatch-ingest-1") == ("u", "p")
