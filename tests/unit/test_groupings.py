"""Every grouping: the groupers alone, and how tuples are spread in a running topology."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from squall import Bolt, EmitError, Grouping, Spout, Stream, TopologyBuilder
from squall.api.grouping import GroupingSpec
from squall.runtime.grouper import (
    AllGrouper,
    FieldsGrouper,
    GlobalGrouper,
    NoneGrouper,
    PartialKeyGrouper,
    ShuffleGrouper,
    make_grouper,
    stable_hash,
)
from squall.testing import complete_topology, read_tuples

pytestmark = pytest.mark.timeout(20)


class Keys(Spout):
    outputs = ["key", "n"]


class WhereAmI(Bolt):
    """Emits (task id, key) for every input: shows where each tuple landed."""

    outputs = ["task", "key"]

    def process(self, tup: Any) -> None:
        self.emit([self.context.task_id, tup.values[0]])


def run(grouping: GroupingSpec, rows: list[list[Any]], par: int = 4) -> list[list[Any]]:
    b = TopologyBuilder()
    b.set_spout("keys", Keys)
    b.set_bolt("where", WhereAmI, par).grouping("keys", grouping)
    result = complete_topology(b, mock_sources={"keys": rows})
    out = read_tuples(result, "where")
    assert result.component_tasks["where"] == tuple(range(3, 3 + par))  # __acker 1, keys 2
    return out


def rows_of(keys: list[Any]) -> list[list[Any]]:
    return [[k, i] for i, k in enumerate(keys)]


# -- shuffle -------------------------------------------------------------------------


def test_shuffle_grouper_splits_exactly_evenly() -> None:
    """ShuffleGroupingTest: exactly 1000 per task."""
    g = ShuffleGrouper([10, 11, 12, 13], random.Random(1))
    counts = Counter(g.choose(()) for _ in range(4000))
    assert counts == {10: 1000, 11: 1000, 12: 1000, 13: 1000}


def test_shuffle_spreads_a_running_stream_evenly_over_tasks() -> None:
    out = run(Grouping.SHUFFLE, rows_of(["k"] * 400))
    assert Counter(task for task, _ in out) == {3: 100, 4: 100, 5: 100, 6: 100}


# -- fields ----------------------------------------------------------------------------

KEYS: list[Any] = [
    "dog",
    "cat",
    "",
    "ünïcødé",
    0,
    1,
    -1,
    2**63 - 1,
    -(2**63),
    2**70,
    1.5,
    True,
    None,
    b"raw",
    (1, "a"),
    ["x", 2],
]


def _choices_here() -> dict[str, Any]:
    g = FieldsGrouper(list(range(1, 8)), (0,))
    return {
        "hash": [stable_hash([k]) for k in KEYS],
        "pair": stable_hash(["dog", 3]),
        "task": [g.choose((k,)) for k in KEYS],
    }


def test_fields_hash_is_the_same_in_a_process_with_another_hash_seed() -> None:
    code = (
        "import json, sys\n"
        "from tests.unit.test_groupings import _choices_here\n"
        "json.dump(_choices_here(), sys.stdout)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=root
    )
    assert json.loads(out.stdout) == json.loads(json.dumps(_choices_here()))
    assert os.environ.get("PYTHONHASHSEED") != "12345"


def test_fields_grouper_sends_equal_keys_to_one_task_over_sorted_targets() -> None:
    g = FieldsGrouper([9, 3, 6], (1,))
    same = FieldsGrouper([3, 6, 9], (1,))
    for k in KEYS:
        t = g.choose(("ignored", k))
        assert t in (3, 6, 9)
        assert g.choose(("other", k)) == t == same.choose(("x", k))


def test_fields_grouping_uses_every_task_and_keeps_keys_together() -> None:
    keys = [f"user{i}" for i in range(60)] * 3
    out = run(Grouping.fields("key"), rows_of(keys))
    tasks_of: dict[str, set[int]] = {}
    for task, key in out:
        tasks_of.setdefault(key, set()).add(task)
    assert all(len(ts) == 1 for ts in tasks_of.values())
    assert set().union(*tasks_of.values()) == {3, 4, 5, 6}


def test_fields_grouping_on_several_fields_groups_by_the_combination() -> None:
    g = make_grouper(
        Grouping.fields("b", "a"),
        [1, 2, 3, 4],
        ["a", "b", "c"],
        rng=random.Random(0),
        local_tasks=frozenset(),
        source_task=0,
        owner="x",
    )
    assert g is not None
    assert g.choose((1, 2, "x")) == g.choose((1, 2, "y"))
    assert {g.choose((i, "k", None)) for i in range(40)} == {1, 2, 3, 4}


def test_fields_grouping_handles_unhashable_values() -> None:
    g = FieldsGrouper([1, 2, 3], (0,))
    assert g.choose(([1, 2],)) == g.choose(([1, 2],))
    assert g.choose(({"a": 1},)) == g.choose(({"a": 1},))


# -- global, all, none --------------------------------------------------------------


def test_global_grouping_sends_everything_to_the_lowest_task() -> None:
    assert GlobalGrouper([7, 5, 9]).choose(()) == 5
    out = run(Grouping.GLOBAL, rows_of(list("abcdef")))
    assert {task for task, _ in out} == {3}


def test_all_grouping_sends_a_copy_to_every_task() -> None:
    assert list(AllGrouper([3, 1, 2]).choose_many(())) == [1, 2, 3]
    b = TopologyBuilder()
    b.set_spout("keys", Keys)
    b.set_bolt("where", WhereAmI, 3).all_grouping("keys")
    result = complete_topology(b, mock_sources={"keys": rows_of(["a", "b"])})
    assert sorted(read_tuples(result, "where")) == [[t, k] for t in (3, 4, 5) for k in "ab"]
    spout = result.stats["keys"]
    assert (spout.emitted, spout.transferred) == (2, 6)


def test_none_grouping_sends_each_tuple_to_one_random_task() -> None:
    g = NoneGrouper([1, 2, 3], random.Random(3))
    counts = Counter(g.choose(()) for _ in range(3000))
    assert set(counts) == {1, 2, 3} and all(800 < c < 1200 for c in counts.values())
    out = run(Grouping.NONE, rows_of(list(range(100))))
    assert sorted(k for _, k in out) == list(range(100))


# -- local or shuffle ------------------------------------------------------------------


def test_local_or_shuffle_prefers_tasks_in_this_worker() -> None:
    def grouper(local: frozenset[int]) -> Any:
        return make_grouper(
            Grouping.LOCAL_OR_SHUFFLE,
            [1, 2, 3, 4],
            ["a"],
            rng=random.Random(0),
            local_tasks=local,
            source_task=9,
            owner="x",
        )

    local = grouper(frozenset({2, 4, 8}))
    assert {local.choose(("a",)) for _ in range(50)} == {2, 4}
    remote = grouper(frozenset({8}))
    assert {remote.choose(("a",)) for _ in range(50)} == {1, 2, 3, 4}


def test_local_or_shuffle_in_one_worker_spreads_evenly() -> None:
    out = run(Grouping.LOCAL_OR_SHUFFLE, rows_of(["k"] * 40))
    assert Counter(t for t, _ in out) == {3: 10, 4: 10, 5: 10, 6: 10}


# -- partial key --------------------------------------------------------------------


def test_partial_key_balances_a_hot_key_over_exactly_two_tasks() -> None:
    g = PartialKeyGrouper([1, 2, 3, 4], (0,))
    counts = Counter(g.choose(("hot",)) for _ in range(1000))
    assert len(counts) == 2
    assert sorted(counts.values()) == [500, 500]


def test_partial_key_grouping_in_a_topology_splits_a_hot_key_in_two() -> None:
    out = run(Grouping.partial_key("key"), rows_of(["hot"] * 100 + ["cold"]))
    hot = Counter(t for t, k in out if k == "hot")
    assert len(hot) == 2 and abs(hot.most_common()[0][1] - hot.most_common()[1][1]) <= 1


def test_partial_key_with_one_target_always_picks_it() -> None:
    g = PartialKeyGrouper([5], (0,))
    assert {g.choose((k,)) for k in "abc"} == {5}


# -- custom ---------------------------------------------------------------------------


class EvenOdd:
    """Sends even numbers to the first target, odd ones to every other target."""

    def __init__(self) -> None:
        self.prepared: list[tuple[Any, Any, list[int]]] = []
        self.targets: list[int] = []

    def prepare(self, context: Any, stream: Any, target_tasks: Any) -> None:
        self.prepared.append((context.task_id, str(stream), list(target_tasks)))
        self.targets = list(target_tasks)

    def choose_tasks(self, task_id: int, values: Any) -> list[int]:
        return self.targets[:1] if values[1] % 2 == 0 else self.targets[1:]


def test_custom_grouping_is_prepared_then_chooses_the_tasks() -> None:
    out = run(Grouping.custom(EvenOdd()), rows_of(["a", "b", "c"]), par=3)
    assert sorted(out) == [[3, "a"], [3, "c"], [4, "b"], [5, "b"]]


def test_custom_grouping_gets_a_prepared_copy_per_source_task() -> None:
    prepared: list[tuple[int, str, list[int]]] = []

    class Recording(EvenOdd):
        def prepare(self, context: Any, stream: Any, target_tasks: Any) -> None:
            super().prepare(context, stream, target_tasks)
            prepared.append(self.prepared[-1])

    b = TopologyBuilder()
    b.set_spout("keys", Keys, 2)
    b.set_bolt("where", WhereAmI, 2).grouping("keys", Grouping.custom(Recording()))
    complete_topology(b, mock_sources={"keys": rows_of(["a"])})
    # The context is the source task's (keys: tasks 2, 3; where: tasks 4, 5).
    assert sorted(prepared) == [(2, "keys:default", [4, 5]), (3, "keys:default", [4, 5])]


class BadChoice:
    def prepare(self, context: Any, stream: Any, target_tasks: Any) -> None:
        pass

    def choose_tasks(self, task_id: int, values: Any) -> list[int]:
        return [99]


def test_custom_grouping_choosing_an_unknown_task_is_reported() -> None:
    class Relay(Bolt):
        outputs = ["key", "n"]

        def process(self, tup: Any) -> None:
            self.emit(list(tup.values))

    b = TopologyBuilder()
    b.set_spout("keys", Keys)
    b.set_bolt("relay", Relay).shuffle_grouping("keys")
    b.set_bolt("where", WhereAmI).grouping("relay", Grouping.custom(BadChoice()))
    result = complete_topology(b, mock_sources={"keys": rows_of(["a"])})
    (err,) = result.errors
    assert "chose task 99, which is not one of its target tasks [4]" in err.error
    assert "relay:default -> where" in err.error
    assert result.failed["keys"] == (0,)


def test_custom_grouping_needs_prepare_and_choose_tasks() -> None:
    with pytest.raises(TypeError, match=r"prepare.*choose_tasks"):
        Grouping.custom(object())


# -- direct and need_task_ids ----------------------------------------------------------


class Director(Bolt):
    """Sends each tuple to the task named in its ``n`` field, on a direct stream."""

    outputs = [Stream(["key", "n"], name="to", direct=True)]

    def process(self, tup: Any) -> None:
        self.emit(list(tup.values), stream="to", direct_task=tup.values.n)


def direct_topology() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("keys", Keys)
    b.set_bolt("director", Director).shuffle_grouping("keys")
    b.set_bolt("where", WhereAmI, 3).direct_grouping("director", "to")
    return b


def test_direct_grouping_delivers_to_the_chosen_task() -> None:
    # tasks: __acker 1, director 2, keys 3, where 4-6
    result = complete_topology(direct_topology(), mock_sources={"keys": [["a", 6], ["b", 4]]})
    assert sorted(read_tuples(result, "where")) == [[4, "b"], [6, "a"]]


def test_direct_emit_to_a_task_that_does_not_subscribe_is_dropped() -> None:
    result = complete_topology(direct_topology(), mock_sources={"keys": [["a", 3]]})
    assert read_tuples(result, "where") == []
    assert read_tuples(result, "director", "to") == [["a", 3]]
    assert result.errors == () and result.acked["keys"] == (0,)


def emit_error_of(bolt: type[Bolt], grouping: str = "shuffle") -> str:
    b = TopologyBuilder()
    b.set_spout("keys", Keys)
    b.set_bolt("bad", bolt).shuffle_grouping("keys")
    declarer = b.set_bolt("where", WhereAmI)
    if grouping == "direct":
        declarer.direct_grouping("bad", "to")
    else:
        declarer.shuffle_grouping("bad")
    result = complete_topology(b, mock_sources={"keys": [["a", 4]]})
    (err,) = result.errors
    assert err.component == "bad"
    assert result.failed["keys"] == (0,)
    return err.error


def test_direct_emit_to_a_task_with_a_regular_grouping_is_an_error() -> None:
    class DirectToShuffled(Bolt):
        outputs = [Stream(["key", "n"]), Stream(["key", "n"], name="to", direct=True)]

        def process(self, tup: Any) -> None:
            self.emit(["k", 1], stream="default", direct_task=4)

    msg = emit_error_of(DirectToShuffled)
    assert "EmitError" in msg and "'bad'" in msg and "not declared direct" in msg


def test_regular_emit_on_a_direct_stream_is_an_error() -> None:
    class RegularOnDirect(Bolt):
        outputs = [Stream(["key", "n"], name="to", direct=True)]

        def process(self, tup: Any) -> None:
            self.emit(["k", 1], stream="to")

    msg = emit_error_of(RegularOnDirect, grouping="direct")
    assert "stream 'to' is direct; emit on it with direct_task=..." in msg


class NeedIds(Spout):
    outputs = ["key", "n"]
    sent: dict[str, list[int]] = {}

    def initialize(self, conf: Any, context: Any) -> None:
        self.left = ["a", "b", "c", "d", "e", "f"]

    def next_tuple(self) -> None:
        if self.left:
            key = self.left.pop()
            NeedIds.sent[key] = self.emit([key, 0], tup_id=key, need_task_ids=True)

    def is_exhausted(self) -> bool:
        return not self.left


def test_emit_with_need_task_ids_returns_where_the_tuple_went() -> None:
    b = TopologyBuilder()
    b.set_spout("keys", NeedIds)
    b.set_bolt("where", WhereAmI, 4).fields_grouping("keys", ["key"])
    b.set_bolt("all", WhereAmI, 2).all_grouping("keys")
    NeedIds.sent = {}
    result = complete_topology(b)
    landed: dict[str, list[int]] = {}
    for comp in ("where", "all"):
        for task, key in read_tuples(result, comp):
            landed.setdefault(key, []).append(task)
    # Every key went to one "where" task and to both "all" tasks.
    assert len(landed) == 6 and all(len(v) == 3 for v in landed.values())
    assert {k: sorted(v) for k, v in NeedIds.sent.items()} == {
        k: sorted(v) for k, v in landed.items()
    }


def test_emit_without_need_task_ids_returns_none() -> None:
    seen: list[Any] = []

    class Once(Spout):
        outputs = ["key", "n"]
        done = False

        def next_tuple(self) -> None:
            if not self.done:
                self.done = True
                seen.append(self.emit(["a", 1], tup_id=1))
                seen.append(self.emit(["b", 2], tup_id=2, need_task_ids=True))

        def is_exhausted(self) -> bool:
            return self.done

    b = TopologyBuilder()
    b.set_spout("keys", Once)
    b.set_bolt("where", WhereAmI).global_grouping("keys")
    complete_topology(b)
    assert seen == [None, [3]]


def test_direct_emit_needs_a_direct_task_or_a_direct_stream() -> None:
    class NoTask(Bolt):
        outputs = [Stream(["key", "n"], name="to", direct=True)]

        def process(self, tup: Any) -> None:
            self.emit(["k", 1], stream="to", direct_task=None)

    assert "emit on it with direct_task" in emit_error_of(NoTask, grouping="direct")
    assert issubclass(EmitError, ValueError)
