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
        self.complete_ms = 0.0
        self.complete_n = 0
        self.busy_secs = 0.0
        self.metrics: dict[str, Any] = {}


@dataclass(frozen=True)
class ExecutorSnapshot:
    """One executor's cumulative counters at one moment: what monitoring reads.

    Plain data (``to_wire``/``from_wire`` give msgpack-able lists), so worker
    processes can send it to whoever shows it. Counters only grow while the
    executor lives; a restarted executor starts again from zero with a smaller
    ``uptime_secs``.

    >>> s = ExecutorSnapshot("split", "bolt", (3, 4), 0, 12.5, outputs=((3, "default", 7, 7),))
    >>> ExecutorSnapshot.from_wire(s.to_wire()) == s
    True
    >>> s.id
    (3, 4)
    """

    component: str
    kind: str  # "spout" | "bolt" | "acker"
    tasks: tuple[int, ...]
    worker: int
    uptime_secs: float
    #: (task, stream, emitted, transferred) for every task and output stream.
    outputs: tuple[tuple[int, str, int, int], ...] = ()
    #: (source component, stream, executed) for every input stream seen.
    inputs: tuple[tuple[str, str, int], ...] = ()
    acked: int = 0
    failed: int = 0
    errors: int = 0
    execute_ms: float = 0.0
    complete_ms: float = 0.0
    complete_n: int = 0
    busy_secs: float = 0.0
    #: Tuples waiting in the inbox, and the inbox's capacity.
    queued: int = 0
    queue_capacity: int = 0
    #: Spouts: tuple trees in flight (pending acks).
    pending: int = 0
    timeouts: int = 0
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> tuple[int, int]:
        """Storm's executor id: (start task, end task)."""
        return (self.tasks[0], self.tasks[-1])

    @property
    def backpressure(self) -> bool:
        """True while the inbox is full (upstream executors are held back)."""
        return self.queue_capacity > 0 and self.queued >= self.queue_capacity

    def to_wire(self) -> list[Any]:
        return [
            self.component,
            self.kind,
            list(self.tasks),
            self.worker,
            self.uptime_secs,
            [list(o) for o in self.outputs],
            [list(i) for i in self.inputs],
            self.acked,
            self.failed,
            self.errors,
            self.execute_ms,
            self.complete_ms,
            self.complete_n,
            self.busy_secs,
            self.queued,
            self.queue_capacity,
            self.pending,
            self.timeouts,
            dict(self.metrics),
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> ExecutorSnapshot:
        return cls(
            component=w[0],
            kind=w[1],
            tasks=tuple(w[2]),
            worker=w[3],
            uptime_secs=w[4],
            outputs=tuple((int(t), str(s), int(e), int(x)) for t, s, e, x in w[5]),
            inputs=tuple((str(c), str(s), int(n)) for c, s, n in w[6]),
            acked=w[7],
            failed=w[8],
            errors=w[9],
            execute_ms=w[10],
            complete_ms=w[11],
            complete_n=w[12],
            busy_secs=w[13],
            queued=w[14],
            queue_capacity=w[15],
            pending=w[16],
            timeouts=w[17],
            metrics=w[18],
        )
