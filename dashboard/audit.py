"""Export the audit: ``python -m dashboard.audit``.

One time-ordered stream of the web audit (sign-ins, failures, sign-outs, user and wall-token
changes), the orders' audit and the alerts' actions, for a bounded window:

    python -m dashboard.audit --since 2026-11-01 --until 2026-12-01 --format csv > audit.csv
    python -m dashboard.audit --hours 24 --source web --format jsonl

Times without a zone are in the bureau's zone (GRIDWATCH_TIMEZONE). The tables are
append-only (a trigger refuses UPDATE, DELETE and TRUNCATE).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg

from dashboard.auth.audit import SOURCES, export, to_csv, to_jsonl


def _when(text: str, zone: ZoneInfo) -> datetime:
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time (YYYY-MM-DD[ HH:MM])") from None
    return d if d.tzinfo else d.replace(tzinfo=zone)


def main(argv: list[str] | None = None) -> int:
    from schemas.settings import get_settings

    settings = get_settings()
    zone = ZoneInfo(settings.timezone)
    p = argparse.ArgumentParser(prog="python -m dashboard.audit", description="export the audit as CSV or JSON lines")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: GRIDWATCH_PG_DSN)")
    p.add_argument("--since", type=lambda s: _when(s, zone), help="start of the window (default: --hours before now)")
    p.add_argument("--until", type=lambda s: _when(s, zone), help="end of the window (default: now)")
    p.add_argument("--hours", type=float, default=24.0, help="window length when --since is not given (24)")
    p.add_argument("--source", action="append", choices=SOURCES, help="web, order, alert (repeatable; default all)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    args = p.parse_args(argv)
    until = args.until or datetime.now(timezone.utc)
    since = args.since or until - timedelta(hours=args.hours)
    write = to_csv if args.format == "csv" else to_jsonl
    n = 0
    try:
        with psycopg.connect(args.dsn or settings.pg_dsn, autocommit=False) as conn:
            for line in write(export(conn, since, until, tuple(args.source or SOURCES))):
                sys.stdout.write(line + "\n")
                n += 1
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{max(0, n - (args.format == 'csv'))} audit rows from {since.isoformat()} to {until.isoformat()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
