"""The web refuses to start with a secret anyone can read off the README unless only this
machine can reach it. Pure: gunicorn's config (deploy/gunicorn.conf.py) and create_app call it."""

from __future__ import annotations

import ipaddress

from schemas.settings import Settings

DEFAULT_SECRET = Settings.model_fields["web_secret"].default
MIN_SECRET_BYTES = 32


class InsecureWebConfig(RuntimeError):
    """The web's settings would let strangers forge sessions: the message says what to set."""


def is_loopback_bind(bind: str) -> bool:
    """``host:port`` on a loopback address (127.0.0.0/8, ::1, localhost). A unix socket is not:
    a reverse proxy in front of it may well face the network."""
    bind = (bind or "").strip()
    if not bind or bind.startswith("unix:") or bind.startswith("fd://"):
        return False
    host = bind.rsplit(":", 1)[0] if ":" in bind and not bind.endswith("]") else bind
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_web_secret(settings: Settings, binds: list[str] | None = None) -> None:
    """Raise InsecureWebConfig when the secret is the default and any bind is off loopback,
    or when a non-default secret is shorter than 32 bytes."""
    binds = binds if binds is not None else [b for b in settings.web_bind.split(",") if b.strip()]
    secret = settings.web_secret
    if secret == DEFAULT_SECRET:
        exposed = [b for b in binds if not is_loopback_bind(b)]
        if exposed:
            raise InsecureWebConfig(
                f"the web would serve {', '.join(exposed)} with the default GRIDWATCH_WEB_SECRET: set GRIDWATCH_WEB_SECRET "
                f"to at least {MIN_SECRET_BYTES} random bytes (python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                "or bind to 127.0.0.1 (GRIDWATCH_WEB_BIND)"
            )
        return
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise InsecureWebConfig(
            f"GRIDWATCH_WEB_SECRET is {len(secret.encode('utf-8'))} bytes: it needs at least {MIN_SECRET_BYTES} "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
