"""What a task knows about its place in the topology (Storm's TopologyContext)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from squall.api.grouping import GroupingSpec
from squall.api.topology import GlobalStreamId


def no_engine() -> None:
    """``wake`` of a context no engine runs (nothing to wake)."""


@dataclass(frozen=True)
class TopologyContext:
    """Read-only facts for one task.

    Attributes:
        topology_name: the running topology's name.
        task_id: this task's id (1..N, Storm's numbering).
        component_id: this task's component.
        task_to_component: every task id -> component id.
        component_tasks: every component id -> its sorted task ids.
        sources: streams this component subscribes to -> grouping.
        targets: this component's streams -> {subscriber component: grouping}.
        output_fields: this component's streams -> field names.
        stream_fields: every component -> stream -> field names.
        worker_index: which local worker process runs this task (0-based).
        now: the engine's clock, in seconds (simulated time in tests): what
            components that keep time (windows, batch timeouts) should read.
        wake: ends the engine's idle wait; safe from any thread. Call it after
            handing this task input from another thread (a fetcher, a callback),
            so that ``next_tuple``/``process`` sees it at once.
    """

    topology_name: str
    task_id: int
    component_id: str
    task_to_component: Mapping[int, str]
    component_tasks: Mapping[str, Sequence[int]]
    sources: Mapping[GlobalStreamId, GroupingSpec]
    targets: Mapping[str, Mapping[str, GroupingSpec]]
    output_fields: Mapping[str, Sequence[str]]
    stream_fields: Mapping[str, Mapping[str, Sequence[str]]]
    worker_index: int = 0
    now: Callable[[], float] = time.monotonic
    wake: Callable[[], None] = no_engine

    @property
    def task_index(self) -> int:
        """This task's position among its component's tasks (0-based)."""
        return list(self.component_tasks[self.component_id]).index(self.task_id)

    def get_component_tasks(self, component: str) -> list[int]:
        return list(self.component_tasks.get(component, ()))
