"""Gunicorn settings for the Gridwatch wall (dashboard.app:server).

Read by ``gunicorn -c deploy/gunicorn.conf.py dashboard.app:server`` (see Procfile).
Environment: GRIDWATCH_WEB_BIND (Settings.web_bind, default 127.0.0.1:8050), GRIDWATCH_WEB_WORKERS (2),
GRIDWATCH_WEB_THREADS (4), GRIDWATCH_WEB_ACCESSLOG (set to 1 to log requests to stdout).
"""

import os

# Two cores on the reference machine: two processes, each with threads for concurrent polls.
workers = int(os.environ.get("GRIDWATCH_WEB_WORKERS", "2"))
# gthread: long-lived requests (server-sent events) do not block a whole worker, and the sync
# worker's 30 s timeout killed SSE streams in the prototype.
worker_class = "gthread"
threads = int(os.environ.get("GRIDWATCH_WEB_THREADS", "4"))
timeout = 60
graceful_timeout = 30
keepalive = 5
# Each worker builds its own app (own DB pool, own Redis connections): no sockets shared across fork.
preload_app = False
# Access log off by default: the wall polls every second per screen and would flood the log.
accesslog = "-" if os.environ.get("GRIDWATCH_WEB_ACCESSLOG", "") not in ("", "0", "false") else None
errorlog = "-"
loglevel = os.environ.get("GRIDWATCH_LOG_LEVEL", "info").lower()

# Bad GRIDWATCH_* settings stop the master here with one clear line, instead of workers that
# exit and are rebooted forever.
from schemas.settings import get_settings  # noqa: E402

_settings = get_settings()
# Loopback by default: serving the network is a decision (a real GRIDWATCH_WEB_SECRET, users made).
bind = [b.strip() for b in _settings.web_bind.split(",") if b.strip()]


def on_starting(server):
    """Refuse to serve the default or a short secret off loopback. Checked against the binds
    gunicorn will really use (a -b on the command line overrides GRIDWATCH_WEB_BIND)."""
    from dashboard.auth.startup import InsecureWebConfig, check_web_secret

    try:
        check_web_secret(_settings, list(server.cfg.bind))
    except InsecureWebConfig as exc:
        raise SystemExit(f"gridwatch web not started: {exc}") from None

# Warm each worker's first callback at boot, so the first wall poll is not the slow one.
from dashboard.warmup import post_worker_init  # noqa: E402,F401
