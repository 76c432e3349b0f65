"""The worker's throughput line names its longest round and where that round's time went."""

from __future__ import annotations

from ingest.service import Laps, Stats


def laps(**steps: float) -> Laps:
    lap = Laps()
    lap.steps = list(steps.items())
    return lap


def test_the_longest_round_of_the_window_is_kept_with_its_steps():
    stats = Stats()
    stats.round_done(laps(decode=3, store=9, live=2, ack=1))
    stats.round_done(laps(decode=30, store=40, live=20, ack=5))
    stats.round_done(laps(decode=4, store=8, live=2, ack=1))
    assert "longest round 95 ms (decode 30, store 40, live 20, ack 5)" in stats.line(0)


def test_a_window_without_batches_says_so():
    assert "longest round -" in Stats().line(0)


def test_marks_measure_each_step_from_the_previous_one():
    lap = Laps()
    lap.mark("decode")
    lap.mark("store")
    assert [name for name, _ in lap.steps] == ["decode", "store"]
    assert all(ms >= 0 for _, ms in lap.steps) and lap.total_ms == sum(ms for _, ms in lap.steps)
