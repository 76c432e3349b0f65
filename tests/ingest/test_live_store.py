"""LiveStore.apply on the real Redis: newest fix wins, counters count each fix once, and a Redis
that lost its scripts (a restart, SCRIPT FLUSH) costs nothing."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis

from ingest.pipeline import FixRow
from ingest.store_pg import Stored
from ingest.store_redis import LiveStore
from schemas.topics import RedisKeys

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 16:00 in Yingtan


def fix(tid: str, seq: int, ts: datetime, grid2: str | None = "360602001001") -> FixRow:
    return FixRow(ts, tid, seq, 28.2 + seq * 1e-4, 117.0, 5.0, 1.5, 90.0, 80.0, ts + timedelta(seconds=1), None,
                  grid2, grid2 and grid2[:9])


@pytest.fixture
def live(base_settings, redis_prefix):
    client = redis.Redis.from_url(base_settings.redis_url)
    store = LiveStore(client, RedisKeys(redis_prefix), "Asia/Shanghai", 1000)
    yield store
    client.close()


def record(live: LiveStore, tid: str) -> dict:
    return orjson.loads(live.r.hget(live.keys.last_fix, tid))


def counters(live: LiveStore, day: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in live.r.hgetall(live.keys.counters(day)).items()}


def test_the_newest_fix_of_each_terminal_wins_and_every_fix_is_counted(live):
    live.apply(Stored(fixes=[fix("A", 2, T0 + timedelta(seconds=2)), fix("A", 1, T0 + timedelta(seconds=1)),
                             fix("B", 7, T0), fix("B", 8, T0, grid2=None)]))
    live.apply(Stored(fixes=[fix("A", 0, T0)]))  # a buffered fix flushed late: counted, never shown
    assert (record(live, "A")["seq"], record(live, "A")["ts"]) == (2, (T0 + timedelta(seconds=2)).timestamp())
    assert record(live, "B")["seq"] == 8  # same instant: the higher seq is the newer fix
    assert counters(live, "2026-11-25") == {"360602001001|gps": 4, "-|gps": 1}
    assert live.r.zscore(live.keys.last_seen, "A") == (T0 + timedelta(seconds=2)).timestamp()
    assert live.r.ttl(live.keys.counters("2026-11-25")) > 0


def test_fixes_either_side_of_local_midnight_count_on_their_own_day(live):
    midnight = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 00:00 on the 26th in Yingtan
    live.apply(Stored(fixes=[fix("A", 1, midnight - timedelta(seconds=1)), fix("A", 2, midnight)]))
    assert counters(live, "2026-11-25") == {"360602001001|gps": 1}
    assert counters(live, "2026-11-26") == {"360602001001|gps": 1}


def test_a_redis_that_lost_its_scripts_still_applies_each_fix_once(live):
    live.apply(Stored(fixes=[fix("A", 1, T0)]))
    live.r.script_flush()
    live.apply(Stored(fixes=[fix("A", 2, T0 + timedelta(seconds=1)), fix("B", 1, T0)]))
    assert record(live, "A")["seq"] == 2 and record(live, "B")["seq"] == 1
    assert counters(live, "2026-11-25") == {"360602001001|gps": 3}
    assert int(live.r.get(live.keys.version)) == 2
