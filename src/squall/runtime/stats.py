"""Per-executor counters, updated per batch on the hot path and read as frozen snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorReport:
    """One error raised by user code, with everything needed to find it."""

    topology: str
    component: str
    task: int
    time: float
    error: str
    traceback: str
    worker: int = 0

    def headline(self) -> str:
        return f"[{self.topology}] {self.component} task {self.task}: {self.error}"


@dataclass(frozen=True)
class ComponentStats:
    """Totals for one component (sum over its executors), as reported by ``squall run``."""

    component: str
    kind: str
    executors: int
    tasks: int
    emitted: int = 0
    transferred: int = 0
    executed: int = 0
    acked: int = 0
    failed: int = 0
    errors: int = 0
    execute_latency_ms: float = 0.0
    process_latency_ms: float = 0.0
    complete_latency_ms: float = 0.0
    capacity: float = 0.0
    emitted_by_stream: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)


class ExecutorStats:
    """Mutable counters owned by one executor. Only its own thread writes them."""

    __slots__ = (
        "acked",
        "busy_secs",
        "complete_ms",
        "complete_n",
        "errors",
        "execute_ms",
        "executed",
        "executed_by_stream",
        "failed",
        "metrics",
        "process_ms",
        "process_n",
        "started",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.executed = 0
        self.executed_by_stream: dict[tuple[str, str], int] = {}
        self.acked = 0
        self.failed = 0
        self.errors = 0
        self.execute_ms = 0.0
        self.process_ms = 0.0
        self.process_n = 0
        self.complete_ms = 0.0
        self.complete_n = 0
        self.busy_secs = 0.0
        self.metrics: dict[str, Any] = {}
