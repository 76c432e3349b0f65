"""Gunicorn settings for the Gridwatch wall (dashboard.app:server).

Read by ``gunicorn -c deploy/gunicorn.conf.py dashboard.app:server`` (see Procfile).
Environment: GRIDWATCH_WEB_BIND (default 0.0.0.0:8050), GRIDWATCH_WEB_WORKERS (2),
GRIDWATCH_WEB_THREADS (4), GRIDWATCH_WEB_ACCESSLOG (set to 1 to log requests to stdout).
"""

import os

bind = os.environ.get("GRIDWATCH_WEB_BIND", "0.0.0.0:8050")
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

get_settings()

# Warm each worker's first callback at boot, so the first wall poll is not the slow one.
from dashboard.warmup import post_worker_init  # noqa: E402,F401
