"""Live state in Redis: one pipeline per batch, from the rows that were new to the database.

Redis keeps nothing durable here: when its ``live:built`` marker is missing (a restart, a
flush), ``rebuild()`` restores every key from PostgreSQL before ingest applies new batches.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import psycopg
import redis
from redis.exceptions import NoScriptError

from ingest.pipeline import FixRow
from ingest.store_pg import Stored
from schemas.topics import RedisKeys

log = logging.getLogger("gridwatch.ingest.redis")

COUNTER_TTL_S = 3 * 24 * 3600
REBUILD_WINDOW = timedelta(days=7)  # a terminal silent longer has no live position (and is pruned)
REBUILD_LOCK_S = 120
DAY_MEMO_S = 900
DAY_MEMO_MAX = 10_000  # quarter hours remembered (104 days); a late backlog only refills it

# The newest fix of each terminal heard from since %(since)s, without reading the window's history:
# a loose index scan walks the distinct terminal ids of (terminal_id, ts, seq), then one index
# probe per terminal takes its newest fix.
_NEWEST_FIXES = """
WITH RECURSIVE ids AS (
    (SELECT terminal_id FROM gps_fix WHERE ts > %(since)s ORDER BY terminal_id LIMIT 1)
    UNION ALL
    SELECT (SELECT f.terminal_id FROM gps_fix f WHERE f.terminal_id > ids.terminal_id AND f.ts > %(since)s
            ORDER BY f.terminal_id LIMIT 1)
    FROM ids WHERE ids.terminal_id IS NOT NULL
)
SELECT n.* FROM ids CROSS JOIN LATERAL (
    SELECT terminal_id, ts, seq, lat, lon, speed_mps, heading_deg, battery_pct, acc_m, grid2_code, grid1_code,
           received_at
    FROM gps_fix WHERE terminal_id = ids.terminal_id AND ts > %(since)s ORDER BY ts DESC LIMIT 1
) n WHERE ids.terminal_id IS NOT NULL
"""

# One call per batch for all its fixes. Newest fix wins, by its own timestamp: a buffered fix
# flushed late never overwrites a newer one. "Seen" and the day's counters go in the same call:
# as separate commands they were one HINCRBY per grid a batch touched (hundreds). The fixes and
# the counters travel as two JSON arrays, not as thousands of arguments: redis-py packs every
# argument in Python (4.8 of the 6.8 µs a fix cost ingest here), cjson decodes an array in C.
#   KEYS: last_fix, geo, last_seen, then the counter hash of each local day in the batch
#   ARGV[1]: [[id, ts, lon, lat, record, seq, seen], ...], one per terminal
#   ARGV[2]: [[index of its day's key in KEYS, field, increment], ...]; ARGV[3]: the counters' TTL
_APPLY_FIXES = """
local changed = 0
for _, f in ipairs(cjson.decode(ARGV[1])) do
  local tid, ts, seq = f[1], f[2], f[6]
  local cur = redis.call('HGET', KEYS[1], tid)
  local old = cur and cjson.decode(cur)
  if (not old) or old['ts'] < ts or (old['ts'] == ts and old['seq'] < seq) then
    redis.call('HSET', KEYS[1], tid, f[5])
    redis.call('GEOADD', KEYS[2], f[3], f[4], tid)
    changed = changed + 1
  end
  redis.call('ZADD', KEYS[3], 'GT', f[7], tid)
end
for _, c in ipairs(cjson.decode(ARGV[2])) do
  redis.call('HINCRBY', KEYS[c[1]], c[2], c[3])
end
for k = 4, #KEYS do
  redis.call('EXPIRE', KEYS[k], ARGV[3])
end
return changed
"""
_APPLY_FIXES_SHA = hashlib.sha1(_APPLY_FIXES.encode()).hexdigest()


def last_fix_json(ts: float, seq: int, lat: float, lon: float, speed, heading, battery, acc, grid2, grid1) -> bytes:
    """The compact record the wall reads for each terminal (see docs/architecture.md); ``ts`` in epoch seconds."""
    return orjson.dumps({"lat": lat, "lon": lon, "ts": ts, "seq": seq, "spd": speed, "hdg": heading,
                         "bat": battery, "acc": acc, "g2": grid2, "g1": grid1})


class LiveStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys, tz: str, stream_maxlen: int):
        self.r = client
        self.keys = keys
        self.tz = ZoneInfo(tz)
        self.stream_maxlen = stream_maxlen
        self._days: dict[float, str] = {}

    def day(self, ts: datetime) -> str:
        """The bureau's local date of ``ts``."""
        return self._day_of_quarter(ts.timestamp() // DAY_MEMO_S)

    def _day_of_quarter(self, quarter: float) -> str:
        """The local date of a quarter hour since the epoch, remembered: it was a time-zone
        conversion and a strftime per fix. Every UTC offset and every DST change falls on a whole
        quarter hour, so one quarter hour has one local date."""
        day = self._days.get(quarter)
        if day is None:
            if len(self._days) >= DAY_MEMO_MAX:
                self._days.clear()
            ts = datetime.fromtimestamp(quarter * DAY_MEMO_S, self.tz)
            day = self._days[quarter] = ts.strftime("%Y-%m-%d")
        return day

    def needs_rebuild(self) -> bool:
        return not self.r.exists(self.keys.built)

    def apply(self, stored: Stored) -> None:
        pipe = self.r.pipeline(transaction=False)
        fixes_call = self._apply_fixes(pipe, stored)
        self._apply_events(pipe, stored)
        for s in stored.statuses:
            pipe.hset(self.keys.session, s.terminal_id, "1" if s.online else "0")
            if s.online:
                pipe.zadd(self.keys.last_seen, {s.terminal_id: s.received_at.timestamp()}, gt=True)
            pipe.xadd(self.keys.events, {"kind": "status", "terminal_id": s.terminal_id, "online": int(s.online),
                                         "ts": s.ts.timestamp()}, maxlen=self.stream_maxlen, approximate=True)
        pipe.incr(self.keys.version)
        results = pipe.execute(raise_on_error=False)
        if fixes_call and isinstance(results[0], NoScriptError):
            # Redis lost its scripts (a restart, SCRIPT FLUSH): that one call did nothing, so
            # loading the script and making it again applies every fix exactly once
            self.r.script_load(_APPLY_FIXES)
            self.r.evalsha(_APPLY_FIXES_SHA, len(fixes_call[0]), *fixes_call[0], *fixes_call[1])
            results = results[1:]
        for result in results:
            if isinstance(result, redis.RedisError):
                raise result

    def _apply_fixes(self, pipe, stored: Stored) -> tuple[list, list] | None:
        """Queue the batch's one script call for its fixes as the pipeline's first command; its (keys, args)."""
        newest: dict[str, tuple[float, FixRow]] = {}
        counts: dict[tuple[float, str | None], int] = {}
        for f in stored.fixes:  # the hottest loop of the live update: one timestamp() a fix, no Counter
            ts = f.ts.timestamp()
            cur = newest.get(f.terminal_id)
            if cur is None or (ts, f.seq) > (cur[0], cur[1].seq):
                newest[f.terminal_id] = (ts, f)
            key = (ts // DAY_MEMO_S, f.grid2_code)
            counts[key] = counts.get(key, 0) + 1
        if not newest:
            return None
        rows = []
        for ts, f in newest.values():
            # A device is "seen" when it speaks, at the time it says (capped by arrival): a backlog
            # that ingest drains late does not make a silent device look alive.
            rows.append((f.terminal_id, ts, f.lon, f.lat,
                         last_fix_json(ts, f.seq, f.lat, f.lon, f.speed_mps, f.heading_deg, f.battery_pct, f.acc_m,
                                       f.grid2_code, f.grid1_code).decode(), f.seq, min(ts, f.received_at.timestamp())))
        by_day: Counter = Counter()
        for (quarter, grid2), n in counts.items():
            by_day[(self._day_of_quarter(quarter), f"{grid2 or '-'}|gps")] += n
        days = sorted({day for day, _ in by_day})
        keys = [self.keys.last_fix, self.keys.geo, self.keys.last_seen, *(self.keys.counters(day) for day in days)]
        args = [orjson.dumps(rows), orjson.dumps([(4 + days.index(day), fld, n) for (day, fld), n in by_day.items()]),
                COUNTER_TTL_S]
        pipe.evalsha(_APPLY_FIXES_SHA, len(keys), *keys, *args)
        return keys, args

    def _apply_events(self, pipe, stored: Stored) -> None:
        counts: Counter = Counter()
        seen: dict[str, float] = {}
        for e in stored.events:
            counts[(self.day(e.ts), f"{e.grid2_code or '-'}|{e.kind}")] += 1
            seen[e.terminal_id] = max(seen.get(e.terminal_id, 0.0), min(e.ts, e.received_at).timestamp())
            if e.kind != "heartbeat":
                pipe.xadd(self.keys.events, {"kind": e.kind, "terminal_id": e.terminal_id, "seq": e.seq,
                                             "grid2_code": e.grid2_code or "", "ts": e.ts.timestamp(), "body": e.body,
                                             "lat": "" if e.lat is None else e.lat, "lon": "" if e.lon is None else e.lon},
                          maxlen=self.stream_maxlen, approximate=True)
        if seen:
            pipe.zadd(self.keys.last_seen, seen, gt=True)
        self._add_counts(pipe, counts)

    def _add_counts(self, pipe, counts: Counter) -> None:
        for (day, fld), n in counts.items():
            pipe.hincrby(self.keys.counters(day), fld, n)
        for day in {day for day, _ in counts}:
            pipe.expire(self.keys.counters(day), COUNTER_TTL_S)

    def prune(self) -> int:
        """Forget terminals not heard from for REBUILD_WINDOW, so live keys and the wall's snapshot stay bounded."""
        cutoff = (datetime.now(self.tz) - REBUILD_WINDOW).timestamp()
        stale = self.r.zrangebyscore(self.keys.last_seen, "-inf", cutoff)
        if stale:
            pipe = self.r.pipeline(transaction=False)
            pipe.hdel(self.keys.last_fix, *stale)
            pipe.zrem(self.keys.geo, *stale)
            pipe.zrem(self.keys.last_seen, *stale)
            pipe.hdel(self.keys.session, *stale)
            pipe.incr(self.keys.version)
            pipe.execute()
            log.info("live state: forgot %d terminals silent for more than %d days", len(stale), REBUILD_WINDOW.days)
        return len(stale)

    def rebuild(self, conn: psycopg.Connection) -> None:
        """Restore every live key from PostgreSQL (Redis restarted or was flushed).

        Several ingest processes notice the loss at once; the one that takes the lock rebuilds.
        """
        if not self.r.set(self.keys.rebuild_lock, "1", nx=True, ex=REBUILD_LOCK_S):
            log.info("live state is being rebuilt by another ingest process")
            return
        try:
            self._rebuild(conn)
        finally:
            self.r.delete(self.keys.rebuild_lock)

    def _rebuild(self, conn: psycopg.Connection) -> None:
        started = datetime.now(self.tz)
        since = started - REBUILD_WINDOW
        today = started.replace(hour=0, minute=0, second=0, microsecond=0)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.keys.last_fix, self.keys.geo, self.keys.last_seen, self.keys.session,
                    self.keys.counters(self.day(started)))
        fixes = conn.execute(_NEWEST_FIXES, {"since": since}).fetchall()
        seen: dict[str, float] = {}
        for tid, ts, seq, lat, lon, spd, hdg, bat, acc, g2, g1, rec in fixes:
            pipe.hset(self.keys.last_fix, tid, last_fix_json(ts.timestamp(), seq, lat, lon, spd, hdg, bat, acc, g2, g1))
            pipe.geoadd(self.keys.geo, (lon, lat, tid))
            seen[tid] = min(ts, rec).timestamp()
        for tid, ts in conn.execute(
            # events are few (tens a terminal a day); a day is far longer than any online window
            "SELECT terminal_id, max(least(ts, received_at)) FROM terminal_event WHERE ts > %s GROUP BY 1",
            (started - timedelta(days=1),)
        ):
            seen[tid] = max(seen.get(tid, 0.0), ts.timestamp())
        for tid, ts in conn.execute(
            # an "online" status is the terminal speaking too: apply() counts it as seen, and so must a rebuild
            "SELECT terminal_id, max(least(ts, received_at)) FROM terminal_status WHERE online AND received_at > %s"
            " GROUP BY 1", (started - timedelta(days=1),)
        ):
            seen[tid] = max(seen.get(tid, 0.0), ts.timestamp())
        if seen:
            pipe.zadd(self.keys.last_seen, seen)
        for tid, online in conn.execute(
            "SELECT DISTINCT ON (terminal_id) terminal_id, online FROM terminal_status"
            " WHERE received_at > %s ORDER BY terminal_id, received_at DESC", (since,)
        ):
            pipe.hset(self.keys.session, tid, "1" if online else "0")
        counters = self.keys.counters(self.day(started))
        for g2, kind, n in conn.execute(
            "SELECT CASE WHEN grid2_code = '' THEN '-' ELSE grid2_code END, kind, sum(n)::bigint"
            " FROM activity_hourly WHERE bucket >= %s GROUP BY 1, 2", (today,)
        ):
            pipe.hset(counters, f"{g2}|{kind}", n)
        pipe.expire(counters, COUNTER_TTL_S)
        pipe.set(self.keys.built, started.isoformat())
        pipe.incr(self.keys.version)
        pipe.execute()
        log.info("live state rebuilt from PostgreSQL: %d terminals with a position, %d seen in the last %d days",
                 len(fixes), len(seen), REBUILD_WINDOW.days)
