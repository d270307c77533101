"""The public test kit: FeederSpout, trackers, complete_topology, simulated time."""

from __future__ import annotations

import doctest
import threading
from typing import Any

import pytest
from tests.topologies import AckOnTick, ticked

import squall.testing
import squall.testing.complete
import squall.testing.feeder
import squall.testing.fixed
import squall.testing.simulated
from squall import Bolt, LocalCluster, Spout, Stream, Topology, TopologyBuilder
from squall.testing import (
    AckFailTracker,
    AckTracker,
    CompleteTopologyTimeout,
    FeederSpout,
    FixedTuple,
    FixedTupleSpout,
    advance_until,
    complete_topology,
    read_tuples,
    simulated_cluster,
    wait_until_quiescent,
)

pytestmark = pytest.mark.timeout(20)


class Words(Spout):
    outputs = ["word"]


class Upper(Bolt):
    outputs = ["word"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values.word.upper()])


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        pass


class Hold(Bolt):
    auto_ack = False

    def process(self, tup: Any) -> None:
        pass


class WordsUpper(Topology):
    words = Words.spec()
    upper = Upper.spec(inputs=[words])


def feeder_topology(feeder: Any, bolt: type[Bolt] = Sink, par: int = 1) -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("feed", feeder, par)
    b.set_bolt("bolt", bolt).shuffle_grouping("feed")
    return b


# -- docstring examples are part of the contract -------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        squall.testing,
        squall.testing.complete,
        squall.testing.feeder,
        squall.testing.fixed,
        squall.testing.simulated,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples_run(module: Any) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


# -- trackers -------------------------------------------------------------------------


def test_tracker_records_acks_and_fails_in_order() -> None:
    t = AckFailTracker()
    for i in range(3):
        t.ack(i)
    t.fail("x")
    assert t.acked == [0, 1, 2] and t.failed == ["x"]
    assert (t.num_acks, t.num_fails) == (3, 1)
    assert t.is_acked(1) and not t.is_acked("x") and t.is_failed("x")
    t.reset()
    assert t.acked == [] and t.failed == []


def test_tracker_accepts_acks_from_other_threads() -> None:
    t = AckTracker()
    threads = [threading.Thread(target=lambda: [t.ack(i) for i in range(500)]) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.num_acks == 2000


# -- FeederSpout ----------------------------------------------------------------------


def test_feeder_is_a_spout_class_with_the_given_fields() -> None:
    feeder = FeederSpout(["a", "b"])
    assert issubclass(feeder, Spout)
    assert feeder.outputs == ["a", "b"]
    assert FeederSpout(["a"]) is not FeederSpout(["a"])


def test_feeder_emits_what_the_test_feeds_and_tracks_acks(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    cluster.submit("t", feeder_topology(feeder))
    assert feeder.feed(["a"], msg_id=1) == 1
    cluster.run_until_idle()
    assert feeder.tracker.acked == [1]
    assert feeder.pending_feeds() == 0


def test_feeder_tuples_fed_after_the_spout_went_idle_are_emitted(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    cluster.submit("t", feeder_topology(feeder))
    cluster.advance_time(3)  # next_tuple found nothing: the spout is idle
    feeder.feed(["late"], msg_id="late")
    cluster.run_until_idle()
    assert feeder.tracker.acked == ["late"]


def test_feeder_without_msg_id_uses_a_fresh_uuid(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    cluster.submit("t", feeder_topology(feeder))
    ids = feeder.feed_many([["a"], ["b"]])
    cluster.run_until_idle()
    assert len(set(ids)) == 2 and all(isinstance(i, str) and len(i) == 36 for i in ids)
    assert feeder.tracker.acked == ids


def test_unreliable_feeds_are_never_acked(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    cluster.submit("t", feeder_topology(feeder, Upper))
    assert feeder.feed(["a"], reliable=False) is None
    cluster.run_until_idle()
    assert feeder.tracker.acked == [] and feeder.pending_feeds() == 0
    assert cluster.get("t").stats()["bolt"].executed == 1


def test_feeder_tasks_share_one_queue(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    cluster.submit("t", feeder_topology(feeder, par=3))
    ids = [feeder.feed([str(i)], msg_id=i) for i in range(30)]
    cluster.run_until_idle()
    assert sorted(feeder.tracker.acked) == ids


def test_feeder_timeouts_are_recorded_as_fails(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    cluster.submit("t", feeder_topology(feeder, Hold), {"topology.message.timeout.secs": 5})
    feeder.feed(["a"], msg_id="a")
    cluster.advance_time(10)
    assert feeder.tracker.failed == ["a"]


def test_feeder_sends_acks_to_a_delegate(cluster: LocalCluster) -> None:
    seen: list[tuple[str, Any]] = []

    class Delegate:
        def ack(self, msg_id: Any) -> None:
            seen.append(("ack", msg_id))

        def fail(self, msg_id: Any) -> None:
            seen.append(("fail", msg_id))

    feeder = FeederSpout(["word"])
    feeder.set_ack_fail_delegate(Delegate())
    cluster.submit("t", feeder_topology(feeder))
    feeder.feed(["a"], msg_id=9)
    cluster.run_until_idle()
    assert seen == [("ack", 9)]
    with pytest.raises(TypeError, match="ack"):
        feeder.set_ack_fail_delegate(object())  # type: ignore[arg-type]


def test_feeder_takes_a_tracker() -> None:
    tracker = AckFailTracker()
    assert FeederSpout(["a"], tracker=tracker).tracker is tracker


def test_feeding_the_wrong_number_of_values_names_the_fields() -> None:
    feeder = FeederSpout(["word", "count"])
    with pytest.raises(
        ValueError, match=r"1 value\(s\) \['a'\] for 2 field\(s\) \['word', 'count'\]"
    ):
        feeder.feed(["a"])
    with pytest.raises(TypeError, match="one value per field"):
        feeder.feed("ab")


def test_feeder_needs_fields_and_binding() -> None:
    with pytest.raises(TypeError, match="give the output field names"):
        FeederSpout()
    with pytest.raises(TypeError, match=r"call FeederSpout\(fields\) first"):
        FeederSpout.feed([1])
    with pytest.raises(TypeError, match="must be a list of names"):
        FeederSpout("word")


def test_feeder_refuses_to_run_in_another_process(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["word"])
    feeder._feed.pid = -1  # as if this class had been shipped to a worker process
    with pytest.raises(RuntimeError, match="works only in the process that created it"):
        cluster.submit("t", feeder_topology(feeder))


# -- complete_topology: results ------------------------------------------------------


def test_complete_topology_captures_spout_and_bolt_output_in_order() -> None:
    result = complete_topology(WordsUpper, mock_sources={"words": [["a"], ["b"], ["c"]]})
    assert read_tuples(result, "words") == [["a"], ["b"], ["c"]]
    assert result.read_tuples("upper") == [["A"], ["B"], ["C"]]
    assert result.acked == {"words": (0, 1, 2)} and result.failed == {"words": ()}
    assert sorted(t.component for t in result.tuples) == ["upper"] * 3 + ["words"] * 3


def test_complete_topology_leaves_the_topology_class_usable() -> None:
    complete_topology(WordsUpper, mock_sources={"words": [["a"]]})
    assert WordsUpper.definition().components["words"].cls is Words


class Router(Bolt):
    outputs = [
        Stream(["n"], name="even"),
        Stream(["n"], name="odd"),
        Stream(["n", "why"], name="direct", direct=True),
    ]

    def initialize(self, conf: Any, context: Any) -> None:
        self.target = context.get_component_tasks("direct-sink")[0]

    def process(self, tup: Any) -> None:
        n = tup.values.n
        self.emit([n], stream="even" if n % 2 == 0 else "odd")
        if n == 3:
            self.emit([n, "three"], stream="direct", direct_task=self.target)


class Nums(Spout):
    outputs = ["n"]


def router_topology() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("nums", Nums)
    b.set_bolt("router", Router).shuffle_grouping("nums")
    b.set_bolt("evens", Sink).shuffle_grouping("router", "even")
    b.set_bolt("direct-sink", Sink).direct_grouping("router", "direct")
    return b


def test_complete_topology_captures_every_stream_including_unsubscribed_and_direct() -> None:
    result = complete_topology(router_topology(), mock_sources={"nums": [[1], [2], [3], [4]]})
    assert read_tuples(result, "router", "even") == [[2], [4]]
    assert read_tuples(result, "router", "odd") == [[1], [3]]  # nobody subscribes
    assert read_tuples(result, "router", "direct") == [[3, "three"]]
    (direct,) = result.captured("router", "direct")
    assert direct.task == result.component_tasks["router"][0]


def test_read_tuples_names_unknown_components_and_streams() -> None:
    result = complete_topology(router_topology(), mock_sources={"nums": [[1]]})
    with pytest.raises(KeyError, match=r"no component 'rooter'.*router"):
        read_tuples(result, "rooter")
    with pytest.raises(KeyError, match=r"declares no stream 'default'.*direct, even, odd"):
        read_tuples(result, "router")
    with pytest.raises(KeyError, match=r"'evens' declares no stream 'default' \(streams: none\)"):
        read_tuples(result, "evens")
    assert read_tuples(result, "router", "even") == []  # declared, nothing emitted


def test_complete_topology_emits_fixed_tuples_on_named_streams() -> None:
    class TwoStreams(Spout):
        outputs = [Stream(["word"]), Stream(["b", "c"], name="other")]

    b = TopologyBuilder()
    b.set_spout("s", TwoStreams)
    b.set_bolt("sink", Upper, outputs=["word"]).shuffle_grouping("s")
    b.set_bolt("other", Sink).shuffle_grouping("s", "other")
    result = complete_topology(
        b, mock_sources={"s": [["x"], FixedTuple([1, 2], stream="other"), ["y"]]}
    )
    assert read_tuples(result, "s") == [["x"], ["y"]]
    assert read_tuples(result, "s", "other") == [[1, 2]]
    assert read_tuples(result, "sink") == [["X"], ["Y"]]


class Shouter(Bolt):
    """Overrides emit, as wrappers around the collector do."""

    outputs = ["word"]

    def emit(self, tup: Any, *args: Any, **kwargs: Any) -> Any:
        return super().emit([tup[0] + "!"], *args, **kwargs)

    def process(self, tup: Any) -> None:
        self.emit([tup.values.word])


def test_complete_topology_captures_emits_of_components_that_override_emit() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("shout", Shouter).shuffle_grouping("words")
    result = complete_topology(b, mock_sources={"words": [["hi"]]})
    assert read_tuples(result, "shout") == [["hi!"]]


def test_complete_topology_splits_fixed_tuples_over_spout_tasks() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words, 3)
    b.set_bolt("sink", Sink).shuffle_grouping("words")
    result = complete_topology(b, mock_sources={"words": [[str(i)] for i in range(7)]})
    by_task: dict[int, list[str]] = {}
    for t in result.captured("words"):
        by_task.setdefault(t.task, []).append(t.values[0])
    assert sorted(by_task.values()) == [["0", "3", "6"], ["1", "4"], ["2", "5"]]
    assert result.acked["words"] == tuple(range(7))


def test_complete_topology_reports_failed_mock_tuples() -> None:
    class FailOdd(Bolt):
        auto_ack = False

        def process(self, tup: Any) -> None:
            (self.fail if int(tup.values.word) % 2 else self.ack)(tup)

    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("f", FailOdd).shuffle_grouping("words")
    result = complete_topology(b, mock_sources={"words": [["0"], ["1"], ["2"], ["3"]]})
    assert result.acked["words"] == (0, 2)
    assert result.failed["words"] == (1, 3)


def test_complete_topology_waits_for_timeouts_of_trees_that_never_complete() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("hold", Hold).shuffle_grouping("words")
    result = complete_topology(
        b, mock_sources={"words": [["a"]]}, conf={"topology.message.timeout.secs": 10}
    )
    assert result.failed["words"] == (0,)
    assert 10 <= result.elapsed_secs <= 20


def test_complete_topology_moves_simulated_time_so_ticks_fire() -> None:
    b = ticked(("words", Words), ("batch", AckOnTick), tick_secs=5)
    result = complete_topology(b, mock_sources={"words": [["a"], ["b"]]})
    assert result.acked["words"] == (0, 1)
    assert result.elapsed_secs == 5


def test_complete_topology_without_ackers_acks_at_emit() -> None:
    result = complete_topology(
        WordsUpper,
        mock_sources={"words": [["a"], ["b"]]},
        conf={"topology.acker.executors": 0},
    )
    assert read_tuples(result, "upper") == [["A"], ["B"]]
    assert result.acked["words"] == (0, 1)


def test_complete_topology_is_repeatable_with_a_seed() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("upper", Upper, 4).shuffle_grouping("words")
    mocks = {"words": [[str(i)] for i in range(20)]}
    runs = [
        [(t.task, t.values) for t in complete_topology(b, mocks, seed=7).captured("upper")]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_complete_topology_passes_conf_to_components() -> None:
    class ConfBolt(Bolt):
        outputs = ["value"]

        def process(self, tup: Any) -> None:
            self.emit([self.conf.get(tup.values.word)])

    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("conf", ConfBolt).shuffle_grouping("words").add_configuration("fake.config2", 987)
    result = complete_topology(
        b,
        mock_sources={"words": [["fake.config"], ["fake.config2"], ["topology.workers"]]},
        conf={"fake.config": 123, "topology.workers": 3},
    )
    # The run is in-process: one worker, whatever the topology asks for.
    assert read_tuples(result, "conf") == [[123], [987], [1]]
    assert result.component_tasks["__acker"] == (1, 2, 3)


def test_complete_topology_keeps_errors_raised_by_user_code() -> None:
    class Boom(Bolt):
        def process(self, tup: Any) -> None:
            raise RuntimeError(f"boom on {tup.values.word}")

    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("boom", Boom).shuffle_grouping("words")
    result = complete_topology(b, mock_sources={"words": [["a"]]})
    (err,) = result.errors
    assert err.component == "boom" and "boom on a" in err.error
    assert result.failed["words"] == (0,)


def test_complete_topology_runs_unmocked_completable_spouts() -> None:
    feeder = FeederSpout(["word"])
    feeder.feed(["a"], msg_id="a")
    feeder.feed(["b"], msg_id="b")
    result = complete_topology(feeder_topology(feeder, Upper))
    assert read_tuples(result, "bolt") == [["A"], ["B"]]
    assert feeder.tracker.acked == ["a", "b"]


def test_fixed_tuple_spout_can_be_declared_directly() -> None:
    class T(Topology):
        words = FixedTupleSpout.spec(outputs=["word"], tuples=[["x"], ["y"]])
        upper = Upper.spec(inputs=[words])

    assert read_tuples(complete_topology(T), "upper") == [["X"], ["Y"]]


# -- complete_topology: errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mocks", "message"),
    [
        ({"wrds": [["a"]]}, r"has no component 'wrds' \(spouts: words\)"),
        ({"upper": [["a"]]}, "'upper' is a bolt; only spouts can be mocked"),
        ({"words": [["a", "b"]]}, r"mock_sources\['words'\]\[0\]: .*1 field\(s\) \['word'\]"),
        ({"words": [["a"], FixedTuple(["b"], "nope")]}, r"\[1\]: .*no stream 'nope'"),
        ({"words": ["abc"]}, r"mock_sources\['words'\]\[0\]: each tuple must be a list"),
        ({"words": "abc"}, r"mock_sources\['words'\] must be a list of tuples"),
    ],
)
def test_bad_mock_sources_are_named(mocks: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        complete_topology(WordsUpper, mock_sources=mocks)


def test_mocks_cannot_go_to_direct_streams() -> None:
    class DirectSpout(Spout):
        outputs = [Stream(["a"], direct=True)]

    b = TopologyBuilder()
    b.set_spout("d", DirectSpout)
    b.set_bolt("sink", Sink).direct_grouping("d")
    with pytest.raises(ValueError, match="is direct; fixed tuples cannot"):
        complete_topology(b, mock_sources={"d": [[1]]})


def test_unmocked_spouts_must_be_completable() -> None:
    with pytest.raises(ValueError, match=r"spout 'words' .*neither mocked nor completable"):
        complete_topology(WordsUpper)


def test_complete_topology_fails_fast_when_nothing_can_ever_finish() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("hold", Hold).shuffle_grouping("words")
    with pytest.raises(CompleteTopologyTimeout, match=r"no timer is pending.*1 not yet acked"):
        complete_topology(
            b,
            mock_sources={"words": [["a"]]},
            conf={"topology.enable.message.timeouts": False},
        )


def test_complete_topology_times_out_in_simulated_seconds() -> None:
    class TickHold(Hold):
        def process_tick(self, tup: Any) -> None:
            pass

    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("hold", TickHold).shuffle_grouping("words")
    with pytest.raises(CompleteTopologyTimeout, match="not finished after 50 simulated seconds"):
        complete_topology(
            b,
            mock_sources={"words": [["a"]]},
            conf={
                "topology.enable.message.timeouts": False,
                "topology.tick.tuple.freq.secs": 1,
            },
            timeout_secs=50,
        )


class PingPong(Bolt):
    """Sends every tuple back to itself forever: a cycle that never quiesces."""

    outputs = ["word"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values.word])


def test_complete_topology_stops_an_endless_cycle_at_the_wall_clock_timeout() -> None:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("ping", PingPong).shuffle_grouping("words").shuffle_grouping("ping")
    with pytest.raises(CompleteTopologyTimeout, match="still busy"):
        complete_topology(
            b,
            mock_sources={"words": [["a"]]},
            conf={"topology.acker.executors": 0},
            wall_timeout_secs=0.1,
        )


def test_complete_topology_rejects_invalid_config() -> None:
    from squall import InvalidTopologyError

    with pytest.raises(InvalidTopologyError, match=r"'topology.message.timeout.secs' must be"):
        complete_topology(
            WordsUpper,
            mock_sources={"words": [["a"]]},
            conf={"topology.message.timeout.secs": "soon"},
        )


# -- simulated time helpers -------------------------------------------------------------


def test_advance_until_reports_how_long_it_took(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["w"])
    cluster.submit("t", feeder_topology(feeder, Hold), {"topology.message.timeout.secs": 3})
    feeder.feed(["a"], msg_id=1)
    assert advance_until(cluster, lambda: feeder.tracker.is_failed(1)) == 6
    assert advance_until(cluster, lambda: True) == 0


def test_advance_until_gives_up_after_max_secs(cluster: LocalCluster) -> None:
    with pytest.raises(TimeoutError, match="still false after 5 simulated seconds"):
        advance_until(cluster, lambda: False, max_secs=5)
    assert cluster.clock.now() == 5
    with pytest.raises(ValueError, match="step must be > 0"):
        advance_until(cluster, lambda: False, step=0)


def test_advance_until_needs_simulated_time() -> None:
    with LocalCluster() as real, pytest.raises(RuntimeError, match="simulated-time cluster"):
        advance_until(real, lambda: True)


def test_wait_until_quiescent_on_simulated_time_runs_to_idle(cluster: LocalCluster) -> None:
    feeder = FeederSpout(["w"])
    cluster.submit("t", feeder_topology(feeder))
    feeder.feed(["a"], msg_id=1)
    wait_until_quiescent(cluster)
    assert feeder.tracker.acked == [1]


def test_wait_until_quiescent_on_real_time_waits_for_the_work_to_drain() -> None:
    feeder = FeederSpout(["word"])
    with LocalCluster() as real:
        real.submit("t", feeder_topology(feeder, Upper))
        ids = [feeder.feed([str(i)]) for i in range(100)]
        wait_until_quiescent(real, timeout_secs=10)
        assert feeder.pending_feeds() == 0
        assert sorted(feeder.tracker.acked) == sorted(ids)


def test_simulated_cluster_applies_daemon_conf() -> None:
    with simulated_cluster({"topology.message.timeout.secs": 2}) as c:
        feeder = FeederSpout(["w"])
        c.submit("t", feeder_topology(feeder, Hold))
        feeder.feed(["a"], msg_id=1)
        c.advance_time(4)
        assert feeder.tracker.failed == [1]


pytest_plugins = ["squall.testing.pytest_plugin"]


def test_the_pytest_plugin_gives_a_simulated_cluster(squall_cluster: LocalCluster) -> None:
    assert squall_cluster.clock.simulated
    feeder = FeederSpout(["w"])
    squall_cluster.submit("t", feeder_topology(feeder))
    feeder.feed(["a"], msg_id=1)
    squall_cluster.run_until_idle()
    assert feeder.tracker.acked == [1]
