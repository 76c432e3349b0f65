"""The alert rules: pure functions over terminal state, recent events and the registry.

Event rules (``sos``, ``serious``) turn stored events into findings; each event is its own
occurrence. Condition rules (``offline``, ``outside_grid``, ``low_battery``, ``surge``) look at
the state now: a finding's occurrence is the start of the episode, so re-evaluating an ongoing
condition never bumps its alert, and they also say which subjects with an unresolved alert
have seen their condition end (the engine then clears those).

Surge statistic: for a level-2 grid with ``n`` reports in the last hour, the baseline is the
grid's own smoothed hourly rate ``lam = (N + 1) / (H + 168)`` from its ``N`` reports in the
previous ``H`` hours (one pseudo-report per week of pseudo-history, so a grid without history
is not rate zero). It fires when ``n >= surge_min_reports`` AND ``P(X >= n | Poisson(lam)) <
surge_p``. A grid with three reports a year has lam ~ 0.0004/h: two reports in one hour are
already "improbable" (p ~ 1e-7), which is why the minimum count is there — the tail
probability alone would fire on every second report in a quiet grid. A busy grid with 3
reports an hour needs about 14 in an hour (p < 1e-4), 5 are ordinary there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.model import DutyHours, EventIn, Finding, FixSample, Person, RuleResult, TerminalState, Thresholds, occurrence_of
from alerts.titles import title
from schemas.alert import AlertKind, Severity
from schemas.events import EventKind, InspectionResult

SURGE_PRIOR_REPORTS = 1.0
SURGE_PRIOR_HOURS = 168.0


# ---------------------------------------------------------------- folding what terminals say into state
def observe_fix(state: TerminalState, fix: FixSample, person: Person | None, th: Thresholds) -> TerminalState:
    """The state after the terminal's fix ``fix``. Idempotent, and an older fix changes nothing."""
    if state.last_fix_ts is not None and fix.ts <= state.last_fix_ts:
        return state
    seen = min(fix.ts, fix.received_at)
    state = replace(
        state,
        last_seen_at=_later(state.last_seen_at, seen),
        last_fix_ts=fix.ts,
        lat=fix.lat,
        lon=fix.lon,
        grid2_code=fix.grid2_code,
    )
    if person is None or not person.allowed_grids or fix.grid2_code in person.allowed_grids:
        state = replace(state, outside_since=None)
    elif state.outside_since is None:
        state = replace(state, outside_since=fix.ts)
    if fix.battery_pct is not None:
        state = observe_battery(state, fix.battery_pct, fix.ts, th)
    return state


def observe_seen(state: TerminalState, at: datetime) -> TerminalState:
    """The terminal spoke at ``at`` (an event, a heartbeat, an online status)."""
    newer = _later(state.last_seen_at, at)
    return state if newer == state.last_seen_at else replace(state, last_seen_at=newer)


def observe_battery(state: TerminalState, pct: float, ts: datetime, th: Thresholds) -> TerminalState:
    """Low at or under ``low_battery_pct``; low until charged to ``battery_clear_pct`` (no flapping at the edge)."""
    if state.battery_ts is not None and ts < state.battery_ts:
        return state
    low_since = state.battery_low_since
    if pct <= th.low_battery_pct:
        low_since = low_since or ts
    elif pct >= th.battery_clear_pct:
        low_since = None
    return replace(state, battery_pct=pct, battery_ts=ts, battery_low_since=low_since)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


# ---------------------------------------------------------------- event rules
def sos(events: Iterable[EventIn], people: Mapping[str, Person], states: Mapping[str, TerminalState], lang: str) -> list[Finding]:
    """An SOS is critical at once, with the person and where the terminal is (the event's own position, else its newest fix)."""
    out = []
    for e in events:
        if e.kind != EventKind.SOS:
            continue
        person = people.get(e.terminal_id)
        st = states.get(e.terminal_id)
        lat, lon, source = e.lat, e.lon, "event"
        if lat is None and st is not None and st.lat is not None:
            lat, lon, source = st.lat, st.lon, "last_fix"
        who = person.name if person else e.terminal_id
        detail = {"event_ts": e.ts.isoformat(), "seq": e.seq, "text": (e.body or {}).get("text"), "position": source if lat is not None else None,
                  **_person_detail(person)}
        if source == "last_fix" and st is not None and st.last_fix_ts is not None:
            detail["fix_ts"] = st.last_fix_ts.isoformat()
        out.append(Finding(AlertKind.SOS, Severity.CRITICAL, e.terminal_id, title(lang, "sos", who=who), e.occurrence, e.ts,
                           e.terminal_id, e.grid2_code or (st.grid2_code if st else None), lat, lon, detail))
    return out


def serious(events: Iterable[EventIn], people: Mapping[str, Person], lang: str) -> list[Finding]:
    """A report marked serious, or a completed inspection whose result is a serious violation.

    The subject is the market entity when named (several serious findings about one shop are
    one alert, counted), else the report or inspection itself."""
    out = []
    for e in events:
        body = e.body or {}
        if e.kind == EventKind.REPORT and body.get("serious"):
            what, ref = "report", body.get("report_id", "")
        elif e.kind == EventKind.INSPECTION_COMPLETED and body.get("result") == InspectionResult.SERIOUS_VIOLATION:
            what, ref = "inspection", body.get("inspection_id", "")
        else:
            continue
        entity = body.get("entity_uscc")
        subject = f"entity:{entity}" if entity else f"{what}:{e.terminal_id}:{ref}"
        person = people.get(e.terminal_id)
        detail = {"source": what, "ref": ref, "entity_uscc": entity, "category": body.get("category"),
                  "text": (body.get("text") or "")[:500] or None, "event_ts": e.ts.isoformat(), **_person_detail(person)}
        out.append(Finding(AlertKind.SERIOUS_VIOLATION, Severity.WARNING, subject,
                           title(lang, f"serious_{what}", who=person.name if person else e.terminal_id, ref=entity or ref),
                           e.occurrence, e.ts, e.terminal_id, e.grid2_code, e.lat, e.lon, detail))
    return out


def _person_detail(person: Person | None) -> dict:
    if person is None:
        return {}
    return {"person_id": person.person_id, "person_name": person.name, "role": person.role, "phone": person.phone or None}


# ---------------------------------------------------------------- condition rules
def offline(states: Mapping[str, TerminalState], people: Mapping[str, Person], now: datetime, tz: str, duty: DutyHours,
            th: Thresholds, open_subjects: set[str], lang: str) -> RuleResult:
    """A terminal with a person, silent longer than ``offline_s`` during that person's duty hours.

    Ends when the terminal speaks again (not when duty ends: it is still missing). A terminal
    never heard from is not judged (a registry lists devices not yet handed out)."""
    local = now.astimezone(ZoneInfo(tz))
    limit = timedelta(seconds=th.offline_s)
    res = RuleResult()
    for tid, st in states.items():
        if st.last_seen_at is None:
            continue
        silent = now - st.last_seen_at > limit
        if not silent:
            if tid in open_subjects:
                res.ended.add(tid)
            continue
        person = people.get(tid)
        if person is None or not duty.on_duty(person.role, local):
            continue
        mins = int((now - st.last_seen_at).total_seconds() // 60)
        res.findings.append(Finding(AlertKind.OFFLINE, Severity.WARNING, tid, title(lang, "offline", who=person.name, mins=mins),
                                    occurrence_of(st.last_seen_at), now, tid, st.grid2_code, st.lat, st.lon,
                                    {"last_seen_at": st.last_seen_at.isoformat(), **_person_detail(person)}))
    return res


def outside_grid(states: Mapping[str, TerminalState], people: Mapping[str, Person], now: datetime, tz: str,
                 duty: DutyHours, th: Thresholds, open_subjects: set[str], lang: str) -> RuleResult:
    """An officer whose fixes have been outside their grids and the adjacent ones for longer than
    ``outside_grid_s``, during duty hours. Ends when a fix is inside again."""
    local = now.astimezone(ZoneInfo(tz))
    limit = timedelta(seconds=th.outside_grid_s)
    res = RuleResult()
    for tid, st in states.items():
        if st.outside_since is None:
            if tid in open_subjects:
                res.ended.add(tid)
            continue
        person = people.get(tid)
        if person is None or now - st.outside_since <= limit or not duty.on_duty(person.role, local):
            continue
        res.findings.append(Finding(AlertKind.OUTSIDE_GRID, Severity.WARNING, tid,
                                    title(lang, "outside_grid", who=person.name, grid=st.grid2_code or "—"),
                                    occurrence_of(st.outside_since), now, tid, st.grid2_code, st.lat, st.lon,
                                    {"outside_since": st.outside_since.isoformat(), "grid2_code": st.grid2_code,
                                     "allowed": sorted(person.allowed_grids), **_person_detail(person)}))
    return res


def low_battery(states: Mapping[str, TerminalState], people: Mapping[str, Person], now: datetime, tz: str,
                duty: DutyHours, th: Thresholds, open_subjects: set[str], lang: str) -> RuleResult:
    """Battery at or under ``low_battery_pct`` during duty hours, while the terminal is still heard
    (a silent one is the offline rule's). Ends once charged to ``battery_clear_pct``."""
    local = now.astimezone(ZoneInfo(tz))
    fresh = timedelta(seconds=th.offline_s)
    res = RuleResult()
    for tid, st in states.items():
        if st.battery_low_since is None:
            if tid in open_subjects:
                res.ended.add(tid)
            continue
        person = people.get(tid)
        if person is None or st.battery_ts is None or now - st.battery_ts > fresh or not duty.on_duty(person.role, local):
            continue
        res.findings.append(Finding(AlertKind.LOW_BATTERY, Severity.INFO, tid,
                                    title(lang, "low_battery", who=person.name, pct=round(st.battery_pct or 0)),
                                    occurrence_of(st.battery_low_since), now, tid, st.grid2_code, st.lat, st.lon,
                                    {"battery_pct": st.battery_pct, "low_since": st.battery_low_since.isoformat(),
                                     **_person_detail(person)}))
    return res


def poisson_tail(n: int, lam: float) -> float:
    """P(X >= n) for X ~ Poisson(lam), summed upward from n (accurate when it is tiny)."""
    if n <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    log_term = -lam + n * math.log(lam) - math.lgamma(n + 1)
    total, k = 0.0, n
    while True:
        term = math.exp(log_term)
        total += term
        k += 1
        log_term += math.log(lam) - math.log(k)
        if term < total * 1e-12 or k > n + 10_000:
            return min(total, 1.0)


def surge_rate(baseline_reports: int, baseline_hours: float) -> float:
    """The grid's smoothed hourly report rate (see the module docstring)."""
    return (baseline_reports + SURGE_PRIOR_REPORTS) / (baseline_hours + SURGE_PRIOR_HOURS)


def surge(last_hour: Mapping[str, int], baseline: Mapping[str, int], baseline_hours: float,
          centroids: Mapping[str, tuple[float, float]], names: Mapping[str, str], now: datetime, th: Thresholds,
          open_subjects: set[str], lang: str) -> RuleResult:
    """Reports in a level-2 grid in the last hour far above that grid's own baseline.

    ``last_hour``: grid -> reports in the last hour; ``baseline``: grid -> reports in the
    ``baseline_hours`` before that. The occurrence is the hour it holds in: an ongoing surge
    bumps its alert at most once an hour."""
    res = RuleResult()
    hour = now.replace(minute=0, second=0, microsecond=0)
    active = set()
    for grid, n in last_hour.items():
        lam = surge_rate(baseline.get(grid, 0), baseline_hours)
        p = poisson_tail(n, lam)
        if n < th.surge_min_reports or p >= th.surge_p:
            continue
        active.add(grid)
        lat, lon = centroids.get(grid, (None, None))
        res.findings.append(Finding(AlertKind.COMPLAINT_SURGE, Severity.WARNING, grid,
                                    title(lang, "surge", grid=names.get(grid) or grid, n=n),
                                    occurrence_of(hour), now, None, grid, lat, lon,
                                    {"reports_last_hour": n, "baseline_per_hour": round(lam, 5), "p_value": p,
                                     "baseline_reports": baseline.get(grid, 0), "baseline_hours": baseline_hours}))
    res.ended.update(open_subjects - active)
    return res


def reminders_due(open_critical: Iterable[tuple[int, datetime, datetime | None]], now: datetime, th: Thresholds) -> list[int]:
    """Ids of open (unacknowledged) critical alerts whose last reminder, or opening, is older than ``remind_s``."""
    every = timedelta(seconds=th.remind_s)
    return [aid for aid, opened_at, reminded_at in open_critical if now - (reminded_at or opened_at) >= every]
