"""Tasks, executors and their placement on workers: pure functions of the topology.

Task ids follow Storm: 1..N, handed out in sorted component-id order after the
system components (``__acker``) are added. Executors get contiguous task
ranges (``partition_fixed``); workers get executors round-robin in start-task
order (the even scheduler on one machine).

>>> partition_fixed(5, list(range(1, 10)))
[[1, 2], [3, 4], [5, 6], [7, 8], [9]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from squall import config as C
from squall.api.ids import ACKER_COMPONENT
from squall.api.topology import TopologyDef

ExecutorId = tuple[int, int]  # (start task, end task), Storm's executor id


def partition_fixed(n: int, items: Sequence[int]) -> list[list[int]]:
    """Split ``items`` into at most ``n`` near-equal contiguous chunks, larger first."""
    if n <= 0:
        raise ValueError("need at least one partition")
    n = min(n, len(items)) or 1
    base, extra = divmod(len(items), n)
    out: list[list[int]] = []
    i = 0
    for k in range(n):
        size = base + (1 if k < extra else 0)
        out.append(list(items[i : i + size]))
        i += size
    return [c for c in out if c]


@dataclass(frozen=True)
class ExecutorPlan:
    component: str
    tasks: tuple[int, ...]
    worker: int

    @property
    def id(self) -> ExecutorId:
        return (self.tasks[0], self.tasks[-1])


@dataclass(frozen=True)
class TopologyPlan:
    """Where every task runs."""

    topology: TopologyDef
    conf: Mapping[str, Any]
    num_workers: int
    num_ackers: int
    component_tasks: Mapping[str, tuple[int, ...]]
    task_to_component: Mapping[int, str]
    executors: tuple[ExecutorPlan, ...]
    task_to_worker: Mapping[int, int] = field(default_factory=dict)

    def executors_of(self, worker: int) -> list[ExecutorPlan]:
        return [e for e in self.executors if e.worker == worker]

    @property
    def acker_tasks(self) -> tuple[int, ...]:
        return self.component_tasks.get(ACKER_COMPONENT, ())


def component_conf(
    topology_conf: Mapping[str, Any], component_conf: Mapping[str, Any]
) -> dict[str, Any]:
    """Effective config for a component: defaults < topology < component."""
    merged = C.defaults()
    merged.update(topology_conf)
    merged.update(component_conf)
    return merged


def make_plan(topology: TopologyDef, conf: Mapping[str, Any]) -> TopologyPlan:
    """Number the tasks, split them into executors, and spread executors on workers."""
    full = C.defaults()
    full.update(topology.config)
    full.update(conf)
    workers = int(full[C.TOPOLOGY_WORKERS])
    ackers = full[C.TOPOLOGY_ACKER_EXECUTORS]
    num_ackers = workers if ackers is None else int(ackers)
    max_par = full[C.TOPOLOGY_MAX_TASK_PARALLELISM]

    counts: dict[str, tuple[int, int]] = {}  # component -> (tasks, executors)
    for comp in topology.components.values():
        cconf = component_conf(full, comp.config)
        tasks = comp.tasks if comp.tasks is not None else cconf.get(C.TOPOLOGY_TASKS) or comp.par
        par = comp.par
        # Component config may cap its own parallelism (Storm's getComponentParallelism).
        cap = cconf.get(C.TOPOLOGY_MAX_TASK_PARALLELISM, max_par)
        if cap is not None:
            tasks = min(tasks, int(cap))
            par = min(par, int(cap))
        counts[comp.name] = (int(tasks), min(par, int(tasks)))
    if num_ackers > 0:
        counts[ACKER_COMPONENT] = (num_ackers, num_ackers)

    component_tasks: dict[str, tuple[int, ...]] = {}
    task_to_component: dict[int, str] = {}
    next_task = 1
    for name in sorted(counts):
        n, _ = counts[name]
        ids = tuple(range(next_task, next_task + n))
        next_task += n
        component_tasks[name] = ids
        for t in ids:
            task_to_component[t] = name

    executors: list[tuple[str, list[int]]] = []
    for name in sorted(counts):
        _, n_exec = counts[name]
        for chunk in partition_fixed(n_exec, component_tasks[name]):
            executors.append((name, chunk))
    executors.sort(key=lambda e: e[1][0])
    placed = tuple(
        ExecutorPlan(name, tuple(chunk), i % workers) for i, (name, chunk) in enumerate(executors)
    )
    task_to_worker = {t: e.worker for e in placed for t in e.tasks}
    return TopologyPlan(
        topology=topology,
        conf=full,
        num_workers=workers,
        num_ackers=num_ackers,
        component_tasks=component_tasks,
        task_to_component=task_to_component,
        executors=placed,
        task_to_worker=task_to_worker,
    )
