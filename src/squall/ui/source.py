"""Where the UI gets what it shows: the ``TopologySource`` interface, and local mode's.

The UI never talks to engines, nimbus or ZooKeeper directly. It asks a
:class:`TopologySource` for the list of topologies, cumulative counter
snapshots, errors and configuration, and sends it the operator's actions.
:class:`LocalSource` implements it over a :class:`LocalCluster` (``squall run
--ui``); cluster mode implements the same methods over nimbus (see
``docs/ui.md``, "Cluster mode").

>>> from squall import LocalCluster
>>> from squall.api import Spout, Topology
>>> class T(Topology):
...     s = Spout.spec(outputs=["n"])
>>> with LocalCluster(simulated_time=True) as cluster:
...     _ = cluster.submit("demo", T)
...     source = LocalSource(cluster)
...     [(t.name, t.status, t.num_executors) for t in source.topologies()]
[('demo', 'ACTIVE', 2)]
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any, Protocol

import squall
from squall.api.topology import TopologyDef
from squall.daemon.local_cluster import LocalCluster, LocalTopology
from squall.runtime.stats import ErrorReport, ExecutorSnapshot

#: Storm's first worker slot port; local mode numbers its workers' "ports" from it.
FIRST_SLOT_PORT = 6700

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
REBALANCING = "REBALANCING"
KILLED = "KILLED"


class TopologyNotFound(KeyError):
    """No topology with that id (or name) is running."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "topology not found"


class SourceError(Exception):
    """The source refused or could not do what was asked; ``status`` is the HTTP status.

    A cluster source raises it when nimbus refuses an action (409: the topology
    is being killed) or cannot be reached (503).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DebugOptions:
    """Storm's debug options: sampling of emitted tuples, per topology or component."""

    enabled: bool = False
    percent: float = 10.0


@dataclass(frozen=True)
class ExecutorPlace:
    """Where one executor runs."""

    component: str
    tasks: tuple[int, ...]
    worker: int
    host: str
    port: int


@dataclass(frozen=True)
class WorkerInfo:
    """One worker process (or, in-process local mode, the one engine)."""

    index: int
    host: str
    port: int
    uptime_secs: float
    supervisor_id: str
    pid: int | None = None
    restarts: int = 0


@dataclass(frozen=True)
class TopologyInfo:
    """What the UI knows about one running topology (no counters: see snapshots)."""

    id: str
    name: str
    status: str
    owner: str
    uptime_secs: float
    definition: TopologyDef
    conf: Mapping[str, Any]
    executors: tuple[ExecutorPlace, ...]
    workers: tuple[WorkerInfo, ...]
    debug: DebugOptions = DebugOptions()
    component_debug: Mapping[str, DebugOptions] = field(default_factory=dict)

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    @property
    def num_executors(self) -> int:
        return len(self.executors)

    @property
    def num_tasks(self) -> int:
        return sum(len(e.tasks) for e in self.executors)

    def debug_of(self, component: str) -> DebugOptions:
        return self.component_debug.get(component, self.debug)


@dataclass(frozen=True)
class NimbusInfo:
    host: str
    port: int
    leader: bool
    uptime_secs: float
    version: str


@dataclass(frozen=True)
class SupervisorInfo:
    id: str
    host: str
    uptime_secs: float
    slots_total: int
    slots_used: int
    version: str


@dataclass(frozen=True)
class ClusterInfo:
    """The daemons: nimbus(es) and supervisors (local mode has one of each, in-process)."""

    nimbuses: tuple[NimbusInfo, ...]
    supervisors: tuple[SupervisorInfo, ...]
    local: bool = True


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counters of every executor of one topology, read at ``time``.

    ``time`` is on the topology's own clock (simulated time in tests), so stats
    windows follow it.
    """

    time: float
    executors: tuple[ExecutorSnapshot, ...]


class TopologySource(Protocol):
    """What the UI needs from local mode or from a cluster.

    Every method may be called from any of the UI's threads, at any time, and
    must not block a topology's run loop for long: read snapshots, do not stop
    the world.
    """

    def cluster_info(self) -> ClusterInfo: ...

    def topologies(self) -> list[TopologyInfo]:
        """Every running topology (killed ones disappear once gone)."""
        ...

    def topology(self, topology_id: str) -> TopologyInfo:
        """One topology by id (or name); raises :class:`TopologyNotFound`."""
        ...

    def snapshot(self, topology_id: str) -> Snapshot: ...

    def errors(self, topology_id: str) -> Sequence[ErrorReport]:
        """The most recent errors (oldest first), bounded by the source."""
        ...

    def activate(self, topology_id: str) -> None: ...

    def deactivate(self, topology_id: str) -> None: ...

    def rebalance(self, topology_id: str, wait_secs: float) -> None: ...

    def kill(self, topology_id: str, wait_secs: float) -> None: ...

    def set_debug(
        self, topology_id: str, component: str | None, enabled: bool, percent: float
    ) -> None: ...


@dataclass
class _Entry:
    id: str
    run: LocalTopology
    registered: float
    status_override: str | None = None
    debug: DebugOptions = DebugOptions()
    component_debug: dict[str, DebugOptions] = field(default_factory=dict)


class LocalSource:
    """A :class:`TopologySource` over a :class:`LocalCluster` in this process.

    Topology ids follow Storm's shape, ``name-N-starttime``; every method also
    accepts the plain name. Workers are given Storm's slot ports (6700, 6701,
    ...) as their "port", which is what log directories are named after.
    """

    def __init__(self, cluster: LocalCluster, owner: str | None = None) -> None:
        self.cluster = cluster
        self.owner = owner or _user()
        self.host = socket.gethostname()
        self.started = time.time()
        self._ids = count(1)
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}  # by name
        # Ids handed out before a topology is registered (its workers log while it starts).
        self._reserved: dict[str, tuple[str, float]] = {}

    # -- bookkeeping ----------------------------------------------------------
    def _sync(self) -> list[_Entry]:
        with self._lock:
            running = dict(self.cluster.topologies)
            for name in list(self._entries):
                entry = self._entries[name]
                if running.get(name) is not entry.run:
                    del self._entries[name]
            for name, run in running.items():
                if name not in self._entries:
                    reserved = self._reserved.pop(name, None)
                    if reserved is not None and reserved[1] >= run.started_at - 60:
                        tid = reserved[0]
                    else:
                        tid = f"{name}-{next(self._ids)}-{int(run.started_at)}"
                    self._entries[name] = _Entry(tid, run, time.time())
            return list(self._entries.values())

    def reserve_id(self, name: str) -> str:
        """The id topology ``name`` has, or will get when it finishes starting.

        Log records of a topology's workers arrive while it is still starting,
        before the cluster lists it; they go to the file of the id it will have.
        """
        for e in self._sync():
            if e.run.name == name:
                return e.id
        with self._lock:
            now = time.time()
            held = self._reserved.get(name)
            if held is None or now - held[1] > 60:
                held = (f"{name}-{next(self._ids)}-{int(now)}", now)
                self._reserved[name] = held
            return held[0]

    def _entry(self, topology_id: str) -> _Entry:
        for e in self._sync():
            if topology_id in (e.id, e.run.name):
                return e
        raise TopologyNotFound(f"no topology with id or name {topology_id!r} is running")

    def _info(self, e: _Entry) -> TopologyInfo:
        run = e.run
        plan = run.plan
        workers = tuple(
            WorkerInfo(
                index=i,
                host=self.host,
                port=FIRST_SLOT_PORT + i,
                uptime_secs=self._uptime(run),
                supervisor_id=f"{self.host}-local",
                pid=(run.worker_pids[i] if i < len(run.worker_pids) else None),
            )
            for i in range(plan.num_workers)
        )
        executors = tuple(
            ExecutorPlace(ex.component, ex.tasks, ex.worker, self.host, FIRST_SLOT_PORT + ex.worker)
            for ex in plan.executors
        )
        if e.status_override is not None:
            status = e.status_override
        else:
            status = ACTIVE if run.active else INACTIVE
        return TopologyInfo(
            id=e.id,
            name=run.name,
            status=status,
            owner=self.owner,
            uptime_secs=self._uptime(run),
            definition=plan.topology,
            conf=dict(plan.conf),
            executors=executors,
            workers=workers,
            debug=e.debug,
            component_debug=dict(e.component_debug),
        )

    def _uptime(self, run: LocalTopology) -> float:
        if run.simulated:
            # Simulated time: the executors' own clocks say how long it has run.
            snaps = run.snapshots()
            return max((s.uptime_secs for s in snaps), default=0.0)
        return max(0.0, time.time() - run.started_at)

    # -- TopologySource -------------------------------------------------------
    def cluster_info(self) -> ClusterInfo:
        entries = self._sync()
        used = sum(e.run.plan.num_workers for e in entries)
        up = time.time() - self.started
        return ClusterInfo(
            nimbuses=(NimbusInfo(self.host, 6627, True, up, squall.__version__),),
            supervisors=(
                SupervisorInfo(f"{self.host}-local", self.host, up, used, used, squall.__version__),
            ),
            local=True,
        )

    def topologies(self) -> list[TopologyInfo]:
        return [self._info(e) for e in self._sync()]

    def topology(self, topology_id: str) -> TopologyInfo:
        return self._info(self._entry(topology_id))

    def snapshot(self, topology_id: str) -> Snapshot:
        run = self._entry(topology_id).run
        return Snapshot(run.clock.now(), tuple(run.snapshots()))

    def errors(self, topology_id: str) -> Sequence[ErrorReport]:
        return list(self._entry(topology_id).run.errors)

    def activate(self, topology_id: str) -> None:
        e = self._entry(topology_id)
        e.run.activate()

    def deactivate(self, topology_id: str) -> None:
        e = self._entry(topology_id)
        e.run.deactivate()

    def rebalance(self, topology_id: str, wait_secs: float) -> None:
        """Local mode cannot move executors: like Storm, pause for ``wait_secs``, then resume.

        The spouts are deactivated while the status is REBALANCING, and the
        topology goes back to the state it was in.
        """
        e = self._entry(topology_id)
        was_active = e.run.active
        e.status_override = REBALANCING
        e.run.deactivate()

        def finish() -> None:
            try:
                if was_active:
                    e.run.activate()
            finally:
                e.status_override = None

        if wait_secs <= 0:
            finish()
        else:
            timer = threading.Timer(wait_secs, finish)
            timer.daemon = True
            timer.start()

    def kill(self, topology_id: str, wait_secs: float) -> None:
        """Deactivate, then stop after ``wait_secs`` (in the background when waiting)."""
        e = self._entry(topology_id)
        e.status_override = KILLED
        name = e.run.name
        if wait_secs <= 0:
            self.cluster.kill(name)
            return

        def finish() -> None:
            if self.cluster.topologies.get(name) is e.run:
                self.cluster.kill(name)

        e.run.deactivate()
        timer = threading.Timer(wait_secs, finish)
        timer.daemon = True
        timer.start()

    def set_debug(
        self, topology_id: str, component: str | None, enabled: bool, percent: float
    ) -> None:
        e = self._entry(topology_id)
        if component is not None and component not in e.run.plan.component_tasks:
            raise KeyError(f"topology {e.run.name!r} has no component {component!r}")
        opts = DebugOptions(enabled, percent)
        if component is None:
            e.debug = opts
            e.component_debug.clear()
        else:
            e.component_debug[component] = opts
        e.run.set_debug(component, percent if enabled else 0.0)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
