"""The DRPC server's bookkeeping: outstanding requests, per-function queues, timeouts.

This is Storm's ``DRPC.java`` with no I/O: the HTTP front (:mod:`squall.drpc.server`)
and :class:`~squall.drpc.local.LocalDRPC` both sit on a :class:`DRPCService`.

* ``submit(function, args, on_done)`` gives the request an id (a decimal counter
  string, as in Storm), files it under ``function`` and queues it; ``on_done``
  is called exactly once, with the result or the error.
* ``fetch_request(function)`` hands the oldest queued request to a topology (a
  DRPC spout), or Storm's sentinel ``DRPCRequest("", "")`` when there is none.
* ``result(id, text)`` and ``fail_request(id)`` complete it; unknown ids are
  ignored (the request timed out, or the server restarted).
* ``reap()`` fails every request older than ``drpc.request.timeout.secs`` with
  ``SERVER_TIMEOUT``; ``close()`` fails every pending request with
  ``SERVER_SHUTDOWN``.

Thread-safe: HTTP handlers, engine threads and the reaper call in concurrently.
Callbacks run outside the lock, on whichever thread completed the request.

>>> from squall.runtime.clock import SimulatedClock
>>> svc = DRPCService(timeout_secs=10, clock=SimulatedClock(), first_id=1)
>>> outcome = []
>>> svc.submit("exclaim", "aaa", lambda result, error: outcome.append(result))
'1'
>>> req = svc.fetch_request("exclaim")
>>> req
DRPCRequest(func_args='aaa', request_id='1')
>>> svc.result(req.request_id, "aaa!!!")
True
>>> outcome
['aaa!!!']
>>> svc.fetch_request("exclaim").request_id  # nothing left: Storm's sentinel
''
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from squall.drpc.errors import DRPCErrorType, DRPCExecutionError
from squall.runtime.clock import Clock, RealClock

log = logging.getLogger("squall.drpc")

#: ``on_done(result, error)``: exactly one of the two is not None.
DoneCallback = Callable[[str | None, DRPCExecutionError | None], None]


@dataclass(frozen=True, slots=True)
class DRPCRequest:
    """What a topology fetches: Storm's ``DRPCRequest`` struct."""

    func_args: str
    request_id: str


#: Storm's "nothing to do" answer to ``fetchRequest``.
NO_REQUEST = DRPCRequest("", "")


class _Outstanding:
    __slots__ = ("args", "deadline", "done", "fetched", "function", "id", "on_done", "submitted")

    def __init__(
        self, rid: str, function: str, args: str, now: float, timeout: float, on_done: DoneCallback
    ) -> None:
        self.id = rid
        self.function = function
        self.args = args
        self.submitted = now
        self.deadline = now + timeout
        self.fetched = False
        self.done = False
        self.on_done = on_done


def _first_id() -> int:
    # Ids must not repeat across server restarts: a result for a request of the
    # previous run would otherwise complete an unrelated new one. Microseconds
    # since the epoch start the counter above every id a previous run handed out
    # (unless it served more than a million requests a second).
    return time.time_ns() // 1000


class DRPCService:
    """Outstanding DRPC requests of one server (Storm's ``DRPC``).

    Args:
        timeout_secs: ``drpc.request.timeout.secs``; a request not answered
            within it fails with ``SERVER_TIMEOUT`` (HTTP 504).
        queue_size: ``drpc.queue.size``: at most this many requests per function
            wait to be fetched; more fail at once with ``QUEUE_FULL`` (HTTP 503).
        clock: where time comes from (a ``SimulatedClock`` in tests).
        first_id: the first request id (default: microseconds since the epoch,
            so ids never repeat across restarts).
    """

    def __init__(
        self,
        *,
        timeout_secs: float = 600.0,
        queue_size: int = 128,
        clock: Clock | None = None,
        first_id: int | None = None,
    ) -> None:
        if not timeout_secs > 0:
            raise ValueError(f"drpc.request.timeout.secs must be > 0, got {timeout_secs!r}")
        if not isinstance(queue_size, int) or queue_size <= 0:
            raise ValueError(f"drpc.queue.size must be a positive int, got {queue_size!r}")
        self.timeout_secs = float(timeout_secs)
        self.queue_size = queue_size
        self.clock: Clock = clock or RealClock()
        self._lock = threading.Lock()
        self._ids = itertools.count(_first_id() if first_id is None else first_id)
        # Every outstanding request, oldest first: one timeout for all, so this
        # is also deadline order and reap() only looks at the front.
        self._requests: OrderedDict[str, _Outstanding] = OrderedDict()
        # function -> requests not fetched yet, oldest first (done ones are skipped).
        self._queues: dict[str, deque[_Outstanding]] = {}
        self._queued: dict[str, int] = {}
        # function -> one-shot callbacks for "something was queued" (long polls).
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._closed = False
        self._reaper: threading.Thread | None = None
        self._stop_reaper = threading.Event()
        self.metrics: dict[str, int] = {
            "drpc:num-execute-calls": 0,
            "drpc:num-result-calls": 0,
            "drpc:num-failRequest-calls": 0,
            "drpc:num-fetchRequest-calls": 0,
            "drpc:num-server-timedout-requests": 0,
        }

    # -- the client side -------------------------------------------------------
    def submit(self, function: str, args: str, on_done: DoneCallback) -> str:
        """File a request and return its id; ``on_done`` gets the outcome later.

        Raises:
            DRPCExecutionError: ``SERVER_SHUTDOWN`` once closed, ``QUEUE_FULL`` when
                ``queue_size`` requests for ``function`` wait to be fetched.
            TypeError: ``function`` or ``args`` is not a string.
        """
        if not isinstance(function, str) or not function:
            raise TypeError(f"DRPC function must be a non-empty string, got {function!r}")
        if not isinstance(args, str):
            raise TypeError(
                f"DRPC args for {function!r} must be a string, got {type(args).__name__}"
            )
        with self._lock:
            if self._closed:
                raise DRPCExecutionError("Server Shutting Down", DRPCErrorType.SERVER_SHUTDOWN)
            queued = self._queued.get(function, 0)
            if queued >= self.queue_size:
                raise DRPCExecutionError(
                    f"queue full: {queued} requests for function {function!r} are waiting for a "
                    f"topology to fetch them (drpc.queue.size = {self.queue_size}); is a "
                    f"topology serving {function!r} running and keeping up?",
                    DRPCErrorType.QUEUE_FULL,
                )
            self.metrics["drpc:num-execute-calls"] += 1
            rid = str(next(self._ids))
            req = _Outstanding(rid, function, args, self.clock.now(), self.timeout_secs, on_done)
            self._requests[rid] = req
            q = self._queues.get(function)
            if q is None:
                q = self._queues[function] = deque()
            q.append(req)
            self._queued[function] = queued + 1
            watchers = self._watchers.pop(function, None)
        if watchers:
            for w in watchers:
                _safely(w)
        return rid

    def execute_async(self, function: str, args: str) -> Future[str]:
        """Submit and return a future for the result (raises ``DRPCExecutionError``).

        Errors at submission (shutting down, queue full) are set on the future too.
        """
        fut: Future[str] = Future()

        def done(result: str | None, error: DRPCExecutionError | None) -> None:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result if result is not None else "")

        try:
            self.submit(function, args, done)
        except DRPCExecutionError as e:
            fut.set_exception(e)
        return fut

    def execute(self, function: str, args: str, timeout: float | None = None) -> str:
        """Submit and wait for the result (Storm's ``executeBlocking``).

        Args:
            timeout: how long to wait, in seconds; default: until the request's own
                timeout (``timeout_secs``) fails it.

        Raises:
            DRPCExecutionError: the request failed, timed out or was refused.
        """
        fut = self.execute_async(function, args)
        wait = self.timeout_secs + 5.0 if timeout is None else timeout
        try:
            return fut.result(wait)
        except TimeoutError:
            if fut.done():
                return fut.result()
            raise DRPCExecutionError(
                f"Timed Out: no result for {function!r} within {wait:g}s",
                DRPCErrorType.SERVER_TIMEOUT,
            ) from None

    # -- the invocation side (topologies) ---------------------------------------
    def fetch_request(self, function: str) -> DRPCRequest:
        """The oldest queued request for ``function``, or ``NO_REQUEST`` (id ``""``)."""
        with self._lock:
            self.metrics["drpc:num-fetchRequest-calls"] += 1
            q = self._queues.get(function)
            while q:
                req = q.popleft()
                if req.done:
                    continue
                req.fetched = True
                self._dequeued(function, q)
                return DRPCRequest(req.args, req.id)
            return NO_REQUEST

    def fetch_requests(self, function: str, max_requests: int = 1) -> list[DRPCRequest]:
        """Up to ``max_requests`` queued requests for ``function``, oldest first."""
        out: list[DRPCRequest] = []
        with self._lock:
            self.metrics["drpc:num-fetchRequest-calls"] += 1
            q = self._queues.get(function)
            while q and len(out) < max_requests:
                req = q.popleft()
                if req.done:
                    continue
                req.fetched = True
                out.append(DRPCRequest(req.args, req.id))
                self._dequeued(function, q)
        return out

    def _dequeued(self, function: str, q: deque[_Outstanding]) -> None:
        # Caller holds the lock; one live request left the queue.
        n = self._queued[function] - 1
        if n:
            self._queued[function] = n
        else:
            # Drop empty queues so that arbitrary function names cannot grow the maps.
            del self._queued[function]
            q.clear()
            del self._queues[function]

    def watch(self, function: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once, when a request for ``function`` is (or is already) queued.

        Also called on ``close()``. Returns a function that cancels the watch.
        """
        with self._lock:
            ready = self._closed or self._queued.get(function, 0) > 0
            if not ready:
                self._watchers.setdefault(function, []).append(callback)
        if ready:
            _safely(callback)
            return _noop

        def cancel() -> None:
            with self._lock:
                lst = self._watchers.get(function)
                if lst is not None:
                    try:
                        lst.remove(callback)
                    except ValueError:
                        pass
                    if not lst:
                        del self._watchers[function]

        return cancel

    def result(self, request_id: str, result: str) -> bool:
        """Complete ``request_id`` with ``result``; False if the id is unknown."""
        with self._lock:
            self.metrics["drpc:num-result-calls"] += 1
            req = self._take(request_id)
        if req is None:
            return False
        _safely(req.on_done, result, None)
        return True

    def fail_request(
        self,
        request_id: str,
        message: str = "Request failed",
        type: DRPCErrorType = DRPCErrorType.FAILED_REQUEST,
    ) -> bool:
        """Fail ``request_id`` (Storm's ``failRequest``/``failRequestV2``); False if unknown."""
        with self._lock:
            self.metrics["drpc:num-failRequest-calls"] += 1
            req = self._take(request_id)
        if req is None:
            return False
        _safely(req.on_done, None, DRPCExecutionError(message, type))
        return True

    def _take(self, request_id: str) -> _Outstanding | None:
        # Caller holds the lock.
        req = self._requests.pop(request_id, None)
        if req is None:
            return None
        req.done = True
        if not req.fetched:
            # Completed while still queued (an id guessed before it was fetched):
            # it no longer counts against the queue; fetch skips done entries.
            q = self._queues.get(req.function)
            if q is not None:
                self._dequeued(req.function, q)
        return req

    # -- time ------------------------------------------------------------------
    def reap(self) -> int:
        """Fail every request past its deadline with ``SERVER_TIMEOUT``; return how many."""
        now = self.clock.now()
        expired: list[_Outstanding] = []
        with self._lock:
            reqs = self._requests
            while reqs:
                req = next(iter(reqs.values()))
                if req.deadline > now:
                    break
                reqs.popitem(last=False)
                req.done = True
                expired.append(req)
                if not req.fetched:
                    q = self._queues.get(req.function)
                    if q is not None:
                        self._dequeued(req.function, q)
                        # Expired unfetched requests are the oldest, so at the front.
                        while q and q[0].done:
                            q.popleft()
            self.metrics["drpc:num-server-timedout-requests"] += len(expired)
        for req in expired:
            waited = "to be fetched by a topology" if not req.fetched else "for a result"
            _safely(
                req.on_done,
                None,
                DRPCExecutionError(
                    f"Timed Out: request {req.id} for function {req.function!r} waited "
                    f"{self.timeout_secs:g}s {waited} (drpc.request.timeout.secs)",
                    DRPCErrorType.SERVER_TIMEOUT,
                ),
            )
        return len(expired)

    def next_deadline(self) -> float | None:
        """When the oldest outstanding request times out (clock time), or None."""
        with self._lock:
            if not self._requests:
                return None
            return next(iter(self._requests.values())).deadline

    def start(self) -> DRPCService:
        """Start a thread that reaps timed-out requests (real clock only)."""
        if self.clock.simulated:
            raise RuntimeError("a simulated clock has no reaper thread: call reap() yourself")
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap_loop, name="drpc-reaper", daemon=True)
            self._reaper.start()
        return self

    def _reap_loop(self) -> None:
        while not self._stop_reaper.is_set():
            nxt = self.next_deadline()
            now = self.clock.now()
            # New requests always time out after the oldest one, so sleeping until
            # the oldest deadline (or one full timeout when idle) misses nothing.
            delay = self.timeout_secs if nxt is None else nxt - now
            if self._stop_reaper.wait(min(max(delay, 0.001), self.timeout_secs)):
                return
            try:
                self.reap()
            except Exception:  # never let the reaper die
                log.exception("DRPC request reaper failed")

    # -- state -----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        """How many requests are outstanding (queued or fetched)."""
        with self._lock:
            return len(self._requests)

    def queued(self, function: str) -> int:
        """How many requests for ``function`` wait to be fetched."""
        with self._lock:
            return self._queued.get(function, 0)

    def close(self) -> None:
        """Refuse new requests and fail every pending one with ``SERVER_SHUTDOWN``."""
        with self._lock:
            self._closed = True
            pending = list(self._requests.values())
            for req in pending:
                req.done = True
            self._requests.clear()
            self._queues.clear()
            self._queued.clear()
            watchers = [w for ws in self._watchers.values() for w in ws]
            self._watchers.clear()
        self._stop_reaper.set()
        if self._reaper is not None and self._reaper is not threading.current_thread():
            self._reaper.join(timeout=5)
        for req in pending:
            _safely(
                req.on_done,
                None,
                DRPCExecutionError("Server Shutting Down", DRPCErrorType.SERVER_SHUTDOWN),
            )
        for w in watchers:
            _safely(w)


def _noop() -> None:
    pass


def _safely(fn: Callable[..., Any], *args: Any) -> None:
    # A callback belongs to a caller that may have gone away (a closed connection):
    # its failure must not break the thread that completed the request.
    try:
        fn(*args)
    except Exception:
        log.exception("DRPC completion callback failed")


__all__ = ["NO_REQUEST", "DRPCRequest", "DRPCService", "DoneCallback"]
