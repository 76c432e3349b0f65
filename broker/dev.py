"""The development account for tests and benches: one place that gives them broker credentials."""

from __future__ import annotations

from broker import accounts, secrets
from schemas.settings import Settings


def dev_settings(settings: Settings) -> Settings:
    """``settings`` logging in as gridwatch-dev (every data topic, any client id), unless a user
    name is already set explicitly. Every client and child process built from them uses it."""
    if settings.mqtt_username:
        return settings
    password = secrets.load(settings.mqtt_secrets_file).get(accounts.DEV)
    if password is None:
        raise RuntimeError(f"no {accounts.DEV} password in {settings.mqtt_secrets_file}: run ./gw setup")
    return settings.model_copy(update={"mqtt_username": accounts.DEV, "mqtt_password": password})
