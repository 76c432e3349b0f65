"""Who may do what on the broker, as Mosquitto dynamic-security data: pure functions, no I/O.

Two shapes of the same rules:

* the plugin's configuration file (``reconcile_config``), written by ``./gw setup`` while the
  broker is down: the platform's own accounts and their roles;
* control commands (``add_terminal`` ...) sent to the running broker on
  ``$CONTROL/dynamic-security/v1``: terminals come and go without a broker restart.

Mosquitto 2.0.11's dynamic-security plugin does NOT substitute ``%u``/``%c`` in ACL topics
(tested: a role allowing ``gw/v1/t/%u/#`` lets terminal T1 publish nowhere), so every terminal
has a role of its own naming its literal topics, and every grid a role for its command topic.
Shared subscriptions are checked with their ``$share/{group}/`` prefix, so ingest's role allows
that form too.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from enum import StrEnum

from schemas.topics import Topics

ADMIN = "gridwatch-admin"
INGEST = "gridwatch-ingest-1"
ORDERS = "gridwatch-orders-1"
DEV = "gridwatch-dev"
ROLE_EXISTS = "Role already exists"  # the broker's answer to createRole for a grid's second terminal: not an error
HASH_ITERATIONS = 101  # what mosquitto_ctrl itself writes; the salt is random per password


class Duty(StrEnum):
    """What a platform account is for; each duty is one role."""

    ADMIN = "admin"  # manages accounts over $CONTROL; reads and writes no data topic
    INGEST = "ingest"  # reads what terminals publish, writes delivery receipts
    ORDERS = "orders"  # writes commands to terminals
    DEV = "dev"  # tests and benches on a development machine: every data topic


# The accounts ./gw setup makes. An account's user name is also its client id: the plugin binds
# them (``clientid``), so nobody else can connect as gridwatch-ingest-1 and wipe its queued
# session with a clean start. Only the dev account, which tests run many clients under, is unbound.
PLATFORM_ACCOUNTS: dict[str, Duty] = {ADMIN: Duty.ADMIN, INGEST: Duty.INGEST, ORDERS: Duty.ORDERS, DEV: Duty.DEV}


def acl(kind: str, topic: str, allow: bool = True) -> dict:
    return {"acltype": kind, "topic": topic, "allow": allow}


def _read(topic: str) -> list[dict]:
    """Subscribe to ``topic`` and be sent what matches it."""
    return [acl("subscribePattern", topic), acl("publishClientReceive", topic)]


def duty_role(duty: Duty) -> str:
    return f"platform-{duty.value}"


def terminal_role(terminal_id: str) -> str:
    return f"terminal-{terminal_id}"


def grid_role(topics: Topics, grid_code: str) -> str:
    """Named with the prefix too: roles are broker-wide, and a second city (or a test) on the same
    broker has the same grid codes under another prefix."""
    return f"grid-{grid_code}@{topics.prefix}"


def duty_acls(duty: Duty, topics: Topics) -> list[dict]:
    p = topics.prefix
    if duty is Duty.ADMIN:
        return [acl("publishClientSend", "$CONTROL/dynamic-security/#"), *_read("$CONTROL/dynamic-security/#"), *_read("$SYS/#")]
    if duty is Duty.INGEST:
        return [*_read(f"{p}/t/#"), *_read(f"$share/+/{p}/t/#"), acl("publishClientSend", f"{p}/rcpt/t/#"), *_read("$SYS/#")]
    if duty is Duty.ORDERS:
        return [acl("publishClientSend", f"{p}/cmd/#")]
    return [acl("publishClientSend", "#"), *_read("#"), *_read("$share/#"), *_read("$SYS/#")]


def terminal_acls(topics: Topics, terminal_id: str) -> list[dict]:
    """Publish only under its own ``t/{id}/``; read its own commands, broadcasts and receipts."""
    return [
        acl("publishClientSend", f"{topics.prefix}/t/{terminal_id}/#"),
        *_read(topics.cmd_terminal(terminal_id)),
        *_read(topics.cmd_all),
        *_read(topics.receipt(terminal_id)),
    ]


def grid_acls(topics: Topics, grid_code: str) -> list[dict]:
    return _read(topics.cmd_grid(grid_code))


# ------------------------------------------------------------------ configuration file ---

def hashed(password: str, salt: bytes | None = None) -> dict:
    """The plugin's password fields: PBKDF2-HMAC-SHA512, base64, as mosquitto_ctrl writes them."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ITERATIONS)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": HASH_ITERATIONS}


def password_matches(entry: Mapping, password: str) -> bool:
    if not {"password", "salt", "iterations"} <= entry.keys() or entry["iterations"] != HASH_ITERATIONS:
        return False
    return hashed(password, base64.b64decode(entry["salt"]))["password"] == entry["password"]


def platform_client(username: str, password: str, duty: Duty) -> dict:
    entry = {"username": username, "textname": f"Gridwatch {duty.value}", "roles": [{"rolename": duty_role(duty)}],
             **hashed(password)}
    if duty is not Duty.DEV:
        entry["clientid"] = username
    return entry


def reconcile_config(existing: Mapping | None, passwords: Mapping[str, str], topics: Topics, with_dev: bool = True) -> dict:
    """The plugin's file with the platform's accounts and roles as they must be, every other
    client, role and group (terminals) kept. A platform account's hash is kept while it still
    matches its password (the file does not churn on every setup). ``with_dev=False`` (a
    production broker) leaves the development account out, and removes it if it was there."""
    existing = existing or {}
    old_clients = {c["username"]: c for c in existing.get("clients", [])}
    clients = [c for name, c in old_clients.items() if name not in PLATFORM_ACCOUNTS]
    for name, duty in PLATFORM_ACCOUNTS.items():
        if duty is Duty.DEV and not with_dev:
            continue
        entry = platform_client(name, passwords[name], duty)
        old = old_clients.get(name)
        if old is not None and password_matches(old, passwords[name]):
            entry.update({k: old[k] for k in ("password", "salt", "iterations")})
        clients.append(entry)
    platform_roles = {duty_role(d) for d in Duty}
    roles = [r for r in existing.get("roles", []) if r["rolename"] not in platform_roles]
    roles += [{"rolename": duty_role(d), "acls": duty_acls(d, topics)} for d in Duty]
    return {
        "clients": clients,
        "groups": list(existing.get("groups", [])),
        "roles": roles,
        # Deny whatever no role allows; unsubscribing is harmless.
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                             "unsubscribe": True},
    }


# ---------------------------------------------------------------------- control commands ---

def command(name: str, **fields) -> dict:
    return {"command": name, **fields}


def add_terminal(topics: Topics, terminal_id: str, password: str, grids: Iterable[str] = ()) -> list[dict]:
    """A terminal's own role, its grids' roles (already there for a grid's second terminal: the
    caller tolerates "Role already exists"), and the terminal's account bound to its id."""
    grids = sorted(set(grids))
    return [
        command("createRole", rolename=terminal_role(terminal_id), acls=terminal_acls(topics, terminal_id)),
        *grid_roles(topics, grids),
        command("createClient", username=terminal_id, clientid=terminal_id, password=password,
                textname=f"terminal {terminal_id}", roles=_role_list(topics, terminal_id, grids)),
    ]


def grid_roles(topics: Topics, grids: Iterable[str]) -> list[dict]:
    return [command("createRole", rolename=grid_role(topics, g), acls=grid_acls(topics, g)) for g in grids]


def set_terminal_grids(topics: Topics, terminal_id: str, grids: Iterable[str]) -> list[dict]:
    """Replace the grids whose command topics the terminal may read."""
    grids = sorted(set(grids))
    return [*grid_roles(topics, grids), command("modifyClient", username=terminal_id, roles=_role_list(topics, terminal_id, grids))]


def _role_list(topics: Topics, terminal_id: str, grids: list[str]) -> list[dict]:
    return [{"rolename": terminal_role(terminal_id)}, *({"rolename": grid_role(topics, g)} for g in grids)]


def rotate_password(username: str, password: str) -> list[dict]:
    """The broker disconnects the client at once; it connects again only with the new password."""
    return [command("setClientPassword", username=username, password=password)]


def revoke_terminal(terminal_id: str) -> list[dict]:
    """Deleting the client disconnects it at once and refuses it from then on; its role goes too."""
    return [command("deleteClient", username=terminal_id), command("deleteRole", rolename=terminal_role(terminal_id))]


def is_terminal_account(username: str) -> bool:
    return username not in PLATFORM_ACCOUNTS
