"""``python -m db migrate | maintain | mode`` — the store's operator commands."""

from __future__ import annotations

import argparse
import sys

import psycopg

from db.maintenance import maintain
from db.migrate import ensure_database, migrate, recorded_mode
from schemas.logs import setup_logging
from schemas.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db", description=__doc__)
    parser.add_argument("command", choices=["migrate", "maintain", "mode"])
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings)
    if args.command == "migrate":
        ensure_database(settings.pg_dsn)
        migrate(settings.pg_dsn, settings.retention_days)
        return 0
    with psycopg.connect(settings.pg_dsn) as conn:
        if args.command == "mode":
            print(recorded_mode(conn) or "not migrated")
        else:
            print(maintain(conn, settings.retention_days, settings.partitions_ahead_days))
    return 0


if __name__ == "__main__":
    sys.exit(main())
