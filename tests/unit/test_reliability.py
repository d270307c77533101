"""At-least-once processing: acking, anchoring, fails, timeouts, max spout pending.

storm-spec §1.4. Everything runs on simulated time; ``run_until_idle`` is the
point where every tuple in flight has been processed.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.topologies import AckOnTick, ticked

from squall import Bolt, FailedError, LocalCluster, Spout, Stream, TopologyBuilder
from squall.testing import FeederSpout, complete_topology, read_tuples

pytestmark = pytest.mark.timeout(20)


class Relay(Bolt):
    """Emits its input again (anchored to it by default), then is auto-acked."""

    outputs = ["v"]

    def process(self, tup: Any) -> None:
        self.emit(list(tup.values))


class Unanchored(Bolt):
    outputs = ["v"]

    def process(self, tup: Any) -> None:
        self.emit(list(tup.values), anchors=[])


class Hold(Bolt):
    """Never acks: keeps every tuple it gets in ``held``."""

    auto_ack = False
    held: list[Any] = []

    def process(self, tup: Any) -> None:
        Hold.held.append(tup)


class Fail(Bolt):
    auto_ack = False

    def process(self, tup: Any) -> None:
        self.fail(tup)


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


def chain(feeder: Any, *bolts: type[Bolt]) -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    prev = "feed"
    for i, bolt in enumerate(bolts):
        name = f"b{i}"
        b.set_bolt(name, bolt).shuffle_grouping(prev)
        prev = name
    return b


@pytest.fixture(autouse=True)
def _clear_held() -> None:
    Hold.held = []


# -- acking basics ----------------------------------------------------------------------


class AckPrevious(Bolt):
    """Acks each tuple only when the next one arrives."""

    auto_ack = False

    def initialize(self, conf: Any, context: Any) -> None:
        self.previous: Any = None

    def process(self, tup: Any) -> None:
        if self.previous is not None:
            self.ack(self.previous)
        self.previous = tup


def test_a_tree_is_acked_once_every_bolt_acked_its_tuple(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", chain(feeder, Relay, Relay, AckPrevious))
    feeder.feed([1], msg_id="first")
    cluster.run_until_idle()
    assert feeder.tracker.acked == []
    feeder.feed([2], msg_id="second")
    cluster.run_until_idle()
    assert feeder.tracker.acked == ["first"]


def test_a_fail_anywhere_in_the_tree_fails_the_spout_tuple(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", chain(feeder, Relay, Relay, Fail))
    feeder.feed([1], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.failed == ["m"] and feeder.tracker.acked == []


def test_unanchored_emits_leave_the_tree(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", chain(feeder, Unanchored, Fail))
    feeder.feed([1], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.acked == ["m"] and feeder.tracker.failed == []


def test_emits_without_a_message_id_are_never_tracked(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", chain(feeder, Fail))
    feeder.feed([1], reliable=False)
    cluster.run_until_idle()
    assert feeder.tracker.acked == [] and feeder.tracker.failed == []
    assert cluster.get("t").stats()["b0"].executed == 1


def test_without_ackers_the_spout_is_acked_inside_emit() -> None:
    calls: list[str] = []

    class Reliable(Spout):
        outputs = ["v"]
        done = False

        def next_tuple(self) -> None:
            if not self.done:
                self.done = True
                self.emit([1], tup_id="m")
                calls.append("emit returned")

        def ack(self, tup_id: Any) -> None:
            calls.append(f"ack {tup_id}")

        def is_exhausted(self) -> bool:
            return self.done

    b = TopologyBuilder()
    b.set_spout("s", Reliable)
    b.set_bolt("fail", Fail).shuffle_grouping("s")
    complete_topology(b, conf={"topology.acker.executors": 0})
    assert calls == ["ack m", "emit returned"]


def test_a_spout_tuple_nobody_subscribes_to_is_acked_at_once(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    cluster.submit("t", b)
    feeder.feed([1], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.acked == ["m"]


# -- anchoring ----------------------------------------------------------------------------


class Join(Bolt):
    """Emits one tuple anchored to the last two inputs, then acks them."""

    outputs = ["v"]
    auto_ack = False

    def initialize(self, conf: Any, context: Any) -> None:
        self.pending: list[Any] = []

    def process(self, tup: Any) -> None:
        self.pending.append(tup)
        if len(self.pending) == 2:
            a, b = self.pending
            self.emit([a.values[0] + b.values[0]], anchors=[a, b])
            self.ack(a)
            self.ack(b)
            self.pending = []


def join_topology(feeder: Any, downstream: type[Bolt]) -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("join", Join).global_grouping("feed")
    b.set_bolt("down", downstream).shuffle_grouping("join")
    return b


def test_multi_anchored_child_fails_both_roots(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", join_topology(feeder, Fail))
    feeder.feed([1], msg_id="a")
    feeder.feed([2], msg_id="b")
    cluster.run_until_idle()
    assert sorted(feeder.tracker.failed) == ["a", "b"] and feeder.tracker.acked == []


def test_multi_anchored_child_acks_both_roots(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", join_topology(feeder, Sink))
    feeder.feed([1], msg_id="a")
    cluster.run_until_idle()
    assert feeder.tracker.acked == []
    feeder.feed([2], msg_id="b")
    cluster.run_until_idle()
    assert sorted(feeder.tracker.acked) == ["a", "b"]


def test_multi_anchored_child_holds_both_roots_open(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", join_topology(feeder, Hold), {"topology.message.timeout.secs": 5})
    feeder.feed([1], msg_id="a")
    feeder.feed([2], msg_id="b")
    cluster.run_until_idle()
    assert feeder.tracker.acked == [] and Hold.held[0].values == (3,)
    cluster.advance_time(10)
    assert sorted(feeder.tracker.failed) == ["a", "b"]


class AnchorAfterAck(Bolt):
    outputs = ["v"]
    auto_ack = False

    def process(self, tup: Any) -> None:
        self.ack(tup)
        self.emit([1], anchors=[tup])


def test_anchoring_to_an_acked_tuple_is_an_error_naming_the_bolt() -> None:
    b = TopologyBuilder()
    b.set_spout("s", Spout, outputs=["v"])
    b.set_bolt("late", AnchorAfterAck).shuffle_grouping("s")
    b.set_bolt("sink", Sink).shuffle_grouping("late")
    result = complete_topology(b, mock_sources={"s": [[1]]})
    (err,) = result.errors
    assert "component 'late'" in err.error
    assert "anchored to a tuple that was already acked or failed" in err.error


class AckTwiceThenFail(Bolt):
    auto_ack = False

    def process(self, tup: Any) -> None:
        self.ack(tup)
        self.ack(tup)
        self.fail(tup)


def test_acking_or_failing_a_tuple_again_is_ignored(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit("t", chain(feeder, AckTwiceThenFail))
    feeder.feed([1], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.acked == ["m"] and feeder.tracker.failed == []
    stats = cluster.get("t").stats()["b0"]
    assert (stats.acked, stats.failed) == (1, 0)


class FailedErrorBolt(Bolt):
    def process(self, tup: Any) -> None:
        raise FailedError("not now")


def test_failed_error_fails_the_tuple_without_reporting_an_error(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    run = cluster.submit("t", chain(feeder, FailedErrorBolt))
    feeder.feed([1], msg_id="m")
    cluster.run_until_idle()
    assert feeder.tracker.failed == ["m"]
    assert run.errors == [] and run.stats()["b0"].errors == 0


# -- timeouts ---------------------------------------------------------------------------


def test_an_ack_after_the_timeout_has_no_effect(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    b = ticked(("feed", feeder), ("b0", AckOnTick), tick_secs=12)
    run = cluster.submit("t", b, {"topology.message.timeout.secs": 5})
    feeder.feed([1], msg_id="m")
    cluster.advance_time(11)
    assert feeder.tracker.failed == ["m"]
    cluster.advance_time(2)  # the bolt acks at 12 s
    assert run.stats()["b0"].acked == 1
    assert feeder.tracker.acked == [] and feeder.tracker.failed == ["m"]


def test_timeouts_can_be_turned_off(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    cluster.submit(
        "t",
        chain(feeder, Hold),
        {"topology.message.timeout.secs": 5, "topology.enable.message.timeouts": False},
    )
    feeder.feed([1], msg_id="m")
    cluster.advance_time(60, step=5)
    assert feeder.tracker.failed == []


class ResetThenAck(Bolt):
    """Resets the timeout of every tuple on each tick; acks it on the third tick."""

    auto_ack = False

    def initialize(self, conf: Any, context: Any) -> None:
        self.held: list[Any] = []
        self.ticks = 0

    def process(self, tup: Any) -> None:
        self.held.append(tup)

    def process_tick(self, tup: Any) -> None:
        self.ticks += 1
        for t in self.held:
            if self.ticks == 3:
                self.ack(t)
            else:
                self.reset_timeout(t)
        if self.ticks == 3:
            self.held = []


def test_reset_timeout_on_every_tick_keeps_a_slow_tuple_alive(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["v"])
    b = ticked(("feed", feeder), ("slow", ResetThenAck), tick_secs=4)
    cluster.submit("t", b, {"topology.message.timeout.secs": 5})
    feeder.feed([1], msg_id="m")
    cluster.advance_time(13, step=0.5)
    assert feeder.tracker.acked == ["m"] and feeder.tracker.failed == []


# -- max spout pending --------------------------------------------------------------------


class Endless(Spout):
    outputs = ["v"]
    emitted: dict[int, int] = {}

    def initialize(self, conf: Any, context: Any) -> None:
        self.task = context.task_id
        Endless.emitted[self.task] = 0

    def next_tuple(self) -> None:
        Endless.emitted[self.task] += 1
        self.emit([Endless.emitted[self.task]], tup_id=Endless.emitted[self.task])


def test_max_spout_pending_caps_the_trees_in_flight_per_task(cluster: LocalCluster) -> None:
    Endless.emitted = {}
    b = TopologyBuilder()
    b.set_spout("s", Endless, 2)
    b.set_bolt("hold", Hold).shuffle_grouping("s")
    cluster.submit("t", b, {"topology.max.spout.pending": 5, "topology.message.timeout.secs": 10})
    cluster.advance_time(3)
    assert Endless.emitted == {3: 5, 4: 5}  # __acker 1, hold 2, s 3-4
    assert len(Hold.held) == 10
    # Once the held trees time out, each task may emit 5 more.
    cluster.advance_time(20)
    assert Endless.emitted == {3: 10, 4: 10}


class Bounded(Spout):
    """Emits 50 reliable tuples and records the most trees it ever had in flight."""

    outputs = ["v"]
    most_in_flight = 0

    def initialize(self, conf: Any, context: Any) -> None:
        self.n = 0
        self.done = 0
        Bounded.most_in_flight = 0

    def next_tuple(self) -> None:
        if self.n < 50:
            self.n += 1
            self.emit([self.n], tup_id=self.n)
            Bounded.most_in_flight = max(Bounded.most_in_flight, self.n - self.done)

    def ack(self, tup_id: Any) -> None:
        self.done += 1

    def fail(self, tup_id: Any) -> None:
        self.done += 1

    def is_exhausted(self) -> bool:
        return self.n >= 50 and self.done == 50


@pytest.mark.parametrize("bolt", [Sink, Fail])
def test_max_spout_pending_frees_a_slot_per_finished_tree(bolt: type[Bolt]) -> None:
    b = TopologyBuilder()
    b.set_spout("s", Bounded)
    b.set_bolt("b", bolt).shuffle_grouping("s")
    result = complete_topology(b, conf={"topology.max.spout.pending": 3})
    assert len(read_tuples(result, "s")) == 50
    assert Bounded.most_in_flight == 3


def test_max_spout_pending_has_no_effect_without_ackers() -> None:
    b = TopologyBuilder()
    b.set_spout("s", Bounded)
    b.set_bolt("hold", Hold).shuffle_grouping("s")
    result = complete_topology(
        b, conf={"topology.max.spout.pending": 1, "topology.acker.executors": 0}
    )
    assert len(read_tuples(result, "s")) == 50
    assert Bounded.most_in_flight == 0  # each tuple is acked inside its emit


# -- stats ----------------------------------------------------------------------------------


class TwoOut(Bolt):
    outputs = [Stream(["v"]), Stream(["v"], name="side")]

    def process(self, tup: Any) -> None:
        self.emit(list(tup.values))
        self.emit(list(tup.values), stream="side")


def test_stats_count_emits_transfers_executions_acks_and_fails() -> None:
    b = TopologyBuilder()
    b.set_spout("s", Spout, outputs=["v"])
    b.set_bolt("two", TwoOut).shuffle_grouping("s")
    b.set_bolt("all", Sink, 3).all_grouping("two")
    b.set_bolt("fail", Fail).shuffle_grouping("two", "side")
    result = complete_topology(b, mock_sources={"s": [[1], [2]]})
    two, everyone, fail = result.stats["two"], result.stats["all"], result.stats["fail"]
    assert (two.emitted, two.transferred, two.executed, two.acked) == (4, 8, 2, 2)
    assert two.emitted_by_stream == {"default": 2, "side": 2}
    assert (everyone.executed, everyone.acked) == (6, 6)
    assert (fail.executed, fail.failed) == (2, 2)
    assert result.failed["s"] == (0, 1)
    spout = result.stats["s"]
    assert (spout.emitted, spout.transferred, spout.failed) == (2, 2, 2)


class Boom(Bolt):
    def process(self, tup: Any) -> None:
        raise ValueError("boom")


class ExplicitAck(Bolt):
    def process(self, tup: Any) -> None:
        self.ack(tup)


@pytest.mark.parametrize("ackers", [0, 1])
def test_a_tuple_whose_process_raised_counts_as_failed_not_acked(ackers: int) -> None:
    b = TopologyBuilder()
    b.set_spout("s", Spout, outputs=["v"])
    b.set_bolt("boom", Boom).shuffle_grouping("s")
    result = complete_topology(
        b, mock_sources={"s": [[1], [2]]}, conf={"topology.acker.executors": ackers}
    )
    stats = result.stats["boom"]
    assert (stats.acked, stats.failed, stats.errors) == (0, 2, 2)


@pytest.mark.parametrize("ackers", [0, 1])
def test_an_explicit_ack_under_auto_ack_counts_once(ackers: int) -> None:
    b = TopologyBuilder()
    b.set_spout("s", Spout, outputs=["v"])
    b.set_bolt("x", ExplicitAck).shuffle_grouping("s")
    result = complete_topology(
        b, mock_sources={"s": [[1], [2]]}, conf={"topology.acker.executors": ackers}
    )
    assert result.stats["x"].acked == 2
