"""gunicorn hook: warm the first callback in every worker (cold start is 100-140 ms otherwise).

Imported by deploy/gunicorn.conf.py, the one gunicorn configuration.
"""


def post_worker_init(worker):
    from dashboard.app import app, warm

    warm(app)
