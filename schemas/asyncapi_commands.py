"""The command half of the protocol document: how a terminal verifies a signed command, what it
answers, and real signed examples (used by schemas/asyncapi.py).

The examples are signed with a dedicated EXAMPLE key made here from a fixed seed, so a terminal
maker can check a verifier against them byte for byte. Ed25519 signatures are deterministic, so the
generated document is too. This key signs nothing but these examples: no platform ever trusts it
(the platform's key is made by ``python -m orders keygen`` and never leaves the dispatcher's host).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.ack import AckStatus, CommandAck
from schemas.commands import Command, CommandAction, CommandKind, Priority, SignedCommand
from schemas.signing import CommandRejection, key_id, sign_command

EXAMPLE_KEY = Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"gridwatch protocol documentation example key; signs nothing else").digest()
)
EXAMPLE_PUBLIC_PEM = (
    EXAMPLE_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)
EXAMPLE_KID = key_id(EXAMPLE_KEY.public_key())

# The checks, in the order the reference client makes them (schemas.signing.verify_command), and
# the note of the ``rejected`` ack each failure gets: ``"<reason>: <detail>"``.
VERIFICATION: list[tuple[CommandRejection, str]] = [
    (
        CommandRejection.MALFORMED,
        "Parse the payload as a `SignedCommand` (`cmd`, `sig`, `kid`), then parse the text of `cmd` as a `Command`. "
        "If the envelope itself cannot be read there is no command_id to name: log it, answer nothing. "
        "If the envelope is fine but `cmd` is not a valid Command, there is nothing to name either.",
    ),
    (
        CommandRejection.NO_KEY,
        "Without the platform's public key provisioned, refuse every command (answer `rejected` naming its command_id).",
    ),
    (
        CommandRejection.BAD_SIGNATURE,
        "`sig` is base64 (standard alphabet, padded) of a 64-byte Ed25519 signature over the UTF-8 bytes of `cmd` "
        "exactly as received: verify over those bytes, never over a re-serialisation of the parsed Command "
        "(key order, spacing and number formats are not canonical). `kid` (the first 16 hex digits of SHA-256 "
        "of the raw 32-byte public key) only says which key signed, to ease a key rotation; it proves nothing.",
    ),
    (
        CommandRejection.NOT_ADDRESSED,
        "If `to` is set and names another terminal: answer `rejected` when the copy came on the terminal's own topic "
        "`cmd/t/{its id}`; a copy seen on a shared topic (`cmd/all`, `cmd/grid/...`) is simply ignored (it is not ours "
        "to answer).",
    ),
    (
        CommandRejection.EXPIRED,
        "If `expires_at` is set and is not after the terminal's clock: answer `rejected`.",
    ),
]

ANSWERS: list[str] = [
    "Only a command that passes every check is acted on. Then dedupe by `command_id` (remember the ids seen, "
    "across restarts): a new one is answered `received` at once and shown to the officer; one already seen is a "
    "re-send (the platform had not stored the answer yet, or it was lost) and is answered `received` again, "
    "without showing or acting on it twice.",
    "The officer's answers follow on the same ack topic: `accepted` (read and acting), then `done`, or `rejected` "
    "with a note saying why. A command with `requires_ack: false` needs only `received`.",
    "`order_id` ties the commands of one order together. `action: amend` (with `revision` + 1) replaces the order's "
    "title, body, place, deadline or expiry: the terminal shows the new version, answers the amendment like the "
    "first command, and from then on answers `done` on the amendment's command_id. `action: cancel` stands the "
    "officer down: answer it (`received`, then `accepted`) and stop acting on the order.",
    "`lat`/`lon` is where to go; within `place_radius_m` of it counts as arrived (the platform sees it from the "
    "GPS fixes: nothing extra to send). `deadline` is when the task should be done; `expires_at` is when the "
    "order stops being valid.",
    "Answers made while offline are buffered and flushed in order like every other message. Orders sent while a "
    "terminal is away wait in its persistent session (QoS 1) and arrive when it reconnects; the platform also "
    "re-sends to a silent recipient (same command_id).",
]


def signed_examples(t0: datetime, cmd_id: UUID) -> dict[str, list[tuple[str, Any]]]:
    """SignedCommand examples (signed with EXAMPLE_KEY), the Command inside each, and the acks a
    terminal sends for a refused one."""
    order_id = UUID("0b7e6a52-3c1d-4f0e-8a6b-5d2c9e1f4a70")
    issue = Command(
        command_id=cmd_id,
        order_id=order_id,
        action=CommandAction.ISSUE,
        to="T-0001",
        issued_at=t0,
        kind=CommandKind.EMERGENCY,
        priority=Priority.CRITICAL,
        title="Suspected food poisoning at a restaurant",
        body="Go to the site, seal the kitchen, report back.",
        issued_by="duty-officer-2",
        expires_at=t0 + timedelta(hours=2),
        deadline=t0 + timedelta(minutes=45),
        lat=28.2633,
        lon=117.0402,
        place_radius_m=150.0,
    )
    amend = issue.model_copy(
        update=dict(
            command_id=UUID("a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e13"),
            action=CommandAction.AMEND,
            revision=1,
            issued_at=t0 + timedelta(minutes=6),
            body="The kitchen is at the back entrance, 12 Station Road.",
            lat=28.2641,
            lon=117.0409,
        )
    )
    cancel = Command(
        command_id=UUID("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"),
        order_id=order_id,
        action=CommandAction.CANCEL,
        revision=2,
        to="T-0001",
        issued_at=t0 + timedelta(minutes=20),
        kind=CommandKind.EMERGENCY,
        priority=Priority.CRITICAL,
        title="Stand down: the county team has taken over",
        issued_by="duty-officer-2",
    )

    def env(c: Command) -> Any:
        return json.loads(sign_command(EXAMPLE_KEY, c))

    def d(c: Command | CommandAck) -> Any:
        return json.loads(c.model_dump_json(exclude_none=True))

    forged = SignedCommand.model_validate(env(issue)).model_copy(update={"cmd": env(issue)["cmd"].replace("seal the kitchen", "close the market")})
    return {
        "SignedCommand": [
            ("emergency order to T-0001", env(issue)),
            ("amendment: the place moves", env(amend)),
            ("cancellation", env(cancel)),
        ],
        "Command": [("the cmd of the emergency order", d(issue)), ("the cmd of the amendment", d(amend)), ("the cmd of the cancellation", d(cancel))],
        "TamperedCommand": [("cmd edited after signing: answered rejected, bad_signature", json.loads(forged.model_dump_json()))],
        "CommandAck": [
            (
                "rejected by the terminal (forged or tampered)",
                d(CommandAck(command_id=cmd_id, ts=t0 + timedelta(seconds=1), status=AckStatus.REJECTED, note="bad_signature: signature does not verify")),
            ),
            (
                "rejected by the terminal (expired)",
                d(
                    CommandAck(
                        command_id=cmd_id, ts=t0 + timedelta(hours=3), status=AckStatus.REJECTED,
                        note=f"expired: expired at {(t0 + timedelta(hours=2)).isoformat()}",
                    )
                ),
            ),
        ],
    }
