"""The broker passwords this checkout knows: one JSON object, user name -> password, mode 0600.

``./gw setup`` fills it with the platform's accounts (Settings.mqtt_secrets_file, default
var/secrets/mqtt.json); the simulator adds the terminals it provisions. Processes read their own
entry through ``Settings.mqtt_login``. Never committed (var/ is ignored).
"""

from __future__ import annotations

import json
import os
import secrets as _random
from collections.abc import Iterable
from pathlib import Path


def new_password() -> str:
    return _random.token_urlsafe(24)  # 192 bits


def load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of user name -> password")
    return data


def save(path: Path, passwords: dict[str, str]) -> None:
    """Written to a temporary file created 0600, then renamed: never readable by others, never half-written."""
    path = Path(path).resolve()  # through a link to another checkout's file (setup's adopt_broker_secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(passwords, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def ensure(path: Path, usernames: Iterable[str]) -> dict[str, str]:
    """Every name in ``usernames`` has a password (new ones generated and saved); existing kept."""
    passwords = load(path)
    missing = [u for u in usernames if u not in passwords]
    for name in missing:
        passwords[name] = new_password()
    if missing or not Path(path).exists():
        save(path, passwords)
    return passwords


def update(path: Path, set_: dict[str, str] | None = None, remove: Iterable[str] = ()) -> None:
    passwords = load(path)
    passwords.update(set_ or {})
    for name in remove:
        passwords.pop(name, None)
    save(path, passwords)
