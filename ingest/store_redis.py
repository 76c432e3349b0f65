"""Live state in Redis: one pipeline per batch, from the rows that were new to the database.

Redis keeps nothing durable here: when its ``live:built`` marker is missing (a restart, a
flush), ``rebuild()`` restores every key from PostgreSQL before ingest applies new batches.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import psycopg
import redis

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
# as separate commands they were one HINCRBY per grid a batch touched (hundreds), and packing
# them was the largest part of ingest's Redis time.
#   KEYS: last_fix, geo, last_seen, then the counter hash of each local day in the batch
#   ARGV: n, then per terminal (7): id, ts, lon, lat, record, seq, seen;
#         then per counter (3): index of its day's key in KEYS, field, increment; then the counters' TTL
_APPLY_FIXES = """
local n = tonumber(ARGV[1])
local changed = 0
for i = 2, 1 + n * 7, 7 do
  local tid, ts, seq = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 5])
  local cur = redis.call('HGET', KEYS[1], tid)
  local old = cur and cjson.decode(cur)
  if (not old) or old['ts'] < ts or (old['ts'] == ts and old['seq'] < seq) then
    redis.call('HSET', KEYS[1], tid, ARGV[i + 4])
    redis.call('GEOADD', KEYS[2], ARGV[i + 2], ARGV[i + 3], tid)
    changed = changed + 1
  end
  redis.call('ZADD', KEYS[3], 'GT', ARGV[i + 6], tid)
end
for j = 2 + n * 7, #ARGV - 1, 3 do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[j])], ARGV[j + 1], ARGV[j + 2])
end
for k = 4, #KEYS do
  redis.call('EXPIRE', KEYS[k], ARGV[#ARGV])
end
return changed
"""


def last_fix_json(ts: datetime, seq: int, lat: float, lon: float, speed, heading, battery, acc, grid2, grid1) -> bytes:
    """The compact record the wall reads for each terminal (see docs/architecture.md)."""
    return orjson.dumps({"lat": lat, "lon": lon, "ts": ts.timestamp(), "seq": seq, "spd": speed, "hdg": heading,
                         "bat": battery, "acc": acc, "g2": grid2, "g1": grid1})


class LiveStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys, tz: str, stream_maxlen: int):
        self.r = client
        self.keys = keys
        self.tz = ZoneInfo(tz)
        self.stream_maxlen = stream_maxlen
        self._days: dict[float, str] = {}
        self._apply_fixes_script = client.register_script(_APPLY_FIXES)

    def day(self, ts: datetime) -> str:
        """The bureau's local date of ``ts``, remembered per quarter hour: it was a time-zone
        conversion and a strftime per fix. Every UTC offset and every DST change falls on a whole
        quarter hour, so one quarter hour has one local date."""
        quarter = ts.timestamp() // DAY_MEMO_S
        day = self._days.get(quarter)
        if day is None:
            if len(self._days) >= DAY_MEMO_MAX:
                self._days.clear()
            day = self._days[quarter] = ts.astimezone(self.tz).strftime("%Y-%m-%d")
        return day

    def needs_rebuild(self) -> bool:
        return not self.r.exists(self.keys.built)

    def apply(self, stored: Stored) -> None:
        pipe = self.r.pipeline(transaction=False)
        self._apply_fixes(pipe, stored)
        self._apply_events(pipe, stored)
        for s in stored.statuses:
            pipe.hset(self.keys.session, s.terminal_id, "1" if s.online else "0")
            if s.online:
                pipe.zadd(self.keys.last_seen, {s.terminal_id: s.received_at.timestamp()}, gt=True)
            pipe.xadd(self.keys.events, {"kind": "status", "terminal_id": s.terminal_id, "online": int(s.online),
                                         "ts": s.ts.timestamp()}, maxlen=self.stream_maxlen, approximate=True)
        pipe.incr(self.keys.version)
        pipe.execute()

    def _apply_fixes(self, pipe, stored: Stored) -> None:
        newest: dict[str, object] = {}
        counts: Counter = Counter()
        for f in stored.fixes:
            cur = newest.get(f.terminal_id)
            if cur is None or (f.ts, f.seq) > (cur.ts, cur.seq):
                newest[f.terminal_id] = f
            counts[(self.day(f.ts), f"{f.grid2_code or '-'}|gps")] += 1
        if not newest:
            return
        args: list = [len(newest)]
        for f in newest.values():
            # A device is "seen" when it speaks, at the time it says (capped by arrival): a backlog
            # that ingest drains late does not make a silent device look alive.
            args += [f.terminal_id, f.ts.timestamp(), f.lon, f.lat,
                     last_fix_json(f.ts, f.seq, f.lat, f.lon, f.speed_mps, f.heading_deg, f.battery_pct, f.acc_m,
                                   f.grid2_code, f.grid1_code), f.seq, min(f.ts, f.received_at).timestamp()]
        days = sorted({day for day, _ in counts})
        for (day, fld), k in counts.items():
            args += [4 + days.index(day), fld, k]
        args.append(COUNTER_TTL_S)
        self._apply_fixes_script(keys=[self.keys.last_fix, self.keys.geo, self.keys.last_seen,
                                       *(self.keys.counters(day) for day in days)], args=args, client=pipe)

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
            pipe.hset(self.keys.last_fix, tid, last_fix_json(ts, seq, lat, lon, spd, hdg, bat, acc, g2, g1))
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
