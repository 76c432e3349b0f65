"""The terminal protocol v1 as an AsyncAPI 3.0 document, generated from the pydantic models.

    python -m schemas.asyncapi           # write docs/protocol/asyncapi.yaml and docs/protocol/README.md
    python -m schemas.asyncapi --check   # exit 1 if the committed files are not what the models give

Everything in the document comes from ``schemas/``: JSON Schemas from ``model_json_schema``
(``$ref`` into ``components/schemas``), topics from :class:`schemas.topics.Topics`, limits from
the defaults of :class:`schemas.settings.Settings`, examples built by the models themselves.
Output is deterministic (fixed example times and ids, insertion-ordered keys).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from schemas.ack import CommandAck
from schemas.asyncapi_commands import ANSWERS, EXAMPLE_KID, EXAMPLE_PUBLIC_PEM, VERIFICATION
from schemas.asyncapi_examples import command_examples, examples
from schemas.commands import Command, SignedCommand
from schemas.events import terminal_event_adapter
from schemas.gps import MAX_FIXES_PER_ARRAY, GpsFix, gps_payload_adapter
from schemas.receipt import MAX_RANGES, Receipt
from schemas.settings import Settings
from schemas.status import TerminalStatus
from schemas.topics import Channel, Topics

PROTOCOL_VERSION = "1.0.0"
OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "protocol"
REF = "#/components/schemas/{model}"

_S = Settings.model_fields
MAX_PAYLOAD_BYTES: int = _S["max_payload_bytes"].default
MAX_FUTURE_SKEW_S: int = _S["max_future_skew_s"].default
MAX_PAST_AGE_DAYS: int = _S["max_past_age_days"].default
DEFAULT_PREFIX: str = _S["topic_prefix"].default
DEFAULT_PORT: int = _S["mqtt_port"].default
RECEIPT_INTERVAL_S: float = _S["ingest_receipt_interval_s"].default

# Rules every terminal->platform message is held to, and the dead-letter reason of each breach.
RULES: list[tuple[str, str]] = [
    ("unknown_topic", "A topic outside the grammar below (or a terminal id not matching the id pattern) is not accepted."),
    (
        "payload_too_large",
        f"A payload larger than max_payload_bytes (default {MAX_PAYLOAD_BYTES} bytes) is rejected. "
        "Terminals split buffered fixes into several arrays to stay under it.",
    ),
    ("malformed_json", "A payload that is not UTF-8 JSON is rejected."),
    (
        "invalid_fields",
        "A payload that does not validate against the message schema (types, ranges, required fields, "
        "naive timestamps without an offset) is rejected.",
    ),
    (
        "terminal_mismatch",
        "The terminal id in the topic is the identity. A payload may repeat it in `terminal_id`; a payload that names "
        "another terminal is rejected.",
    ),
    (
        "ts_in_future",
        f"A timestamp more than max_future_skew_s (default {MAX_FUTURE_SKEW_S} s) ahead of the platform clock is rejected.",
    ),
    (
        "ts_too_old",
        f"A timestamp older than max_past_age_days (default {MAX_PAST_AGE_DAYS} days) is rejected (a terminal clock reset).",
    ),
    (
        "too_many_items",
        f"A GPS array of more than {MAX_FIXES_PER_ARRAY} fixes is rejected whole. Within the cap, bad fixes are rejected "
        "(one dead letter per message listing their indexes) and the good ones stored.",
    ),
    (
        "unregistered_terminal",
        "A terminal id that is not in the bureau's registry is quarantined: nothing it sends is stored or shown "
        "until the terminal is registered.",
    ),
]

NOTES: list[str] = [
    "Every message is published and subscribed with QoS 1 (at least once). The platform stores each "
    "(terminal, seq, ts) once, so a redelivery never creates a second record.",
    "MQTT v5; the client id is the terminal id; one session per terminal (clean start off, session expiry set, "
    "so commands published while the terminal is away are delivered when it returns).",
    "Last Will: retained `{\"online\":false}` on the terminal's status topic. On every connect the terminal publishes a "
    "retained `TerminalStatus` with `online: true`; a clean shutdown publishes `online: false` itself.",
    "`seq` is one per-terminal counter shared by fixes and events; it only increases, across restarts too "
    "(gaps are allowed).",
    "While offline a terminal buffers fixes, events and acks in order and, after reconnecting, flushes them in "
    "that order: runs of fixes as JSON arrays (at most 500 fixes and max_payload_bytes per array), "
    "events and acks one by one.",
    "Delivery is end to end: a PUBACK only says the broker has a message. A terminal keeps every fix and event "
    "until a `Receipt` on rcpt/t/{its id} names its seq (see Delivery below).",
    "Unknown fields are kept (forward compatibility) but never trusted: they are stored as `extra` and nothing decides on them.",
    "Timestamps are RFC 3339 with an offset (`Z` or `+08:00`); the terminal stamps them with its own wall clock.",
    "Commands: a terminal subscribes to cmd/t/{its id}, cmd/grid/{each of its level-2 grids} and cmd/all. Every "
    "command is a `SignedCommand` (the `Command` as JSON text in `cmd`, an Ed25519 signature of those bytes in "
    "`sig`); the platform sends one copy per recipient on cmd/t/{id}, addressed with `to`. The terminal verifies "
    "it (see Commands below), answers `received` at once, dedupes by command_id, then `accepted`/`done` or "
    "`rejected` (with a note).",
    "Attachments (photos, voice, video, signatures) travel as references (URL or object key, media type, size, sha256), "
    "never as bytes in an MQTT payload.",
]


# The terminal's duties for end-to-end delivery (schemas.receipt; the reference client: terminal.client).
DELIVERY: list[str] = [
    "Subscribe to rcpt/t/{own id} on every connect (QoS 1 asked; receipts are sent with QoS 0, so they arrive at "
    "QoS 0 and are not queued while the terminal is away: a receipt missed that way costs a re-send, nothing more).",
    "Keep every fix and event (anything with a `seq`) in a persistent buffer from the moment it is made until a "
    "`Receipt` lists its seq. The broker's PUBACK is not enough: a broker restart or crash can still lose an "
    "acknowledged message, and only the terminal has a copy.",
    "A receipt is sent after the platform's commit. It lists seqs as sorted, non-overlapping inclusive ranges "
    "[first, last]: those stored, already stored (repeats) or refused for good (dead letters: re-sending cannot "
    "change them). Forget what it lists; it says nothing about seqs it does not list (gaps are normal).",
    f"Receipts are coalesced: at most one per terminal every {RECEIPT_INTERVAL_S:g} s "
    f"(GRIDWATCH_INGEST_RECEIPT_INTERVAL_S), at most {MAX_RANGES} ranges each (more go in several receipts).",
    "Re-send what no receipt has named 30 s after sending (the reference client's receipt_timeout_s), doubling "
    "the wait with each re-send up to 5 minutes, so a long platform outage does not multiply the traffic. A "
    "re-send repeats the message byte for byte: the same `seq` and the same `ts`. The platform stores each "
    "(terminal, seq, ts) once, so repeats are harmless; a repeat with a new `ts` would be a second record.",
    "Re-send in seq order, fixes as arrays like a flush. Acks carry no seq: they leave the buffer at their "
    "PUBACK (the platform re-sends a command until it is answered, and the terminal answers again).",
    "Bound the buffer; when it is full, drop the oldest fix (never an event first) and count it: the only loss "
    "the protocol allows, and a reported one.",
    "Ignore a receipt that does not validate (log it); never let it stop the terminal.",
]


# --- the document --------------------------------------------------------------------------
def _collect(components: dict[str, Any], name: str, schema: dict[str, Any]) -> dict[str, Any]:
    for def_name, def_schema in schema.pop("$defs", {}).items():
        if def_name in components and components[def_name] != def_schema:
            raise ValueError(f"two different schemas named {def_name}")
        components[def_name] = def_schema
    components[name] = schema
    return {"$ref": REF.format(model=name)}


def build_document(prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    topics = Topics(prefix)
    schemas: dict[str, Any] = {}
    _collect(schemas, "GpsFix", GpsFix.model_json_schema(ref_template=REF))
    gps_payload = gps_payload_adapter.json_schema(ref_template=REF)
    gps_payload.pop("$defs", None)
    _collect(schemas, "GpsPayload", {"title": "GpsPayload", "description": "One GpsFix or an array of them", **gps_payload})
    ev = terminal_event_adapter.json_schema(ref_template=REF)
    _collect(schemas, "TerminalEvent", {"title": "TerminalEvent", "description": "An event; `kind` selects the body", **ev})
    _collect(schemas, "CommandAck", CommandAck.model_json_schema(ref_template=REF))
    _collect(schemas, "TerminalStatus", TerminalStatus.model_json_schema(ref_template=REF))
    _collect(schemas, "Command", Command.model_json_schema(ref_template=REF))
    envelope = SignedCommand.model_json_schema(ref_template=REF)
    # JSON Schema's own words for "this string holds JSON of that schema"
    envelope["properties"]["cmd"].update(contentMediaType="application/json", contentSchema={"$ref": REF.format(model="Command")})
    _collect(schemas, "SignedCommand", envelope)
    _collect(schemas, "Receipt", Receipt.model_json_schema(ref_template=REF))
    ex = examples()

    def message(name: str, schema: str, title: str, summary: str) -> dict[str, Any]:
        m: dict[str, Any] = {
            "name": name,
            "title": title,
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=schema)},
        }
        if name in ex:
            m["examples"] = [{"name": n, "payload": p} for n, p in ex[name]]
        return m

    messages = {
        "GpsFix": message("GpsFix", "GpsFix", "One GPS fix", "A WGS-84 position with seq and ts"),
        "GpsFixArray": message("GpsFixArray", "GpsPayload", "Fixes as an array", "Buffered fixes flushed after reconnecting"),
        "TerminalEvent": message("TerminalEvent", "TerminalEvent", "Terminal event", "Inspection, report, SOS, patrol, heartbeat"),
        "CommandAck": message("CommandAck", "CommandAck", "Command acknowledgement", "received, accepted, done or rejected"),
        "TerminalStatus": message("TerminalStatus", "TerminalStatus", "Presence (retained)", "online true on connect; the Last Will says false"),
        "SignedCommand": message(
            "SignedCommand", "SignedCommand", "Signed command to terminals",
            "Emergency order, task or message (a Command in `cmd`), signed by the platform: verify before acting",
        ),
        "Receipt": message("Receipt", "Receipt", "Delivery receipt",
                           "Which of the terminal's seqs are stored (or refused for good): forget those, re-send the rest"),
    }
    tid = {"description": "The terminal's id (the identity; pattern ^[A-Za-z0-9_-]{1,64}$)", "examples": ["T-0001"]}
    grid = {"description": "A level-2 grid code", "examples": ["360602001001"]}

    def chan(address: str, msgs: list[str], description: str, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "address": address,
            "description": description,
            "parameters": params,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in msgs},
        }

    channels = {
        "terminalGps": chan(
            topics.terminal("{terminal_id}", Channel.GPS), ["GpsFix", "GpsFixArray"],
            "GPS fixes: one fix, or a JSON array of buffered fixes", {"terminal_id": tid},
        ),
        "terminalEvent": chan(topics.terminal("{terminal_id}", Channel.EVENT), ["TerminalEvent"], "Field events", {"terminal_id": tid}),
        "terminalAck": chan(topics.terminal("{terminal_id}", Channel.ACK), ["CommandAck"], "Answers to commands", {"terminal_id": tid}),
        "terminalStatus": chan(
            topics.terminal("{terminal_id}", Channel.STATUS), ["TerminalStatus"],
            "Presence, retained; also the terminal's Last Will", {"terminal_id": tid},
        ),
        "commandAll": chan(topics.cmd_all, ["SignedCommand"], "Signed commands to every terminal", {}),
        "commandGrid": chan(
            topics.cmd_grid("{grid_code}"), ["SignedCommand"], "Signed commands to the terminals of one level-2 grid", {"grid_code": grid}
        ),
        "commandTerminal": chan(
            topics.cmd_terminal("{terminal_id}"), ["SignedCommand"],
            "Signed commands to one terminal (orders: one copy per recipient, `to` = this terminal)", {"terminal_id": tid},
        ),
        "receiptTerminal": chan(
            topics.receipt("{terminal_id}"), ["Receipt"],
            "Delivery receipts to one terminal, sent by ingest after the commit (QoS 0, coalesced)", {"terminal_id": tid},
        ),
    }
    for c in channels.values():
        if not c["parameters"]:
            del c["parameters"]

    def op(action: str, channel: str, msgs: list[str], summary: str, retain: bool = False, qos: int = 1) -> dict[str, Any]:
        return {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in msgs],
            "bindings": {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": "0.2.0"}},
        }

    operations = {
        "receiveGps": op("receive", "terminalGps", ["GpsFix", "GpsFixArray"], "The platform receives fixes"),
        "receiveEvent": op("receive", "terminalEvent", ["TerminalEvent"], "The platform receives events"),
        "receiveAck": op("receive", "terminalAck", ["CommandAck"], "The platform receives command acknowledgements"),
        "receiveStatus": op("receive", "terminalStatus", ["TerminalStatus"], "The platform receives presence (retained)", True),
        "sendCommandAll": op("send", "commandAll", ["SignedCommand"], "The platform commands every terminal"),
        "sendCommandGrid": op("send", "commandGrid", ["SignedCommand"], "The platform commands one grid's terminals"),
        "sendCommandTerminal": op("send", "commandTerminal", ["SignedCommand"], "The platform commands one terminal"),
        "sendReceipt": op("send", "receiptTerminal", ["Receipt"],
                          "The platform tells one terminal which of its messages are stored (QoS 0: a lost one costs a re-send)",
                          qos=0),
    }

    description = "\n".join(
        [
            "Gridwatch terminal protocol v1: field terminals of the market-supervision grid publish GPS fixes, events, "
            "command acknowledgements and presence; the command center sends commands. Operations are described from "
            f"the platform's view. The topic prefix is configurable (default `{DEFAULT_PREFIX}`).",
            "",
            "Transport:",
            *[f"- {n}" for n in NOTES],
            "",
            "Rules (a breach sends the message to the dead-letter table with the reason shown):",
            *[f"- `{reason}`: {text}" for reason, text in RULES],
            "",
            "Commands: verify before acting, in this order; a failure is answered `rejected` with the note "
            "`<reason>: <detail>` (reasons below):",
            *[f"- `{reason.value}`: {text}" for reason, text in VERIFICATION],
            "",
            "Answering:",
            *[f"- {text}" for text in ANSWERS],
            "",
            "Delivery (the terminal's duties):",
            *[f"- {text}" for text in DELIVERY],
            "",
            f"The signed examples use a documentation-only key (kid `{EXAMPLE_KID}`, public key in "
            "`x-gridwatch-example-public-key`); a terminal trusts only the platform key it is provisioned with.",
            "",
            "Generated by `python -m schemas.asyncapi` from the pydantic models in schemas/; do not edit by hand.",
        ]
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Gridwatch terminal protocol",
            "version": PROTOCOL_VERSION,
            "description": description,
            "x-gridwatch-limits": {
                "max_payload_bytes": MAX_PAYLOAD_BYTES,
                "max_future_skew_s": MAX_FUTURE_SKEW_S,
                "max_past_age_days": MAX_PAST_AGE_DAYS,
                "max_fixes_per_array": MAX_FIXES_PER_ARRAY,
                "recommended_fixes_per_array": 500,
            },
            "x-gridwatch-rules": [{"dead_letter_reason": r, "rule": t} for r, t in RULES],
            "x-gridwatch-command-verification": [{"rejection": r.value, "rule": t} for r, t in VERIFICATION],
            "x-gridwatch-delivery": DELIVERY,
            "x-gridwatch-example-public-key": EXAMPLE_PUBLIC_PEM,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": f"127.0.0.1:{DEFAULT_PORT}",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The project-local Mosquitto started by ./gw setup",
                "bindings": {
                    "mqtt": {
                        "clientId": "{terminal_id}",
                        "cleanSession": False,
                        "keepAlive": 30,
                        "lastWill": {
                            "topic": topics.terminal("{terminal_id}", Channel.STATUS),
                            "qos": 1,
                            "message": TerminalStatus(online=False).model_dump_json(exclude_none=True),
                            "retain": True,
                        },
                        "bindingVersion": "0.2.0",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {k: schemas[k] for k in sorted(schemas)}},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the description reads like the text it is."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)


def render_readme(doc: dict[str, Any]) -> str:
    ex = examples()
    lines = [
        "# Gridwatch terminal protocol v1",
        "",
        "Generated by `python -m schemas.asyncapi` from the models in `schemas/` (do not edit by hand).",
        "The machine-readable contract is [asyncapi.yaml](asyncapi.yaml) (AsyncAPI 3.0).",
        "",
        "## Topics",
        "",
        "| topic | direction | payload | retained |",
        "| --- | --- | --- | --- |",
    ]
    ops = {o["channel"]["$ref"].split("/")[-1]: o for o in doc["operations"].values()}
    for name, ch in doc["channels"].items():
        o = ops[name]
        direction = "terminal → platform" if o["action"] == "receive" else "platform → terminal"
        payload = " or ".join(f"`{m}`" for m in ch["messages"])
        lines.append(f"| `{ch['address']}` | {direction} | {payload} | {'yes' if o['bindings']['mqtt']['retain'] else 'no'} |")
    lines += ["", "## Transport", "", *[f"- {n}" for n in NOTES], "", "## Rules and dead-letter reasons", ""]
    lines += ["| reason | rule |", "| --- | --- |", *[f"| `{r}` | {t} |" for r, t in RULES], ""]
    lines += ["## Delivery: receipts and re-sends", "",
              "A fix or event is safe only when the platform has committed it; the terminal holds it until then.", "",
              *[f"- {t}" for t in DELIVERY], ""]
    lines += [
        "## Commands: verifying and answering",
        "",
        "Every command topic carries a `SignedCommand`: `cmd` is the `Command` as JSON text, `sig` the base64 "
        "Ed25519 signature of the UTF-8 bytes of `cmd`, `kid` which platform key signed it. The terminal is "
        "provisioned with the platform's public key (PEM) and checks, in this order; a failure is answered "
        "`rejected` with the note `<reason>: <detail>`:",
        "",
        "| reason | check |",
        "| --- | --- |",
        *[f"| `{r.value}` | {t} |" for r, t in VERIFICATION],
        "",
        "The heart of it, in Python with `cryptography` (any Ed25519 library does the same):",
        "",
        "```python",
        "envelope = json.loads(payload)         # {cmd, sig, kid}",
        "public_key.verify(                     # raises InvalidSignature",
        "    base64.b64decode(envelope[\"sig\"]),",
        "    envelope[\"cmd\"].encode(\"utf-8\"),   # the exact text received",
        ")",
        "command = json.loads(envelope[\"cmd\"])  # only now is it trusted",
        "```",
        "",
        "Answering:",
        "",
        *[f"- {t}" for t in ANSWERS],
        "",
        f"The signed examples below are signed with a documentation-only key (kid `{EXAMPLE_KID}`): use it to "
        "test a verifier, never trust it in a terminal.",
        "",
        "```",
        EXAMPLE_PUBLIC_PEM.rstrip(),
        "```",
        "",
    ]
    lines += ["## Examples", ""]
    for msg, items in [*ex.items(), *command_examples().items()]:
        for name, payload in items:
            lines += [f"### {msg}: {name}", "", "```json", json.dumps(payload, ensure_ascii=False, indent=2), "```", ""]
    return "\n".join(lines)


def outputs() -> dict[Path, str]:
    doc = build_document()
    return {OUT_DIR / "asyncapi.yaml": render_yaml(doc), OUT_DIR / "README.md": render_readme(doc)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.asyncapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale (run `python -m schemas.asyncapi`): " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
