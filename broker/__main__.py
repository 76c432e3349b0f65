"""``python -m broker ...``: the broker's accounts.

    terminal add ID [--grid CODE ...] [--save]   new terminal account; prints its password once
    terminal rotate ID [--save]                  new password; the old one stops working at once
    terminal revoke ID                           cut it off now and refuse it from then on
    terminal grids ID CODE ...                   the grids whose command topics it may read
    terminal list                                terminal accounts on the broker
    terminal sync [ID ...] [--dry-run]           terminals' grids as the registry says (person_grid)
    account add NAME --duty ingest|orders        another platform process (e.g. gridwatch-ingest-2)
    account rotate NAME                          new password; the running process reconnects with it
    cert issue NAME [--out DIR]                  a client certificate for mutual TLS, from the setup's CA
    check                                        the admin account can manage the broker

Set-up steps (./gw setup): ``render-conf`` and ``init-accounts`` (while the broker is down).
Every change goes to the running broker: no restart.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path

import psycopg

from broker import accounts, conf, secrets, sync, tls
from broker.control import ControlError, DynsecControl
from schemas.settings import get_settings
from schemas.topics import TERMINAL_ID_PATTERN, Topics

log = logging.getLogger("gridwatch.broker")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m broker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    rc = sub.add_parser("render-conf", help="print the broker configuration for this checkout")
    rc.add_argument("--var", type=Path, required=True)
    rc.add_argument("--port", type=int, required=True)
    rc.add_argument("--owner", help="user the broker runs as: gets the TLS key")
    ia = sub.add_parser("init-accounts", help="write the platform accounts into the plugin's file (broker down)")
    ia.add_argument("--var", type=Path, required=True)
    ia.add_argument("--owner", help="user the broker runs as: owns the file (it rewrites it on every change)")
    sub.add_parser("check", help="connect as the admin account and count the accounts")
    t = sub.add_parser("terminal", help="terminal accounts").add_subparsers(dest="action", required=True)
    add = t.add_parser("add")
    add.add_argument("id")
    add.add_argument("--grid", action="append", default=[], help="a level-2 grid code whose commands it reads (repeatable)")
    add.add_argument("--save", action="store_true", help="keep the password in the secrets file instead of printing it")
    rot = t.add_parser("rotate")
    rot.add_argument("id")
    rot.add_argument("--save", action="store_true")
    t.add_parser("revoke").add_argument("id")
    gr = t.add_parser("grids")
    gr.add_argument("id")
    gr.add_argument("codes", nargs="*")
    t.add_parser("list")
    sy = t.add_parser("sync", help="set every terminal account's grids to the registry's (person_grid)")
    sy.add_argument("ids", nargs="*", help="only these terminals (default: all)")
    sy.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    acct = sub.add_parser("account", help="platform accounts").add_subparsers(dest="action", required=True)
    aa = acct.add_parser("add")
    aa.add_argument("name")
    aa.add_argument("--duty", choices=[accounts.Duty.INGEST.value, accounts.Duty.ORDERS.value], required=True)
    acct.add_parser("rotate", help="new password in the secrets file and on the broker; its process reconnects with it").add_argument("name")
    cert = sub.add_parser("cert", help="client certificates for mutual TLS").add_subparsers(dest="action", required=True)
    issue = cert.add_parser("issue", help="a client certificate for NAME (a terminal id or platform account)")
    issue.add_argument("name")
    issue.add_argument("--out", type=Path, default=Path("var/tls/clients"), help="folder for NAME.crt and NAME.key")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    s = get_settings()
    logging.basicConfig(level=s.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _dispatch(args, s)
    except ControlError as exc:
        log.error("%s", exc)
        return 1


def _dispatch(args: argparse.Namespace, s) -> int:
    topics = Topics(s.topic_prefix)
    if args.command == "render-conf":
        for key in conf.ensure_tls_files(s):
            _chown(key, args.owner)
        sys.stdout.write(conf.render(args.var, args.port, s))
        return 0
    if args.command == "init-accounts":
        path = conf.dynsec_file(args.var)
        passwords = conf.init_accounts(path, s)
        _chown(path, args.owner)
        print(f"{path}: platform accounts {', '.join(sorted(accounts.PLATFORM_ACCOUNTS))}; passwords in "
              f"{s.mqtt_secrets_file} ({len(passwords)} entries, mode 0600)")
        return 0
    if args.command == "cert":
        return _issue_client_cert(s, args.name, args.out)
    with DynsecControl(s) as broker:
        if args.command == "check":
            count = broker.run([accounts.command("listClients")])[0]["data"]["totalCount"]
            print(f"broker {s.mqtt_host}:{s.mqtt_port}: {accounts.ADMIN} accepted, {count} accounts")
            return 0
        if args.command == "account":
            if args.action == "rotate":
                return _rotate_platform_account(broker, s, args.name)
            return _add_platform_account(broker, s, args.name, accounts.Duty(args.duty))
        return _terminal(broker, s, topics, args)


def _issue_client_cert(s, name: str, out: Path) -> int:
    """A certificate and key for ``name`` from the CA ./gw setup made, and the settings that use them."""
    if not re.match(TERMINAL_ID_PATTERN, name):
        log.error("%r is not a terminal id or account name", name)
        return 2
    certfile, keyfile = out / f"{name}.crt", out / f"{name}.key"
    try:
        tls.issue_client_cert(s.mqtt_tls_cafile, name, certfile, keyfile)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 1
    print(f"{certfile} and {keyfile} (mode 0600), signed by {s.mqtt_tls_cafile}; the client sets\n"
          f"  GRIDWATCH_MQTT_TLS_CA={s.mqtt_tls_cafile}\n"
          f"  GRIDWATCH_MQTT_TLS_CLIENT_CERT={certfile}\n  GRIDWATCH_MQTT_TLS_CLIENT_KEY={keyfile}")
    return 0


def _terminal(broker: DynsecControl, s, topics: Topics, args: argparse.Namespace) -> int:
    if args.action == "sync":
        with psycopg.connect(s.pg_dsn) as conn:
            plan = sync.sync_terminal_grids(s, conn, broker, args.dry_run, args.ids)
        print(sync.report(plan, args.dry_run))
        return 0
    if args.action == "list":
        clients = broker.run([accounts.command("listClients")])[0]["data"]["clients"]
        print("\n".join(sorted(c for c in clients if accounts.is_terminal_account(c))))
        return 0
    if not re.match(TERMINAL_ID_PATTERN, args.id) or not accounts.is_terminal_account(args.id):
        log.error("%r is not a terminal id", args.id)
        return 2
    if args.action == "add":
        password = secrets.new_password()
        broker.run(accounts.add_terminal(topics, args.id, password, args.grid), tolerate=[accounts.ROLE_EXISTS])
        _hand_over(s, args.id, password, args.save)
        log.info("terminal %s added (grids: %s)", args.id, ", ".join(args.grid) or "none")
    elif args.action == "rotate":
        password = secrets.new_password()
        broker.run(accounts.rotate_password(args.id, password))
        _hand_over(s, args.id, password, args.save)
        log.info("terminal %s: password rotated; the broker disconnected it, the old password is refused", args.id)
    elif args.action == "revoke":
        broker.run(accounts.revoke_terminal(args.id))
        secrets.update(s.mqtt_secrets_file, remove=[args.id])
        log.info("terminal %s revoked: disconnected now, refused from now on", args.id)
    elif args.action == "grids":
        broker.run(accounts.set_terminal_grids(topics, args.id, args.codes), tolerate=[accounts.ROLE_EXISTS])
        log.info("terminal %s reads the commands of grids: %s", args.id, ", ".join(args.codes) or "none")
    return 0


def _add_platform_account(broker: DynsecControl, s, name: str, duty: accounts.Duty) -> int:
    password = secrets.new_password()
    entry = accounts.platform_client(name, password, duty)
    broker.run([accounts.command("createClient", username=name, clientid=name, password=password,
                                 roles=entry["roles"], textname=entry["textname"])])
    secrets.update(s.mqtt_secrets_file, {name: password})
    log.info("account %s (%s) added; its password is in %s", name, duty.value, s.mqtt_secrets_file)
    return 0


def _rotate_platform_account(broker: DynsecControl, s, name: str) -> int:
    """The secrets file first, then the broker: the broker disconnects the account's process, which
    reads the file again before it reconnects (Settings.refresh_mqtt_login), so it is back within its
    reconnect delay. Should the broker refuse, the file gets the old password back."""
    old = secrets.load(s.mqtt_secrets_file).get(name)
    if old is None:
        log.error("%s has no password in %s: only accounts this host keeps can be rotated here", name, s.mqtt_secrets_file)
        return 2
    if name == accounts.ADMIN:
        log.error("the admin account manages the broker through this very connection: rotate it with the broker "
                  "stopped: ./gw stop, remove its entry from %s, ./gw setup writes a new one", s.mqtt_secrets_file)
        return 2
    password = secrets.new_password()
    secrets.update(s.mqtt_secrets_file, {name: password})
    try:
        broker.run(accounts.rotate_password(name, password))
    except ControlError:
        secrets.update(s.mqtt_secrets_file, {name: old})
        raise
    log.info("account %s: password rotated in %s and on the broker; its process reconnects with the new one", name,
             s.mqtt_secrets_file)
    return 0


def _hand_over(s, terminal_id: str, password: str, save: bool) -> None:
    """Into this host's secrets file (a simulated terminal), or printed once for the device."""
    if save:
        secrets.update(s.mqtt_secrets_file, {terminal_id: password})
    else:
        print(f"{terminal_id} {password}")


def _chown(path: Path, owner: str | None) -> None:
    if owner:
        shutil.chown(path, owner)


if __name__ == "__main__":
    sys.exit(main())
