"""The alert lifecycle as the engine drives it: open or bump, clear, remind. SQL, one call per set.

open -> acknowledged -> resolved (people act from the wall: dashboard/actions.py). The engine:

* raises findings: a new alert (action ``open``), or a ``bump`` of the one not yet resolved for
  the same condition and subject (``count`` + 1, ``last_seen_at``) — only when the finding's
  occurrence is newer than the one last counted, so re-reading or re-evaluating the same
  event or episode never counts twice; an episode a person already resolved is not reopened;
* clears alerts whose condition ended: an acknowledged one is resolved by ``system``
  (action ``clear``); an open one gets ``cleared_at`` and stays open until someone
  acknowledges it (then the engine resolves it) — nobody misses a condition because it ended
  before they looked;
* reminds: an open ``critical`` alert gets a ``remind`` action (and ``last_reminded_at``)
  every ``alerts_remind_s`` until it is acknowledged.

Every transition writes ``alert_action`` (actor, time) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from alerts.model import Finding
from schemas.alert import SYSTEM_ACTOR, AlertAction, AlertKind, AlertState, Severity


@dataclass(frozen=True, slots=True)
class Raised:
    alert_id: int
    action: AlertAction  # OPEN or BUMP
    finding: Finding


_UPSERT = """
INSERT INTO alert (kind, severity, state, subject, terminal_id, grid2_code, lat, lon, title, detail, dedup_key,
                   occurrence, last_seen_at)
VALUES (%(kind)s, %(severity)s, %(open)s, %(subject)s, %(terminal_id)s, %(grid2_code)s, %(lat)s, %(lon)s, %(title)s,
        %(detail)s, %(dedup_key)s, %(occurrence)s, %(at)s)
ON CONFLICT (dedup_key) WHERE state <> 'resolved' DO UPDATE SET
    count = alert.count + 1,
    last_seen_at = greatest(alert.last_seen_at, EXCLUDED.last_seen_at),
    occurrence = EXCLUDED.occurrence,
    cleared_at = NULL,
    title = EXCLUDED.title,
    detail = alert.detail || EXCLUDED.detail,
    lat = coalesce(EXCLUDED.lat, alert.lat),
    lon = coalesce(EXCLUDED.lon, alert.lon),
    grid2_code = coalesce(EXCLUDED.grid2_code, alert.grid2_code)
WHERE alert.occurrence IS NULL OR EXCLUDED.occurrence > alert.occurrence
RETURNING id, (xmax = 0) AS inserted
"""


def raise_findings(conn: psycopg.Connection, findings: Sequence[Finding]) -> list[Raised]:
    """Open or bump an alert per finding (inside the caller's transaction). Returns what changed."""
    if not findings:
        return []
    keys = list({f.dedup_key for f in findings})
    # One read settles the usual case (an ongoing condition re-evaluated: nothing to do).
    known: dict[str, str | None] = {}
    handled: set[tuple[str, str]] = set()
    for key, occ, state in conn.execute(
        "SELECT dedup_key, occurrence, state FROM alert WHERE dedup_key = ANY(%s)", (keys,)
    ):
        if state != AlertState.RESOLVED:
            known[key] = occ
        if occ is not None:
            handled.add((key, occ))
    out: list[Raised] = []
    for f in sorted(findings, key=lambda f: (f.dedup_key, f.occurrence)):
        if (f.dedup_key, f.occurrence) in handled:
            continue
        if f.dedup_key in known and known[f.dedup_key] is not None and f.occurrence <= known[f.dedup_key]:
            continue
        row = conn.execute(_UPSERT, {
            "kind": f.kind.value, "severity": f.severity.value, "open": AlertState.OPEN.value, "subject": f.subject,
            "terminal_id": f.terminal_id, "grid2_code": f.grid2_code, "lat": f.lat, "lon": f.lon, "title": f.title,
            "detail": Jsonb(f.detail), "dedup_key": f.dedup_key, "occurrence": f.occurrence, "at": f.at,
        }).fetchone()
        if row is None:
            continue
        action = AlertAction.OPEN if row[1] else AlertAction.BUMP
        known[f.dedup_key] = f.occurrence
        handled.add((f.dedup_key, f.occurrence))
        out.append(Raised(row[0], action, f))
    _record(conn, [(r.alert_id, r.action, r.finding.occurrence) for r in out])
    return out


def open_subjects(conn: psycopg.Connection, kinds: Iterable[AlertKind]) -> dict[AlertKind, set[str]]:
    """Subjects with an alert not resolved and not yet cleared, per kind."""
    out: dict[AlertKind, set[str]] = {k: set() for k in kinds}
    for kind, subject in conn.execute(
        "SELECT kind, subject FROM alert WHERE state <> 'resolved' AND cleared_at IS NULL AND kind = ANY(%s)"
        " AND subject IS NOT NULL", ([k.value for k in out],)
    ):
        out[AlertKind(kind)].add(subject)
    return out


def clear(conn: psycopg.Connection, kind: AlertKind, subjects: Iterable[str]) -> list[int]:
    """The condition ended for these subjects: resolve acknowledged alerts, mark open ones cleared."""
    subjects = list(subjects)
    if not subjects:
        return []
    return _clear(conn, "kind = %s AND subject = ANY(%s)", (kind.value, subjects),
                  lambda state: "resolved: condition ended" if state == AlertState.RESOLVED
                  else "condition ended; open until acknowledged")


def clear_by_key(conn: psycopg.Connection, dedup_keys: Iterable[str]) -> list[int]:
    """As ``clear``, by dedup key (alerts raised by other writers, e.g. orders/, carry no subject)."""
    keys = list(dedup_keys)
    if not keys:
        return []
    return _clear(conn, "dedup_key = ANY(%s)", (keys,), lambda state: "condition ended")


def _clear(conn: psycopg.Connection, which: str, params: tuple, note) -> list[int]:
    """One clearing for both: ``which`` is a constant SQL condition choosing the alerts; ``note(state)``
    the words recorded with each CLEAR action."""
    rows = conn.execute(
        """UPDATE alert SET cleared_at = now(),
               state = CASE WHEN state = 'acknowledged' THEN 'resolved' ELSE state END,
               resolved_at = CASE WHEN state = 'acknowledged' THEN now() ELSE resolved_at END,
               resolved_by = CASE WHEN state = 'acknowledged' THEN %s ELSE resolved_by END
           WHERE """ + which + """ AND state <> 'resolved' AND cleared_at IS NULL
           RETURNING id, state""",
        (SYSTEM_ACTOR, *params),
    ).fetchall()
    _record(conn, [(aid, AlertAction.CLEAR, note(state)) for aid, state in rows])
    return [aid for aid, _ in rows]


def resolve_acknowledged_cleared(conn: psycopg.Connection) -> list[int]:
    """A cleared alert that someone has now acknowledged is done: resolve it."""
    rows = conn.execute(
        "UPDATE alert SET state = 'resolved', resolved_at = now(), resolved_by = %s"
        " WHERE state = 'acknowledged' AND cleared_at IS NOT NULL RETURNING id",
        (SYSTEM_ACTOR,),
    ).fetchall()
    _record(conn, [(aid, AlertAction.CLEAR, "acknowledged after its condition ended") for (aid,) in rows])
    return [aid for (aid,) in rows]


def open_critical(conn: psycopg.Connection) -> list[tuple]:
    """(id, opened_at, last_reminded_at) of open critical alerts (partial index ``alert_open``)."""
    return conn.execute(
        "SELECT id, opened_at, last_reminded_at FROM alert WHERE state = %s AND severity = %s",
        (AlertState.OPEN.value, Severity.CRITICAL.value),
    ).fetchall()


def remind(conn: psycopg.Connection, alert_ids: Sequence[int], at: datetime) -> list[int]:
    """Record a reminder at ``at`` (the engine's clock, the one ``reminders_due`` compares with)."""
    if not alert_ids:
        return []
    rows = conn.execute(
        "UPDATE alert SET last_reminded_at = %s WHERE id = ANY(%s) AND state = 'open' RETURNING id", (at, list(alert_ids))
    ).fetchall()
    _record(conn, [(aid, AlertAction.REMIND, None) for (aid,) in rows])
    return [aid for (aid,) in rows]


def _record(conn: psycopg.Connection, actions: list[tuple[int, AlertAction, str | None]]) -> None:
    if actions:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_action (alert_id, actor, action, note) VALUES (%s, %s, %s, %s)",
                [(aid, SYSTEM_ACTOR, action.value, note) for aid, action, note in actions],
            )
