"""Windowing bolts on simulated time (storm-spec §1.7): sliding/tumbling, count/time, event time."""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, LocalCluster, TopologyBuilder
from squall.api.windowed import Count, Duration, TupleWindow, WindowedBolt
from squall.testing import FeederSpout, simulated_cluster

pytestmark = pytest.mark.timeout(20)

WINDOWS: list[tuple[list[int], list[int], list[int]]] = []
OUT: list[tuple[Any, ...]] = []


def record(window: TupleWindow) -> None:
    WINDOWS.append(
        (
            [t.values.n for t in window.get()],
            [t.values.n for t in window.new()],
            [t.values.n for t in window.expired()],
        )
    )


class SlidingCount(WindowedBolt):
    outputs = ["sum"]
    window_length = Count(3)
    sliding_interval = Count(1)

    def process(self, window: TupleWindow) -> None:
        record(window)
        self.emit([sum(t.values.n for t in window.get())])


class TumblingCount(SlidingCount):
    window_length = Count(3)
    sliding_interval = None


class TumblingTime(SlidingCount):
    window_length = Duration(10)
    sliding_interval = None


class SlidingTime(SlidingCount):
    window_length = Duration(10)
    sliding_interval = Duration(5)


class EventTime(SlidingCount):
    window_length = Duration(10)
    sliding_interval = Duration(5)
    timestamp_field = "ts"
    lag_secs = 2
    late_tuple_stream = "late"


class Collect(Bolt):
    def process(self, tup: Any) -> None:
        OUT.append((tup.stream, *tup.values))


class FailAll(Bolt):
    auto_ack = False

    def process(self, tup: Any) -> None:
        self.fail(tup)


@pytest.fixture(autouse=True)
def _clear() -> None:
    WINDOWS.clear()
    OUT.clear()


def topology(bolt: type[WindowedBolt], fields: list[str], sink: type[Bolt] = Collect) -> Any:
    feeder = FeederSpout(fields)
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("window", bolt).shuffle_grouping("feed")
    d = b.set_bolt("sink", sink).shuffle_grouping("window")
    if bolt.late_tuple_stream:
        d.shuffle_grouping("window", bolt.late_tuple_stream)
    return feeder, b


def feed(cluster: LocalCluster, feeder: Any, *values: Any) -> None:
    for v in values:
        feeder.feed(list(v) if isinstance(v, tuple) else [v], msg_id=v)
        cluster.run_until_idle()


def test_a_sliding_count_window_sees_the_last_tuples_with_new_and_expired() -> None:
    feeder, b = topology(SlidingCount, ["n"])
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feed(cluster, feeder, 1, 2, 3, 4, 5)
        assert WINDOWS == [
            ([1], [1], []),
            ([1, 2], [2], []),
            ([1, 2, 3], [3], []),
            ([2, 3, 4], [4], [1]),
            ([3, 4, 5], [5], [2]),
        ]
        assert [o[1] for o in OUT] == [1, 3, 6, 9, 12]
        # A tuple is acked once it cannot be in any later window: 3 is not in [4, 5, 6].
        assert feeder.tracker.acked == [1, 2, 3]


def test_a_tumbling_count_window_acks_its_tuples_after_its_evaluation() -> None:
    feeder, b = topology(TumblingCount, ["n"])
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feed(cluster, feeder, 1, 2)
        assert WINDOWS == [] and feeder.tracker.acked == []
        feed(cluster, feeder, 3, 4, 5, 6)
        assert WINDOWS == [([1, 2, 3], [1, 2, 3], []), ([4, 5, 6], [4, 5, 6], [1, 2, 3])]
        assert feeder.tracker.acked == [1, 2, 3, 4, 5, 6]


def test_a_tumbling_time_window_groups_what_arrived_in_each_period() -> None:
    feeder, b = topology(TumblingTime, ["n"])
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feed(cluster, feeder, 1, 2)
        cluster.advance_time(4)
        feed(cluster, feeder, 3)
        cluster.advance_time(7)  # the first window (t=0..10] ends
        feed(cluster, feeder, 4)
        cluster.advance_time(10)
        assert [w[0] for w in WINDOWS] == [[1, 2, 3], [4]]
        assert feeder.tracker.acked == [1, 2, 3, 4]


def test_a_sliding_time_window_overlaps_by_the_length_minus_the_slide() -> None:
    feeder, b = topology(SlidingTime, ["n"])
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feed(cluster, feeder, 1)  # t=0: windows end at 5, 10, 15...
        cluster.advance_time(3)
        feed(cluster, feeder, 2)  # t=3
        cluster.advance_time(4)
        feed(cluster, feeder, 3)  # t=7
        cluster.advance_time(10)  # to t=17: windows ending at 5, 10 and 15
        assert [w[0] for w in WINDOWS] == [[1, 2], [1, 2, 3], [3]]
        assert WINDOWS[2][2] == [1, 2]
        assert feeder.tracker.acked == [1, 2, 3]


def test_event_time_windows_follow_the_watermark_and_send_late_tuples_aside() -> None:
    feeder, b = topology(EventTime, ["n", "ts"])
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feed(cluster, feeder, (1, 1.0), (2, 4.0), (3, 3.0), (4, 8.0))
        cluster.advance_time(1)  # watermark 8 - 2 = 6: the window ending at 5 is evaluated
        assert [w[0] for w in WINDOWS] == [[1, 3, 2]]
        feed(cluster, feeder, (5, 4.5))  # older than the watermark: late
        feed(cluster, feeder, (6, 14.0), (7, 12.5))
        cluster.advance_time(1)  # watermark 12: the window (0, 10] is evaluated
        assert [w[0] for w in WINDOWS] == [[1, 3, 2], [1, 3, 2, 4]]
        assert ("late", [5, 4.5]) in OUT
        assert feeder.tracker.is_acked((5, 4.5))


def test_a_failed_window_result_fails_every_tuple_of_the_window() -> None:
    feeder, b = topology(TumblingCount, ["n"], sink=FailAll)
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feed(cluster, feeder, 1, 2, 3)
        assert sorted(feeder.tracker.failed) == [1, 2, 3]


def test_a_time_window_longer_than_the_message_timeout_is_refused() -> None:
    class TooLong(SlidingCount):
        window_length = Duration(40)
        sliding_interval = None

    feeder, b = topology(TooLong, ["n"])
    with simulated_cluster() as cluster:
        cluster.submit("w", b)
        feeder.feed([1], msg_id=1)
        cluster.run_until_idle()
        handle = cluster.get("w")
        assert "exceeds topology.message.timeout.secs (30)" in handle.errors[0].error


def test_a_windowed_bolt_without_a_length_is_refused_at_declaration() -> None:
    class NoLength(WindowedBolt):
        pass

    with pytest.raises(ValueError, match="no window length; set window_length"):
        NoLength.spec()
