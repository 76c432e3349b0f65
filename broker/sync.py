"""Terminals' broker grids kept as the registry says.

A terminal may read the command topics of its person's grids (``person_grid``). When the
registry changes (an officer moves to another village, a grid is re-imported), the broker's roles
must follow, or a terminal keeps reading its old grid's commands and misses its new one's.
``python -m broker terminal sync`` compares the two and changes only what differs; the grid
importer runs it after each import when this host keeps the broker's admin password.

Accounts are never created or deleted here: a registered terminal with no account is reported
(``terminal add`` prints a password that must reach the device), and so is an account the
registry does not know (revoking is a decision, ``terminal revoke``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import psycopg

from broker import accounts
from broker.control import DynsecControl
from schemas.settings import Settings
from schemas.topics import Topics

log = logging.getLogger("gridwatch.broker")

_REGISTRY_GRIDS = """
SELECT t.terminal_id, coalesce(array_agg(DISTINCT pg.grid_code) FILTER (WHERE pg.grid_code IS NOT NULL), '{}')
FROM terminal t LEFT JOIN person_grid pg ON pg.person_id = t.person_id
GROUP BY t.terminal_id
"""


@dataclass
class SyncPlan:
    changed: dict[str, list[str]] = field(default_factory=dict)  # terminal -> the grids it must read now
    without_account: list[str] = field(default_factory=list)  # registered, no broker account
    unregistered: list[str] = field(default_factory=list)  # a terminal account the registry does not know
    checked: int = 0


def plan_sync(topics: Topics, registry: Mapping[str, Iterable[str]], broker_roles: Mapping[str, Iterable[str]]) -> SyncPlan:
    """Pure: ``registry`` terminal -> grid codes; ``broker_roles`` terminal account -> its role names."""
    plan = SyncPlan()
    for tid in sorted(registry):
        if tid not in broker_roles:
            plan.without_account.append(tid)
            continue
        plan.checked += 1
        wanted = sorted(set(registry[tid]))
        has = set(broker_roles[tid]) - {accounts.terminal_role(tid)}
        if has != {accounts.grid_role(topics, g) for g in wanted}:
            plan.changed[tid] = wanted
    plan.unregistered = sorted(t for t in broker_roles if t not in registry)
    return plan


def registry_grids(conn: psycopg.Connection) -> dict[str, list[str]]:
    return {tid: list(codes) for tid, codes in conn.execute(_REGISTRY_GRIDS)}


def broker_terminal_roles(broker: DynsecControl) -> dict[str, list[str]]:
    """Every terminal account on the broker with its role names (one verbose listing)."""
    data = broker.run([accounts.command("listClients", verbose=True, count=-1)])[0]["data"]["clients"]
    return {c["username"]: [r["rolename"] for r in c.get("roles", [])]
            for c in data if accounts.is_terminal_account(c["username"])}


def sync_terminal_grids(settings: Settings, conn: psycopg.Connection, broker: DynsecControl,
                        dry_run: bool = False, only: Iterable[str] = ()) -> SyncPlan:
    """``only``: these terminal ids (all when empty)."""
    topics = Topics(settings.topic_prefix)
    registry, roles = registry_grids(conn), broker_terminal_roles(broker)
    if only:
        only = set(only)
        registry = {t: g for t, g in registry.items() if t in only}
        roles = {t: r for t, r in roles.items() if t in only}
    plan = plan_sync(topics, registry, roles)
    if not dry_run:
        broker.run_batched([c for tid, grids in plan.changed.items() for c in accounts.set_terminal_grids(topics, tid, grids)],
                           tolerate=[accounts.ROLE_EXISTS])
        for tid, grids in plan.changed.items():
            log.info("terminal %s reads the commands of grids: %s (from the registry)", tid, ", ".join(grids) or "none")
    return plan


def report(plan: SyncPlan, dry_run: bool) -> str:
    verb = "would change" if dry_run else "changed"
    lines = [f"{plan.checked} terminal accounts checked against the registry; {verb} the grids of {len(plan.changed)}"]
    lines += [f"  {tid}: {', '.join(grids) or 'no grid'}" for tid, grids in plan.changed.items()]
    if plan.without_account:
        lines.append(f"{len(plan.without_account)} registered terminals have no broker account "
                     f"(python -m broker terminal add ID --grid CODE): {_first(plan.without_account)}")
    if plan.unregistered:
        lines.append(f"{len(plan.unregistered)} terminal accounts are not in the registry "
                     f"(python -m broker terminal revoke ID): {_first(plan.unregistered)}")
    return "\n".join(lines)


def _first(ids: list[str], n: int = 20) -> str:
    return ", ".join(ids[:n]) + (" ..." if len(ids) > n else "")
