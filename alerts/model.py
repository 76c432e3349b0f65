"""The engine's small records: what the rules read (people, terminal state, events) and what
they produce (findings). Pure data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timezone

from schemas.alert import AlertKind, Severity, dedup_key
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class Person:
    """Who carries a terminal, and where they may be (their grids and the adjacent ones)."""

    person_id: str
    name: str
    role: str
    phone: str = ""
    allowed_grids: frozenset[str] = frozenset()  # empty: no assignment, the outside-grid rule does not apply


@dataclass(frozen=True, slots=True)
class TerminalState:
    """What the condition rules know of one terminal, folded from fixes, events and status messages."""

    terminal_id: str
    last_seen_at: datetime | None = None  # newest fix/event/status, at the time the terminal said (capped by arrival)
    last_fix_ts: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    grid2_code: str | None = None
    battery_pct: float | None = None
    battery_ts: datetime | None = None
    battery_low_since: datetime | None = None
    outside_since: datetime | None = None  # first fix of the current run outside the allowed grids


@dataclass(frozen=True, slots=True)
class FixSample:
    """A terminal's newest fix, as the engine samples it each state cycle."""

    terminal_id: str
    ts: datetime
    lat: float
    lon: float
    grid2_code: str | None
    battery_pct: float | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class EventIn:
    """A stored terminal event (terminal_event row) with its JSON body decoded."""

    terminal_id: str
    seq: int
    ts: datetime
    kind: str
    body: dict
    lat: float | None
    lon: float | None
    grid2_code: str | None
    received_at: datetime

    @property
    def occurrence(self) -> str:
        return occurrence_of(self.ts, self.seq)


def occurrence_of(ts: datetime, seq: int | None = None) -> str:
    """A sortable key of one occurrence: UTC microsecond timestamp, then the event's seq (aware ``ts`` only)."""
    stamp = ts.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    return stamp if seq is None else f"{stamp}#{seq:020d}"


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict: this condition holds for this subject (open an alert, or bump the open one)."""

    kind: AlertKind
    severity: Severity
    subject: str
    title: str
    occurrence: str  # the same occurrence twice never bumps twice
    at: datetime
    terminal_id: str | None = None
    grid2_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    detail: dict = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.kind, self.subject)


@dataclass(frozen=True, slots=True)
class RuleResult:
    """Findings to raise and, of the subjects with an unresolved alert of the rule's kind, those whose condition ended."""

    findings: list[Finding] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class DutyHours:
    """Duty hours per person role, every day, in the bureau's time zone (``*`` covers other roles)."""

    spans: dict[str, tuple[time, time | None]]  # end None = midnight (24:00)

    @classmethod
    def parse(cls, spec: str) -> "DutyHours":
        spans: dict[str, tuple[time, time | None]] = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            role, _, span = part.partition("=")
            start, _, end = span.partition("-")
            spans[role.strip()] = (_hhmm(start), None if end.strip() == "24:00" else _hhmm(end))
        return cls(spans)

    def on_duty(self, role: str | None, local: datetime) -> bool:
        """Is ``local`` (a time in the bureau's zone) within the role's duty hours? Overnight spans wrap."""
        span = self.spans.get(role or "*") or self.spans.get("*")
        if span is None:
            return False
        start, end = span
        now = local.time().replace(tzinfo=None)
        if end is None:
            return now >= start
        if start <= end:
            return start <= now < end
        return now >= start or now < end  # e.g. 22:00-06:00


def _hhmm(text: str) -> time:
    h, _, m = text.strip().partition(":")
    return time(int(h), int(m))


@dataclass(frozen=True, slots=True)
class Thresholds:
    offline_s: float = 900.0
    outside_grid_s: float = 900.0
    low_battery_pct: float = 15.0
    battery_clear_pct: float = 25.0
    surge_min_reports: int = 5
    surge_p: float = 1e-4
    remind_s: float = 120.0

    @classmethod
    def from_settings(cls, s: Settings) -> "Thresholds":
        return cls(s.alerts_offline_s, s.alerts_outside_grid_s, s.alerts_low_battery_pct, s.alerts_battery_clear_pct,
                   s.alerts_surge_min_reports, s.alerts_surge_p, s.alerts_remind_s)
