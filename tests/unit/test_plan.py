"""Tasks vs executors, task numbering and placement (storm-spec §1.3)."""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, Spout, TopologyBuilder
from squall.runtime.plan import make_plan, partition_fixed
from squall.testing import complete_topology, read_tuples

pytestmark = pytest.mark.timeout(10)


class S(Spout):
    outputs = ["x"]


class B(Bolt):
    outputs = ["x"]


def topology(**pars: Any) -> Any:
    b = TopologyBuilder()
    b.set_spout("spout", S, pars.pop("spout", 1))
    for name, par in pars.items():
        b.set_bolt(name, B, par).shuffle_grouping("spout")
    return b.create_topology("t")


def test_partition_fixed_splits_into_near_equal_chunks_larger_first() -> None:
    assert partition_fixed(5, list(range(1, 10))) == [[1, 2], [3, 4], [5, 6], [7, 8], [9]]
    assert partition_fixed(3, [1, 2, 3, 4, 5, 6]) == [[1, 2], [3, 4], [5, 6]]
    assert partition_fixed(4, [7, 8]) == [[7], [8]]
    with pytest.raises(ValueError, match="at least one partition"):
        partition_fixed(0, [1])


def test_task_ids_run_one_to_n_in_sorted_component_order_including_the_acker() -> None:
    plan = make_plan(topology(spout=1, b=2, a=1, Z=1), {})
    # "Z" < "__acker" < "a" < "b" < "spout" in code-point order, as in Storm's TreeMap.
    assert dict(plan.component_tasks) == {
        "Z": (1,),
        "__acker": (2,),
        "a": (3,),
        "b": (4, 5),
        "spout": (6,),
    }
    assert plan.task_to_component[2] == "__acker"
    assert sorted(plan.task_to_component) == [1, 2, 3, 4, 5, 6]


def test_tasks_can_outnumber_executors() -> None:
    b = TopologyBuilder()
    b.set_spout("spout", S)
    b.set_bolt("bolt", B, 3).shuffle_grouping("spout").set_num_tasks(8)
    plan = make_plan(b.create_topology("t"), {})
    bolt_execs = [e.tasks for e in plan.executors if e.component == "bolt"]
    assert bolt_execs == [(2, 3, 4), (5, 6, 7), (8, 9)]


def test_topology_tasks_config_sets_the_task_count() -> None:
    b = TopologyBuilder()
    b.set_spout("spout", S)
    b.set_bolt("bolt", B, 2).shuffle_grouping("spout").add_configuration("topology.tasks", 4)
    plan = make_plan(b.create_topology("t"), {})
    assert plan.component_tasks["bolt"] == (2, 3, 4, 5)
    assert len([e for e in plan.executors if e.component == "bolt"]) == 2


def test_executors_never_outnumber_tasks() -> None:
    b = TopologyBuilder()
    b.set_spout("spout", S)
    b.set_bolt("bolt", B, 4).shuffle_grouping("spout").set_num_tasks(2)
    plan = make_plan(b.create_topology("t"), {})
    assert [e.tasks for e in plan.executors if e.component == "bolt"] == [(2,), (3,)]


def test_max_task_parallelism_caps_tasks_and_executors() -> None:
    plan = make_plan(topology(bolt=6), {"topology.max.task.parallelism": 2})
    assert len(plan.component_tasks["bolt"]) == 2
    assert len([e for e in plan.executors if e.component == "bolt"]) == 2


def test_component_max_task_parallelism_caps_only_that_component() -> None:
    """testComponentSpecificConfig: setMaxTaskParallelism(2) on one bolt."""
    b = TopologyBuilder()
    b.set_spout("spout", S, 4)
    b.set_bolt("bolt", B, 6).shuffle_grouping("spout").add_configuration(
        "topology.max.task.parallelism", 2
    )
    plan = make_plan(b.create_topology("t"), {})
    assert len(plan.component_tasks["bolt"]) == 2
    assert len(plan.component_tasks["spout"]) == 4


def test_acker_count_defaults_to_the_worker_count() -> None:
    assert make_plan(topology(), {"topology.workers": 3}).acker_tasks == (1, 2, 3)
    assert make_plan(topology(), {"topology.acker.executors": 2}).num_ackers == 2
    plan = make_plan(topology(), {"topology.acker.executors": 0})
    assert plan.acker_tasks == () and "__acker" not in plan.component_tasks


def test_executors_are_spread_round_robin_over_workers_in_start_task_order() -> None:
    plan = make_plan(topology(a=2, b=2), {"topology.workers": 2})
    ids = [(e.id, e.worker) for e in plan.executors]
    assert [i for i, _ in ids] == sorted(i for i, _ in ids)
    assert [w for _, w in ids] == [i % 2 for i in range(len(ids))]
    assert all(plan.task_to_worker[t] == e.worker for e in plan.executors for t in e.tasks)


class TaskInfo(Bolt):
    outputs = ["component", "task", "index", "all"]

    def process(self, tup: Any) -> None:
        ctx = self.context
        self.emit([ctx.component_id, ctx.task_id, ctx.task_index, ctx.get_component_tasks("info")])


def test_each_task_knows_its_id_index_and_its_component_tasks() -> None:
    b = TopologyBuilder()
    b.set_spout("spout", S)
    b.set_bolt("info", TaskInfo, 2).all_grouping("spout").set_num_tasks(4)
    result = complete_topology(b, mock_sources={"spout": [[1]]})
    rows = sorted(read_tuples(result, "info"), key=lambda r: r[1])
    assert rows == [["info", t, t - 2, [2, 3, 4, 5]] for t in (2, 3, 4, 5)]
