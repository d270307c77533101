"""``DRPCClient``: call DRPC functions over HTTP, with retries across servers.

>>> from squall import Bolt, LocalCluster
>>> from squall.drpc import DRPCServer, LinearDRPCTopologyBuilder
>>> class Exclaim(Bolt):
...     outputs = ["id", "result"]
...     def process(self, tup):
...         self.emit([tup.values[0], tup.values[1] + "!!!"])
>>> builder = LinearDRPCTopologyBuilder("exclamation")
>>> _ = builder.add_bolt(Exclaim)
>>> with DRPCServer(port=0) as server, LocalCluster() as cluster:
...     _ = cluster.submit("x", builder, {"drpc.servers": [f"127.0.0.1:{server.port}"]})
...     DRPCClient("127.0.0.1", server.port).execute("exclamation", "hello")
'hello!!!'

A call goes to one server; on a connection failure or a 503 (the server is
shutting down or the function's queue is full) it is retried, on the next
server, after an exponential backoff with jitter (Storm's advice: DRPC holds
no state, so retrying is safe). Failed requests (400), timeouts (504) and
authorization errors (401) are not retried; they raise at once.

Thread-safe: each thread keeps its own keep-alive connection per server.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from squall.drpc import conf as K
from squall.drpc.errors import (
    DRPCAuthorizationError,
    DRPCConnectionError,
    DRPCError,
    DRPCErrorType,
    DRPCExecutionError,
)

_TYPES = {t.value: t for t in DRPCErrorType}


def error_from_response(status: int, body: bytes, where: str = "") -> DRPCError:
    """The exception for a DRPC error response (Storm's JSON error body).

    >>> e = error_from_response(504, b'{"error": "SERVER_TIMEOUT", "errorMessage": "Timed Out"}')
    >>> type(e).__name__, e.type.name, e.message
    ('DRPCExecutionError', 'SERVER_TIMEOUT', 'Timed Out')
    """
    try:
        parsed = json.loads(body)
        error, message = str(parsed.get("error")), str(parsed.get("errorMessage"))
    except (ValueError, AttributeError):
        error, message = f"HTTP {status}", body.decode("utf-8", "replace")[:500]
    if where:
        message = f"{message} ({where})"
    if status == 401:
        return DRPCAuthorizationError(message)
    kind = _TYPES.get(error)
    if kind is not None:
        return DRPCExecutionError(message, kind)
    if status == 500:
        return DRPCExecutionError(message, DRPCErrorType.INTERNAL_ERROR)
    return DRPCError(message, status, error)


class DRPCClient:
    """A DRPC client for one or several servers.

    Args:
        host: the server's host (ignored when ``servers`` is given).
        port: its HTTP port (default 3774).
        servers: several ``(host, port)`` servers; calls start at a random one and
            fail over to the next.
        token: bearer token (``drpc.auth.token``), if the servers want one.
        timeout_secs: socket timeout for one call; a call waits for the topology,
            so keep it above the servers' ``drpc.request.timeout.secs``.
        retries: extra attempts after a connection failure or a 503.
        backoff_secs: first backoff; doubled per attempt, with jitter, capped at
            ``max_backoff_secs``.
    """

    def __init__(
        self,
        host: str = K.DEFAULT_HOST,
        port: int = K.DEFAULT_PORT,
        *,
        servers: Sequence[tuple[str, int]] | None = None,
        token: str | None = None,
        timeout_secs: float = 630.0,
        retries: int = 3,
        backoff_secs: float = 0.1,
        max_backoff_secs: float = 2.0,
    ) -> None:
        self.servers: list[tuple[str, int]] = list(servers) if servers else [(host, int(port))]
        if not self.servers:
            raise ValueError("DRPCClient needs at least one server")
        self.token = token
        self.timeout_secs = timeout_secs
        self.retries = retries
        self.backoff_secs = backoff_secs
        self.max_backoff_secs = max_backoff_secs
        self._local = threading.local()
        self._rand = random.Random()

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any], **kwargs: Any) -> DRPCClient:
        """A client for ``drpc.servers`` (Storm's ``DRPCClient.getConfiguredClient``).

        Raises:
            ValueError: ``drpc.servers`` is empty or malformed.
        """
        servers = K.server_addresses(conf)
        if not servers:
            raise ValueError("drpc.servers is empty: list the DRPC servers as host or host:port")
        token, _ = K.tokens(conf)
        kwargs.setdefault("token", token)
        return cls(servers=servers, **kwargs)

    def __enter__(self) -> DRPCClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, function: str, args: str = "") -> str:
        """Call ``function`` with ``args`` and return its result.

        Raises:
            DRPCExecutionError: the request failed (400), timed out (504) or the
                servers kept refusing it (503, after the retries).
            DRPCAuthorizationError: a token is needed, or it is wrong (401).
            DRPCConnectionError: no server could be reached (after the retries).
            DRPCError: another HTTP error (for example 413, args too large).
        """
        if not isinstance(function, str) or not function:
            raise ValueError(f"DRPC function must be a non-empty string, got {function!r}")
        if not isinstance(args, str):
            raise TypeError(f"DRPC args must be a string, got {type(args).__name__}")
        path = "/drpc/" + quote(function, safe="")
        body = args.encode("utf-8")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        n = len(self.servers)
        start = self._rand.randrange(n)
        last: DRPCError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.backoff_secs * 2 ** (attempt - 1), self.max_backoff_secs)
                time.sleep(delay * (0.5 + self._rand.random() / 2))
            host, port = self.servers[(start + attempt) % n]
            where = f"{host}:{port}"
            try:
                status, raw = self._post(host, port, path, body, headers)
            except (OSError, http.client.HTTPException) as e:
                last = DRPCConnectionError(f"cannot reach the DRPC server at {where}: {e}")
                continue
            if status == 200:
                return raw.decode("utf-8")
            error = error_from_response(status, raw, where)
            if status != 503:
                raise error
            last = error
        assert last is not None
        raise last

    def _post(
        self, host: str, port: int, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        conns: dict[tuple[str, int], http.client.HTTPConnection] = (
            getattr(self._local, "conns", None) or {}
        )
        self._local.conns = conns
        for fresh in (False, True):
            conn = conns.get((host, port))
            reused = conn is not None and not fresh
            if conn is None or fresh:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout_secs)
                conns[(host, port)] = conn
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    del conns[(host, port)]
                return resp.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                conns.pop((host, port), None)
                if not reused:
                    raise
                # The server closed a kept-alive connection meanwhile: reconnect once.
            except (OSError, http.client.HTTPException):
                conn.close()
                conns.pop((host, port), None)
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connections."""
        conns = getattr(self._local, "conns", None) or {}
        for conn in conns.values():
            conn.close()
        conns.clear()


__all__ = ["DRPCClient", "error_from_response"]
