"""Ports of Storm's own topology tests (TopologyIntegrationTest, TickTupleTest).

Each test names the Storm test it ports; the topologies and numbers are Storm's.
Everything runs in-process on simulated time.
"""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, Grouping, InvalidTopologyError, LocalCluster, Spout, TopologyBuilder
from squall.testing import FeederSpout, complete_topology, read_tuples

pytestmark = pytest.mark.timeout(20)


# -- components (Storm's testing components, in Python) ------------------------


class WordSpout(Spout):
    """Storm's TestWordSpout: only ever used mocked here."""

    outputs = ["word"]


class WordCounter(Bolt):
    """Storm's TestWordCounter: emits (word, running count)."""

    outputs = ["word", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: dict[str, int] = {}

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts[word] = self.counts.get(word, 0) + 1
        self.emit([word, self.counts[word]])


class GlobalCount(Bolt):
    """Storm's TestGlobalCount: emits how many tuples it has seen."""

    outputs = ["count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.n = 0

    def process(self, tup: Any) -> None:
        self.n += 1
        self.emit([self.n])


class AggregatesCounter(Bolt):
    """Storm's TestAggregatesCounter: emits the sum of the latest count per word."""

    outputs = ["agg-global"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.latest: dict[str, int] = {}

    def process(self, tup: Any) -> None:
        word, count = tup.values
        self.latest[word] = count
        self.emit([sum(self.latest.values())])


class IdentityBolt(Bolt):
    outputs = ["num"]

    def process(self, tup: Any) -> None:
        self.emit(list(tup.values))


class AckBolt(Bolt):
    def process(self, tup: Any) -> None:
        pass


class BranchingBolt(Bolt):
    """Emits ``branches`` tuples anchored to each input, then acks it."""

    outputs = ["num"]

    def __init__(self, branches: int) -> None:
        super().__init__()
        self.branches = branches

    def process(self, tup: Any) -> None:
        for i in range(self.branches):
            self.emit([i])


class AggBolt(Bolt):
    """Waits for ``amt`` tuples, emits one tuple anchored to all of them, acks them."""

    outputs = ["num"]
    auto_ack = False

    def __init__(self, amt: int) -> None:
        super().__init__()
        self.amt = amt
        self.seen: list[Any] = []

    def process(self, tup: Any) -> None:
        self.seen.append(tup)
        if len(self.seen) == self.amt:
            self.emit([1], anchors=self.seen)
            for t in self.seen:
                self.ack(t)
            self.seen = []


class DupAnchorBolt(Bolt):
    """Anchors one emit to the same input twice."""

    outputs = ["num"]
    auto_ack = False

    def process(self, tup: Any) -> None:
        self.emit([1], anchors=[tup, tup])
        self.ack(tup)


class AckEveryOtherBolt(Bolt):
    auto_ack = False

    def initialize(self, conf: Any, context: Any) -> None:
        self.state = True

    def process(self, tup: Any) -> None:
        if self.state:
            self.ack(tup)
        self.state = not self.state


def assert_num_acks(feeder: Any, n: int) -> None:
    """Storm's AckTrackingFeeder.assertNumAcks: check, then reset the count."""
    assert feeder.tracker.num_acks == n
    feeder.tracker.reset()


# -- completeTopology ------------------------------------------------------------


def test_basic_topology_counts_words_per_task_and_globally() -> None:
    """testBasicTopology."""
    b = TopologyBuilder()
    b.set_spout("1", WordSpout, 3)
    b.set_bolt("2", WordCounter, 4).fields_grouping("1", ["word"])
    b.set_bolt("3", GlobalCount).global_grouping("1")
    b.set_bolt("4", AggregatesCounter).global_grouping("2")
    result = complete_topology(
        b,
        mock_sources={"1": [["nathan"], ["bob"], ["joey"], ["nathan"]]},
        conf={"topology.workers": 2},
    )
    assert sorted(read_tuples(result, "1")) == [["bob"], ["joey"], ["nathan"], ["nathan"]]
    assert sorted(read_tuples(result, "2")) == [
        ["bob", 1],
        ["joey", 1],
        ["nathan", 1],
        ["nathan", 2],
    ]
    assert read_tuples(result, "3") == [[1], [2], [3], [4]]
    assert read_tuples(result, "4") == [[1], [2], [3], [4]]
    assert result.acked["1"] == (0, 1, 2, 3)


class EmitTaskIdBolt(Bolt):
    outputs = ["tid"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.index = context.task_index

    def process(self, tup: Any) -> None:
        self.emit([self.index])


def test_multi_tasks_per_executor_each_get_an_all_grouped_copy() -> None:
    """testMultiTasksPerCluster: 3 executors, 6 tasks, all grouping."""
    b = TopologyBuilder()
    b.set_spout("1", WordSpout)
    b.set_bolt("2", EmitTaskIdBolt, 3).all_grouping("1").add_configuration("topology.tasks", 6)
    result = complete_topology(b, mock_sources={"1": [["a"]]})
    assert sorted(read_tuples(result, "2")) == [[0], [1], [2], [3], [4], [5]]
    assert result.stats["2"].executors == 3
    assert result.stats["2"].tasks == 6


def test_validate_topology_structure_rejects_unknown_component_field_and_stream() -> None:
    """testValidateTopologystructure."""

    def word_count(source: str, fields: list[str], stream: str = "default") -> TopologyBuilder:
        b = TopologyBuilder()
        b.set_spout("1", WordSpout, 3)
        b.set_bolt("2", WordCounter, 4).fields_grouping(source, fields, stream)
        return b

    mocks = {"1": [["nathan"], ["bob"], ["joey"], ["nathan"]]}
    complete_topology(word_count("1", ["word"]), mock_sources=mocks)
    with pytest.raises(InvalidTopologyError, match="unknown component '3'"):
        complete_topology(word_count("3", ["word"]), mock_sources=mocks)
    with pytest.raises(InvalidTopologyError, match="field 'non-exists-field'"):
        complete_topology(word_count("1", ["non-exists-field"]), mock_sources=mocks)
    with pytest.raises(InvalidTopologyError, match="stream 'non-exists-stream'"):
        complete_topology(word_count("1", ["word"], "non-exists-stream"), mock_sources=mocks)


# -- acking (tracked topologies: run_until_idle is Storm's trackedWait) ----------


def test_acking_completes_trees_only_when_every_branch_is_acked(cluster: LocalCluster) -> None:
    """testAcking: branching bolts with multipliers 2/4/1 feed an aggregator of 3."""
    feeder1, feeder2, feeder3 = FeederSpout(["num"]), FeederSpout(["num"]), FeederSpout(["num"])
    b = TopologyBuilder()
    b.set_spout("1", feeder1)
    b.set_spout("2", feeder2)
    b.set_spout("3", feeder3)
    b.set_bolt("4", BranchingBolt, branches=2).shuffle_grouping("1")
    b.set_bolt("5", BranchingBolt, branches=4).shuffle_grouping("2")
    b.set_bolt("6", BranchingBolt, branches=1).shuffle_grouping("3")
    agg = b.set_bolt("7", AggBolt, amt=3)
    agg.shuffle_grouping("4").shuffle_grouping("5").shuffle_grouping("6")
    b.set_bolt("8", BranchingBolt, branches=2).shuffle_grouping("7")
    b.set_bolt("9", AckBolt).shuffle_grouping("8")
    cluster.submit("acking-test1", b)
    cluster.advance_time(11)

    feeder1.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder1, 0)
    feeder2.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder1, 1)
    assert_num_acks(feeder2, 1)
    feeder1.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder1, 0)
    feeder1.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder1, 1)
    feeder3.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder1, 0)
    assert_num_acks(feeder3, 0)
    feeder2.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder1, 1)
    assert_num_acks(feeder2, 1)
    assert_num_acks(feeder3, 1)


def test_ack_branching_waits_for_both_branches(cluster: LocalCluster) -> None:
    """testAckBranching: 2 identity bolts feed an aggregator of 4."""
    feeder = FeederSpout(["num"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", IdentityBolt).shuffle_grouping("1")
    b.set_bolt("3", IdentityBolt).shuffle_grouping("1")
    b.set_bolt("4", AggBolt, amt=4).shuffle_grouping("2").shuffle_grouping("3")
    cluster.submit("test-acking2", b)
    cluster.advance_time(11)
    feeder.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder, 0)
    feeder.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder, 2)


def test_acking_self_anchor_acks_each_tree_once(cluster: LocalCluster) -> None:
    """testAckingSelfAnchor: one emit anchored twice to the same input."""
    feeder = FeederSpout(["num"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", DupAnchorBolt).shuffle_grouping("1")
    b.set_bolt("3", AckBolt).shuffle_grouping("2")
    cluster.submit("test", b)
    cluster.advance_time(11)
    feeder.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder, 1)
    feeder.feed([1])
    feeder.feed([1])
    feeder.feed([1])
    cluster.run_until_idle()
    assert_num_acks(feeder, 3)


class NeverAckBolt(Bolt):
    auto_ack = False

    def process(self, tup: Any) -> None:
        pass


def test_self_anchored_child_keeps_the_tree_open_until_it_is_acked(
    cluster: LocalCluster,
) -> None:
    """The child of a doubly anchored emit is still tracked (an edge per anchor, as Storm)."""
    feeder = FeederSpout(["num"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", DupAnchorBolt).shuffle_grouping("1")
    b.set_bolt("3", NeverAckBolt).shuffle_grouping("2")
    cluster.submit("test", b, {"topology.message.timeout.secs": 10})
    feeder.feed([1], msg_id="t")
    cluster.run_until_idle()
    assert feeder.tracker.acked == []
    cluster.advance_time(20)
    assert feeder.tracker.failed == ["t"]


class FailBolt(Bolt):
    auto_ack = False

    def process(self, tup: Any) -> None:
        self.fail(tup)


def test_failing_an_aggregated_child_fails_every_root_it_descends_from(
    cluster: LocalCluster,
) -> None:
    """A child anchored to two tuples of the same tree still carries that tree."""
    feeder = FeederSpout(["num"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", BranchingBolt, branches=2).shuffle_grouping("1")
    b.set_bolt("3", AggBolt, amt=2).shuffle_grouping("2")
    b.set_bolt("4", FailBolt).shuffle_grouping("3")
    cluster.submit("test", b)
    feeder.feed([1], msg_id="root")
    cluster.run_until_idle()
    assert feeder.tracker.acked == []
    assert feeder.tracker.failed == ["root"]


# -- timeouts -----------------------------------------------------------------


def test_timeout_fails_the_unacked_tuple_between_t_and_2t(cluster: LocalCluster) -> None:
    """testTimeout: timeout 10 s, AckEveryOtherBolt."""
    feeder = FeederSpout(["field1"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", AckEveryOtherBolt).global_grouping("1")
    cluster.submit("timeout-tester", b, {"topology.message.timeout.secs": 10})
    cluster.advance_time(11)
    feeder.feed(["a"], msg_id=1)
    feeder.feed(["b"], msg_id=2)
    feeder.feed(["c"], msg_id=3)
    cluster.advance_time(9)
    assert feeder.tracker.acked == [1, 3]
    assert not feeder.tracker.is_failed(2)
    cluster.advance_time(12)
    assert feeder.tracker.failed == [2]


class ResetTimeoutBolt(Bolt):
    """Storm's ResetTimeoutBolt: keeps the first tuple alive with reset_timeout."""

    auto_ack = False

    def initialize(self, conf: Any, context: Any) -> None:
        self.counter = 1
        self.first: Any = None

    def process(self, tup: Any) -> None:
        if self.counter == 1:
            self.first = tup
        elif self.counter == 2:
            self.reset_timeout(self.first)
        elif self.counter == 5:
            self.ack(self.first)
            self.ack(tup)
        else:
            self.reset_timeout(self.first)
            self.ack(tup)
        self.counter += 1


def test_reset_timeout_keeps_a_tuple_alive_past_twice_the_timeout(cluster: LocalCluster) -> None:
    """testResetTimeout."""
    feeder = FeederSpout(["field1"])
    tracker = feeder.tracker
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", ResetTimeoutBolt).global_grouping("1")
    cluster.submit("reset-timeout-tester", b, {"topology.message.timeout.secs": 10})
    feeder.feed(["a"], msg_id=1)  # kept alive by resets
    feeder.feed(["b"], msg_id=2)  # never acked: times out
    cluster.advance_time(9)
    feeder.feed(["c"], msg_id=3)
    cluster.run_until_idle()
    assert tracker.is_acked(3)
    cluster.advance_time(9)
    feeder.feed(["d"], msg_id=4)
    cluster.run_until_idle()
    assert tracker.is_acked(4)
    cluster.advance_time(2)
    assert tracker.failed == [2]
    feeder.feed(["e"], msg_id=5)
    cluster.run_until_idle()
    assert tracker.is_acked(5)
    assert not tracker.is_failed(1)
    assert tracker.is_acked(1)


# -- lifecycle ------------------------------------------------------------------

SEEN: dict[str, bool] = {}


class OpenTrackedSpout(Spout):
    outputs = ["val"]

    def next_tuple(self) -> None:
        SEEN["spout"] = True


class PrepareTrackedBolt(Bolt):
    def process(self, tup: Any) -> None:
        SEEN["bolt"] = True


def test_submit_inactive_topology_runs_nothing_until_activated(cluster: LocalCluster) -> None:
    """testSubmitInactiveTopology."""
    SEEN.clear()
    feeder = FeederSpout(["field1"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_spout("2", OpenTrackedSpout)
    b.set_bolt("3", PrepareTrackedBolt).global_grouping("1")
    cluster.submit("test", b, {"topology.message.timeout.secs": 10}, active=False)
    cluster.advance_time(11)
    feeder.feed(["a"], msg_id=1)
    cluster.advance_time(9)
    assert SEEN == {}
    cluster.activate("test")
    cluster.advance_time(12)
    assert feeder.tracker.acked == [1]
    assert SEEN == {"spout": True, "bolt": True}


# -- ticks ----------------------------------------------------------------------


class TickRecorder(Bolt):
    ticks: list[tuple[float, Any]] = []
    others: list[Any] = []

    def process(self, tup: Any) -> None:
        TickRecorder.others.append(tup)

    def process_tick(self, tup: Any) -> None:
        TickRecorder.ticks.append((self.clock(), tup))


def test_tick_tuples_arrive_every_interval_and_nothing_else(cluster: LocalCluster) -> None:
    """TickTupleTest: ticks every 30 s, correctly spaced, no non-tick tuples."""
    TickRecorder.ticks = []
    TickRecorder.others = []
    TickRecorder.clock = staticmethod(cluster.clock.now)  # type: ignore[attr-defined]
    feeder = FeederSpout(["a"])
    b = TopologyBuilder()
    b.set_spout("1", feeder)
    b.set_bolt("2", TickRecorder).shuffle_grouping("1")
    cluster.submit("ticks", b, {"topology.tick.tuple.freq.secs": 30})
    cluster.advance_time(95, step=5)
    times = [t for t, _ in TickRecorder.ticks]
    assert times == [30.0, 60.0, 90.0]
    assert TickRecorder.others == []
    tick = TickRecorder.ticks[0][1]
    assert tick.is_tick
    assert (tick.component, tick.stream, tick.task) == ("__system", "__tick", -1)
    assert tick.values.rate_secs == 30


def test_fields_grouping_sends_every_word_to_one_task() -> None:
    """GroupingIntegrationTest: fields grouping yields the expected per-key counts."""

    class TaggedCounter(WordCounter):
        outputs = ["word", "count", "task"]

        def initialize(self, conf: Any, context: Any) -> None:
            super().initialize(conf, context)
            self.task = context.task_id

        def process(self, tup: Any) -> None:
            word = tup.values.word
            self.counts[word] = self.counts.get(word, 0) + 1
            self.emit([word, self.counts[word], self.task])

    b = TopologyBuilder()
    b.set_spout("words", WordSpout, 2)
    b.set_bolt("count", TaggedCounter, 4).grouping("words", Grouping.fields("word"))
    words = ["a", "b", "c", "a", "d", "a", "b", "e", "f", "a"] * 3
    result = complete_topology(b, mock_sources={"words": [[w] for w in words]})
    out = read_tuples(result, "count")
    tasks_of: dict[str, set[int]] = {}
    final: dict[str, int] = {}
    for word, count, task in out:
        tasks_of.setdefault(word, set()).add(task)
        final[word] = max(final.get(word, 0), count)
    assert all(len(t) == 1 for t in tasks_of.values())
    assert final == {w: words.count(w) for w in set(words)}
