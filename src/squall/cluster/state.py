"""The cluster state in ZooKeeper: Storm's layout, read and written through one object.

Under one root (``storm.zookeeper.root``, default ``/squall``)::

    supervisors/<supervisor-id>                 ephemeral: SupervisorInfo
    storms/<topology-id>                        StormBase (status, shape)
    assignments/<topology-id>                   Assignment (versioned; nimbus writes, fenced)
    workerbeats/<topology-id>/<node>-<port>     WorkerHeartbeat
    errors/<topology-id>/<component>/e<seq>     ErrorInfo (the last few per component)
    leader/<guid>-n_<seq>                       ephemeral, sequential: NimbusInfo (election)

Only the data path's *control* uses this: heartbeats, assignments, errors.
Tuples never go through ZooKeeper.

>>> from squall.cluster.memory import MemoryZooKeeper
>>> state = ClusterState(MemoryZooKeeper().client(), "/squall")
>>> state.setup()
>>> state.register_supervisor(SupervisorInfo("sup-a", "127.0.0.1", (6700, 6701), 1.0))
>>> sorted(state.supervisors())
['sup-a']
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from squall.cluster.records import (
    Assignment,
    ErrorInfo,
    NimbusInfo,
    RecordError,
    StormBase,
    SupervisorInfo,
    WorkerHeartbeat,
    WorkerSlot,
)
from squall.cluster.store import (
    Check,
    CoordinationStore,
    CoordinationUnavailableError,
    NodeExistsError,
    NoNodeError,
    Op,
    Watch,
    join,
)

log = logging.getLogger("squall.cluster")
R = TypeVar("R")

SUPERVISORS = "supervisors"
STORMS = "storms"
ASSIGNMENTS = "assignments"
WORKERBEATS = "workerbeats"
ERRORS = "errors"
LEADER = "leader"
SUBTREES = (SUPERVISORS, STORMS, ASSIGNMENTS, WORKERBEATS, ERRORS, LEADER)

#: Errors kept per component (Storm keeps the last 10).
ERRORS_KEPT = 10


class NotLeaderError(Exception):
    """A nimbus write was refused: this nimbus is not (or no longer) the leader."""


class ClusterState:
    """Storm's ``IStormClusterState`` over a :class:`~squall.cluster.store.CoordinationStore`.

    Args:
        store: the connected store.
        root: the root path of this cluster's nodes.
    """

    def __init__(self, store: CoordinationStore, root: str = "/squall") -> None:
        self.store = store
        self.root = root.rstrip("/") or "/squall"

    def path(self, *parts: str) -> str:
        return join(self.root, *parts)

    def setup(self) -> None:
        """Create the root and its subtrees if missing."""
        for sub in SUBTREES:
            self.store.ensure_path(self.path(sub))

    # -- supervisors -------------------------------------------------------------------
    def register_supervisor(self, info: SupervisorInfo) -> None:
        """(Re)create this supervisor's ephemeral node in the current session.

        A node left by an earlier session of the same supervisor (restarted before
        that session expired) is replaced, as Storm does.
        """
        path = self.path(SUPERVISORS, info.id)
        try:
            self.store.create(path, info.encode(), ephemeral=True)
        except NodeExistsError:
            self.store.delete(path)
            self.store.create(path, info.encode(), ephemeral=True)

    def update_supervisor(self, info: SupervisorInfo) -> None:
        """Refresh the node's data (its uptime); raises NoNodeError if it is gone."""
        self.store.set(self.path(SUPERVISORS, info.id), info.encode())

    def supervisors(self, watch: Watch | None = None) -> dict[str, SupervisorInfo]:
        """Live supervisors by id (malformed nodes are skipped and logged)."""
        out: dict[str, SupervisorInfo] = {}
        for name in self.store.children(self.path(SUPERVISORS), watch):
            rec = self._read(self.path(SUPERVISORS, name), SupervisorInfo.decode)
            if rec is not None:
                out[name] = rec[0]
        return out

    # -- topologies --------------------------------------------------------------------
    def topology_ids(self, watch: Watch | None = None) -> list[str]:
        return self.store.children(self.path(STORMS), watch)

    def storm_base(
        self, topology_id: str, watch: Watch | None = None
    ) -> tuple[StormBase, int] | None:
        return self._read(self.path(STORMS, topology_id), StormBase.decode, watch)

    def storm_bases(self) -> dict[str, tuple[StormBase, int]]:
        out: dict[str, tuple[StormBase, int]] = {}
        for tid in self.topology_ids():
            rec = self.storm_base(tid)
            if rec is not None:
                out[tid] = rec
        return out

    def assignment_ids(self, watch: Watch | None = None) -> list[str]:
        return self.store.children(self.path(ASSIGNMENTS), watch)

    def assignment(
        self, topology_id: str, watch: Watch | None = None
    ) -> tuple[Assignment, int] | None:
        return self._read(self.path(ASSIGNMENTS, topology_id), Assignment.decode, watch)

    def assignments(self, watch: Watch | None = None) -> dict[str, tuple[Assignment, int]]:
        """Every assignment; ``watch`` fires when the list of topologies or any of them changes."""
        out: dict[str, tuple[Assignment, int]] = {}
        for tid in self.assignment_ids(watch):
            rec = self.assignment(tid, watch)
            if rec is not None:
                out[tid] = rec
        return out

    # -- worker heartbeats ---------------------------------------------------------------
    def worker_heartbeat(self, hb: WorkerHeartbeat) -> None:
        """Write a worker's heartbeat.

        Raises:
            NoNodeError: the topology is gone (its ``workerbeats`` folder was removed).
        """
        path = self.path(WORKERBEATS, hb.topology_id, WorkerSlot(hb.node, hb.port).name)
        data = hb.encode()
        try:
            self.store.set(path, data)
        except NoNodeError:
            # The topology's folder is created at submit; without it the topology is gone.
            self.store.create(path, data)

    def heartbeats(self, topology_id: str) -> dict[str, tuple[WorkerHeartbeat, int]]:
        """``<node>-<port>`` -> (heartbeat, node version)."""
        base = self.path(WORKERBEATS, topology_id)
        out: dict[str, tuple[WorkerHeartbeat, int]] = {}
        try:
            names = self.store.children(base)
        except NoNodeError:
            return out
        for name in names:
            rec = self._read(f"{base}/{name}", WorkerHeartbeat.decode)
            if rec is not None:
                out[name] = rec
        return out

    def remove_heartbeat(self, topology_id: str, node: str, port: int) -> None:
        self.store.delete(self.path(WORKERBEATS, topology_id, WorkerSlot(node, port).name))

    # -- errors ----------------------------------------------------------------------------
    def report_error(self, topology_id: str, error: ErrorInfo) -> None:
        """Record an error, keeping the last :data:`ERRORS_KEPT` per component.

        Raises:
            NoNodeError: the topology is gone.
        """
        folder = self.path(ERRORS, topology_id, _safe_name(error.component))
        try:
            self.store.create(f"{folder}/e", error.encode(), sequence=True)
        except NoNodeError:
            # The topology's folder exists while the topology does; add the component's.
            try:
                self.store.create(folder)
            except NodeExistsError:
                pass
            self.store.create(f"{folder}/e", error.encode(), sequence=True)
        names = self.store.children(folder)
        for old in names[:-ERRORS_KEPT]:
            self.store.delete(f"{folder}/{old}")

    def errors(self, topology_id: str) -> dict[str, list[ErrorInfo]]:
        """component -> its recent errors, oldest first."""
        base = self.path(ERRORS, topology_id)
        out: dict[str, list[ErrorInfo]] = {}
        try:
            comps = self.store.children(base)
        except NoNodeError:
            return out
        for comp in comps:
            try:
                names = self.store.children(f"{base}/{comp}")
            except NoNodeError:
                continue
            for name in names:
                rec = self._read(f"{base}/{comp}/{name}", ErrorInfo.decode)
                if rec is not None:
                    out.setdefault(rec[0].component, []).append(rec[0])
        return out

    # -- nimbus ------------------------------------------------------------------------------
    def commit_fenced(self, fence: Check, ops: Sequence[Op]) -> None:
        """Apply ``ops`` atomically, only while ``fence`` holds (the leader's election node).

        Raises:
            NotLeaderError: the fence failed: this nimbus lost its leadership.
            BadVersionError: an op's version check failed (someone else wrote first).
        """
        try:
            self.store.commit([fence, *ops])
        except NoNodeError as e:
            if str(e).startswith(fence.path):
                raise NotLeaderError(
                    "this nimbus is no longer the leader (its election node is gone)"
                ) from e
            raise

    # -- helpers -------------------------------------------------------------------------------
    def _read(
        self,
        path: str,
        decode: Callable[[bytes], R],
        watch: Watch | None = None,
    ) -> tuple[R, int] | None:
        try:
            data, version = self.store.get(path, watch)
        except NoNodeError:
            return None
        try:
            return decode(data), version
        except RecordError as e:
            log.error("%s: %s (ignored)", path, e)
            return None


def _safe_name(component: str) -> str:
    # Component names may hold characters ZooKeeper paths cannot.
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in component) or "_"


class LeaderElection:
    """Nimbus leader election: the lowest ephemeral sequential node under ``leader/`` leads.

    A candidate stops acting as leader as soon as its session is not
    ``CONNECTED`` (SUSPENDED: another may take over once the session expires);
    after ``LOST`` it joins again with a new node, behind the new leader. Its
    writes carry :meth:`fence`, a check that its node still exists, so a paused
    old leader cannot overwrite anything once its session is gone.

    >>> from squall.cluster.memory import MemoryZooKeeper
    >>> zk = MemoryZooKeeper()
    >>> s1, s2 = ClusterState(zk.client()), ClusterState(zk.client())
    >>> s1.setup()
    >>> a = LeaderElection(s1, NimbusInfo("a", "127.0.0.1", 6627)); a.join()
    >>> b = LeaderElection(s2, NimbusInfo("b", "127.0.0.1", 6628)); b.join()
    >>> a.is_leader(), b.is_leader(), b.leader().id
    (True, False, 'a')
    >>> s1.store.expire()
    >>> a.is_leader(), b.is_leader()
    (False, True)
    """

    def __init__(self, state: ClusterState, info: NimbusInfo) -> None:
        self.state = state
        self.info = info
        self._prefix = f"{uuid.uuid4().hex}-n_"
        self._node: str | None = None
        self._session: int | None = None

    @property
    def node(self) -> str | None:
        return self._node

    def join(self) -> None:
        """Make sure this candidate has a node in the current session (idempotent)."""
        store = self.state.store
        session = store.session_id
        if session is None:
            raise CoordinationUnavailableError("cannot join the election: not connected")
        if self._node is not None and self._session == session:
            return
        folder = self.state.path(LEADER)
        for name in store.children(folder):
            # A create whose reply was lost may still have made our node: adopt it.
            if name.startswith(self._prefix):
                self._node, self._session = f"{folder}/{name}", session
                return
            # A node with our id from another session is our previous life (killed and
            # restarted before its session expired): it would lead, dead, until then.
            rec = self.state._read(f"{folder}/{name}", NimbusInfo.decode)
            if rec is not None and rec[0].id == self.info.id:
                store.delete(f"{folder}/{name}")
        self._node = store.create(
            f"{folder}/{self._prefix}", self.info.encode(), ephemeral=True, sequence=True
        )
        self._session = session

    def leave(self) -> None:
        if self._node is not None:
            try:
                self.state.store.delete(self._node)
            except CoordinationUnavailableError:
                pass
        self._node = None

    def candidates(self) -> list[tuple[str, NimbusInfo]]:
        """(node name, info) of every candidate, the leader first."""
        folder = self.state.path(LEADER)
        names = sorted(self.state.store.children(folder), key=_sequence)
        out = []
        for name in names:
            rec = self.state._read(f"{folder}/{name}", NimbusInfo.decode)
            if rec is not None:
                out.append((name, rec[0]))
        return out

    def leader(self) -> NimbusInfo | None:
        """The current leader's info, or None."""
        cands = self.candidates()
        return cands[0][1] if cands else None

    def is_leader(self) -> bool:
        """True only while connected, in the session that made our node, and ours is lowest."""
        store = self.state.store
        if self._node is None or store.session_id is None or store.session_id != self._session:
            return False
        try:
            names = sorted(store.children(self.state.path(LEADER)), key=_sequence)
        except CoordinationUnavailableError:
            return False
        return bool(names) and f"{self.state.path(LEADER)}/{names[0]}" == self._node

    def fence(self) -> Check:
        """The op that makes a commit fail unless this candidate's node still exists."""
        if self._node is None:
            raise NotLeaderError("this nimbus has not joined the election")
        return Check(self._node, 0)


def _sequence(name: str) -> int:
    tail = name.rpartition("n_")[2]
    return int(tail) if tail.isdigit() else 1 << 62
