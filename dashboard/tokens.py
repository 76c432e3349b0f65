"""API tokens for the city's decision-command platform (the HTTP API in dashboard/api.py).

A token is 32 random bytes (URL-safe text), shown once when it is made; only its SHA-256 is
stored (``api_token``, db/migrations/0013_api_tokens.sql), so a copy of the database gives
no usable token. Each token has a name: the audit records the API's actions as ``api:<name>``.

    python -m dashboard.tokens create --name city-platform   # prints the token once
    python -m dashboard.tokens list
    python -m dashboard.tokens revoke city-platform
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime

import psycopg

from dashboard.auth import audit
from dashboard.auth.model import WebAction

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ROLE_DUTY_OFFICER = "duty_officer"  # the one role there is: may create, amend and cancel orders
USED_EVERY_S = 60  # last_used_at is written at most this often per token (not one write per request)


class TokenError(ValueError):
    """A token command that cannot be done (bad name, name taken, unknown name)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def create(conn: psycopg.Connection, name: str, actor: str = "cli") -> str:
    """Make a token called ``name`` and return it (the only time it is seen). Audited as ``actor``."""
    if not NAME.match(name or ""):
        raise TokenError("a token name is 1-64 letters, digits, '.', '_' or '-'")
    token = secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO api_token (name, token_hash, role) VALUES (%s, %s, %s)",
                         (name, token_hash(token), ROLE_DUTY_OFFICER))
            audit.record(conn, actor, WebAction.API_TOKEN_CREATED, subject=f"api:{name}")
    except psycopg.errors.UniqueViolation:
        raise TokenError(f"a token named {name!r} exists already (revoked ones too: pick another name)") from None
    return token


def revoke(conn: psycopg.Connection, name: str, actor: str = "cli") -> bool:
    """Revoke ``name``; False when there is no such active token. Audited as ``actor``."""
    with conn.transaction():
        row = conn.execute("UPDATE api_token SET revoked_at = now()"
                           " WHERE name = %s AND revoked_at IS NULL RETURNING name", (name,)).fetchone()
        if row is not None:
            audit.record(conn, actor, WebAction.API_TOKEN_REVOKED, subject=f"api:{name}")
    return row is not None


def list_tokens(conn: psycopg.Connection) -> list[TokenInfo]:
    rows = conn.execute("SELECT name, role, created_at, revoked_at, last_used_at FROM api_token"
                        " ORDER BY created_at").fetchall()
    return [TokenInfo(*r) for r in rows]


def verify(conn: psycopg.Connection, token: str) -> TokenInfo | None:
    """The active token ``token`` is, or None (unknown or revoked)."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    row = conn.execute(
        "SELECT name, role, created_at, revoked_at, last_used_at, token_hash FROM api_token WHERE token_hash = %s",
        (digest,),
    ).fetchone()
    # The lookup is by hash (an index probe), the comparison constant-time all the same.
    if row is None or row[3] is not None or not hmac.compare_digest(bytes(row[5]), digest):
        return None
    info = TokenInfo(*row[:5])
    conn.execute(
        "UPDATE api_token SET last_used_at = now() WHERE name = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => %s))",
        (info.name, USED_EVERY_S),
    )
    return info


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def main(argv: list[str] | None = None) -> int:
    from schemas.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m dashboard.tokens", description="API tokens of the HTTP API")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="make a token and print it once")
    c.add_argument("--name", required=True)
    sub.add_parser("list", help="every token: name, role, created, revoked, last used")
    r = sub.add_parser("revoke", help="revoke a token by name")
    r.add_argument("name")
    args = parser.parse_args(argv)
    settings = get_settings()
    actor = audit.cli_actor()
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        try:
            if args.command == "create":
                token = create(conn, args.name, actor)
                print(token)
                print(f"token {args.name!r} made; it is shown only now: keep it in the platform's secret store",
                      file=sys.stderr)
            elif args.command == "list":
                for t in list_tokens(conn):
                    state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
                    used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
                    print(f"{t.name}\t{t.role}\tcreated {t.created_at:%Y-%m-%d %H:%M}\t{state}\tlast used {used}")
            elif not revoke(conn, args.name, actor):
                print(f"no active token named {args.name!r}", file=sys.stderr)
                return 1
            else:
                print(f"token {args.name!r} revoked", file=sys.stderr)
        except TokenError as exc:
            print(exc, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
