"""The invocation side over HTTP: how topologies in other processes reach a DRPC server.

Storm's ``DistributedRPCInvocations`` (``fetchRequest``, ``result``,
``failRequest``) as JSON over the server's HTTP port, with the same token
as clients (or ``drpc.invocations.token``):

``POST /drpc-invocations/fetch`` ``{"function": f, "max": n, "wait_ms": w}``
    -> ``{"requests": [{"id": ..., "args": ...}, ...]}``. With ``wait_ms`` the
    server holds the call until a request arrives or the time is up (a long
    poll), so a spout neither spins nor waits for a polling interval.
``POST /drpc-invocations/result`` ``{"results": [{"id": ..., "result": ...}, ...]}``
    (or one ``{"id", "result"}``) -> ``{"accepted": n}``.
``POST /drpc-invocations/fail`` ``{"ids": [...], "message": m}`` (or one ``{"id"}``)
    -> ``{"accepted": n}``.

Nothing here may block an engine loop: :class:`RemoteFetcher` and
:class:`InvocationSender` own threads that do the blocking calls and hand
requests and completions to the engine through deques.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from squall.drpc.client import error_from_response
from squall.drpc.errors import DRPCError
from squall.drpc.service import DRPCRequest

log = logging.getLogger("squall.drpc")

FETCH_PATH = "/drpc-invocations/fetch"
RESULT_PATH = "/drpc-invocations/result"
FAIL_PATH = "/drpc-invocations/fail"

# A long poll is answered at once when requests are queued; otherwise the server
# holds it this long. Short enough that a deactivated spout stops fetching soon.
LONG_POLL_MS = 500
# Requests a remote spout source keeps fetched but not yet emitted.
FETCH_BUFFER = 64
# Attempts per batch of results or fails before giving up (Storm's ReturnResults: 3).
SEND_ATTEMPTS = 3


class HTTPInvocations:
    """Blocking calls to one server's invocation endpoints, on one keep-alive connection.

    Not thread-safe: each thread uses its own instance.

    Raises (from every call):
        DRPCAuthorizationError: the server wants a (different) token.
        DRPCError: the server answered with another error.
        OSError: the server could not be reached.
    """

    def __init__(
        self, host: str, port: int, token: str | None = None, timeout_secs: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.timeout_secs = timeout_secs
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"<HTTPInvocations {self.host}:{self.port}>"

    def fetch_requests(
        self, function: str, max_requests: int = 1, wait_ms: int = 0
    ) -> list[DRPCRequest]:
        """Up to ``max_requests`` requests for ``function``; waits up to ``wait_ms`` for one."""
        body = self._post(
            FETCH_PATH,
            {"function": function, "max": max_requests, "wait_ms": wait_ms},
            self.timeout_secs + wait_ms / 1000.0,
        )
        return [DRPCRequest(str(r["args"]), str(r["id"])) for r in body.get("requests", ())]

    def results(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Return results: ``[(request id, result), ...]``."""
        self._post(RESULT_PATH, {"results": [{"id": i, "result": r} for i, r in pairs]})

    def fail_requests(self, ids: Sequence[str], message: str = "Request failed") -> None:
        """Fail requests (the client gets HTTP 400 with ``message``)."""
        self._post(FAIL_PATH, {"ids": list(ids), "message": message})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, path: str, payload: Any, timeout: float | None = None) -> dict[str, Any]:
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            conn = self._conn
            conn.timeout = timeout if timeout is not None else self.timeout_secs
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request("POST", path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                # A kept-alive connection the server closed meanwhile: retry once, fresh.
                if reused and attempt == 0:
                    continue
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
            if resp.status == 200:
                result: dict[str, Any] = json.loads(raw or b"{}")
                return result
            raise error_from_response(resp.status, raw, f"{self.host}:{self.port}{path}")
        raise AssertionError("unreachable")


class RemoteFetcher:
    """A thread that long-polls one server for one function and buffers what it gets.

    The DRPC spout pops requests with :meth:`pop` (never blocks). The buffer is
    small (``FETCH_BUFFER``), so requests wait at the server, where they time
    out visibly, rather than in a worker that might die. Fetching pauses while
    the spout is deactivated.
    """

    def __init__(
        self,
        host: str,
        port: int,
        function: str,
        token: str | None = None,
        buffer_size: int = FETCH_BUFFER,
        on_fetch: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.function = function
        self.token = token
        self.buffer_size = buffer_size
        self.on_fetch = on_fetch
        self.buffer: deque[DRPCRequest] = deque()
        self._active = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"drpc-fetch-{function}@{host}:{port}", daemon=True
        )
        self._thread.start()

    def pop(self) -> DRPCRequest | None:
        """A fetched request, or None."""
        try:
            return self.buffer.popleft()
        except IndexError:
            return None

    def activate(self) -> None:
        self._active.set()

    def deactivate(self) -> None:
        self._active.clear()

    def close(self) -> list[DRPCRequest]:
        """Stop fetching; return what was fetched but never popped."""
        self._closed.set()
        self._active.set()  # wake the thread so that it sees the close
        self._thread.join(timeout=LONG_POLL_MS / 1000.0 + 1.0)
        left = list(self.buffer)
        self.buffer.clear()
        return left

    def _run(self) -> None:
        client = HTTPInvocations(self.host, self.port, self.token)
        backoff = 0.05
        failing = False
        try:
            while not self._closed.is_set():
                if not self._active.is_set():
                    self._active.wait(0.5)
                    continue
                room = self.buffer_size - len(self.buffer)
                if room <= 0:
                    time.sleep(0.0005)
                    continue
                try:
                    got = client.fetch_requests(self.function, room, LONG_POLL_MS)
                except (OSError, http.client.HTTPException, DRPCError, ValueError) as e:
                    if not failing:
                        log.warning(
                            "DRPC spout for %r: cannot fetch from %s:%s (%s); retrying",
                            self.function,
                            self.host,
                            self.port,
                            e,
                        )
                    failing = True
                    self._closed.wait(backoff)
                    backoff = min(backoff * 2, 1.0)
                    continue
                if failing:
                    log.warning(
                        "DRPC spout for %r: %s:%s is back", self.function, self.host, self.port
                    )
                failing = False
                backoff = 0.05
                self.buffer.extend(got)
                if got and self.on_fetch is not None:
                    self.on_fetch()  # the spout's engine picks them up now, not after idling
        finally:
            client.close()


class InvocationSender:
    """A thread that sends results and fails to one server, in batches, with retries.

    ``on_complete(token, ok)`` is called (on the sender's thread) for every
    result once the server accepted it (``ok``) or after ``SEND_ATTEMPTS``
    failed attempts; fails are best effort and only logged.
    """

    def __init__(
        self,
        host: str,
        port: int,
        token: str | None = None,
        on_complete: Callable[[Any, bool], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.on_complete = on_complete
        self._queue: queue.SimpleQueue[tuple[str, str, str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"drpc-send@{host}:{port}", daemon=True
        )
        self._thread.start()

    def result(self, request_id: str, result: str, token: Any = None) -> None:
        self._queue.put(("result", request_id, result, token))

    def fail(self, request_id: str, message: str = "Request failed") -> None:
        self._queue.put(("fail", request_id, message, None))

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        client = HTTPInvocations(self.host, self.port, self.token)
        try:
            while True:
                item = self._queue.get()
                items = [item]
                while True:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = None in items
                batch = [i for i in items if i is not None]
                results = [i for i in batch if i[0] == "result"]
                fails = [i for i in batch if i[0] == "fail"]
                if results:
                    pairs = [(i[1], i[2]) for i in results]
                    ok = self._send(client.results, pairs)
                    if self.on_complete is not None:
                        for i in results:
                            self.on_complete(i[3], ok)
                if fails:
                    by_message: dict[str, list[str]] = {}
                    for i in fails:
                        by_message.setdefault(i[2], []).append(i[1])
                    for message, ids in by_message.items():
                        self._send(client.fail_requests, ids, message)
                if stop:
                    return
        finally:
            client.close()

    def _send(self, call: Callable[..., None], *args: Any) -> bool:
        for attempt in range(SEND_ATTEMPTS):
            try:
                call(*args)
                return True
            except (OSError, http.client.HTTPException, DRPCError, ValueError) as e:
                log.warning(
                    "DRPC: sending to %s:%s failed (attempt %d of %d): %s",
                    self.host,
                    self.port,
                    attempt + 1,
                    SEND_ATTEMPTS,
                    e,
                )
                time.sleep(0.05 * (attempt + 1))
        return False


__all__ = [
    "FAIL_PATH",
    "FETCH_PATH",
    "RESULT_PATH",
    "HTTPInvocations",
    "InvocationSender",
    "RemoteFetcher",
]
