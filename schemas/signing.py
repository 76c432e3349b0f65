"""Ed25519 signatures on commands (``cryptography``, i.e. OpenSSL).

The private key lives only where orders are signed (the ``orders`` dispatcher); terminals are
provisioned with the public key. Keys are files in the usual PEM forms, so a bureau can make
them with ``openssl genpkey -algorithm ed25519`` as well as with ``python -m orders keygen``.
"""

from __future__ import annotations

import base64
import hashlib
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from schemas.commands import Command, SignedCommand


class CommandRejection(StrEnum):
    """Why a terminal refuses a command (sent back as the ``note`` of a ``rejected`` ack)."""

    MALFORMED = "malformed"  # not a SignedCommand, or its cmd is not a Command
    BAD_SIGNATURE = "bad_signature"  # not signed by the platform's key
    NOT_ADDRESSED = "not_addressed"  # ``to`` names another terminal
    EXPIRED = "expired"  # expires_at has passed
    NO_KEY = "no_key"  # the terminal has no platform key to check with


class CommandRefused(ValueError):
    def __init__(self, reason: CommandRejection, detail: str = "", command: Command | None = None):
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.command = command  # set when the command itself could be read (so the ack can name it)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (private key readable by its owner only); returns the key id."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_path.touch(mode=0o600, exist_ok=True)
    private_path.chmod(0o600)
    private_path.write_bytes(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path_or_pem: Path | str | bytes) -> Ed25519PublicKey:
    data = path_or_pem if isinstance(path_or_pem, bytes) else None
    if data is None:
        text = str(path_or_pem)
        data = text.encode() if text.lstrip().startswith("-----BEGIN") else Path(text).read_bytes()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def sign_command(key: Ed25519PrivateKey, command: Command) -> bytes:
    """The envelope's bytes, ready to publish."""
    cmd = command.model_dump_json(exclude_none=True)
    sig = base64.b64encode(key.sign(cmd.encode())).decode()
    return SignedCommand(cmd=cmd, sig=sig, kid=key_id(key.public_key())).model_dump_json().encode()


def verify_command(key: Ed25519PublicKey | None, payload: bytes, terminal_id: str, now) -> Command:
    """The command in ``payload`` if it is signed by ``key``, addressed to ``terminal_id`` and not
    expired at ``now``; else raises CommandRefused (with the command when it could be read)."""
    try:
        env = SignedCommand.model_validate_json(payload)
    except ValidationError as exc:
        raise CommandRefused(CommandRejection.MALFORMED, f"{exc.error_count()} field error(s)") from None
    try:
        command = Command.model_validate_json(env.cmd)
    except ValidationError as exc:
        raise CommandRefused(CommandRejection.MALFORMED, f"cmd: {exc.error_count()} field error(s)") from None
    if key is None:
        raise CommandRefused(CommandRejection.NO_KEY, "no platform key provisioned", command)
    try:
        key.verify(base64.b64decode(env.sig, validate=True), env.cmd.encode())
    except (InvalidSignature, ValueError):
        raise CommandRefused(CommandRejection.BAD_SIGNATURE, "signature does not verify", command) from None
    if command.to is not None and command.to != terminal_id:
        raise CommandRefused(CommandRejection.NOT_ADDRESSED, f"addressed to {command.to}", command)
    if command.expires_at is not None and command.expires_at <= now:
        raise CommandRefused(CommandRejection.EXPIRED, f"expired at {command.expires_at.isoformat()}", command)
    return command
