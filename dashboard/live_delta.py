"""Versioned deltas of the wall's live layer: a screen is sent what changed since the snapshot it has.

A *wall snapshot* is the live state as the wall draws it: every terminal's position, fix and
seen times, role, heading and session flag, the counters, and each colour measure's per-grid
values. It is built at most once per ingest batch (``live:version``; and again after REBUILD_S
without one, so that terminals going silent reach the grid colours) and shared by every worker
and every screen through Redis for SNAP_TTL_S. Its id ``sid`` is ``"{live version}.{build ms}"``.

The browser sends the id it has (``GET /api/live?s=SID&m=MEASURE&gh=HASH``) and gets:
- 204 when it already has the newest snapshot and that measure's grid values;
- a delta against its snapshot while that is still in Redis: only the terminals that changed
  (moves as small integer steps in 1e-5 degrees, indexed into the id list it has), the ones
  that came or went (removals, a changed role), the counters, and grid values only when they
  changed;
- the full snapshot otherwise (first load, a screen that was asleep longer than SNAP_TTL_S,
  an unknown id).
Building and diffing are pure functions (``pack``, ``diff``); ``answer`` is the Redis adapter.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson

from dashboard import live
from dashboard.deps import Deps

log = logging.getLogger("gridwatch.dashboard")
SNAP_TTL_S = 30  # a screen further behind than this gets the full snapshot
REBUILD_S = 10.0  # rebuild without a new batch too, so silent terminals go offline in the figures
BUILD_LOCK_MS = 2000
E5 = 100_000  # positions travel as integers of 1e-5 degree (about 1 m): exact steps, no drift
ROLE, OFF = 4, 6  # row fields: [lat5, lon5, fix_ts, seen_ts, role, heading, off]
GRID_MEASURES = ("officers", "inspections", "reports", "alerts")


# ---------------------------------------------------------------- pure parts
def sid_parts(sid: str | None) -> tuple[int, float] | None:
    """(live version, built at epoch s) of a snapshot id, None when it is not one."""
    try:
        v, ms = (sid or "").split(".")
        return int(v), int(ms) / 1000
    except ValueError:
        return None


def pack(snap: live.Snapshot, meta: dict, online: set[str]) -> tuple[list[str], list[list]]:
    """Sorted ids and one row per id: [lat5, lon5, fix_ts, seen_ts, role, heading (-1 none), off (0/1)]."""
    roles = meta.get("t") or {}
    ids, rows = [], []
    for tid in sorted(snap.last):
        fix = snap.last[tid]
        try:
            lat, lon = round(float(fix["lat"]) * E5), round(float(fix["lon"]) * E5)
        except (KeyError, TypeError, ValueError):
            continue
        ts = float(fix.get("ts") or 0)
        hdg = fix.get("hdg")
        ids.append(tid)
        rows.append([lat, lon, int(ts), int(snap.seen.get(tid, ts)), (roles.get(tid) or ["?"])[0],
                     int(hdg) if isinstance(hdg, (int, float)) else -1, 0 if tid in online else 1])
    return ids, rows


def diff(old_ids: list[str], old_rows: list[list], new_ids: list[str], new_rows: list[list], now: int) -> dict:
    """What turns (old_ids, old_rows) into (new_ids, new_rows), column by column.

    ``i``: gaps between the indexes (into old_ids) of the terminals that moved or changed state;
    ``dy``/``dx``: their steps in 1e-5 degree; ``fa``/``sa``: fix and seen ages at ``now``;
    ``h``: heading; ``o``: off. ``a``: whole rows [id, ...row] of new terminals and changed
    roles; ``x``: ids gone. ``ids`` (the new list) only when ``a`` or ``x`` changed the list."""
    new_at = dict(zip(new_ids, new_rows))
    out: dict[str, list] = {k: [] for k in ("i", "dy", "dx", "fa", "sa", "h", "o", "a", "x")}
    last = -1
    for i, (tid, o) in enumerate(zip(old_ids, old_rows)):
        n = new_at.get(tid)
        if n is None:
            out["x"].append(tid)
        elif n != o:
            if n[ROLE] != o[ROLE]:
                out["a"].append([tid, *n])
                continue
            out["i"].append(i - last)
            last = i
            out["dy"].append(n[0] - o[0])
            out["dx"].append(n[1] - o[1])
            out["fa"].append(now - n[2])
            out["sa"].append(now - n[3])
            out["h"].append(n[5])
            out["o"].append(n[OFF])
    known = set(old_ids)
    out["a"] += [[tid, *new_at[tid]] for tid in new_ids if tid not in known]
    if out["x"] or len(new_ids) != len(old_ids) or any(a[0] not in known for a in out["a"]):
        out["ids"] = new_ids
    return out


def values_hashes(values: dict[str, dict]) -> dict[str, str]:
    return {m: live.values_hash(v) for m, v in values.items()}


# ---------------------------------------------------------------- Redis adapter
def _key(deps: Deps, name: str) -> str:
    return deps.cache_key(f"wall:{name}")


def build(deps: Deps, now: float) -> str:
    """Read the live state once, store the snapshot for every screen, return its id."""
    snap = live.read_snapshot(deps, now)
    meta = live.ensure_meta(deps, snap)
    base = live.ensure_base(deps, snap)
    online = live.online_ids(deps.settings, snap)
    ids, rows = pack(snap, meta, online)
    values = {m: live.grid_values(deps.settings, snap, m, live.alerts_by_grid(deps) if m == "alerts" else None, online)
              for m in GRID_MEASURES}
    sid = f"{snap.version}.{int(now * 1000)}"
    side = {"c": live.counters(deps.settings, snap, meta, base, online), "gh": values_hashes(values)}
    ttl = SNAP_TTL_S * 1000
    pipe = deps.redis.pipeline(transaction=False)
    pipe.set(_key(deps, f"snap:{sid}"), orjson.dumps({"ids": ids, "r": rows}), px=ttl)
    pipe.set(_key(deps, f"side:{sid}"), orjson.dumps(side), px=ttl)
    for m, v in values.items():
        pipe.set(_key(deps, f"g:{sid}:{m}"), orjson.dumps(v), px=ttl)
    pipe.set(_key(deps, "latest"), sid, px=ttl)
    pipe.execute()
    return sid


def _latest(deps: Deps) -> tuple[int, str | None]:
    version, latest = deps.redis.pipeline(transaction=False).get(deps.keys.version).get(_key(deps, "latest")).execute()
    return int(version or 0), (latest.decode() if latest else None)


def _fresh(sid: str | None, version: int, now: float) -> bool:
    parts = sid_parts(sid)
    return bool(parts) and parts[0] == version and now - parts[1] < REBUILD_S


def refresh_latest(deps: Deps, now: float) -> str | None:
    """Build a new snapshot when live:version moved (or the last is REBUILD_S old), one worker at a
    time (a short lock), and store the delta from the previous one: the screens that kept up ask
    for exactly that. Returns the newest id, or None when another worker is building."""
    version, latest = _latest(deps)
    if _fresh(latest, version, now):
        return latest
    lock = _key(deps, "building")
    if not deps.redis.set(lock, "1", nx=True, px=BUILD_LOCK_MS):
        return None
    try:
        version, latest = _latest(deps)  # another worker may have built it while we took the lock
        if _fresh(latest, version, now):
            return latest
        sid = build(deps, now)
        store_delta(deps, latest, sid)
        return sid
    finally:
        deps.redis.delete(lock)


class Builder:
    """Keeps the newest snapshot built off the request path, in a thread of each web worker.

    Started by the first /api/live request after the fork, it checks live:version every
    CHECK_S and stops after IDLE_S without a request (no screen, no work). A screen's poll then
    costs a few GETs; a fix reaches the snapshot within CHECK_S + one build of its batch."""

    CHECK_S = 0.05
    IDLE_S = 60.0

    def __init__(self, deps: Deps):
        self.deps = deps
        self.asked = 0.0
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def touch(self) -> None:
        self.asked = time.time()
        with self.lock:
            if not self.running:
                self.thread = threading.Thread(target=self._run, name="wall-snapshots", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        log.info("wall snapshot builder started")
        while time.time() - self.asked < self.IDLE_S:
            try:
                refresh_latest(self.deps, time.time())
            except Exception as exc:  # Redis or PostgreSQL away: the screens keep what they have; retry calmly
                log.warning("wall snapshot build failed, retrying in 1 s: %s", exc)
                time.sleep(1.0)
            time.sleep(self.CHECK_S)
        log.info("wall snapshot builder stopped: no screen asked for %.0f s", self.IDLE_S)


def current(deps: Deps, now: float, builder: Builder | None = None) -> str:
    """The newest snapshot id. With a running builder, whatever it stored last (at most one check
    behind); without one (the first request after a quiet minute, tests), built here when stale."""
    if builder is not None and builder.running:
        _, latest = _latest(deps)
        parts = sid_parts(latest)
        if parts and now - parts[1] < REBUILD_S + 1:  # the builder is keeping up
            return latest
    while True:
        sid = refresh_latest(deps, now)
        if sid is not None:
            return sid
        time.sleep(0.005)  # another worker is building the first one


def answer(deps: Deps, have: str | None, measure: str, gh: str | None, now: float | None = None,
           builder: Builder | None = None) -> bytes | None:
    """The body for a screen that has snapshot ``have`` and grid hash ``gh``; None means 204 (nothing new)."""
    now = now if now is not None else time.time()
    measure = measure if measure in GRID_MEASURES else "officers"
    sid = current(deps, now, builder)
    pipe = deps.redis.pipeline(transaction=False)
    pipe.get(_key(deps, f"side:{sid}"))
    pipe.get(_key(deps, f"g:{sid}:{measure}"))
    pipe.get(_key(deps, f"delta:{have}:{sid}") if have else _key(deps, "-"))
    side_raw, values_raw, delta_raw = pipe.execute()
    side = orjson.loads(side_raw) if side_raw else {"c": {}, "gh": {}}
    grid_hash = f"{side['gh'].get(measure, '')}{measure}"
    if have == sid and gh == grid_hash:
        return None
    body: dict = {"s": sid, "now": int(sid_parts(sid)[1]), "c": side["c"], "m": measure}
    if gh != grid_hash and values_raw:
        values = orjson.loads(values_raw)
        body |= {"g": orjson.Fragment(values_raw), "gmax": max(values.values(), default=0), "gh": grid_hash}
    if have == sid:
        return orjson.dumps(body)
    markers = delta_raw or store_delta(deps, have, sid)
    if markers is not None:
        body |= {"b": have, "d": orjson.Fragment(markers)}
    else:
        body["full"] = orjson.Fragment(deps.redis.get(_key(deps, f"snap:{sid}")) or b'{"ids":[],"r":[]}')
    return orjson.dumps(body)


def store_delta(deps: Deps, have: str | None, sid: str) -> bytes | None:
    """The markers' delta from ``have`` to ``sid`` (stored for the other screens), None when ``have`` is gone."""
    if not have or sid_parts(have) is None:
        return None
    old_raw, new_raw = deps.redis.mget(_key(deps, f"snap:{have}"), _key(deps, f"snap:{sid}"))
    if not old_raw or not new_raw:
        return None
    old, new = orjson.loads(old_raw), orjson.loads(new_raw)
    raw = orjson.dumps(diff(old["ids"], old["r"], new["ids"], new["r"], int(sid_parts(sid)[1])))
    deps.redis.set(_key(deps, f"delta:{have}:{sid}"), raw, px=SNAP_TTL_S * 1000)
    return raw
