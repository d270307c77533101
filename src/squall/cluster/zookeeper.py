"""The coordination store on a real ZooKeeper ensemble, through kazoo.

Session handling follows what was measured in ``reliability-plan.md``:

* reconnect backoff capped near 1 s (``max_delay=1.0``, unlimited tries), so a
  ZooKeeper that comes back within the session timeout finds the session, and
  its ephemeral nodes, still alive;
* ``SUSPENDED`` and ``LOST`` are states, never reasons to exit: calls made while
  not connected raise :class:`~squall.cluster.store.CoordinationUnavailableError`
  at once, and every call has a timeout, so no daemon thread hangs on ZooKeeper;
* watches are one-shot callbacks that also fire when the session changes state,
  so the owner re-reads instead of waiting on a watch the server forgot.

An optional digest ACL (Storm's ``storm.zookeeper.auth.payload``, ``user:password``)
is put on every node this client creates, and the client authenticates with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError as KzBadVersion,
)
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
)
from kazoo.exceptions import (
    NodeExistsError as KzNodeExists,
)
from kazoo.exceptions import (
    NoNodeError as KzNoNode,
)
from kazoo.exceptions import (
    NotEmptyError as KzNotEmpty,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import make_digest_acl

from squall.cluster.store import (
    BadVersionError,
    Check,
    ConnectionState,
    CoordinationError,
    CoordinationUnavailableError,
    Create,
    Delete,
    NodeExistsError,
    NoNodeError,
    NotAuthorizedError,
    NotEmptyError,
    OnceWatch,
    Op,
    SetData,
    Watch,
    check_path,
)

log = logging.getLogger("squall.cluster")

#: How long one ZooKeeper request may take before the caller gets
#: CoordinationUnavailableError (the request may still be applied later).
DEFAULT_OPERATION_TIMEOUT_SECS = 5.0

_STATES = {
    KazooState.CONNECTED: ConnectionState.CONNECTED,
    KazooState.SUSPENDED: ConnectionState.SUSPENDED,
    KazooState.LOST: ConnectionState.LOST,
}


class ZooKeeperStore:
    """A ``CoordinationStore`` on ZooKeeper (one kazoo client, one session at a time).

    Args:
        hosts: ``host:port`` list, comma-separated (kazoo's and ZooKeeper's format).
        session_timeout_secs: the session timeout asked of the server (the server
            clamps it to 2..20 ticks).
        operation_timeout_secs: how long a single request may take.
        auth: ``user:password`` for a digest ACL on created nodes, or None (open ACL).
    """

    def __init__(
        self,
        hosts: str,
        *,
        session_timeout_secs: float = 20.0,
        operation_timeout_secs: float = DEFAULT_OPERATION_TIMEOUT_SECS,
        auth: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {}
        if auth:
            user, sep, password = auth.partition(":")
            if not sep or not user:
                raise ValueError("the ZooKeeper digest auth payload must be 'user:password'")
            kwargs["auth_data"] = [("digest", auth)]
            kwargs["default_acl"] = [make_digest_acl(user, password, all=True)]
        self.hosts = hosts
        self._timeout = float(operation_timeout_secs)
        self._client = KazooClient(
            hosts=hosts,
            timeout=float(session_timeout_secs),
            # Capped backoff: reconnect within ~1 s of ZooKeeper coming back, before the
            # session times out (measured: the default 60 s cap loses the session).
            connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0},
            **kwargs,
        )
        self._state = ConnectionState.SUSPENDED
        self._listeners: list[Callable[[ConnectionState], None]] = []
        self._lock = threading.Lock()
        self._watches: list[_Once] = []
        self._pending: dict[tuple[str, str, Watch], _Once] = {}
        self._client.add_listener(self._on_state)

    # -- session -------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def session_id(self) -> int | None:
        if self._state is not ConnectionState.CONNECTED:
            return None
        cid = self._client.client_id
        return int(cid[0]) if cid else None

    def start(self, timeout_secs: float = 15.0) -> None:
        try:
            self._client.start(timeout=timeout_secs)
        except KazooTimeoutError as e:
            # kazoo keeps trying in the background; the caller decides whether to wait.
            raise CoordinationUnavailableError(
                f"no ZooKeeper at {self.hosts} answered within {timeout_secs:g}s"
            ) from e
        self._state = ConnectionState.CONNECTED

    def stop(self) -> None:
        try:
            self._client.stop()
        finally:
            self._client.close()

    def add_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        self._listeners.append(listener)

    def _on_state(self, kstate: str) -> None:
        # Runs on kazoo's connection thread: must not block or call ZooKeeper.
        state = _STATES.get(kstate, ConnectionState.SUSPENDED)
        if state is self._state:
            return
        self._state = state
        log.info("ZooKeeper session %s (%s)", state.value, self.hosts)
        with self._lock:
            pending, self._watches = self._watches, []
            self._pending = {}
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:
                log.exception("a ZooKeeper state listener failed")
        for w in pending:
            w()

    def _watched(self, kind: str, path: str, fn: Watch | None, call: Callable[[Any], Any]) -> Any:
        """``call(kazoo_watcher)`` through :meth:`_wait`, registering ``fn`` once per node."""
        if fn is None:
            return self._wait(path, lambda: call(None))
        key = (kind, path, fn)
        with self._lock:
            # The same callback on the same node is registered once until it fires:
            # kazoo keeps every watcher it is given, and daemons re-read every pass.
            pending = self._pending.get(key)
            if pending is not None and not pending.done:
                once = None
            else:
                once = _Once(fn)
                self._pending[key] = once
                if len(self._watches) > 256:
                    self._watches = [w for w in self._watches if not w.done]
                    self._pending = {k: w for k, w in self._pending.items() if not w.done}
                self._watches.append(once)
        if once is None:
            return self._wait(path, lambda: call(None))
        watcher = once
        try:
            return self._wait(path, lambda: call(lambda _event: watcher()))
        except CoordinationError:
            # The server may not hold the watch (a read of a missing node leaves none).
            with self._lock:
                if self._pending.get(key) is once:
                    del self._pending[key]
            raise

    # -- calls -----------------------------------------------------------------------
    def _wait(self, path: str, make: Callable[[], Any]) -> Any:
        if self._state is not ConnectionState.CONNECTED:
            raise CoordinationUnavailableError(f"{path}: not connected ({self._state.value})")
        try:
            return make().get(timeout=self._timeout)
        except KazooTimeoutError as e:
            raise CoordinationUnavailableError(
                f"{path}: no answer from ZooKeeper within {self._timeout:g}s"
            ) from e
        except KazooException as e:
            raise _translate(path, e) from e

    def get(self, path: str, watch: Watch | None = None) -> tuple[bytes, int]:
        check_path(path)
        data, stat = self._watched("data", path, watch, lambda w: self._client.get_async(path, w))
        return bytes(data or b""), int(stat.version)

    def exists(self, path: str, watch: Watch | None = None) -> int | None:
        check_path(path)
        stat = self._watched("data", path, watch, lambda w: self._client.exists_async(path, w))
        return None if stat is None else int(stat.version)

    def children(self, path: str, watch: Watch | None = None) -> list[str]:
        check_path(path)
        names = self._watched(
            "children", path, watch, lambda w: self._client.get_children_async(path, w)
        )
        return sorted(names)

    def create(
        self,
        path: str,
        data: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        check_path(path)
        made = self._wait(
            path,
            lambda: self._client.create_async(
                path, data, ephemeral=ephemeral, sequence=sequence, makepath=makepath
            ),
        )
        return str(made)

    def ensure_path(self, path: str) -> None:
        check_path(path)
        self._wait(path, lambda: self._client.ensure_path_async(path))

    def set(self, path: str, data: bytes, version: int = -1) -> int:
        check_path(path)
        stat = self._wait(path, lambda: self._client.set_async(path, data, version))
        return int(stat.version)

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        check_path(path)
        if recursive:
            try:
                names = self.children(path)
            except NoNodeError:
                return
            for name in names:
                self.delete(f"{path}/{name}", recursive=True)
        try:
            self._wait(path, lambda: self._client.delete_async(path, version))
        except NoNodeError:
            pass

    def commit(self, ops: Sequence[Op]) -> None:
        tx = self._client.transaction()
        for op in ops:
            check_path(op.path)
            if isinstance(op, Check):
                tx.check(op.path, op.version)
            elif isinstance(op, Create):
                tx.create(op.path, op.data, ephemeral=op.ephemeral)
            elif isinstance(op, SetData):
                tx.set_data(op.path, op.data, op.version)
            elif isinstance(op, Delete):
                tx.delete(op.path, op.version)
        results = self._wait(ops[0].path if ops else "/", tx.commit_async)
        for op, result in zip(ops, results, strict=False):
            if isinstance(result, KazooException) and not isinstance(result, RolledBackError):
                raise _translate(op.path, result)


class _Once(OnceWatch):
    """A :class:`OnceWatch` whose failure is logged: it runs on a kazoo thread."""

    __slots__ = ()

    def __call__(self) -> None:
        try:
            super().__call__()
        except Exception:
            log.exception("a ZooKeeper watch callback failed")


def _translate(path: str, error: KazooException) -> CoordinationError:
    if isinstance(error, KzNoNode):
        return NoNodeError(path)
    if isinstance(error, KzNodeExists):
        return NodeExistsError(path)
    if isinstance(error, KzBadVersion):
        return BadVersionError(f"{path}: version mismatch")
    if isinstance(error, KzNotEmpty):
        return NotEmptyError(path)
    if isinstance(error, NoAuthError):
        return NotAuthorizedError(f"{path}: not authorized (ZooKeeper ACL)")
    if isinstance(
        error, ConnectionLoss | SessionExpiredError | ConnectionClosedError | OperationTimeoutError
    ):
        return CoordinationUnavailableError(f"{path}: {type(error).__name__}")
    return CoordinationError(f"{path}: {type(error).__name__}: {error}")
