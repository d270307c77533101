"""The engine at work: ticks, errors in user code, bounded queues, lifecycle, streams."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from tests.topologies import AckOnTick, ticked

from squall import Bolt, LocalCluster, Spout, Stream, Topology, TopologyBuilder, Tuple
from squall.api.tuple import values_class
from squall.runtime.clock import SimulatedClock
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan
from squall.runtime.stats import ErrorReport
from squall.testing import FeederSpout, complete_topology, read_tuples

pytestmark = pytest.mark.timeout(20)


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


# -- ticks ------------------------------------------------------------------------------


class TickLog(Bolt):
    """Records (component, task, simulated time) for every tick."""

    log: list[tuple[str, int, float]] = []
    now: Any = None

    def process_tick(self, tup: Any) -> None:
        assert tup.is_tick
        TickLog.log.append((self.context.component_id, self.context.task_id, TickLog.now()))


def tick_topology(feeder: Any) -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("every5", TickLog).shuffle_grouping("feed").add_configuration(
        "topology.tick.tuple.freq.secs", 5
    )
    b.set_bolt("topo", TickLog, 2).shuffle_grouping("feed").set_num_tasks(3)
    b.set_bolt("none", Sink).shuffle_grouping("feed")
    return b


@pytest.fixture
def tick_log(cluster: LocalCluster) -> list[tuple[str, int, float]]:
    TickLog.log = []
    TickLog.now = cluster.clock.now
    return TickLog.log


def test_component_tick_config_overrides_the_topology_tick(
    cluster: LocalCluster, tick_log: list[tuple[str, int, float]]
) -> None:
    cluster.submit("t", tick_topology(FeederSpout(["v"])), {"topology.tick.tuple.freq.secs": 8})
    cluster.advance_time(16)
    every5 = [t for c, _, t in tick_log if c == "every5"]
    topo = [(task, t) for c, task, t in tick_log if c == "topo"]
    assert every5 == [5.0, 10.0, 15.0]
    # Every task of every executor gets each tick: 3 tasks at 8 s and 16 s.
    assert sorted(topo) == [(task, t) for task in (5, 6, 7) for t in (8.0, 16.0)]


def test_bolts_get_no_ticks_unless_configured(
    cluster: LocalCluster, tick_log: list[tuple[str, int, float]]
) -> None:
    cluster.submit("t", tick_topology(FeederSpout(["v"])))
    cluster.advance_time(100, step=10)
    assert {c for c, _, _ in tick_log} == {"every5"}


class TickEmitter(AckOnTick):
    """Holds its inputs; on each tick emits the tick's rate and acks what it held."""

    outputs = ["n"]

    def process_tick(self, tup: Any) -> None:
        self.emit([tup.values.rate_secs])
        super().process_tick(tup)


def test_a_bolt_can_emit_from_process_tick() -> None:
    class T(Topology):
        words = Spout.spec(outputs=["v"])
        ticker = TickEmitter.spec(inputs=[words], config={"topology.tick.tuple.freq.secs": 2})
        sink = Sink.spec(inputs=[ticker])

    result = complete_topology(T, mock_sources={"words": [[1]]})
    assert result.errors == ()
    assert read_tuples(result, "ticker") == [[2]]
    assert result.elapsed_secs == 2 and result.acked["words"] == (0,)


# -- errors in user code -------------------------------------------------------------------


class Boom(Bolt):
    def process(self, tup: Any) -> None:
        raise ValueError(f"cannot handle {tup.values[0]!r}")


def test_an_exception_in_process_fails_the_tuple_and_is_reported_in_full(
    cluster: LocalCluster,
) -> None:
    reports: list[ErrorReport] = []
    feeder = FeederSpout(["v"])
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("boom", Boom).shuffle_grouping("feed")
    run = cluster.submit("errors", b, on_error=reports.append)
    feeder.feed(["x"], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.failed == ["m"]
    (report,) = reports
    assert run.errors == [report]
    assert (report.topology, report.component, report.task) == ("errors", "boom", 2)
    assert report.error == "ValueError: cannot handle 'x'"
    assert "in process" in report.traceback and "raise ValueError" in report.traceback
    assert report.headline() == "[errors] boom task 2: ValueError: cannot handle 'x'"
    stats = run.stats()["boom"]
    assert (stats.errors, stats.failed, stats.acked) == (1, 1, 0)


def test_an_exception_with_auto_fail_off_leaves_the_tuple_pending(cluster: LocalCluster) -> None:
    class Quiet(Boom):
        auto_fail = False

    feeder = FeederSpout(["v"])
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("boom", Quiet).shuffle_grouping("feed")
    run = cluster.submit("t", b, {"topology.message.timeout.secs": 5})
    feeder.feed(["x"], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.failed == [] and len(run.errors) == 1
    cluster.advance_time(10)
    assert feeder.tracker.failed == ["m"]


class FlakySpout(Spout):
    outputs = ["v"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.calls = 0

    def next_tuple(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("first call fails")
        if self.calls == 2:
            self.emit([1], tup_id=1)

    def ack(self, tup_id: Any) -> None:
        raise KeyError("ack callback fails")

    def is_exhausted(self) -> bool:
        return self.calls >= 2


def test_exceptions_in_spout_methods_are_reported_and_the_spout_keeps_running() -> None:
    b = TopologyBuilder()
    b.set_spout("flaky", FlakySpout)
    b.set_bolt("sink", Sink).shuffle_grouping("flaky")
    result = complete_topology(b)
    assert [e.error for e in result.errors] == [
        "RuntimeError: first call fails",
        "KeyError: 'ack callback fails'",
    ]
    assert read_tuples(result, "flaky") == [[1]]
    assert result.stats["flaky"].errors == 2


def test_an_exception_in_process_tick_is_reported(cluster: LocalCluster) -> None:
    class BadTick(Sink):
        def process_tick(self, tup: Any) -> None:
            raise RuntimeError("tick")

    b = TopologyBuilder()
    b.set_spout("feed", FeederSpout(["v"]))
    b.set_bolt("bad", BadTick).shuffle_grouping("feed").add_configuration(
        "topology.tick.tuple.freq.secs", 1
    )
    run = cluster.submit("t", b)
    cluster.advance_time(3)
    assert [e.error for e in run.errors] == ["RuntimeError: tick"] * 3


def test_an_exception_in_initialize_stops_the_submit_naming_the_task(
    cluster: LocalCluster,
) -> None:
    class BadInit(Sink):
        def initialize(self, conf: Any, context: Any) -> None:
            raise OSError("no database")

    b = TopologyBuilder()
    b.set_spout("feed", FeederSpout(["v"]))
    b.set_bolt("db", BadInit).shuffle_grouping("feed")
    with pytest.raises(RuntimeError, match=r"component 'db' task 2: initialize failed: OSError"):
        cluster.submit("t", b)


def test_error_logging_is_throttled_but_every_error_is_counted(
    cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    feeder = FeederSpout(["v"])
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("boom", Boom).shuffle_grouping("feed")
    run = cluster.submit("t", b, {"topology.max.error.report.per.interval": 3})
    for i in range(10):
        feeder.feed([i])
    with caplog.at_level(logging.ERROR, logger="squall.runtime"):
        cluster.run_until_idle()
    assert len([r for r in caplog.records if "cannot handle" in r.getMessage()]) == 3
    assert len(run.errors) == 10 and run.stats()["boom"].errors == 10


# -- bounded queues --------------------------------------------------------------------------


class Flood(Spout):
    outputs = ["v"]

    def next_tuple(self) -> None:
        self.emit([0])


def test_a_slow_bolt_keeps_its_queue_within_capacity_plus_one_step() -> None:
    capacity, budget = 64, 16
    b = TopologyBuilder()
    b.set_spout("flood", Flood, 3)  # three executors feed one bolt: it falls behind
    b.set_bolt("slow", Sink).shuffle_grouping("flood").add_configuration(
        "topology.executor.receive.buffer.size", capacity
    )
    d = b.create_topology("t").with_config(
        {"topology.acker.executors": 0, "squall.executor.batch.size": budget}
    )
    engine = Engine(make_plan(d, {}), clock=SimulatedClock(), seed=1)
    engine.start()
    slow = next(ex for ex in engine.executors if ex.component == "slow")
    seen: list[int] = []  # the bolt's queue each time it gets to run: its fullest
    step = slow.step

    def measured_step(n: int) -> int:
        seen.append(slow.queued)
        return step(n)

    slow.step = measured_step  # type: ignore[method-assign]
    for _ in range(300):
        engine.run_once()
    assert capacity <= max(seen) <= capacity + budget
    stats = engine.component_stats()
    # The spouts were held back to the bolt's pace (unthrottled they would emit 3x).
    assert stats["flood"].emitted <= stats["slow"].executed + capacity + budget
    assert stats["slow"].executed >= 300 * budget - capacity


class Echo(Bolt):
    outputs = ["v"]

    def process(self, tup: Any) -> None:
        if tup.values.v < 200:
            self.emit([tup.values.v + 1])


def test_a_cycle_with_full_queues_does_not_deadlock() -> None:
    b = TopologyBuilder()
    b.set_spout("s", Spout, outputs=["v"])
    b.set_bolt("a", Echo).shuffle_grouping("s").shuffle_grouping("b")
    b.set_bolt("b", Echo).shuffle_grouping("a")
    b.set_config({"topology.executor.receive.buffer.size": 2})
    result = complete_topology(b, mock_sources={"s": [[0], [0], [0], [0]]})
    assert len(read_tuples(result, "a")) + len(read_tuples(result, "b")) == 4 * 200
    assert result.acked["s"] == (0, 1, 2, 3)


# -- lifecycle ---------------------------------------------------------------------------


class Lifecycle(Spout):
    outputs = ["v"]
    calls: list[str] = []

    def activate(self) -> None:
        Lifecycle.calls.append("activate")

    def deactivate(self) -> None:
        Lifecycle.calls.append("deactivate")

    def close(self) -> None:
        Lifecycle.calls.append("close")

    def next_tuple(self) -> None:
        if not Lifecycle.calls or Lifecycle.calls[-1] != "next_tuple":
            Lifecycle.calls.append("next_tuple")


class Cleanup(Sink):
    def cleanup(self) -> None:
        Lifecycle.calls.append("cleanup")


def test_spouts_see_activate_deactivate_and_close_and_bolts_cleanup(
    cluster: LocalCluster,
) -> None:
    Lifecycle.calls = []
    b = TopologyBuilder()
    b.set_spout("s", Lifecycle)
    b.set_bolt("c", Cleanup).shuffle_grouping("s")
    cluster.submit("t", b, active=False)
    cluster.advance_time(1)
    assert Lifecycle.calls == []
    cluster.activate("t")
    cluster.advance_time(1)
    cluster.deactivate("t")
    cluster.advance_time(1)
    assert Lifecycle.calls == ["activate", "next_tuple", "deactivate"]
    cluster.activate("t")
    cluster.run_until_idle()
    cluster.kill("t")
    assert Lifecycle.calls[3:6] == ["activate", "next_tuple", "deactivate"]
    assert sorted(Lifecycle.calls[6:]) == ["cleanup", "close"]
    assert "t" not in cluster.topologies


def test_kill_with_a_wait_lets_tuples_in_flight_finish(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", ticked(("feed", feeder), ("slow", AckOnTick), tick_secs=1))
    feeder.feed([1], msg_id=1)
    cluster.run_until_idle()
    feeder.feed([2], msg_id=2)  # never emitted: the spout is deactivated first
    cluster.kill("t", wait_secs=2)
    assert feeder.tracker.acked == [1]
    assert feeder.pending_feeds() == 1


def test_topology_names_are_unique_per_cluster(cluster: LocalCluster) -> None:
    b = TopologyBuilder()
    b.set_spout("feed", FeederSpout(["v"]))
    cluster.submit("t", b)
    with pytest.raises(ValueError, match="a topology named 't' is already running"):
        cluster.submit("t", b)
    with pytest.raises(KeyError, match="no topology named 'u'"):
        cluster.kill("u")


def test_advance_time_needs_simulated_time() -> None:
    with LocalCluster() as real, pytest.raises(RuntimeError, match="simulated_time=True"):
        real.advance_time(1)


# -- streams and tuples ----------------------------------------------------------------------


class Splitter(Bolt):
    outputs = [Stream(["word"]), Stream(["word", "length"], name="long")]

    def process(self, tup: Any) -> None:
        for w in tup.values.line.split():
            self.emit([w])
            if len(w) > 3:
                self.emit([w, len(w)], stream="long")


class WhoSent(Bolt):
    outputs = ["component", "stream", "values"]

    def process(self, tup: Any) -> None:
        self.emit([tup.component, tup.stream, list(tup.values)])


def test_a_bolt_can_subscribe_to_several_streams_of_one_component() -> None:
    b = TopologyBuilder()
    b.set_spout("lines", Spout, outputs=["line"])
    b.set_bolt("split", Splitter).shuffle_grouping("lines")
    b.set_bolt("who", WhoSent).shuffle_grouping("split").fields_grouping("split", ["word"], "long")
    result = complete_topology(b, mock_sources={"lines": [["a longer line"]]})
    assert sorted(read_tuples(result, "who")) == [
        ["split", "default", ["a"]],
        ["split", "default", ["line"]],
        ["split", "default", ["longer"]],
        ["split", "long", ["line", 4]],
        ["split", "long", ["longer", 6]],
    ]


def test_a_delivered_tuple_is_its_values_with_named_fields() -> None:
    cls = values_class("split", "default", ("word", "count", "not an identifier", "values"), 7)
    t = cls.make(["dog", 2, "x", "v"])
    assert isinstance(t, Tuple) and isinstance(t, tuple)
    assert (t.component, t.stream, t.task) == ("split", "default", 7)
    assert t.values is t and t.values.word == "dog" and t.count == 2 and t[2] == "x"
    assert t.values[3] == "v"  # a field named like an attribute is reachable by index
    assert not t.is_tick and isinstance(t.id, str)
    assert repr(t).startswith("Values[split:default@7](word='dog', count=2")
    assert pickle.loads(pickle.dumps(t)) == ("dog", 2, "x", "v")
    assert (
        values_class("split", "default", ("word", "count", "not an identifier", "values"), 7) is cls
    )
