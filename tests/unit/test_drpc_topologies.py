"""DRPC topologies on simulated time (Storm's DRPCIntegrationTest, ported).

Requests go through a LocalDRPC on the cluster's clock; ``execute_async`` gives
a future, the cluster runs until idle, and the future holds the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from squall import Bolt, FailedError, Grouping, LocalCluster, Stream, TopologyBuilder
from squall.api.errors import InvalidTopologyError
from squall.api.topology import TopologyDef
from squall.drpc import (
    COORDINATED_STREAM,
    BatchBolt,
    DRPCErrorType,
    DRPCExecutionError,
    DRPCSpout,
    DRPCTopology,
    LinearDRPCTopologyBuilder,
    LocalDRPC,
    ReturnResults,
)
from squall.drpc.linear import PREPARE_ID

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(simulated_time=True) as c:
        yield c


@pytest.fixture
def drpc(cluster: LocalCluster) -> Iterator[LocalDRPC]:
    with LocalDRPC({"drpc.request.timeout.secs": 100}, clock=cluster.clock) as d:
        yield d


def call(cluster: LocalCluster, drpc: LocalDRPC, function: str, *args: str) -> list[Any]:
    """Submit every call, run the cluster until idle; return results (or the errors)."""
    futures = [drpc.execute_async(function, a) for a in args]
    cluster.run_until_idle()
    out: list[Any] = []
    for f in futures:
        try:
            out.append(f.result(0))
        except DRPCExecutionError as e:
            out.append(e)
    return out


# -- testDrpcFlow: DRPCSpout -> bolt -> ReturnResults, in any topology --------------------


class ExclaimWithReturnInfo(Bolt):
    outputs = ["result", "return-info"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values.args + "!!!", tup.values[1]])


def flow_topology(drpc: LocalDRPC, function: str = "test") -> TopologyDef:
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function=function, drpc=drpc)
    b.set_bolt("1", ExclaimWithReturnInfo, 3).shuffle_grouping("spout")
    b.set_bolt("2", ReturnResults, 3).none_grouping("1")
    return b.create_topology("flow")


def test_drpc_flow_returns_the_bolts_result(cluster: LocalCluster, drpc: LocalDRPC) -> None:
    cluster.submit("flow", flow_topology(drpc))
    assert call(cluster, drpc, "test", "aaa", "b") == ["aaa!!!", "b!!!"]


def test_the_spout_emits_args_and_storms_return_info(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    seen: list[tuple[Any, ...]] = []

    class Capture(Bolt):
        outputs = ["result", "return-info"]

        def process(self, tup: Any) -> None:
            seen.append(tuple(tup.values))
            self.emit([tup.values[0], tup.values[1]])

    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="f", drpc=drpc.service_id)
    b.set_bolt("capture", Capture).shuffle_grouping("spout")
    b.set_bolt("return", ReturnResults).shuffle_grouping("capture")
    cluster.submit("t", b)
    assert call(cluster, drpc, "f", "x") == ["x"]
    import json

    (args, info) = seen[0]
    assert args == "x"
    assert set(json.loads(info)) == {"id", "host", "port"}
    assert json.loads(info)["host"] == drpc.service_id and json.loads(info)["port"] == 0


def test_a_request_for_another_function_is_not_fetched(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    cluster.submit("flow", flow_topology(drpc, "test"))
    fut = drpc.execute_async("other", "x")
    cluster.run_until_idle()
    assert not fut.done()
    assert drpc.service.queued("other") == 1


def test_hundreds_of_requests_in_flight_each_get_their_own_answer(
    cluster: LocalCluster,
) -> None:
    with LocalDRPC({"drpc.queue.size": 1000}, clock=cluster.clock) as drpc:
        cluster.submit("flow", flow_topology(drpc))
        args = [f"req-{i}" for i in range(500)]
        assert call(cluster, drpc, "test", *args) == [a + "!!!" for a in args]


class Explode(Bolt):
    outputs = ["result", "return-info"]

    def process(self, tup: Any) -> None:
        if tup.values.args == "bad":
            raise ValueError("cannot handle 'bad'")
        self.emit([tup.values.args, tup.values[1]])


def test_a_request_whose_tuple_fails_gets_failed_request_at_once(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="f", drpc=drpc)
    b.set_bolt("explode", Explode).shuffle_grouping("spout")
    b.set_bolt("return", ReturnResults).shuffle_grouping("explode")
    run = cluster.submit("t", b)
    good, bad = call(cluster, drpc, "f", "good", "bad")
    assert good == "good"
    assert isinstance(bad, DRPCExecutionError) and bad.type is DRPCErrorType.FAILED_REQUEST
    assert bad.status == 400
    assert [e.component for e in run.errors] == ["explode"]


class Swallow(Bolt):
    """Never acks, never emits: a hung topology."""

    auto_ack = False
    outputs = ["result", "return-info"]


def hung_topology(drpc: LocalDRPC) -> TopologyDef:
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="f", drpc=drpc)
    b.set_bolt("swallow", Swallow).shuffle_grouping("spout")
    b.set_bolt("return", ReturnResults).shuffle_grouping("swallow")
    return b.create_topology("hung")


def test_a_hung_topology_gets_server_timeout_after_the_drpc_timeout(
    cluster: LocalCluster,
) -> None:
    with LocalDRPC({"drpc.request.timeout.secs": 5}, clock=cluster.clock) as drpc:
        cluster.submit("hung", hung_topology(drpc), {"topology.message.timeout.secs": 60})
        fut = drpc.execute_async("f", "x")
        cluster.advance_time(4)
        drpc.reap()
        assert not fut.done()
        cluster.advance_time(2)
        drpc.reap()
        with pytest.raises(DRPCExecutionError) as info:
            fut.result(0)
        assert info.value.type is DRPCErrorType.SERVER_TIMEOUT and info.value.status == 504


def test_a_tuple_tree_that_times_out_fails_the_request_before_the_drpc_timeout(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    cluster.submit("hung", hung_topology(drpc), {"topology.message.timeout.secs": 3})
    fut = drpc.execute_async("f", "x")
    cluster.advance_time(7)
    with pytest.raises(DRPCExecutionError) as info:
        fut.result(0)
    assert info.value.type is DRPCErrorType.FAILED_REQUEST


def test_shutting_down_the_drpc_server_fails_pending_requests(cluster: LocalCluster) -> None:
    drpc = LocalDRPC(clock=cluster.clock)
    cluster.submit("hung", hung_topology(drpc))
    fut = drpc.execute_async("f", "x")
    cluster.run_until_idle()
    drpc.shutdown()
    with pytest.raises(DRPCExecutionError) as info:
        fut.result(0)
    assert info.value.type is DRPCErrorType.SERVER_SHUTDOWN
    # The topology's late result for the dead server is dropped without an error.
    cluster.run_until_idle()


def test_return_results_fails_tuples_with_unparsable_return_info(cluster: LocalCluster) -> None:
    from squall.testing import FeederSpout

    feeder = FeederSpout(["result", "return-info"])
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("return", ReturnResults).shuffle_grouping("feed")
    run = cluster.submit("t", b)
    feeder.feed(["r", "not json"], msg_id=1)
    cluster.run_until_idle()
    assert feeder.tracker.failed == [1]
    assert "unparsable return-info" in run.errors[0].error


# -- testDrpcBuilder: LinearDRPCTopologyBuilder ----------------------------------------


class Exclaim(Bolt):
    outputs = ["id", "result"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values[0], tup.values[1] + "!!!"])


def test_drpc_builder_serves_a_one_bolt_function(cluster: LocalCluster, drpc: LocalDRPC) -> None:
    builder = LinearDRPCTopologyBuilder("exclamation")
    builder.add_bolt(Exclaim, 3)
    cluster.submit("x", builder.create_local_topology(drpc))
    assert call(cluster, drpc, "exclamation", "aaa", "bbb") == ["aaa!!!", "bbb!!!"]


def test_the_builder_makes_storms_shape() -> None:
    builder = LinearDRPCTopologyBuilder("f")
    builder.add_bolt(Exclaim, 2)
    builder.add_bolt(Exclaim, 3).shuffle_grouping()
    d = builder.create_topology()
    comps = d.components
    assert sorted(comps) == ["bolt0", "bolt1", "bolt2", "bolt3", PREPARE_ID, "spout"]
    assert comps["spout"].cls is DRPCSpout and comps["spout"].kwargs["function"] == "f"
    assert sorted(comps[PREPARE_ID].outputs) == ["default", "id", "ret"]
    assert [str(s) for s, _ in comps["bolt0"].inputs] == ["prepare-request:default"]
    assert comps["bolt0"].inputs[0][1] == Grouping.NONE
    inputs1 = {str(s): g for s, g in comps["bolt1"].inputs}
    assert inputs1 == {
        "bolt0:default": Grouping.SHUFFLE,
        f"bolt0:{COORDINATED_STREAM}": Grouping.DIRECT,
    }
    assert comps["bolt1"].outputs[COORDINATED_STREAM].direct
    join = {str(s): g for s, g in comps["bolt2"].inputs}
    assert join == {
        "bolt1:default": Grouping.fields("id"),
        "prepare-request:ret": Grouping.fields("request"),
    }
    assert [str(s) for s, _ in comps["bolt3"].inputs] == ["bolt2:default"]
    assert comps["bolt3"].cls is ReturnResults


def test_the_last_bolt_must_declare_one_stream_of_two_fields() -> None:
    class Three(Bolt):
        outputs = ["id", "a", "b"]

    builder = LinearDRPCTopologyBuilder("f")
    builder.add_bolt(Three)
    with pytest.raises(InvalidTopologyError, match=r"last bolt 'bolt0' \(Three\).*exactly two"):
        builder.create_topology()


def test_the_builder_rejects_what_is_not_a_bolt_class() -> None:
    builder = LinearDRPCTopologyBuilder("f")
    with pytest.raises(InvalidTopologyError, match="Bolt or BatchBolt subclass"):
        builder.add_bolt(Exclaim(), 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidTopologyError, match="add at least one bolt"):
        builder.create_topology()


def test_a_bad_grouping_in_the_chain_names_the_builder_and_the_field() -> None:
    builder = LinearDRPCTopologyBuilder("f")
    builder.add_bolt(Exclaim)
    builder.add_bolt(Exclaim).fields_grouping(["nope"])
    with pytest.raises(InvalidTopologyError, match=r"(?s)LinearDRPCTopologyBuilder\('f'\).*'nope'"):
        builder.create_topology()


# -- testDrpcCoordination: square(n) counts n*n tuples through three stages -----------


class CreateTuples(Bolt):
    outputs = ["request"]

    def process(self, tup: Any) -> None:
        amount = int(tup.values[1])
        for _ in range(amount * amount):
            self.emit([tup.values[0]])


class PartialCount(Bolt):
    """Counts per request; reports on finished_id (Storm's FinishedCallback)."""

    outputs = ["request", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: dict[Any, int] = {}

    def process(self, tup: Any) -> None:
        rid = tup.values[0]
        self.counts[rid] = self.counts.get(rid, 0) + 1

    def finished_id(self, rid: Any) -> None:
        self.emit([rid, self.counts.pop(rid, 0)])


class CountAggregator(BatchBolt):
    outputs = ["request", "sum"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.sum = 0

    def process(self, tup: Any) -> None:
        self.sum += tup.values[1]

    def finish_batch(self) -> None:
        self.emit([self.batch_id, self.sum])


def square_builder() -> LinearDRPCTopologyBuilder:
    builder = LinearDRPCTopologyBuilder("square")
    builder.add_bolt(CreateTuples, 3)
    builder.add_bolt(PartialCount, 3).shuffle_grouping()
    builder.add_bolt(CountAggregator, 3).fields_grouping(["request"])
    return builder


def test_drpc_coordination_finishes_each_batch_after_every_tuple(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    cluster.submit("square", square_builder().create_local_topology(drpc))
    assert call(cluster, drpc, "square", "2", "10", "1", "0") == ["4", "100", "1", "0"]


def test_coordination_keeps_concurrent_requests_apart(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    cluster.submit("square", square_builder().create_local_topology(drpc))
    args = [str(n % 13) for n in range(60)]
    assert call(cluster, drpc, "square", *args) == [str(int(a) ** 2) for a in args]


def test_coordination_works_with_acking_off(cluster: LocalCluster, drpc: LocalDRPC) -> None:
    topo = square_builder().create_local_topology(drpc)
    cluster.submit("square", topo, {"topology.acker.executors": 0})
    assert call(cluster, drpc, "square", "7") == ["49"]


class CountBatch(BatchBolt):
    outputs = ["request", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.count = 0

    def process(self, tup: Any) -> None:
        self.count += 1

    def finish_batch(self) -> None:
        self.emit([self.batch_id, self.count])


def test_a_single_batch_bolt_finishes_after_its_one_tuple(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    builder = LinearDRPCTopologyBuilder("one")
    builder.add_bolt(CountBatch, 4)
    cluster.submit("one", builder.create_local_topology(drpc))
    assert call(cluster, drpc, "one", *["x"] * 20) == ["1"] * 20


# -- testDrpcFailFinish ----------------------------------------------------------------


class FailFinish(Bolt):
    outputs = ["request", "result"]

    def finished_id(self, rid: Any) -> None:
        raise FailedError()


class EmitFinish(Bolt):
    outputs = ["request", "result"]

    def finished_id(self, rid: Any) -> None:
        self.emit([rid, "done"])


def test_drpc_fail_finish_gives_the_client_failed_request(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    builder = LinearDRPCTopologyBuilder("test")
    builder.add_bolt(FailFinish, 3)
    builder.add_bolt(EmitFinish, 3).shuffle_grouping()
    run = cluster.submit("test", builder.create_local_topology(drpc))
    (error,) = call(cluster, drpc, "test", "")
    assert isinstance(error, DRPCExecutionError) and error.type is DRPCErrorType.FAILED_REQUEST
    assert run.errors == []  # FailedError fails quietly


def test_an_exception_in_finish_batch_fails_the_request_and_is_reported(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    class Broken(BatchBolt):
        outputs = ["request", "result"]

        def finish_batch(self) -> None:
            raise ZeroDivisionError("no tuples to average")

    builder = LinearDRPCTopologyBuilder("avg")
    builder.add_bolt(CreateTuples, 2)
    builder.add_bolt(Broken, 2).shuffle_grouping()
    run = cluster.submit("avg", builder.create_local_topology(drpc))
    (error,) = call(cluster, drpc, "avg", "3")
    assert isinstance(error, DRPCExecutionError) and error.status == 400
    assert any("no tuples to average" in e.error for e in run.errors)


def test_a_bolt_that_raises_mid_chain_fails_only_its_request(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    class Picky(Bolt):
        outputs = ["request"]

        def process(self, tup: Any) -> None:
            if tup.values[1] == "3":
                raise ValueError("3 is unlucky")
            for _ in range(int(tup.values[1])):
                self.emit([tup.values[0]])

    builder = LinearDRPCTopologyBuilder("count")
    builder.add_bolt(Picky, 2)
    builder.add_bolt(CountBatch, 2).fields_grouping(["request"])
    cluster.submit("count", builder.create_local_topology(drpc))
    two, three, four = call(cluster, drpc, "count", "2", "3", "4")
    assert (two, four) == ("2", "4")
    assert isinstance(three, DRPCExecutionError) and three.status == 400


def test_stale_coordination_state_is_dropped_after_the_message_timeout(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    class Stuck(Bolt):
        """Holds its tuples: the request never finishes downstream."""

        auto_ack = False
        outputs = ["request"]

    builder = LinearDRPCTopologyBuilder("stuck")
    builder.add_bolt(CreateTuples)
    builder.add_bolt(Stuck).shuffle_grouping()
    builder.add_bolt(CountBatch).shuffle_grouping()
    run = cluster.submit(
        "stuck", builder.create_local_topology(drpc), {"topology.message.timeout.secs": 10}
    )
    fut = drpc.execute_async("stuck", "2")
    cluster.run_until_idle()
    assert run.engine is not None
    tracked = {
        ex.component: len(t.component._tracked)
        for ex in run.engine.executors
        for t in ex.tasks.values()
        if hasattr(t.component, "_tracked")
    }
    assert tracked["bolt1"] == 1
    cluster.advance_time(25)
    assert isinstance(fut.exception(0), DRPCExecutionError)
    tracked = {
        ex.component: len(t.component._tracked)
        for ex in run.engine.executors
        for t in ex.tasks.values()
        if hasattr(t.component, "_tracked")
    }
    assert tracked == {"bolt0": 0, "bolt1": 0, "bolt2": 0}


# -- the class DSL -----------------------------------------------------------------------


class Square(DRPCTopology):
    function = "square"
    create = CreateTuples.spec(par=3)
    partial = PartialCount.spec(par=3, inputs=Grouping.SHUFFLE)
    total = CountAggregator.spec(par=2, inputs={"default": Grouping.fields("request")})


def test_the_class_dsl_builds_the_same_chain_named_by_attribute(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    d = Square.definition()
    assert sorted(d.components) == [
        "create",
        "join-result",
        "partial",
        "prepare-request",
        "return-results",
        "spout",
        "total",
    ]
    assert d.name == "Square"
    cluster.submit("square", Square.local_definition(drpc))
    assert call(cluster, drpc, "square", "6") == ["36"]


def test_the_class_dsl_needs_a_function_name() -> None:
    class Nameless(DRPCTopology):
        exclaim = Exclaim.spec()

    with pytest.raises(InvalidTopologyError, match="set the class attribute function"):
        Nameless.definition()


def test_the_class_dsl_rejects_a_spout_and_bad_inputs() -> None:
    class WithSpout(DRPCTopology):
        function = "f"
        spout = DRPCSpout.spec(function="f")

    with pytest.raises(InvalidTopologyError, match="spout is made for you"):
        WithSpout.definition()

    class BadInputs(DRPCTopology):
        function = "f"
        exclaim = Exclaim.spec(inputs=["x"])

    with pytest.raises(InvalidTopologyError, match="grouping from the previous bolt"):
        BadInputs.definition()


def test_a_bolt_can_declare_several_streams_and_the_next_picks_one(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    class Split(Bolt):
        outputs = [Stream(["request", "n"], name="odd"), Stream(["request", "n"], name="even")]

        def process(self, tup: Any) -> None:
            for n in range(int(tup.values[1])):
                self.emit([tup.values[0], n], stream="odd" if n % 2 else "even")

    class SumEven(DRPCTopology):
        function = "sum-even"
        split = Split.spec(par=2)
        total = CountAggregator.spec(inputs={"even": Grouping.fields("request")})

    cluster.submit("s", SumEven.local_definition(drpc))
    assert call(cluster, drpc, "sum-even", "5") == [str(0 + 2 + 4)]
