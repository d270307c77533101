"""An in-memory coordination store with ZooKeeper's semantics, for local mode and tests.

One :class:`MemoryZooKeeper` is the "server"; each :meth:`MemoryZooKeeper.client`
is a session, with its own ephemeral nodes and watches. Faults are one call
away, so tests can drive every path the daemons take on a real ensemble:

* :meth:`MemoryStore.suspend` / :meth:`MemoryStore.resume`: the connection drops
  and comes back within the session timeout (``SUSPENDED`` then ``CONNECTED``;
  ephemeral nodes stay);
* :meth:`MemoryStore.expire`: the session expires (``LOST``; its ephemeral
  nodes are deleted), then the client reconnects with a new session
  (``CONNECTED``, new :attr:`~MemoryStore.session_id`).

Watches fire synchronously, after the write that triggers them has been
applied and the lock released, so a unit test sees their effect at once.

>>> zk = MemoryZooKeeper()
>>> a, b = zk.client(), zk.client()
>>> a.create("/squall/supervisors/s1", b"{}", ephemeral=True, makepath=True)
'/squall/supervisors/s1'
>>> fired = []
>>> b.children("/squall/supervisors", watch=lambda: fired.append("changed"))
['s1']
>>> a.expire()
>>> b.children("/squall/supervisors"), fired
([], ['changed'])
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from squall.cluster.store import (
    BadVersionError,
    ConnectionState,
    CoordinationUnavailableError,
    Create,
    Delete,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OnceWatch,
    Op,
    SetData,
    Watch,
    check_path,
    parent,
)

#: ZooKeeper's default limit on a node's data (jute.maxbuffer is 1 MiB, less some overhead).
MAX_DATA_BYTES = 1024 * 1024 - 1024


@dataclass
class _Node:
    data: bytes
    version: int = 0
    owner: int | None = None  # session id of an ephemeral node's creator
    children: set[str] = field(default_factory=set)
    next_seq: int = 0


class MemoryZooKeeper:
    """The shared tree that :class:`MemoryStore` sessions talk to (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._nodes: dict[str, _Node] = {"/": _Node(b"")}
        self._data_watches: dict[str, list[tuple[MemoryStore, Watch]]] = {}
        self._child_watches: dict[str, list[tuple[MemoryStore, Watch]]] = {}
        self._session_ids = itertools.count(0x1000)

    def client(self) -> MemoryStore:
        """A new connected session."""
        store = MemoryStore(self)
        store.start()
        return store

    def dump(self) -> dict[str, bytes]:
        """Every node's data by path (for tests and debugging)."""
        with self._lock:
            return {p: n.data for p, n in sorted(self._nodes.items())}

    # -- used by MemoryStore, under the lock ----------------------------------------
    def _new_session(self) -> int:
        return next(self._session_ids)

    def _node(self, path: str) -> _Node:
        node = self._nodes.get(check_path(path))
        if node is None:
            raise NoNodeError(path)
        return node

    def _take(self, table: dict[str, list[tuple[MemoryStore, Watch]]], path: str) -> list[Watch]:
        return [w for _s, w in table.pop(path, [])]

    def _apply_create(
        self, path: str, data: bytes, owner: int | None, sequence: bool, fired: list[Watch]
    ) -> str:
        check_path(path)
        if len(data) > MAX_DATA_BYTES:
            raise ValueError(f"{path}: {len(data)} bytes is over the {MAX_DATA_BYTES} byte limit")
        up = parent(path)
        parent_node = self._nodes.get(up)
        if parent_node is None:
            raise NoNodeError(f"{path}: parent {up} does not exist")
        if parent_node.owner is not None:
            raise NoNodeError(f"{path}: ephemeral node {up} cannot have children")
        if sequence:
            path = f"{path}{parent_node.next_seq:010d}"
            parent_node.next_seq += 1
        if path in self._nodes:
            raise NodeExistsError(path)
        self._nodes[path] = _Node(data, owner=owner)
        parent_node.children.add(path.rpartition("/")[2])
        fired += self._take(self._data_watches, path)
        fired += self._take(self._child_watches, up)
        return path

    def _apply_set(self, path: str, data: bytes, version: int, fired: list[Watch]) -> int:
        if len(data) > MAX_DATA_BYTES:
            raise ValueError(f"{path}: {len(data)} bytes is over the {MAX_DATA_BYTES} byte limit")
        node = self._node(path)
        if version >= 0 and node.version != version:
            raise BadVersionError(f"{path}: expected version {version}, found {node.version}")
        node.data = data
        node.version += 1
        fired += self._take(self._data_watches, path)
        return node.version

    def _apply_delete(self, path: str, version: int, fired: list[Watch]) -> None:
        node = self._node(path)
        if path == "/":
            raise ValueError("cannot delete the root")
        if version >= 0 and node.version != version:
            raise BadVersionError(f"{path}: expected version {version}, found {node.version}")
        if node.children:
            raise NotEmptyError(path)
        del self._nodes[path]
        up = parent(path)
        self._nodes[up].children.discard(path.rpartition("/")[2])
        fired += self._take(self._data_watches, path)
        fired += self._take(self._child_watches, path)
        fired += self._take(self._child_watches, up)

    def _drop_session(self, session: int, fired: list[Watch]) -> None:
        mine = [p for p, n in self._nodes.items() if n.owner == session]
        for path in sorted(mine, reverse=True):
            if path in self._nodes:
                self._apply_delete(path, -1, fired)


class MemoryStore:
    """One session on a :class:`MemoryZooKeeper` (implements ``CoordinationStore``)."""

    def __init__(self, server: MemoryZooKeeper) -> None:
        self._server = server
        self._state = ConnectionState.SUSPENDED
        self._session: int | None = None
        self._listeners: list[Callable[[ConnectionState], None]] = []
        self._watches: list[OnceWatch] = []  # pending, fired on any state change
        self._closed = False

    # -- session -------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def session_id(self) -> int | None:
        return self._session if self._state is ConnectionState.CONNECTED else None

    def start(self, timeout_secs: float = 15.0) -> None:
        if self._closed:
            raise CoordinationUnavailableError("the store was stopped")
        if self._session is None:
            with self._server._lock:
                self._session = self._server._new_session()
        self._set_state(ConnectionState.CONNECTED)

    def stop(self) -> None:
        if self._closed:
            return
        fired: list[Watch] = []
        with self._server._lock:
            if self._session is not None:
                self._server._drop_session(self._session, fired)
        self._closed = True
        self._session = None
        self._state = ConnectionState.LOST
        _fire(fired)

    def add_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        self._listeners.append(listener)

    def suspend(self) -> None:
        """Fault injection: the connection drops; the session lives on."""
        self._set_state(ConnectionState.SUSPENDED)

    def resume(self) -> None:
        """Fault injection: the connection is back, same session."""
        if not self._closed:
            self._set_state(ConnectionState.CONNECTED)

    def expire(self) -> None:
        """Fault injection: the session expires (ephemerals deleted), then a new one starts."""
        fired: list[Watch] = []
        with self._server._lock:
            if self._session is not None:
                self._server._drop_session(self._session, fired)
            self._session = None
        _fire(fired)
        self._set_state(ConnectionState.LOST)
        if not self._closed:
            with self._server._lock:
                self._session = self._server._new_session()
            self._set_state(ConnectionState.CONNECTED)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        pending, self._watches = self._watches, []
        for listener in list(self._listeners):
            listener(state)
        _fire(pending)

    def _check(self) -> None:
        if self._state is not ConnectionState.CONNECTED:
            raise CoordinationUnavailableError(f"not connected ({self._state.value})")

    def _watch(
        self, table: dict[str, list[tuple[MemoryStore, Watch]]], path: str, w: Watch
    ) -> None:
        # The same callback on the same node is registered once until it fires (as
        # ZooKeeper does): a daemon re-reading with its wake-up callback every pass
        # must not pile up registrations.
        for s, x in table.get(path, ()):
            if s is self and isinstance(x, OnceWatch) and x.fn == w and not x.done:
                return
        once = OnceWatch(w)
        table.setdefault(path, []).append((self, once))
        if len(self._watches) > 256:  # forget the ones that already fired
            self._watches = [x for x in self._watches if not x.done]
        self._watches.append(once)

    # -- reads -----------------------------------------------------------------------
    def get(self, path: str, watch: Watch | None = None) -> tuple[bytes, int]:
        self._check()
        with self._server._lock:
            node = self._server._node(path)
            if watch is not None:
                self._watch(self._server._data_watches, path, watch)
            return node.data, node.version

    def exists(self, path: str, watch: Watch | None = None) -> int | None:
        self._check()
        with self._server._lock:
            node = self._server._nodes.get(check_path(path))
            if watch is not None:
                self._watch(self._server._data_watches, path, watch)
            return None if node is None else node.version

    def children(self, path: str, watch: Watch | None = None) -> list[str]:
        self._check()
        with self._server._lock:
            node = self._server._node(path)
            if watch is not None:
                self._watch(self._server._child_watches, path, watch)
            return sorted(node.children)

    # -- writes ----------------------------------------------------------------------
    def create(
        self,
        path: str,
        data: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        self._check()
        fired: list[Watch] = []
        with self._server._lock:
            if makepath:
                self._make_parents(path, fired)
            owner = self._session if ephemeral else None
            made = self._server._apply_create(path, data, owner, sequence, fired)
        _fire(fired)
        return made

    def ensure_path(self, path: str) -> None:
        self._check()
        fired: list[Watch] = []
        with self._server._lock:
            self._make_parents(path, fired)
            if path not in self._server._nodes:
                self._server._apply_create(path, b"", None, False, fired)
        _fire(fired)

    def _make_parents(self, path: str, fired: list[Watch]) -> None:
        parts = check_path(path).strip("/").split("/")[:-1]
        at = ""
        for part in parts:
            at += "/" + part
            if at not in self._server._nodes:
                self._server._apply_create(at, b"", None, False, fired)

    def set(self, path: str, data: bytes, version: int = -1) -> int:
        self._check()
        fired: list[Watch] = []
        with self._server._lock:
            new = self._server._apply_set(path, data, version, fired)
        _fire(fired)
        return new

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        self._check()
        fired: list[Watch] = []
        with self._server._lock:
            nodes = self._server._nodes
            if check_path(path) not in nodes:
                return
            if recursive:
                below = [p for p in nodes if p.startswith(path + "/")]
                for p in sorted(below, key=lambda p: -p.count("/")):
                    self._server._apply_delete(p, -1, fired)
            self._server._apply_delete(path, version, fired)
        _fire(fired)

    def commit(self, ops: Sequence[Op]) -> None:
        self._check()
        fired: list[Watch] = []
        server = self._server
        with server._lock:
            # Validate against a dry run first: all or nothing.
            for op in ops:
                self._precheck(op, ops)
            for op in ops:
                if isinstance(op, Create):
                    owner = self._session if op.ephemeral else None
                    server._apply_create(op.path, op.data, owner, False, fired)
                elif isinstance(op, SetData):
                    server._apply_set(op.path, op.data, op.version, fired)
                elif isinstance(op, Delete):
                    server._apply_delete(op.path, op.version, fired)
        _fire(fired)

    def _precheck(self, op: Op, ops: Sequence[Op]) -> None:
        nodes = self._server._nodes
        created = {o.path for o in ops if isinstance(o, Create)}
        deleted = {o.path for o in ops if isinstance(o, Delete)}
        path = check_path(op.path)
        node = nodes.get(path)
        if isinstance(op, Create):
            if node is not None:
                raise NodeExistsError(path)
            up = parent(path)
            if up not in nodes and up not in created:
                raise NoNodeError(f"{path}: parent {up} does not exist")
            return
        if node is None:
            if path in created:
                return
            raise NoNodeError(path)
        version = op.version
        if version >= 0 and node.version != version:
            raise BadVersionError(f"{path}: expected version {version}, found {node.version}")
        if isinstance(op, Delete):
            remaining = {f"{path}/{c}" for c in node.children} - deleted
            if remaining:
                raise NotEmptyError(path)


def _fire(watches: Sequence[Watch]) -> None:
    for w in watches:
        w()
