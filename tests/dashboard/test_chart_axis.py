"""The activity chart's x axis spans the chosen window (24 h / 7 d / 30 d) whatever the data:
one bin used to autoscale to millisecond ticks, no bin hid the axis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dashboard.callbacks import RANGES, chart_data, chart_figures

TZ = "Asia/Shanghai"
END = datetime(2026, 11, 25, 10, 17, 42, tzinfo=ZoneInfo(TZ))


def _local(d: datetime) -> datetime:
    return d.astimezone(ZoneInfo(TZ)).replace(tzinfo=None)


def _data(rng: str, activity: list) -> dict:
    hours, bin_h = RANGES[rng]
    start = END - timedelta(hours=hours)
    return {"activity": activity, "grids": [], "categories": [], "window": [start.isoformat(), END.isoformat()], "bin_h": bin_h}


@pytest.mark.parametrize("rng", ["24h", "7d", "30d"])
def test_one_bin_spans_the_window(rng):
    one = [[(END - timedelta(hours=2)).replace(minute=0, second=0).isoformat(), "report", 3]]
    act, _, _ = chart_figures(_data(rng, one), "zh-CN", TZ)
    hours = RANGES[rng][0]
    assert list(act.layout.xaxis.range) == [_local(END - timedelta(hours=hours)), _local(END)]
    assert act.layout.xaxis.type == "date"
    # Ticks on round hours (24 h) or days, never sub-second.
    assert act.layout.xaxis.dtick == (3 * 3600_000 if rng == "24h" else 24 * 3600_000 if rng == "7d" else 5 * 24 * 3600_000)
    assert act.layout.xaxis.tickformat == ("%H:%M" if rng == "24h" else "%m-%d")
    (trace,) = act.data
    assert list(trace.y) == [3] and "markers" in trace.mode  # a lone bin is visible as a point


@pytest.mark.parametrize("rng", ["24h", "7d", "30d"])
def test_no_bin_spans_the_window_and_says_no_data(rng):
    act, _, _ = chart_figures(_data(rng, []), "zh-CN", TZ)
    hours = RANGES[rng][0]
    assert list(act.layout.xaxis.range) == [_local(END - timedelta(hours=hours)), _local(END)]
    assert act.layout.xaxis.visible is True
    assert act.data == ()
    assert [a.text for a in act.layout.annotations] == ["暂无数据"]


def test_gap_between_bins_is_zero_not_a_line_across():
    b0 = (END - timedelta(hours=5)).replace(minute=0, second=0)
    act, _, _ = chart_figures(_data("24h", [[b0.isoformat(), "sos", 1], [(b0 + timedelta(hours=3)).isoformat(), "sos", 2]]), "en", TZ)
    (trace,) = act.data
    assert list(trace.y) == [1, 0, 0, 2]
    assert list(trace.x) == [_local(b0 + timedelta(hours=h)) for h in range(4)]


def test_chart_data_from_the_rollup_carries_the_window(settings, known_db, known_now):
    """Through the real query: the known rollup has one in-window bin of completed inspections."""
    from dashboard.deps import Deps

    deps = Deps(settings)
    now = known_now + timedelta(minutes=1)
    for rng in ("24h", "7d"):
        deps.cache_drop(f"charts:{rng}:{settings.language}")
        data = chart_data(deps, rng, now=now.timestamp())
        act, _, _ = chart_figures(data, settings.language, settings.timezone)
        hours = RANGES[rng][0]
        assert list(act.layout.xaxis.range) == [_local(now - timedelta(hours=hours)), _local(now)]
        (done,) = [tr for tr in act.data if tr.name == "检查完成"]
        assert sum(done.y) == 5 and len(done.y) == 1  # one bin: 4 + 1 inspections in the same hour
    # Long before any data: no bin at all, the axis still spans the window.
    deps.cache_drop(f"charts:24h:{settings.language}")
    old = datetime(2001, 3, 1, tzinfo=timezone.utc)
    data = chart_data(deps, "24h", now=old.timestamp())
    deps.cache_drop(f"charts:24h:{settings.language}")
    assert data["activity"] == []
    act, _, _ = chart_figures(data, settings.language, settings.timezone)
    assert list(act.layout.xaxis.range) == [_local(old - timedelta(hours=24)), _local(old)]
