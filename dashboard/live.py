"""The live state the wall reads: one Redis pipeline per snapshot, and the figures made from it.

A snapshot (built by dashboard/live_delta.py at most once per ingest batch, for every screen)
is one pipeline: HGETALL live:last, ZRANGE live:seen WITHSCORES, HGETALL live:session, HGETALL
count:{today}, GET live:version, plus the Redis-cached registry summary (terminal roles, year
totals). No history is read on this path.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from dashboard import queries
from dashboard.deps import Deps

ROLE_CODE = {"level1_supervisor": "1", "level2_supervisor": "2", "co_manager": "c", "informant": "i"}
MEASURES = ("officers", "inspections", "reports", "alerts")


def local_day(settings, now: float | None = None) -> str:
    tz = ZoneInfo(settings.timezone)
    return datetime.fromtimestamp(now if now is not None else time.time(), tz).strftime("%Y-%m-%d")


def local_midnights(settings, now: float | None = None) -> tuple[datetime, datetime]:
    """(start of this local year, start of today), timezone-aware."""
    tz = ZoneInfo(settings.timezone)
    d = datetime.fromtimestamp(now if now is not None else time.time(), tz)
    today = d.replace(hour=0, minute=0, second=0, microsecond=0)
    return today.replace(month=1, day=1), today


@dataclass(slots=True)
class Snapshot:
    version: int
    now: float
    last: dict[str, dict]
    seen: dict[str, float]
    session: dict[str, str]
    counts: dict[str, int]
    meta: dict | None = None  # cached registry summary, None on a cache miss
    base: dict | None = None  # cached year totals before today, None on a cache miss
    extra: dict = field(default_factory=dict)


def read_version(deps: Deps) -> int:
    raw = deps.redis.get(deps.keys.version)
    return int(raw) if raw else 0


def read_snapshot(deps: Deps, now: float | None = None) -> Snapshot:
    """Everything a refresh needs from Redis, in one round trip."""
    now = now if now is not None else time.time()
    day = local_day(deps.settings, now)
    k = deps.keys
    pipe = deps.redis.pipeline(transaction=False)
    pipe.hgetall(k.last_fix)
    pipe.zrange(k.last_seen, 0, -1, withscores=True)
    pipe.hgetall(k.session)
    pipe.hgetall(k.counters(day))
    pipe.get(k.version)
    pipe.get(deps.cache_key("terminal_meta"))
    pipe.get(deps.cache_key(f"year_base:{day}"))
    last_raw, seen_raw, session_raw, counts_raw, version, meta, base = pipe.execute()
    last = {}
    for tid, js in last_raw.items():
        try:
            last[tid.decode()] = orjson.loads(js)
        except orjson.JSONDecodeError:
            continue
    return Snapshot(
        version=int(version) if version else 0,
        now=now,
        last=last,
        seen={m.decode(): s for m, s in seen_raw},
        session={a.decode(): b.decode() for a, b in session_raw.items()},
        counts={a.decode(): int(b) for a, b in counts_raw.items()},
        meta=orjson.loads(meta) if meta else None,
        base=orjson.loads(base) if base else None,
    )


def ensure_meta(deps: Deps, snap: Snapshot) -> dict:
    """Registry summary {"t": {terminal_id: [role_code, name]}, "total": n}, cached in Redis for 60 s."""
    if snap.meta is not None:
        return snap.meta

    def compute() -> dict:
        with deps.pool.connection() as conn:
            rows = queries.terminal_meta(conn)
        return {"t": {r.terminal_id: [ROLE_CODE.get(r.role or "", "?"), r.name or ""] for r in rows}, "total": len(rows)}

    snap.meta = deps.cached("terminal_meta", 60, compute)
    return snap.meta


def ensure_base(deps: Deps, snap: Snapshot) -> dict:
    """Year totals before today and the case-loop figures, cached in Redis for 5 minutes."""
    if snap.base is not None:
        return snap.base
    day = local_day(deps.settings, snap.now)

    def compute() -> dict:
        year_start, today = local_midnights(deps.settings, snap.now)
        with deps.pool.connection() as conn:
            totals = queries.kind_totals(conn, ("inspection.completed", "report"), year_start, today)
            case = queries.case_loop_figures(conn)
        return {
            "inspections": totals["inspection.completed"],
            "reports": totals["report"],
            "case": {
                "leads_verified": case.leads_verified,
                "cases_filed": case.cases_filed,
                "police_transfers": case.police_transfers,
                "penalty_decisions": case.penalty_decisions,
                "mediation_rate_pct": case.mediation_rate_pct,
            },
        }

    snap.base = deps.cached(f"year_base:{day}", 300, compute)
    return snap.base


def alerts_by_grid(deps: Deps) -> dict[str, int]:
    def compute() -> dict[str, int]:
        with deps.pool.connection() as conn:
            return queries.open_alerts_by_grid(conn)

    return deps.cached("alerts_by_grid", 5, compute)


# ---------------------------------------------------------------- pure parts
def is_online(settings, snap: Snapshot, tid: str) -> bool:
    seen = snap.seen.get(tid)
    if seen is None or snap.now - seen > settings.online_window_s:
        return False
    return snap.session.get(tid) != "0"


def online_ids(settings, snap: Snapshot) -> set[str]:
    """Every terminal online at ``snap.now``: computed once per snapshot, used by all figures."""
    return {tid for tid in set(snap.seen) | set(snap.last) if is_online(settings, snap, tid)}


def kind_totals_today(counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for fld, n in counts.items():
        _, _, kind = fld.partition("|")
        out[kind] = out.get(kind, 0) + n
    return out


def per_grid(counts: dict[str, int], kind: str) -> dict[str, int]:
    out = {}
    for fld, n in counts.items():
        grid, _, k = fld.partition("|")
        if k == kind and grid != "-":
            out[grid] = out.get(grid, 0) + n
    return out


def grid_values(settings, snap: Snapshot, measure: str, alerts: dict[str, int] | None = None,
                online: set[str] | None = None) -> dict[str, int]:
    """Value of ``measure`` per level-2 grid (grids with zero are omitted).

    officers: online terminals whose newest fix lies in the grid; inspections/reports: today's
    completed inspections / report events (count:{today}); alerts: unresolved alerts.
    """
    if measure == "inspections":
        return per_grid(snap.counts, "inspection.completed")
    if measure == "reports":
        return per_grid(snap.counts, "report")
    if measure == "alerts":
        return dict(alerts or {})
    online = online if online is not None else online_ids(settings, snap)
    out: dict[str, int] = {}
    for tid, fix in snap.last.items():
        g2 = fix.get("g2")
        if g2 and tid in online:
            out[g2] = out.get(g2, 0) + 1
    return out


def counters(settings, snap: Snapshot, meta: dict, base: dict, online: set[str] | None = None) -> dict:
    today = kind_totals_today(snap.counts)
    online = len(online if online is not None else online_ids(settings, snap))
    total = max(int(meta.get("total") or 0), len(snap.last))
    case = base.get("case") or {}
    return {
        "online": online,
        "total": total,
        "inspections_today": today.get("inspection.completed", 0),
        "inspections_year": int(base.get("inspections") or 0) + today.get("inspection.completed", 0),
        "reports_year": int(base.get("reports") or 0) + today.get("report", 0),
        "leads_verified": case.get("leads_verified"),
        "cases_filed": case.get("cases_filed"),
        "police_transfers": case.get("police_transfers"),
        "penalty_decisions": case.get("penalty_decisions"),
        "mediation_rate_pct": case.get("mediation_rate_pct"),
    }


def values_hash(values: dict) -> str:
    return hashlib.blake2s(orjson.dumps(values, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def day_window(settings, hours: int, now: float | None = None) -> tuple[datetime, datetime]:
    end = datetime.fromtimestamp(now if now is not None else time.time(), ZoneInfo(settings.timezone))
    return end - timedelta(hours=hours), end
