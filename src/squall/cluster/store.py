"""The coordination store: a small ZooKeeper-shaped interface, and its errors.

Everything the daemons keep in ZooKeeper goes through :class:`CoordinationStore`
(implemented by :class:`~squall.cluster.zookeeper.ZooKeeperStore` on kazoo, and
by :class:`~squall.cluster.memory.MemoryStore` for local mode and unit tests).
It has ZooKeeper's shape because its guarantees are what the daemons rely on:

* nodes form a tree of ``/``-separated paths holding bytes and a **version**
  (bumped by every write); a write or delete given a version fails with
  :class:`BadVersionError` unless it matches (compare-and-set);
* **ephemeral** nodes belong to the session that created them and vanish when
  the session ends; **sequential** nodes get a unique increasing suffix;
* a **watch** is a one-shot callback, called once when the node (or its list of
  children) changes, or when the session changes state;
* :meth:`CoordinationStore.commit` applies several operations atomically, all
  or nothing (ZooKeeper's ``multi``): the basis of fenced writes.

Sessions: the connection is ``CONNECTED``, ``SUSPENDED`` (disconnected, the
session may still be alive: keep working, do not act as a leader) or ``LOST``
(the session expired and its ephemeral nodes are gone; the client reconnects
with a new session and the owner must re-create them). No call ever blocks for
long: while not connected, calls raise :class:`CoordinationUnavailableError`.

>>> from squall.cluster.memory import MemoryZooKeeper
>>> store = MemoryZooKeeper().client()
>>> store.create("/squall/storms/wc-1-100", b"{}", makepath=True)
'/squall/storms/wc-1-100'
>>> store.get("/squall/storms/wc-1-100")
(b'{}', 0)
>>> store.set("/squall/storms/wc-1-100", b'{"status": "ACTIVE"}', version=0)
1
>>> store.set("/squall/storms/wc-1-100", b"{}", version=0)
Traceback (most recent call last):
...
squall.cluster.store.BadVersionError: /squall/storms/wc-1-100: expected version 0, found 1
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

Watch = Callable[[], None]
"""A one-shot callback: called once, from a store thread, when what it watches changes.

It must not block (set an event, wake a loop); it is also called when the
session changes state, so that nothing waits forever on a lost watch.
"""


class OnceWatch:
    """A :data:`Watch` that runs at most once, whichever of its triggers comes first.

    A store keeps it both on the node and in its session's list, so that a state
    change fires every pending watch; the node's event may come later, or never.

    >>> calls = []
    >>> w = OnceWatch(lambda: calls.append(1))
    >>> w(); w(); calls, w.done
    ([1], True)
    """

    __slots__ = ("done", "fn")

    def __init__(self, fn: Watch) -> None:
        self.fn = fn
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        self.fn()


class ConnectionState(enum.Enum):
    """The state of a store's session, as kazoo names it."""

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"


class CoordinationError(Exception):
    """Base class of the store's errors."""


class CoordinationUnavailableError(CoordinationError):
    """The store is not connected (or the request timed out); try again later."""


class NoNodeError(CoordinationError):
    """The node (or its parent, on create) does not exist."""


class NodeExistsError(CoordinationError):
    """The node already exists."""


class BadVersionError(CoordinationError):
    """A conditional write or check found another version."""


class NotEmptyError(CoordinationError):
    """A non-recursive delete found children."""


class NotAuthorizedError(CoordinationError):
    """The node's ACL refused the operation."""


# -- operations for commit() ---------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """Commit only if ``path`` exists (and has ``version``, unless it is -1)."""

    path: str
    version: int = -1


@dataclass(frozen=True)
class Create:
    """Create ``path`` (its parent must exist)."""

    path: str
    data: bytes = b""
    ephemeral: bool = False


@dataclass(frozen=True)
class SetData:
    """Replace the data of ``path`` (if it has ``version``, unless it is -1)."""

    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True)
class Delete:
    """Delete ``path``, which must have no children (if it has ``version``, unless -1)."""

    path: str
    version: int = -1


Op = Check | Create | SetData | Delete


class CoordinationStore(Protocol):
    """What the daemons need from ZooKeeper (see the module docstring)."""

    @property
    def state(self) -> ConnectionState:
        """The session's state now."""
        ...

    @property
    def session_id(self) -> int | None:
        """The current session's id (changes after ``LOST``); None while not connected."""
        ...

    def start(self, timeout_secs: float = 15.0) -> None:
        """Connect; raise :class:`CoordinationUnavailableError` if not connected in time."""
        ...

    def stop(self) -> None:
        """Close the session (its ephemeral nodes go at once) and stop the threads."""
        ...

    def add_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        """Call ``listener(state)`` on every state change (from a store thread; no blocking)."""
        ...

    def create(
        self,
        path: str,
        data: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        """Create a node and return its path (with the suffix, when ``sequence``)."""
        ...

    def ensure_path(self, path: str) -> None:
        """Create ``path`` and its missing parents (persistent, empty)."""
        ...

    def get(self, path: str, watch: Watch | None = None) -> tuple[bytes, int]:
        """``(data, version)``; ``watch`` fires when the node changes or is deleted."""
        ...

    def exists(self, path: str, watch: Watch | None = None) -> int | None:
        """The node's version, or None; ``watch`` fires on its creation, change or deletion."""
        ...

    def set(self, path: str, data: bytes, version: int = -1) -> int:
        """Replace the data (compare-and-set when ``version`` >= 0); return the new version."""
        ...

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        """Delete the node (and its subtree when ``recursive``); a missing node is fine."""
        ...

    def children(self, path: str, watch: Watch | None = None) -> list[str]:
        """The names of the node's children, sorted; ``watch`` fires when they change."""
        ...

    def commit(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` atomically; on failure raise the error of the first failed op."""
        ...


def join(*parts: str) -> str:
    """Join path parts with single slashes.

    >>> join("/squall", "assignments", "wc-1-100")
    '/squall/assignments/wc-1-100'
    >>> join("/", "squall")
    '/squall'
    """
    out = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return "/" + out


def parent(path: str) -> str:
    """The parent path (``/`` for a top-level node).

    >>> parent("/squall/supervisors/s1"), parent("/squall")
    ('/squall/supervisors', '/')
    """
    head = path.rstrip("/").rpartition("/")[0]
    return head or "/"


def check_path(path: str) -> str:
    """Reject what ZooKeeper rejects: relative paths, empty or dot components, a trailing slash.

    >>> check_path("/a/b")
    '/a/b'
    >>> check_path("a/b")
    Traceback (most recent call last):
    ...
    ValueError: path 'a/b' must start with '/'
    """
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/'")
    if path == "/":
        return path
    if path.endswith("/"):
        raise ValueError(f"path {path!r} must not end with '/'")
    for part in path[1:].split("/"):
        if part in ("", ".", "..") or "\x00" in part:
            raise ValueError(f"path {path!r} has an invalid component {part!r}")
    return path
