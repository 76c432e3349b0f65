"""The web audit (append-only table ``web_audit``) and its export.

``record`` is called in the same transaction as the change it describes (user changes) or
right after the decision (sign-in, failures, sign-out). ``export`` unions, for one bounded
time window, the web audit with the orders' ``order_audit`` and the alerts' ``alert_action``
into one time-ordered stream of rows (source, at, actor, action, subject, address, detail).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dashboard.auth.model import WebAction

SOURCES = ("web", "order", "alert")


def cli_actor() -> str:
    """``cli:<os user>``: who ran a command, for the audit."""
    import getpass
    import os

    try:
        who = getpass.getuser()
    except Exception:  # no user name in this environment (a container): the uid says enough
        who = f"uid{os.getuid()}"
    return f"cli:{who}"


def record(conn: psycopg.Connection, actor: str, action: WebAction, subject: str | None = None,
           address: str | None = None, detail: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO web_audit (actor, action, subject, address, detail) VALUES (%s, %s, %s, %s, %s)",
        ((actor or "-")[:200], WebAction(action).value, subject and subject[:200], address, json.dumps(detail or {})),
    )


@dataclass(frozen=True, slots=True)
class AuditRow:
    source: str
    at: datetime
    actor: str
    action: str
    subject: str | None
    address: str | None
    detail: dict

    def as_dict(self) -> dict:
        return {"source": self.source, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "subject": self.subject, "address": self.address, "detail": self.detail}


_QUERIES = {
    "web": "SELECT 'web', at, actor, action, subject, address, detail, id FROM web_audit WHERE at >= %(s)s AND at < %(u)s",
    "order": "SELECT 'order', at, actor, action, order_id::text"
             " || coalesce(' ' || terminal_id, ''), NULL, detail, id FROM order_audit WHERE at >= %(s)s AND at < %(u)s",
    "alert": "SELECT 'alert', at, actor, action, 'alert ' || alert_id::text, NULL,"
             " CASE WHEN note IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('note', note) END, id"
             " FROM alert_action WHERE at >= %(s)s AND at < %(u)s",
}


def export(conn: psycopg.Connection, since: datetime, until: datetime, sources: tuple[str, ...] = SOURCES) -> Iterator[AuditRow]:
    """Every audit row in [since, until) of ``sources``, oldest first (a server-side cursor: any size)."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown audit source(s): {', '.join(sorted(unknown))}")
    if until <= since:
        raise ValueError("the window's end must be after its start")
    q = " UNION ALL ".join(_QUERIES[s] for s in sources) + " ORDER BY 2, 1, 8"
    with conn.transaction(), conn.cursor(name="gw_audit_export") as cur:  # a server-side cursor lives in a transaction
        cur.execute(q, {"s": since, "u": until})
        for src, at, actor, action, subject, address, detail, _id in cur:
            yield AuditRow(src, at, actor, action, subject, address, detail or {})


def to_jsonl(rows) -> Iterator[str]:
    for r in rows:
        yield json.dumps(r.as_dict(), ensure_ascii=False, default=str)


def to_csv(rows) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "at", "actor", "action", "subject", "address", "detail"])
    yield buf.getvalue().rstrip("\n")
    for r in rows:
        buf.seek(0)
        buf.truncate()
        d = r.as_dict()
        w.writerow([d["source"], d["at"], d["actor"], d["action"], d["subject"] or "", d["address"] or "",
                    json.dumps(d["detail"], ensure_ascii=False, sort_keys=True)])
        yield buf.getvalue().rstrip("\n")
