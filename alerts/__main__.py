"""``python -m alerts`` — the alerts engine (see alerts/engine.py for where it reads and why)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from alerts.engine import AlertEngine
from schemas.logs import setup_logging
from schemas.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alerts", description=__doc__)
    parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings)
    engine = AlertEngine(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: engine.stop())
    logging.getLogger("gridwatch.alerts").info("alerts engine starting: store %s, duty hours %s",
                                               settings.pg_dsn.rsplit("@", 1)[-1], settings.alerts_duty_hours)
    engine.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
