"""gunicorn settings for the wall (threads: the live poll and the page share a worker).

Use directly (``gunicorn -c dashboard/gunicorn_conf.py dashboard.app:server``) or import the
hook into deploy/gunicorn.conf.py: ``from dashboard.gunicorn_conf import post_worker_init``.
"""

import os

bind = os.environ.get("GRIDWATCH_WEB_BIND", "127.0.0.1:8050")
workers = int(os.environ.get("GRIDWATCH_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GRIDWATCH_WEB_THREADS", "8"))
timeout = 60
keepalive = 30


def post_worker_init(worker):
    """Warm the first callback in every worker (cold start 100-140 ms otherwise)."""
    from dashboard.app import app, warm

    warm(app)
