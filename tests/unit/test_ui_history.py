"""Storm's stats windows from cumulative counters: bounded, restart-proof, Storm's capacity."""

from __future__ import annotations

import pytest

from squall.runtime.stats import ExecutorSnapshot
from squall.ui.history import StatsHistory, window_secs


def snap(
    uptime: float,
    *,
    acked: int = 0,
    emitted: int = 0,
    executed: int = 0,
    execute_ms: float = 0.0,
    tasks: tuple[int, ...] = (1,),
    worker: int = 0,
) -> ExecutorSnapshot:
    return ExecutorSnapshot(
        "c",
        "bolt",
        tasks,
        worker,
        uptime,
        outputs=((tasks[0], "default", emitted, emitted),),
        inputs=(("up", "default", executed),),
        acked=acked,
        execute_ms=execute_ms,
    )


def test_all_time_is_the_latest_cumulative_counters() -> None:
    h = StatsHistory()
    h.record(0.0, [snap(0.0)])
    h.record(5.0, [snap(5.0, acked=7, emitted=9)])
    c = h.window(None)[(1, 1)]
    assert (c.acked, c.total_emitted) == (7, 9)


def test_a_window_counts_only_what_happened_inside_it() -> None:
    h = StatsHistory()
    for t in range(0, 1210, 10):
        # 1 ack per second for the first 600 s, then 3 per second.
        acked = t if t <= 600 else 600 + 3 * (t - 600)
        h.record(float(t), [snap(float(t), acked=acked)])
    assert h.window(None)[(1, 1)].acked == 600 + 3 * 600
    assert h.window(600.0)[(1, 1)].acked == 3 * 600
    assert h.window(10800.0)[(1, 1)].acked == 600 + 3 * 600


def test_an_executor_younger_than_the_window_counts_everything() -> None:
    h = StatsHistory()
    h.record(1000.0, [snap(20.0, acked=4)])
    h.record(1010.0, [snap(30.0, acked=10)])
    assert h.window(600.0)[(1, 1)].acked == 10


def test_memory_stays_bounded_over_a_long_run() -> None:
    h = StatsHistory()
    for t in range(0, 3 * 86400, 5):
        h.record(float(t), [snap(float(t), acked=t)])
    kept = sum(len(tier.samples) for tier in h._tiers)
    assert kept <= 3 * 63
    assert h.window(86400.0)[(1, 1)].acked == pytest.approx(86400, abs=1440)


def test_a_restarted_executor_keeps_its_earlier_totals_and_counts_a_restart() -> None:
    h = StatsHistory()
    h.record(0.0, [snap(0.0, worker=1)])
    h.record(10.0, [snap(10.0, acked=100, worker=1)])
    h.record(20.0, [snap(3.0, acked=5, worker=1)])  # the worker came back, counters from 0
    assert h.window(None)[(1, 1)].acked == 105
    assert h.window(600.0)[(1, 1)].acked == 105
    assert h.restarts == {1: 1}


def test_capacity_is_busy_time_over_min_uptime_and_ten_minutes() -> None:
    h = StatsHistory()
    h.record(0.0, [snap(0.0)])
    h.record(100.0, [snap(100.0, executed=1000, execute_ms=50_000.0)])
    assert h.capacities()[(1, 1)] == pytest.approx(0.5)
    h.record(1300.0, [snap(1300.0, executed=2000, execute_ms=110_000.0)])
    # Over the last 600 s (the baseline is the sample at t=100): 60 s busy of 1200 s.
    assert h.capacities()[(1, 1)] == pytest.approx(60_000 / 1000 / 1200)


def test_recent_counters_give_live_rates_over_the_last_seconds() -> None:
    h = StatsHistory()
    for t in range(0, 11):
        h.record(float(t), [snap(float(t), emitted=100 * t)])
    dt, recent = h.recent(5.0)
    assert recent[(1, 1)].total_emitted / dt == pytest.approx(100.0)


def test_window_names_are_storms() -> None:
    assert [window_secs(w) for w in ("600", "10800", "86400", ":all-time")] == [
        600.0,
        10800.0,
        86400.0,
        None,
    ]
    with pytest.raises(ValueError, match="window must be one of"):
        window_secs("3600")
