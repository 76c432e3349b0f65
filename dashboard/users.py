"""Users of the web and wall tokens: ``python -m dashboard.users``.

    python -m dashboard.users create NAME --role duty_officer     # asks for the password twice
    python -m dashboard.users passwd NAME                          # new password; their sessions end
    python -m dashboard.users role NAME administrator              # new role; their sessions end
    python -m dashboard.users remove NAME                          # signed out at their next request
    python -m dashboard.users list
    python -m dashboard.users wall-token create lobby-wall         # prints the token once
    python -m dashboard.users wall-token list
    python -m dashboard.users wall-token revoke lobby-wall         # that wall is signed out
    python -m dashboard.users import-officers                      # once: GRIDWATCH_DUTY_OFFICERS -> users

Roles: wall_viewer (reads, changes nothing), duty_officer (orders, alerts), administrator.
The password is read from the terminal, or with --password-stdin from standard input (one
line: for scripts; never on the command line, where `ps` shows it). Every change is written to
the web audit as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import psycopg

from dashboard.auth import audit, store
from dashboard.auth.model import Role


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise store.UserError("the two passwords differ")
    return first


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dashboard.users", description="users of the web and wall tokens")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: GRIDWATCH_PG_DSN)")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="make a user")
    c.add_argument("name")
    c.add_argument("--role", required=True, choices=[r.value for r in Role])
    c.add_argument("--password-stdin", action="store_true")
    pw = sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    r = sub.add_parser("role", help="change a user's role (ends their sessions)")
    r.add_argument("name")
    r.add_argument("role", choices=[r.value for r in Role])
    rm = sub.add_parser("remove", help="remove a user (ends their sessions)")
    rm.add_argument("name")
    sub.add_parser("list", help="every user: name, role, created, password set, live sessions")
    sub.add_parser("import-officers", help="make a duty_officer user of each user:password in the old "
                   "GRIDWATCH_DUTY_OFFICERS (existing names and passwords under 10 characters are skipped)")
    w = sub.add_parser("wall-token", help="read-only wall tokens (/wall?token=...)")
    wsub = w.add_subparsers(dest="wall_command", required=True)
    wc = wsub.add_parser("create", help="make a wall token and print it once")
    wc.add_argument("name")
    wsub.add_parser("list")
    wr = wsub.add_parser("revoke")
    wr.add_argument("name")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dsn:
        dsn = args.dsn
    else:
        from schemas.settings import get_settings

        dsn = get_settings().pg_dsn
    actor = audit.cli_actor()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return _run(conn, args, actor)
    except (store.UserError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except psycopg.errors.UndefinedTable:
        print("the database has no users table yet: run python -m db migrate", file=sys.stderr)
        return 2


def _run(conn: psycopg.Connection, args, actor: str) -> int:
    cmd = args.command
    if cmd == "create":
        store.create_user(conn, args.name, Role(args.role), _password(args), actor)
        print(f"user {args.name!r} made ({args.role})", file=sys.stderr)
    elif cmd == "passwd":
        store.set_password(conn, args.name, _password(args), actor)
        print(f"password of {args.name!r} set; their sessions ended", file=sys.stderr)
    elif cmd == "role":
        store.set_role(conn, args.name, Role(args.role), actor)
        print(f"{args.name!r} is now {args.role}; their sessions ended", file=sys.stderr)
    elif cmd == "remove":
        store.remove_user(conn, args.name, actor)
        print(f"user {args.name!r} removed; their sessions ended", file=sys.stderr)
    elif cmd == "list":
        for u in store.list_users(conn):
            print(f"{u.name}\t{u.role.value}\tcreated {u.created_at:%Y-%m-%d %H:%M}\t"
                  f"password set {u.password_set_at:%Y-%m-%d %H:%M}\tsessions {u.sessions}")
    elif cmd == "import-officers":
        return _import_officers(conn, os.environ.get("GRIDWATCH_DUTY_OFFICERS", ""), actor)
    elif args.wall_command == "create":
        token = store.create_wall_token(conn, args.name, actor)
        print(token)
        print(f"wall token {args.name!r} made; it is shown only now. Open the wall at /wall?token=<token>",
              file=sys.stderr)
    elif args.wall_command == "list":
        for w in store.list_wall_tokens(conn):
            used = f"{w.last_used_at:%Y-%m-%d %H:%M}" if w.last_used_at else "never"
            print(f"{w.name}\tcreated {w.created_at:%Y-%m-%d %H:%M}\tlast used {used}\tsessions {w.sessions}")
    else:
        store.revoke_wall_token(conn, args.name, actor)
        print(f"wall token {args.name!r} revoked; its walls are signed out", file=sys.stderr)
    return 0


def _import_officers(conn: psycopg.Connection, spec: str, actor: str) -> int:
    """The migration from the old setting: ``user:password,user2:pw2`` -> duty officers."""
    made = skipped = 0
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, password = part.partition(":")
        try:
            if not sep:
                raise ValueError("not user:password")
            store.create_user(conn, name.strip(), Role.DUTY_OFFICER, password, actor)
            made += 1
            print(f"user {name.strip()!r} made (duty_officer)", file=sys.stderr)
        except (store.UserError, ValueError) as exc:
            skipped += 1
            print(f"skipped {name.strip()!r}: {exc}", file=sys.stderr)
    if not made and not skipped:
        print("GRIDWATCH_DUTY_OFFICERS is empty: nothing to import", file=sys.stderr)
    print(f"{made} made, {skipped} skipped; unset GRIDWATCH_DUTY_OFFICERS now (it is no longer read)", file=sys.stderr)
    return 0 if not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
