"""Trident's stream operations, one by one, on simulated time (storm-spec §1.9 API)."""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from typing import Any

import pytest

from squall.api.errors import InvalidTopologyError
from squall.state import MemoryBackend, memory_map_state
from squall.testing import simulated_cluster
from squall.trident import (
    Aggregator,
    Collector,
    Count,
    FilterNull,
    First,
    FixedBatchSpout,
    Function,
    ReducerAggregator,
    StateUpdater,
    Stream,
    Sum,
    TridentTopology,
)

pytestmark = pytest.mark.timeout(30)

_names = itertools.count()
CAPTURED: dict[str, list[tuple[Any, ...]]] = {}


class Capture(StateUpdater):
    """Records every tuple it is given, under ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def update_state(self, state: Any, tuples: Any, collector: Collector) -> None:
        CAPTURED.setdefault(self.name, []).extend(tuple(t) for t in tuples)


def capture(stream: Stream, fields: list[str] | None = None) -> str:
    name = f"cap{next(_names)}"
    stream.partition_persist(memory_map_state(name), fields or list(stream.fields), Capture(name))
    return name


def new_topology() -> TridentTopology:
    return TridentTopology(meta=MemoryBackend(f"meta{next(_names)}"))


def run(topology: TridentTopology, conf: dict[str, Any] | None = None) -> Any:
    with simulated_cluster() as cluster:
        handle = cluster.submit(
            "ops", topology, {"topology.trident.batch.emit.interval.millis": 0, **(conf or {})}
        )
        cluster.run_until_idle()
        return handle


ROWS = [["a", 1], ["b", 2], ["a", 3], ["c", 4], ["b", 5], ["a", 6], ["d", None]]


def numbers(t: TridentTopology, batch: int = 3) -> Stream:
    return t.new_stream("nums", FixedBatchSpout(["key", "n"], batch, *ROWS))


def double(n: Any) -> list[int]:
    return [] if n is None else [n * 2]


class Repeat(Function):
    def execute(self, tup: Any, collector: Collector) -> None:
        for _ in range(tup.n or 0):
            collector.emit([tup.key])


def test_each_appends_the_function_output_and_filter_drops_tuples() -> None:
    t = new_topology()
    s = numbers(t).each(["n"], double, ["twice"]).filter(["key"], lambda k: k != "b")
    name = capture(s)
    handle = run(t)
    assert handle.errors == []
    assert sorted(CAPTURED[name]) == [("a", 1, 2), ("a", 3, 6), ("a", 6, 12), ("c", 4, 8)]


def test_a_function_class_sees_the_tuple_by_field_name() -> None:
    t = new_topology()
    name = capture(numbers(t).each(["key", "n"], Repeat(), ["copy"]).project(["copy"]))
    run(t)
    assert Counter(CAPTURED[name]) == {("a",): 10, ("b",): 7, ("c",): 4}


def test_map_flat_map_peek_and_project() -> None:
    t = new_topology()
    seen: list[Any] = []
    s = (
        numbers(t)
        .each(["n"], FilterNull())
        .map(lambda k, n: (k.upper(), n + 1))
        .flat_map(lambda k, n: [(k, n), (k, -n)], ["key", "m"])
        .peek(lambda k, m: seen.append(m), ["key", "m"])
        .project(["m"])
    )
    name = capture(s)
    run(t)
    assert sorted(CAPTURED[name]) == sorted((x,) for n in (2, 3, 4, 5, 6, 7) for x in (n, -n))
    assert len(seen) == 12


def test_aggregate_combines_partial_results_of_every_partition() -> None:
    t = new_topology()
    s = numbers(t).each(["n"], FilterNull()).shuffle().parallelism_hint(3)
    name = capture(s.aggregate(["n"], Sum(), ["sum"]))
    counts = capture(s.aggregate(Count(), ["count"]))
    run(t)
    # Batches [1, 2, 3], [4, 5, 6] and [None]: an empty batch aggregates to the zero.
    assert sorted(CAPTURED[name]) == [(0,), (6,), (15,)]
    assert sorted(CAPTURED[counts]) == [(0,), (3,), (3,)]


def test_grouped_aggregate_with_a_combiner_a_reducer_and_a_plain_callable() -> None:
    class Concat(ReducerAggregator):
        def init(self) -> str:
            return ""

        def reduce(self, curr: str, tup: Any) -> str:
            return curr + str(tup.n)

    t = new_topology()
    s = numbers(t, batch=7).each(["n"], FilterNull()).shuffle().parallelism_hint(2)
    summed = capture(s.group_by(["key"]).aggregate(["n"], Sum(), ["sum"]))
    maxed = capture(s.group_by(["key"]).aggregate(["n"], max, ["max"]))
    joined = capture(s.group_by(["key"]).aggregate(["n"], Concat(), ["digits"]))
    run(t)
    assert sorted(CAPTURED[summed]) == [("a", 10), ("b", 7), ("c", 4)]
    assert sorted(CAPTURED[maxed]) == [("a", 6), ("b", 5), ("c", 4)]
    assert sorted((k, "".join(sorted(d))) for k, d in CAPTURED[joined]) == [
        ("a", "136"),
        ("b", "25"),
        ("c", "4"),
    ]


def test_partition_aggregate_with_first_and_a_general_aggregator() -> None:
    class Pairs(Aggregator):
        def init(self, batch_id: Any, collector: Collector) -> list[int]:
            return [0]

        def aggregate(self, state: Any, tup: Any, collector: Collector) -> None:
            state[0] += 1

        def complete(self, state: Any, collector: Collector) -> None:
            collector.emit([state[0], state[0] * 10])

    t = new_topology()
    s = numbers(t, batch=4)
    first = capture(s.partition_aggregate(["key", "n"], First(), ["k", "v"]))
    pairs = capture(s.partition_aggregate(["n"], Pairs(), ["n1", "n10"]))
    run(t)
    assert sorted(CAPTURED[first]) == [("a", 1), ("b", 5)]
    assert sorted(CAPTURED[pairs]) == [(3, 30), (4, 40)]


def test_min_by_and_max_by_keep_whole_tuples() -> None:
    t = new_topology()
    s = numbers(t).each(["n"], FilterNull())
    low = capture(s.min_by("n"))
    high = capture(s.max_by("n"))
    run(t)
    assert sorted(CAPTURED[low]) == [("a", 1), ("c", 4)]
    assert sorted(CAPTURED[high]) == [("a", 3), ("a", 6)]


def test_partition_by_sends_equal_keys_to_one_task_and_broadcast_to_all() -> None:
    t = new_topology()
    s = numbers(t, batch=7)
    by_key = capture(
        s.partition_by(["key"]).parallelism_hint(3).partition_aggregate(["n"], Count(), ["c"])
    )
    everywhere = capture(s.broadcast().parallelism_hint(3).partition_aggregate(Count(), ["c"]))
    one = capture(s.global_().partition_aggregate(Count(), ["c"]))
    run(t)
    assert sum(c for (c,) in CAPTURED[by_key]) == 7
    assert sorted(CAPTURED[everywhere]) == [(7,), (7,), (7,)]
    assert CAPTURED[one] == [(7,)]


def test_merge_interleaves_streams_of_one_spout() -> None:
    t = new_topology()
    s = numbers(t)
    evens = s.filter(["n"], lambda n: n is not None and n % 2 == 0).project(["n"])
    odds = (
        s.filter(["n"], lambda n: n is not None and n % 2 == 1)
        .each(["n"], double, ["x"])
        .project(["x"])
    )
    name = capture(t.merge(evens, odds))
    run(t)
    assert sorted(CAPTURED[name]) == [(2,), (2,), (4,), (6,), (6,), (10,)]


def test_join_pairs_tuples_of_one_batch_on_the_join_fields() -> None:
    t = new_topology()
    s = numbers(t, batch=7)
    left = s.each(["n"], FilterNull()).project(["key", "n"])
    right = s.group_by(["key"]).aggregate(Count(), ["count"])
    name = capture(t.join(left, ["key"], right, ["key"], ["key", "n", "count"]))
    run(t)
    assert sorted(CAPTURED[name]) == [
        ("a", 1, 3),
        ("a", 3, 3),
        ("a", 6, 3),
        ("b", 2, 2),
        ("b", 5, 2),
        ("c", 4, 1),
    ]


def test_a_plain_callable_combiner_persists() -> None:
    backend = MemoryBackend(f"pc{next(_names)}")
    t = new_topology()
    from squall.state import MapStateFactory

    numbers(t).each(["n"], FilterNull()).group_by(["key"]).persistent_aggregate(
        MapStateFactory(backend), ["n"], operator.add, ["sum"], state_id="sums"
    )
    run(t)
    from squall.state import MapState

    assert MapState(backend.connect(), "trident:ops:sums", "opaque").items() == {
        ("a",): 10,
        ("b",): 7,
        ("c",): 4,
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda s: s.each(["nope"], double, ["x"]),
            r"each\(double\): field\(s\) \['nope'\] are not in the stream, "
            r"whose fields are \['key', 'n'\]",
        ),
        (
            lambda s: s.each(["n"], double, ["key"]),
            r"output field\(s\) \['key'\] are already in the stream",
        ),
        (lambda s: s.each(["n"], 42, ["x"]), "42 is not callable"),
        (
            lambda s: s.each("n", double, ["x"]),
            "fields must be a list of names, not the string 'n'",
        ),
        (lambda s: s.group_by(["nope"]), r"group_by: field\(s\) \['nope'\]"),
        (
            lambda s: s.aggregate(["n"], Sum(), ["a", "b"]),
            "produces one value; give one function field",
        ),
        (lambda s: s.aggregate(["n"], Sum, ["a"]), r"pass an aggregator instance \(Sum\(\)\)"),
        (lambda s: s.persistent_aggregate(object(), Count(), ["c"]), "is not a state factory"),
        (lambda s: s.partition_persist(memory_map_state(), ["n"], 3), "3 is not callable"),
        (lambda s: s.state_query("state", ["n"], Count(), ["c"]), "must be a TridentState"),
    ],
)
def test_bad_operations_are_refused_naming_the_operation_and_field(
    build: Any, message: str
) -> None:
    t = new_topology()
    with pytest.raises(InvalidTopologyError, match=message):
        build(numbers(t))


def test_a_function_returning_a_row_of_the_wrong_width_fails_naming_the_operation() -> None:
    t = new_topology()
    s = numbers(t).each(["n"], lambda n: [(n, n)], ["x"])
    capture(s)
    with simulated_cluster() as cluster:
        handle = cluster.submit("bad", t, {"topology.trident.batch.emit.interval.millis": 0})
        for _ in range(20):  # the batch fails on every attempt: run a few passes only
            handle.engine.run_once()
    assert handle.errors
    assert "each(test_a_function_returning" in handle.errors[0].error
    assert "expected a row of 1 value(s), got 2" in handle.errors[0].error


def test_trident_needs_the_acker() -> None:
    t = new_topology()
    capture(numbers(t))
    with (
        simulated_cluster() as cluster,
        pytest.raises(RuntimeError, match=r"topology\.acker\.executors is 0"),
    ):
        cluster.submit("noack", t, {"topology.acker.executors": 0})
