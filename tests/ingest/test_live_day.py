"""LiveStore.day remembers the local date per quarter hour: it must equal the direct conversion."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.store_redis import LiveStore
from schemas.topics import RedisKeys

# quarter-hour and half-hour offsets, and a zone whose DST change is 30 minutes
ZONES = ("Asia/Shanghai", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe", "Europe/London", "UTC")


@settings(max_examples=300)
@given(zone=st.sampled_from(ZONES),
       instants=st.lists(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                                      timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8)),
                                                                 timezone(timedelta(hours=-3, minutes=-30))])),
                         min_size=1, max_size=30))
def test_remembered_day_is_the_local_date(zone, instants):
    live = LiveStore(redis.Redis(), RedisKeys("t:"), zone, 10)  # no command is sent
    for ts in instants + instants:  # the second pass answers from memory
        assert live.day(ts) == ts.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")


def test_each_side_of_a_local_midnight_gets_its_own_day():
    live = LiveStore(redis.Redis(), RedisKeys("t:"), "Asia/Kathmandu", 10)  # UTC+05:45: midnight is 18:15 UTC
    before = datetime(2026, 11, 25, 18, 14, 59, tzinfo=timezone.utc)
    assert (live.day(before), live.day(before + timedelta(seconds=1))) == ("2026-11-25", "2026-11-26")
