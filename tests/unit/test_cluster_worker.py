"""A cluster worker's pure parts: the plan from an assignment, finding the topology."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall import Bolt, Spout, Topology
from squall.api.topology import as_definition
from squall.cluster.records import Assignment, WorkerAssignment
from squall.daemon.cluster_worker import (
    UNASSIGNED,
    AssignmentMismatchError,
    load_topology,
    peers,
    plan_for_assignment,
)
from squall.runtime.plan import make_plan


class S(Spout):
    outputs = ["x"]


class B(Bolt):
    pass


class T(Topology):
    s = S.spec(par=2)
    b = B.spec(inputs=[s], par=2)


# __acker: 1-2, b: 3-4, s: 5-6
PLAN = make_plan(as_definition(T, "t"), {"topology.acker.executors": 2})


def assignment(*workers: tuple[int, str, int, tuple[tuple[int, int], ...]]) -> Assignment:
    return Assignment(
        "t-1-1", tuple(WorkerAssignment(i, n, f"h-{n}", p, e) for i, n, p, e in workers)
    )


def test_the_plan_follows_nimbus_placement() -> None:
    a = assignment(
        (0, "a", 6700, ((1, 1), (3, 3), (5, 5))), (3, "b", 6700, ((2, 2), (4, 4), (6, 6)))
    )
    plan = plan_for_assignment(PLAN, a, {"__acker": (1, 2), "b": (3, 4), "s": (5, 6)})
    assert plan.task_to_worker == {1: 0, 3: 0, 5: 0, 2: 3, 4: 3, 6: 3}
    assert [e.component for e in plan.executors_of(3)] == ["__acker", "b", "s"]
    tasks, endpoints = peers(a, 0)
    assert endpoints == {3: "h-b:6700"} and tasks[3] == [2, 4, 6]


def test_tasks_no_worker_runs_go_nowhere() -> None:
    a = assignment((0, "a", 6700, ((1, 1), (3, 3), (5, 5))))
    plan = plan_for_assignment(PLAN, a)
    assert plan.task_to_worker[2] == UNASSIGNED


def test_code_that_makes_other_tasks_than_nimbus_scheduled_is_refused() -> None:
    a = assignment((0, "a", 6700, ((1, 6),)))
    with pytest.raises(AssignmentMismatchError, match="was the code changed"):
        plan_for_assignment(PLAN, a, {"b": (1, 4)})
    with pytest.raises(AssignmentMismatchError, match="one component per executor"):
        plan_for_assignment(PLAN, a)


def test_the_topology_is_loaded_from_the_code_folder_only(tmp_path: Path) -> None:
    (tmp_path / "topo.py").write_text(
        "from squall import Spout, Topology\n"
        "class S(Spout):\n    outputs = ['x']\n"
        "class Mine(Topology):\n    s = S.spec()\n"
    )
    assert load_topology(tmp_path, "topo.py:Mine", "mine").name == "mine"
    with pytest.raises(ValueError, match="outside the code folder"):
        load_topology(tmp_path, "../elsewhere.py:X", "x")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        load_topology(tmp_path, "topo.py:Nope", "x")
