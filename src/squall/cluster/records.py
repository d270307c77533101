"""What the cluster keeps in ZooKeeper: frozen records, stored as JSON.

Everything read back from ZooKeeper is checked as it is decoded (a node might
have been written by another version, or by hand): a bad record raises
:class:`RecordError` naming the field, never an obscure ``KeyError`` later.

>>> a = Assignment("wc-1-100", (WorkerAssignment(0, "sup-a", "10.0.0.1", 6700, ((1, 2), (3, 3))),))
>>> Assignment.decode(a.encode()) == a
True
>>> a.workers[0].slot
WorkerSlot(node='sup-a', port=6700)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Self

ExecutorId = tuple[int, int]
"""Storm's executor id: ``(start task, end task)``, both included."""

ACTIVE: Final = "ACTIVE"
INACTIVE: Final = "INACTIVE"
KILLED: Final = "KILLED"
REBALANCING: Final = "REBALANCING"
STATUSES: Final = (ACTIVE, INACTIVE, KILLED, REBALANCING)


class RecordError(ValueError):
    """A record read from the cluster state is malformed (the message names the field)."""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise RecordError(f"{what}: not JSON ({e})") from e
    if not isinstance(obj, dict):
        raise RecordError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _field(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], what: str) -> Any:
    if key not in obj:
        raise RecordError(f"{what}: missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RecordError(f"{what}: field {key!r} has the wrong type (bool)")
    if not isinstance(value, types):
        raise RecordError(f"{what}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _executors(value: Any, what: str) -> tuple[ExecutorId, ...]:
    if not isinstance(value, list):
        raise RecordError(f"{what}: 'executors' must be a list")
    out = []
    for e in value:
        if (
            not isinstance(e, list)
            or len(e) != 2
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in e)
            or not 0 < e[0] <= e[1]
        ):
            raise RecordError(f"{what}: bad executor {e!r} (expected [start, end] tasks)")
        out.append((int(e[0]), int(e[1])))
    return tuple(out)


@dataclass(frozen=True, order=True)
class WorkerSlot:
    """A port on a supervisor: where one worker process runs (Storm's ``WorkerSlot``)."""

    node: str
    port: int

    @property
    def name(self) -> str:
        """The name of its worker's heartbeat node (``workerbeats/<topology-id>/<name>``).

        >>> WorkerSlot("sup-a", 6700).name
        'sup-a-6700'
        """
        return f"{self.node}-{self.port}"


@dataclass(frozen=True)
class SupervisorInfo:
    """``supervisors/<id>`` (ephemeral): a live supervisor and its slots."""

    id: str
    host: str
    ports: tuple[int, ...]
    time_secs: float
    uptime_secs: float = 0.0
    version: str = ""
    #: Where its logviewer listens on ``host`` (0: it has none).
    logviewer_port: int = 0

    def encode(self) -> bytes:
        return _dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        what = "supervisor info"
        o = _loads(data, what)
        ports = _field(o, "ports", list, what)
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in ports):
            raise RecordError(f"{what}: 'ports' must be integers")
        return cls(
            id=_field(o, "id", str, what),
            host=_field(o, "host", str, what),
            ports=tuple(ports),
            time_secs=float(_field(o, "time_secs", (int, float), what)),
            uptime_secs=float(o.get("uptime_secs", 0.0)),
            version=str(o.get("version", "")),
            logviewer_port=int(o.get("logviewer_port") or 0),
        )

    def slots(self) -> list[WorkerSlot]:
        return [WorkerSlot(self.id, p) for p in self.ports]


@dataclass(frozen=True)
class WorkerAssignment:
    """One worker of a topology: its index (the wire id between workers), slot and executors."""

    index: int
    node: str
    host: str
    port: int
    executors: tuple[ExecutorId, ...]
    start_time_secs: float = 0.0

    @property
    def slot(self) -> WorkerSlot:
        return WorkerSlot(self.node, self.port)

    @property
    def endpoint(self) -> str:
        """``host:port`` of the worker's data socket."""
        return f"{self.host}:{self.port}"

    def tasks(self) -> list[int]:
        return [t for s, e in self.executors for t in range(s, e + 1)]

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored for this worker in its topology's assignment."""
        return {
            "index": self.index,
            "node": self.node,
            "host": self.host,
            "port": self.port,
            "executors": [list(e) for e in self.executors],
            "start_time_secs": self.start_time_secs,
        }


@dataclass(frozen=True)
class Assignment:
    """``assignments/<topology-id>``: where every executor of a topology runs."""

    topology_id: str
    workers: tuple[WorkerAssignment, ...]

    def encode(self) -> bytes:
        return _dumps(
            {
                "topology_id": self.topology_id,
                "workers": [w.to_json() for w in self.workers],
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        what = "assignment"
        o = _loads(data, what)
        workers = []
        for w in _field(o, "workers", list, what):
            if not isinstance(w, dict):
                raise RecordError(f"{what}: each worker must be an object")
            ww = f"{what} worker"
            index = _field(w, "index", int, ww)
            if not 0 <= index < 0xFFFF:
                raise RecordError(f"{ww}: index {index} out of range")
            workers.append(
                WorkerAssignment(
                    index=index,
                    node=_field(w, "node", str, ww),
                    host=_field(w, "host", str, ww),
                    port=_field(w, "port", int, ww),
                    executors=_executors(w.get("executors"), ww),
                    start_time_secs=float(w.get("start_time_secs", 0.0)),
                )
            )
        return cls(topology_id=_field(o, "topology_id", str, what), workers=tuple(workers))

    def worker_at_index(self, index: int) -> WorkerAssignment | None:
        for w in self.workers:
            if w.index == index:
                return w
        return None

    def worker_at(self, slot: WorkerSlot) -> WorkerAssignment | None:
        for w in self.workers:
            if w.slot == slot:
                return w
        return None

    def executor_slots(self) -> dict[ExecutorId, WorkerSlot]:
        return {e: w.slot for w in self.workers for e in w.executors}


@dataclass(frozen=True)
class StormBase:
    """``storms/<topology-id>``: a submitted topology's name, status and shape.

    Attributes:
        name: the topology name (unique among live topologies).
        status: ACTIVE, INACTIVE, KILLED or REBALANCING.
        launch_time_secs: when it was submitted.
        num_workers: the workers it asks for.
        component_tasks: component -> ``[first task, last task]``.
        component_executors: component -> number of executors.
        owner: who submitted it.
        code_sha256: the package's digest (supervisors check what they fetch).
        prev_status: the status to return to after REBALANCING.
        deadline_secs: when a KILLED topology is removed, or a REBALANCING one rebalanced.
        rebalance: the pending rebalance: ``{"num_workers": n, "executors": {...}}``.
        debug: Storm's debug options: component (``""`` for the whole topology) ->
            sampling percentage of emitted tuples (0 turns it off).
    """

    name: str
    status: str
    launch_time_secs: float
    num_workers: int
    component_tasks: Mapping[str, tuple[int, int]]
    component_executors: Mapping[str, int]
    owner: str = ""
    code_sha256: str = ""
    prev_status: str | None = None
    deadline_secs: float | None = None
    rebalance: Mapping[str, Any] | None = None
    num_tasks: int = field(default=0)
    debug: Mapping[str, float] = field(default_factory=dict)

    def encode(self) -> bytes:
        d = asdict(self)
        d["component_tasks"] = {k: list(v) for k, v in self.component_tasks.items()}
        d["component_executors"] = dict(self.component_executors)
        d["rebalance"] = dict(self.rebalance) if self.rebalance is not None else None
        d["debug"] = dict(self.debug)
        return _dumps(d)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        what = "storm base"
        o = _loads(data, what)
        status = _field(o, "status", str, what)
        if status not in STATUSES:
            raise RecordError(f"{what}: unknown status {status!r}")
        tasks: dict[str, tuple[int, int]] = {}
        for comp, rng in _field(o, "component_tasks", dict, what).items():
            if (
                not isinstance(rng, list)
                or len(rng) != 2
                or not all(isinstance(t, int) for t in rng)
                or not 0 < rng[0] <= rng[1]
            ):
                raise RecordError(f"{what}: component {comp!r} has bad task range {rng!r}")
            tasks[comp] = (rng[0], rng[1])
        execs = {}
        for comp, n in _field(o, "component_executors", dict, what).items():
            if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
                raise RecordError(f"{what}: component {comp!r} has bad executor count {n!r}")
            execs[comp] = n
        deadline = o.get("deadline_secs")
        debug = o.get("debug") or {}
        if not isinstance(debug, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100
            for v in debug.values()
        ):
            raise RecordError(f"{what}: 'debug' must map components to percentages")
        return cls(
            name=_field(o, "name", str, what),
            status=status,
            launch_time_secs=float(_field(o, "launch_time_secs", (int, float), what)),
            num_workers=_field(o, "num_workers", int, what),
            component_tasks=tasks,
            component_executors=execs,
            owner=str(o.get("owner", "")),
            code_sha256=str(o.get("code_sha256", "")),
            prev_status=o.get("prev_status"),
            deadline_secs=None if deadline is None else float(deadline),
            rebalance=o.get("rebalance"),
            num_tasks=int(o.get("num_tasks", 0)),
            debug={str(k): float(v) for k, v in debug.items()},
        )


@dataclass(frozen=True)
class WorkerHeartbeat:
    """``workerbeats/<topology-id>/<node>-<port>``: a worker says it is alive.

    Nimbus does not trust the clock in it (machines disagree): it notes when
    *it* saw the node's version change.
    """

    topology_id: str
    node: str
    port: int
    index: int
    pid: int
    time_secs: float
    uptime_secs: float
    executors: tuple[ExecutorId, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)
    #: Every executor's cumulative counters (``ExecutorSnapshot.to_wire()``), for the UI.
    executor_stats: tuple[list[Any], ...] = ()
    #: The latest sampled tuples (debug), each numbered by ``seq`` within the worker.
    events: tuple[Mapping[str, Any], ...] = ()

    def encode(self) -> bytes:
        d = asdict(self)
        d["executors"] = [list(e) for e in self.executors]
        d["stats"] = dict(self.stats)
        d["executor_stats"] = [list(e) for e in self.executor_stats]
        d["events"] = [dict(e) for e in self.events]
        return _dumps(d)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        what = "worker heartbeat"
        o = _loads(data, what)
        stats = o.get("stats") or {}
        if not isinstance(stats, dict):
            raise RecordError(f"{what}: 'stats' must be an object")
        executor_stats = o.get("executor_stats") or []
        if not isinstance(executor_stats, list) or not all(
            isinstance(e, list) for e in executor_stats
        ):
            raise RecordError(f"{what}: 'executor_stats' must be a list of lists")
        events = o.get("events") or []
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise RecordError(f"{what}: 'events' must be a list of objects")
        return cls(
            topology_id=_field(o, "topology_id", str, what),
            node=_field(o, "node", str, what),
            port=_field(o, "port", int, what),
            index=_field(o, "index", int, what),
            pid=_field(o, "pid", int, what),
            time_secs=float(_field(o, "time_secs", (int, float), what)),
            uptime_secs=float(_field(o, "uptime_secs", (int, float), what)),
            executors=_executors(o.get("executors"), what),
            stats=stats,
            executor_stats=tuple(executor_stats),
            events=tuple(events),
        )


@dataclass(frozen=True)
class ErrorInfo:
    """``errors/<topology-id>/<component>/e<seq>``: an error user code raised."""

    component: str
    task: int
    error: str
    time_secs: float
    host: str = ""
    port: int = 0
    traceback: str = ""

    def encode(self) -> bytes:
        return _dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        what = "error info"
        o = _loads(data, what)
        return cls(
            component=_field(o, "component", str, what),
            task=_field(o, "task", int, what),
            error=_field(o, "error", str, what),
            time_secs=float(_field(o, "time_secs", (int, float), what)),
            host=str(o.get("host", "")),
            port=int(o.get("port", 0)),
            traceback=str(o.get("traceback", "")),
        )


@dataclass(frozen=True)
class NimbusInfo:
    """The data of a nimbus's election node: where its API listens."""

    id: str
    host: str
    port: int

    def encode(self) -> bytes:
        return _dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        what = "nimbus info"
        o = _loads(data, what)
        return cls(
            id=_field(o, "id", str, what),
            host=_field(o, "host", str, what),
            port=_field(o, "port", int, what),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
