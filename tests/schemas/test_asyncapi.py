"""The committed protocol document is what the models generate, and it is whole."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ingest.pipeline import RejectReason
from schemas import asyncapi, asyncapi_examples
from schemas.ack import CommandAck
from schemas.commands import Command, SignedCommand
from schemas.events import parse_event
from schemas.gps import parse_gps_payload
from schemas.receipt import Receipt
from schemas.signing import CommandRefused, CommandRejection, load_public_key, verify_command
from schemas.status import TerminalStatus
from schemas.topics import Channel, Topics


def test_committed_documents_are_current() -> None:
    for path, text in asyncapi.outputs().items():
        assert path.exists(), f"{path} missing: run `python -m schemas.asyncapi`"
        assert path.read_text() == text, f"{path} is stale: run `python -m schemas.asyncapi` and commit it"


def test_check_command_exit_code() -> None:
    ok = subprocess.run([sys.executable, "-m", "schemas.asyncapi", "--check"], cwd=asyncapi.OUT_DIR.parent.parent)
    assert ok.returncode == 0


def test_generation_is_deterministic() -> None:
    assert asyncapi.render_yaml(asyncapi.build_document()) == asyncapi.render_yaml(asyncapi.build_document())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref" and isinstance(v, str)] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_resolves_and_every_topic_has_a_channel() -> None:
    doc = yaml.safe_load((asyncapi.OUT_DIR / "asyncapi.yaml").read_text())
    assert doc["asyncapi"] == "3.0.0"
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    t = Topics()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {
        *(t.terminal("{terminal_id}", ch) for ch in Channel),
        t.cmd_all,
        t.cmd_grid("{grid_code}"),
        t.cmd_terminal("{terminal_id}"),
        t.receipt("{terminal_id}"),
    }
    for c in doc["channels"].values():
        for p in c.get("parameters", {}):
            assert "{" + p + "}" in c["address"]
    actions = {o["channel"]["$ref"].split("/")[-1]: o["action"] for o in doc["operations"].values()}
    assert all(a == "receive" for ch, a in actions.items() if ch.startswith("terminal"))
    assert all(a == "send" for ch, a in actions.items() if ch.startswith(("command", "receipt")))
    # QoS 1 everywhere but receipts: a lost receipt costs one re-send, so it needs no PUBACK (schemas.receipt)
    qos = {o["channel"]["$ref"].split("/")[-1]: o["bindings"]["mqtt"]["qos"] for o in doc["operations"].values()}
    assert qos.pop("receiptTerminal") == 0 and set(qos.values()) == {1}
    will = doc["servers"]["local"]["bindings"]["mqtt"]["lastWill"]
    assert will["retain"] is True and json.loads(will["message"]) == {"online": False}
    reasons = {r["dead_letter_reason"] for r in doc["info"]["x-gridwatch-rules"]}
    # Every reason ingest can give a terminal's message is documented (the other two are platform faults).
    assert reasons == set(RejectReason) - {RejectReason.STORE_REJECTED, RejectReason.DECODE_ERROR}


def test_command_channels_carry_signed_commands_and_every_rejection_is_documented() -> None:
    doc = yaml.safe_load((asyncapi.OUT_DIR / "asyncapi.yaml").read_text())
    for name, channel in doc["channels"].items():
        if name.startswith("command"):
            assert list(channel["messages"]) == ["SignedCommand"]
    cmd = doc["components"]["schemas"]["SignedCommand"]["properties"]["cmd"]
    assert cmd["contentMediaType"] == "application/json" and cmd["contentSchema"] == {"$ref": "#/components/schemas/Command"}
    documented = [r["rejection"] for r in doc["info"]["x-gridwatch-command-verification"]]
    assert sorted(documented) == sorted(r.value for r in CommandRejection)
    readme = (asyncapi.OUT_DIR / "README.md").read_text()
    assert all(f"| `{r.value}` |" in readme for r in CommandRejection)
    assert "PRIVATE KEY" not in readme and "PRIVATE KEY" not in yaml.safe_dump(doc)


def test_signed_examples_verify_with_the_documented_key_and_the_tampered_one_does_not() -> None:
    doc = yaml.safe_load((asyncapi.OUT_DIR / "asyncapi.yaml").read_text())  # as a terminal maker reads them
    key = load_public_key(doc["info"]["x-gridwatch-example-public-key"].encode())
    now = asyncapi_examples.T0 + timedelta(minutes=1)
    signed = [json.dumps(e["payload"]).encode() for e in doc["components"]["messages"]["SignedCommand"]["examples"]]
    assert len(signed) == 3
    commands = [verify_command(key, b, "T-0001", now) for b in signed]
    inside = [Command.model_validate(p) for _, p in asyncapi_examples.command_examples()["Command"]]
    assert commands == inside
    assert [c.action for c in commands] == ["issue", "amend", "cancel"] and len({c.order_id for c in commands}) == 1
    with pytest.raises(CommandRefused) as refused:
        verify_command(key, signed[0], "T-0002", now)
    assert refused.value.reason is CommandRejection.NOT_ADDRESSED
    with pytest.raises(CommandRefused) as refused:
        verify_command(key, signed[0], "T-0001", asyncapi_examples.T0 + timedelta(hours=3))
    assert refused.value.reason is CommandRejection.EXPIRED
    ((_, tampered),) = asyncapi_examples.command_examples()["TamperedCommand"]
    with pytest.raises(CommandRefused) as refused:
        verify_command(key, json.dumps(tampered).encode(), "T-0001", now)
    assert refused.value.reason is CommandRejection.BAD_SIGNATURE
    with pytest.raises(CommandRefused) as refused:  # a platform key that is not the example key
        verify_command(Ed25519PrivateKey.generate().public_key(), signed[0], "T-0001", now)
    assert refused.value.reason is CommandRejection.BAD_SIGNATURE


def test_examples_validate_against_the_models() -> None:
    parse = {
        "GpsFix": lambda b: parse_gps_payload(b),
        "GpsFixArray": lambda b: parse_gps_payload(b),
        "TerminalEvent": parse_event,
        "CommandAck": CommandAck.model_validate_json,
        "TerminalStatus": TerminalStatus.model_validate_json,
        "SignedCommand": lambda b: Command.model_validate_json(SignedCommand.model_validate_json(b).cmd),
        "Receipt": Receipt.model_validate_json,
    }
    seen_kinds = set()
    for name, items in asyncapi_examples.examples().items():
        for _, payload in items:
            parsed = parse[name](json.dumps(payload).encode())
            if name == "TerminalEvent":
                seen_kinds.add(parsed.kind)
    assert {"inspection.started", "inspection.completed", "report", "sos", "patrol.started", "patrol.ended", "heartbeat"} == seen_kinds
