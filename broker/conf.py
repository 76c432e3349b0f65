"""Mosquitto's configuration for this checkout: deploy/mosquitto/gridwatch.conf with its
placeholders filled, the TLS listener added when Settings ask for one, and the plugin's account
file made or brought up to date — one code path for ``./gw setup`` and bench/local_broker.py."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from broker import accounts, secrets
from schemas.settings import Settings
from schemas.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "mosquitto" / "gridwatch.conf"
PLUGIN_GLOBS = ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
                "/usr/local/lib/mosquitto_dynamic_security.so", "/usr/lib64/mosquitto_dynamic_security.so")


def dynsec_plugin() -> str:
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise FileNotFoundError("Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is not installed")


def dynsec_file(var_dir: Path) -> Path:
    return Path(var_dir) / "mosquitto" / "dynamic-security.json"


def render(var_dir: Path, port: int, settings: Settings, *, user: str | None = None, template: str | None = None) -> str:
    """The runtime configuration: absolute paths (Mosquitto resolves relative ones against its cwd)."""
    text = (template or TEMPLATE.read_text()).replace("@VAR@", str(Path(var_dir).resolve())).replace("@PORT@", str(port))
    text = text.replace("@DYNSEC_PLUGIN@", dynsec_plugin())
    if user:
        text = text.replace("\nuser mosquitto\n", f"\nuser {user}\n")
    return text + tls_listener(settings)


def tls_listener(settings: Settings) -> str:
    if settings.mqtt_tls_port is None:
        return ""
    return (
        "\n# --- TLS listener (GRIDWATCH_MQTT_TLS_PORT; added by python -m broker render-conf) ---\n"
        "# Same accounts and ACLs as the plain listener (per_listener_settings is false).\n"
        f"listener {settings.mqtt_tls_port} {settings.mqtt_tls_bind}\n"
        f"certfile {settings.mqtt_tls_certfile.resolve()}\n"
        f"keyfile {settings.mqtt_tls_keyfile.resolve()}\n"
        f"cafile {settings.mqtt_tls_cafile.resolve()}\n"
        + ("# Mutual TLS (GRIDWATCH_MQTT_TLS_REQUIRE_CLIENT_CERT): no certificate from that CA, no connection;\n"
           "# the account's password is checked as well.\nrequire_certificate true\n"
           if settings.mqtt_tls_require_client_cert else "")
    )


def ensure_tls_files(settings: Settings) -> list[Path]:
    """A self-signed CA and server certificate if the TLS listener is wanted and its files are
    missing; returns the key the broker's user must be able to read."""
    if settings.mqtt_tls_port is None:
        return []
    files = (settings.mqtt_tls_cafile, settings.mqtt_tls_certfile, settings.mqtt_tls_keyfile)
    if not all(f.exists() for f in files):
        from broker.tls import make_self_signed

        make_self_signed(*files)
    return [settings.mqtt_tls_keyfile]


def init_accounts(path: Path, settings: Settings) -> dict[str, str]:
    """Write the plugin's file with the platform's accounts (passwords from, or added to, the
    secrets file). Only while the broker is down: a running broker rewrites the file itself."""
    passwords = secrets.ensure(settings.mqtt_secrets_file, accounts.PLATFORM_ACCOUNTS)
    existing = json.loads(path.read_text()) if path.exists() else None
    config = accounts.reconcile_config(existing, passwords, Topics(settings.topic_prefix), with_dev=settings.mqtt_dev_account)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # password hashes: not for everyone
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=1)
    os.replace(tmp, path)
    return passwords
