"""``DRPCServer``: Storm's DRPC HTTP interface, plus the invocation endpoints for topologies.

Clients (Storm's paths and status codes):

``GET /drpc/<function>/<args>``
    ``args`` is the rest of the path, percent-decoded (it may contain ``/``).
``POST /drpc/<function>``
    ``args`` is the UTF-8 request body (use it above ~100 characters).
``GET /drpc/<function>``
    empty ``args``.

Success is ``200`` with the result as the body. Errors are JSON
``{"error": ..., "errorMessage": ...}``: 400 the request failed in the
topology, 504 it timed out (``drpc.request.timeout.secs``), 503 the server is
shutting down or the function's queue is full, 500 otherwise, 401 without the
right ``Authorization: Bearer <token>`` when ``drpc.auth.token`` is set; and
404/405/411/413/431 for requests that are not DRPC calls at all.

Topologies in other processes use ``POST /drpc-invocations/{fetch,result,fail}``
(see :mod:`squall.drpc.invocations`). A topology in the same process finds the
server in :mod:`squall.drpc.registry` and calls it directly.

The server is one asyncio loop on its own thread: a waiting call costs a
coroutine, not a thread, so hundreds of callers can wait on a slow topology.

>>> from squall.drpc import DRPCClient
>>> with DRPCServer(port=0) as server:
...     fut = server.service.execute_async("echo", "hi")  # a stand-in topology:
...     req = server.service.fetch_request("echo")
...     _ = server.service.result(req.request_id, req.func_args + "!")
...     fut.result(1)
'hi!'
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from squall.drpc import conf as K
from squall.drpc import registry
from squall.drpc.errors import DRPCErrorType, DRPCExecutionError
from squall.drpc.invocations import FAIL_PATH, FETCH_PATH, RESULT_PATH
from squall.drpc.service import DRPCService
from squall.runtime.clock import Clock

log = logging.getLogger("squall.drpc")

#: Longest request line plus headers accepted (HTTP 431 beyond).
HEAD_LIMIT = 64 * 1024
#: Longest long poll a fetcher may ask for.
MAX_WAIT_MS = 30_000
#: Most requests one fetch may take.
MAX_FETCH = 1000

_USAGE = "DRPC calls are GET /drpc/<function>/<args>, POST /drpc/<function> or GET /drpc/<function>"
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or HTTPStatus(status).phrase


class _Request:
    __slots__ = ("headers", "keep_alive", "method", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], keep_alive: bool):
        self.method = method
        self.target = target
        self.headers = headers
        self.keep_alive = keep_alive


def _parse_head(head: bytes) -> _Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1]:
        raise _HTTPError(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _HTTPError(505, f"unsupported protocol {version[:20]!r}; use HTTP/1.1")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _HTTPError(400, f"malformed header line {line[:100]!r}")
        headers[name.lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps the connection open unless told otherwise; 1.0 only when asked.
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return _Request(method, target, headers, keep)


def _error(status: int, error: str, message: str) -> tuple[int, str, bytes]:
    body = json.dumps({"error": error, "errorMessage": message}).encode("utf-8")
    return status, _JSON, body


def _render(status: int, ctype: str, body: bytes, keep: bool, extra: str = "") -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep else 'close'}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


#: After a 413, how much of the refused body is read and dropped, and for how long.
DISCARD_MAX_BYTES = 64 * 1024 * 1024
DISCARD_MAX_SECS = 5.0


async def _discard(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Closing a socket with unread input makes the kernel send a reset, and a client
    # still sending its body would see "connection reset" instead of the 413. So stop
    # writing, and read what the client still sends (bounded), then close.
    if writer.can_write_eof():
        writer.write_eof()
    deadline = time.monotonic() + DISCARD_MAX_SECS
    left = DISCARD_MAX_BYTES
    while left > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            chunk = await asyncio.wait_for(reader.read(65536), remaining)
        except (TimeoutError, ConnectionError, OSError):
            return
        if not chunk:
            return
        left -= len(chunk)


class _Conn:
    __slots__ = ("busy", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False


class DRPCServer:
    """Storm's DRPC server over HTTP: ``squall drpc``, or embedded (``squall run``, tests).

    Args:
        conf: DRPC config (``drpc.http.host``, ``drpc.http.port``,
            ``drpc.request.timeout.secs``, ``drpc.queue.size``,
            ``drpc.http.max.body.bytes``, ``drpc.auth.token``,
            ``drpc.invocations.token``); the keyword arguments override it.
        host: address to bind (default ``127.0.0.1``).
        port: port to bind (default 3774; 0 picks a free one, see :attr:`port`).
        token: bearer token clients must send (None: no authentication).
        invocations_token: token for the invocation endpoints (default: ``token``).
        timeout_secs: ``drpc.request.timeout.secs``.
        queue_size: ``drpc.queue.size`` per function.
        max_body_bytes: largest request body accepted (HTTP 413 beyond).
        clock: the service's clock.

    Attributes:
        service: the :class:`~squall.drpc.service.DRPCService` holding the requests.
        port: the bound port, once started.
    """

    def __init__(
        self,
        conf: Mapping[str, Any] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        invocations_token: str | None = None,
        timeout_secs: float | None = None,
        queue_size: int | None = None,
        max_body_bytes: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        c = dict(conf or {})
        self.host: str = host or str(K.get(c, K.DRPC_HTTP_HOST))
        self._want_port = int(K.get(c, K.DRPC_HTTP_PORT) if port is None else port)
        conf_token, conf_inv = K.tokens(c)
        self._token = token if token is not None else conf_token
        self._inv_token = (
            invocations_token if invocations_token is not None else (conf_inv or self._token)
        )
        self.max_body_bytes = int(
            K.get(c, K.DRPC_MAX_BODY_BYTES) if max_body_bytes is None else max_body_bytes
        )
        self.service = DRPCService(
            timeout_secs=float(
                K.get(c, K.DRPC_REQUEST_TIMEOUT_SECS) if timeout_secs is None else timeout_secs
            ),
            queue_size=int(K.get(c, K.DRPC_QUEUE_SIZE) if queue_size is None else queue_size),
            clock=clock,
        )
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._start_error: BaseException | None = None
        self._closing = False
        self._conns: set[_Conn] = set()
        self._addresses: list[tuple[str, int]] = []
        self.http_metrics: dict[str, float] = {
            "drpc:num-execute-http-requests": 0,
            "drpc:HTTP-request-response-duration-ms": 0.0,
        }

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> DRPCServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DRPCServer {self.url}>"

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port or self._want_port}"

    def start(self) -> DRPCServer:
        """Bind and serve on a background thread; returns once listening.

        Raises:
            OSError: the address cannot be bound (the message names it).
        """
        if self._thread is not None:
            return self
        if not self.service.clock.simulated:
            self.service.start()
        self._thread = threading.Thread(target=self._run, name="drpc-http", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self.service.close()
            err = self._start_error
            raise OSError(
                getattr(err, "errno", None),
                f"DRPC server cannot listen on {self.host}:{self._want_port}: "
                f"{getattr(err, 'strerror', None) or err}"
                + (
                    " (set drpc.http.port to another port, or 0 for any free port)"
                    if getattr(err, "errno", None) == 98
                    else ""
                ),
            ) from err
        for host in {self.host, "127.0.0.1"} if self.host in ("0.0.0.0", "::", "") else {self.host}:
            registry.register(host, self.port, self.service)
            self._addresses.append((host, self.port))
        log.debug("DRPC server listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`close` is called from elsewhere."""
        self.start()
        self._stopped.wait()

    def close(self, grace_secs: float = 2.0) -> None:
        """Fail every pending request with ``SERVER_SHUTDOWN`` (HTTP 503), answer, stop."""
        for host, port in self._addresses:
            registry.unregister(host, port, self.service)
        self._addresses.clear()
        # Pending calls are answered 503 by the loop, before it stops.
        self.service.close()
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            try:
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(grace_secs), loop)
                fut.result(grace_secs + 2.0)
            except Exception:
                log.exception("DRPC server shutdown did not finish cleanly")
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=5)
        self._stopped.set()

    def metrics(self) -> dict[str, float]:
        """Storm's DRPC server metrics (``drpc:num-execute-calls``, ...)."""
        out: dict[str, float] = dict(self.service.metrics)
        out.update(self.http_metrics)
        return out

    # -- the loop thread -----------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._connection,
                        self.host,
                        self._want_port,
                        limit=HEAD_LIMIT,
                        backlog=1024,
                        reuse_address=True,
                    )
                )
            except OSError as e:
                self._start_error = e
                return
            self.port = int(self._server.sockets[0].getsockname()[1])
            self._ready.set()
            loop.run_forever()
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._stopped.set()

    async def _shutdown(self, grace_secs: float) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        # Idle keep-alive connections wait for a request that will not come: close
        # them. Busy ones finish their answer (503 for pending calls) and close.
        for conn in list(self._conns):
            if not conn.busy:
                conn.writer.close()
        deadline = time.monotonic() + grace_secs
        while any(c.busy for c in self._conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self._conns):
            conn.writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        try:
            while not self._closing:
                conn.busy = False
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection
                except asyncio.LimitOverrunError:
                    conn.busy = True
                    msg = f"request line and headers exceed {HEAD_LIMIT} bytes"
                    await self._send(writer, _error(431, HTTPStatus(431).phrase, msg), False)
                    return
                conn.busy = True
                started = time.perf_counter()
                try:
                    req = _parse_head(head)
                    body = await self._read_body(req, reader, writer)
                except _HTTPError as e:
                    await self._send(writer, _error(e.status, e.error, e.message), False)
                    if e.status == 413:
                        await _discard(reader, writer)
                    return
                try:
                    response = await self._dispatch(req, body)
                except _HTTPError as e:
                    extra = "Allow: GET, POST\r\n" if e.status == 405 else ""
                    response = _error(e.status, e.error, e.message)
                    keep = req.keep_alive and not self._closing
                    await self._send(writer, response, keep, extra)
                    if not keep:
                        return
                    continue
                except Exception as e:  # a bug: answer 500 rather than drop the caller
                    log.exception("DRPC server: error handling %s %s", req.method, req.target)
                    response = _error(500, "Internal Error", f"{type(e).__name__}: {e}")
                keep = req.keep_alive and not self._closing
                await self._send(writer, response, keep)
                m = self.http_metrics
                m["drpc:HTTP-request-response-duration-ms"] += (
                    time.perf_counter() - started
                ) * 1000.0
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        finally:
            self._conns.discard(conn)
            writer.close()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        response: tuple[int, str, bytes],
        keep: bool,
        extra: str = "",
    ) -> None:
        status, ctype, body = response
        writer.write(_render(status, ctype, body, keep, extra))
        await writer.drain()

    async def _read_body(
        self, req: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        headers = req.headers
        if "transfer-encoding" in headers:
            raise _HTTPError(411, "chunked request bodies are not supported; send a Content-Length")
        raw = headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            raise _HTTPError(400, f"bad Content-Length {raw[:40]!r}") from None
        if length > self.max_body_bytes:
            raise _HTTPError(
                413,
                f"request body of {length} bytes exceeds the limit of {self.max_body_bytes} "
                "bytes (drpc.http.max.body.bytes)",
            )
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await reader.readexactly(length) if length else b""

    # -- routing -----------------------------------------------------------------
    async def _dispatch(self, req: _Request, body: bytes) -> tuple[int, str, bytes]:
        path = req.target.partition("?")[0]
        if path == "/drpc" or path.startswith("/drpc/"):
            self._authorize(req, self._token)
            return await self._client_call(req, path, body)
        if path.startswith("/drpc-invocations/"):
            self._authorize(req, self._inv_token)
            if req.method != "POST":
                raise _HTTPError(405, f"{path} takes POST with a JSON body")
            return await self._invocation(path, body)
        raise _HTTPError(404, f"no such endpoint {path[:200]!r}; {_USAGE}")

    def _authorize(self, req: _Request, token: str | None) -> None:
        if not token:
            return
        given = req.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode("utf-8", "replace"), token.encode("utf-8")
        ):
            what = "no Authorization header" if not given else "the token does not match"
            raise _HTTPError(
                401,
                f"{what}: this DRPC server needs 'Authorization: Bearer <token>' (drpc.auth.token)",
                "401 Unauthorized",
            )

    async def _client_call(self, req: _Request, path: str, body: bytes) -> tuple[int, str, bytes]:
        rest = path[len("/drpc/") :] if path.startswith("/drpc/") else ""
        fn_raw, sep, args_raw = rest.partition("/")
        function = unquote(fn_raw)
        if not function:
            raise _HTTPError(404, f"no function name in the path; {_USAGE}")
        if req.method == "GET":
            args = unquote(args_raw) if sep else ""
        elif req.method == "POST":
            if args_raw:
                raise _HTTPError(
                    404,
                    f"POST takes the args in the body: POST /drpc/{fn_raw} "
                    f"(not /drpc/{rest[:100]})",
                )
            try:
                args = body.decode("utf-8")
            except UnicodeDecodeError:
                raise _HTTPError(400, "the request body (the args) is not valid UTF-8") from None
        else:
            raise _HTTPError(405, f"method {req.method[:20]} not allowed; {_USAGE}")
        self.http_metrics["drpc:num-execute-http-requests"] += 1
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[str | None, DRPCExecutionError | None]] = loop.create_future()

        def done(result: str | None, error: DRPCExecutionError | None) -> None:
            loop.call_soon_threadsafe(_resolve, fut, (result, error))

        try:
            self.service.submit(function, args, done)
        except DRPCExecutionError as e:
            return _error(e.status, e.error, e.message)
        result, error = await fut
        if error is not None:
            return _error(error.status, error.error, error.message)
        return 200, _TEXT, (result or "").encode("utf-8")

    async def _invocation(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            raise _HTTPError(400, f"{path}: the body must be a JSON object ({e})") from None
        svc = self.service
        if path == FETCH_PATH:
            function = payload.get("function")
            if not isinstance(function, str) or not function:
                raise _HTTPError(400, f"{path}: 'function' must be a non-empty string")
            try:
                most = min(max(int(payload.get("max", 1)), 1), MAX_FETCH)
                wait_ms = min(max(int(payload.get("wait_ms", 0)), 0), MAX_WAIT_MS)
            except (TypeError, ValueError):
                raise _HTTPError(400, f"{path}: 'max' and 'wait_ms' must be numbers") from None
            if svc.closed:
                return self._shutting_down()
            reqs = svc.fetch_requests(function, most)
            if not reqs and wait_ms:
                reqs = await self._long_poll(function, most, wait_ms)
                if not reqs and svc.closed:
                    return self._shutting_down()
            out = {"requests": [{"id": r.request_id, "args": r.func_args} for r in reqs]}
            return 200, _JSON, json.dumps(out).encode("utf-8")
        if path == RESULT_PATH:
            items = payload.get("results")
            if items is None:
                items = [payload]
            try:
                n = sum(svc.result(str(i["id"]), str(i["result"])) for i in items)
            except (TypeError, KeyError):
                raise _HTTPError(
                    400, f"{path}: expected {{'results': [{{'id': ..., 'result': ...}}]}}"
                ) from None
            return 200, _JSON, json.dumps({"accepted": n}).encode("utf-8")
        if path == FAIL_PATH:
            ids = payload.get("ids")
            if ids is None:
                ids = [payload.get("id")]
            message = str(payload.get("message") or "Request failed")
            if not isinstance(ids, list) or any(i is None for i in ids):
                raise _HTTPError(400, f"{path}: expected {{'ids': [...], 'message': ...}}")
            n = sum(svc.fail_request(str(i), message) for i in ids)
            return 200, _JSON, json.dumps({"accepted": n}).encode("utf-8")
        raise _HTTPError(
            404,
            f"no such endpoint {path[:200]!r}; invocations are {FETCH_PATH}, "
            f"{RESULT_PATH} and {FAIL_PATH}",
        )

    async def _long_poll(self, function: str, most: int, wait_ms: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        woke: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, woke, None)

        cancel = self.service.watch(function, wake)
        try:
            await asyncio.wait([woke], timeout=wait_ms / 1000.0)
        finally:
            cancel()
        return self.service.fetch_requests(function, most)

    @staticmethod
    def _shutting_down() -> tuple[int, str, bytes]:
        e = DRPCExecutionError("Server Shutting Down", DRPCErrorType.SERVER_SHUTDOWN)
        return _error(e.status, e.error, e.message)


__all__ = ["HEAD_LIMIT", "DRPCServer"]
