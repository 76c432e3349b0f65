"""Accounts for a set of terminals on this host (the simulator): made once, then reused.

A terminal whose password this host keeps and whose account the broker has is left alone; one
the broker lacks is created; one the broker has but whose password is lost here gets a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from broker import accounts, secrets
from broker.control import DynsecControl
from schemas.settings import Settings
from schemas.topics import Topics


def ensure_terminals(settings: Settings, terminals: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """``terminals``: id -> its grid codes. Returns id -> password for every one of them."""
    known = secrets.load(settings.mqtt_secrets_file)
    topics = Topics(settings.topic_prefix)
    fresh: dict[str, str] = {}
    with DynsecControl(settings, timeout_s=60.0) as broker:
        on_broker = set(broker.run([accounts.command("listClients")])[0]["data"]["clients"])
        commands: list[dict] = []
        for tid, grids in terminals.items():
            if tid in on_broker and tid in known:
                continue
            fresh[tid] = secrets.new_password()
            if tid in on_broker:
                commands += accounts.rotate_password(tid, fresh[tid]) + accounts.set_terminal_grids(topics, tid, grids)
            else:
                commands += accounts.add_terminal(topics, tid, fresh[tid], grids)
        broker.run_batched(commands, tolerate=[accounts.ROLE_EXISTS])
    if fresh:
        secrets.update(settings.mqtt_secrets_file, fresh)
    return {tid: known.get(tid) or fresh[tid] for tid in terminals if tid in fresh or tid in known}
