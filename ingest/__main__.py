"""``python -m ingest [run | rebuild-live]`` — the ingest service and its operator commands."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import psycopg

from ingest.connections import redis_client
from ingest.service import IngestService
from ingest.store_redis import LiveStore
from schemas.logs import setup_logging
from schemas.settings import get_settings
from schemas.topics import RedisKeys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild-live"],
                        help="run: the service (default); rebuild-live: restore Redis live state from PostgreSQL")
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings)
    if args.command == "rebuild-live":
        live = LiveStore(redis_client(settings), RedisKeys(settings.redis_prefix),
                         settings.timezone, settings.event_stream_maxlen)
        with psycopg.connect(settings.pg_dsn) as conn:
            live.rebuild(conn)
        return 0
    service = IngestService(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop())
    logging.getLogger("gridwatch.ingest").info(
        "ingest starting: broker %s:%s, store %s", settings.mqtt_host, settings.mqtt_port,
        settings.pg_dsn.rsplit("@", 1)[-1])
    service.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
