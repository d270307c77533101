"""``DRPCSpout``: turns DRPC requests for one function into tuples (Storm's DRPCSpout).

Each request becomes one tuple ``[args, return-info]`` on fields
``["args", "return-info"]``, with message id ``(request id, server index)``.
``return-info`` is the JSON ``{"id": ..., "host": ..., "port": ...}`` that
``ReturnResults`` uses to send the result back. When the tuple tree fails or
times out, the spout fails the request, so the caller gets HTTP 400 at once
instead of waiting for the server's timeout.

Where requests come from:

* ``DRPCSpout(function, drpc=local_drpc)``: a :class:`~squall.drpc.LocalDRPC`
  in this process (``drpc`` may be the object or its ``service_id``);
* otherwise the servers in ``drpc.servers`` (``host`` or ``host:port``). As in
  Storm, a spout with fewer tasks than servers polls every server from every
  task; otherwise task *i* polls server ``i % n``. A server running in this
  process is called directly; others over HTTP, by a background thread per
  server, so ``next_tuple`` never blocks the engine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from squall.api.component import Spout
from squall.api.context import TopologyContext, no_engine
from squall.drpc import conf as K
from squall.drpc import registry
from squall.drpc.invocations import InvocationSender, RemoteFetcher
from squall.drpc.service import DRPCRequest


def return_info(request_id: str, host: str, port: int) -> str:
    """The ``return-info`` JSON (Storm's field names).

    >>> return_info("7", "127.0.0.1", 3774)
    '{"id": "7", "host": "127.0.0.1", "port": 3774}'
    """
    return json.dumps({"id": request_id, "host": host, "port": port})


class _InProcessSource:
    """A server in this process: fetch and fail are direct, non-blocking calls.

    When it finds no request it asks the service to ``wake`` the engine when one
    arrives, so an idle topology answers at once.
    """

    def __init__(self, host: str, port: int, function: str, wake: Callable[[], None]) -> None:
        self.host = host
        self.port = port
        self.function = function
        self.wake = wake
        # The service we asked to call _ready (None once it did); guarded: _ready runs
        # on the server's thread.
        self._lock = threading.Lock()
        self._watching: object | None = None
        self._cancel: Callable[[], None] | None = None

    def pop(self) -> DRPCRequest | None:
        # Looked up per call: a restarted server registers a new service object.
        svc = registry.lookup(self.host, self.port)
        if svc is None:
            return None
        req = svc.fetch_request(self.function)
        if req.request_id:
            return req
        with self._lock:
            if self._watching is svc:
                return None
            self._watching = svc
        # May call _ready at once (a request came in meanwhile): the next pop re-arms.
        self._cancel = svc.watch(self.function, self._ready)
        return None

    def _ready(self) -> None:
        # Any thread (the server's): a request is queued, or the server closes.
        with self._lock:
            self._watching = None
        self.wake()

    def fail(self, request_id: str) -> None:
        svc = registry.lookup(self.host, self.port)
        if svc is not None:
            svc.fail_request(request_id)

    def activate(self) -> None: ...

    def deactivate(self) -> None: ...

    def close(self) -> None:
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()


class _RemoteSource:
    """A server in another process: a fetcher thread and a sender thread for fails."""

    def __init__(
        self, host: str, port: int, function: str, token: str | None, wake: Callable[[], None]
    ) -> None:
        self.host = host
        self.port = port
        self.function = function
        self.fetcher = RemoteFetcher(host, port, function, token, on_fetch=wake)
        self.sender = InvocationSender(host, port, token)
        self.pop = self.fetcher.pop

    def fail(self, request_id: str) -> None:
        self.sender.fail(request_id)

    def activate(self) -> None:
        self.fetcher.activate()

    def deactivate(self) -> None:
        self.fetcher.deactivate()

    def close(self) -> None:
        # Requests fetched but never emitted fail now rather than time out later.
        for req in self.fetcher.close():
            self.sender.fail(req.request_id, "Request failed: the DRPC spout shut down")
        self.sender.close(timeout=1.0)


class DRPCSpout(Spout):
    """Emits one ``[args, return-info]`` tuple per DRPC request for ``function``.

    Args:
        function: the DRPC function name this topology serves.
        drpc: a :class:`~squall.drpc.LocalDRPC` (or its ``service_id``) to serve
            in-process; None to use the servers in ``drpc.servers``.
    """

    outputs = ["args", "return-info"]

    def __init__(self, function: str, drpc: Any = None) -> None:
        super().__init__()
        if not isinstance(function, str) or not function:
            raise TypeError(
                f"DRPCSpout needs a function name (a non-empty string), got {function!r}"
            )
        self.function = function
        local_id = getattr(drpc, "service_id", drpc)
        if local_id is not None and not isinstance(local_id, str):
            raise TypeError(
                f"DRPCSpout(drpc=...) takes a LocalDRPC or its service_id, got {drpc!r}"
            )
        self.local_id: str | None = local_id
        self._sources: list[Any] = []
        self._infos: list[tuple[str, int]] = []
        self._index = 0
        self._wake: Callable[[], None] = no_engine

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        where = f"component {context.component_id!r} (DRPCSpout for {self.function!r})"
        self._wake = context.wake
        if self.local_id is not None:
            if registry.lookup(self.local_id, 0) is None:
                raise RuntimeError(
                    f"{where}: LocalDRPC {self.local_id!r} is not running in this process; a "
                    "LocalDRPC serves topologies in the process that created it "
                    "(topology.workers = 1). Otherwise run a DRPC server and set drpc.servers"
                )
            self._add(self.local_id, 0, None)
            return
        try:
            servers = K.server_addresses(conf)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if not servers:
            raise ValueError(
                f"{where}: no DRPC server configured; set drpc.servers (for example "
                "['127.0.0.1:3774']), or build the topology with a LocalDRPC. "
                "'squall run' sets it when it starts its own DRPC server"
            )
        tasks = context.get_component_tasks(context.component_id)
        if len(tasks) < len(servers):
            mine = servers
        else:
            mine = [servers[context.task_index % len(servers)]]
        _, token = K.tokens(conf)
        for host, port in mine:
            self._add(host, port, token)

    def _add(self, host: str, port: int, token: str | None) -> None:
        if registry.lookup(host, port) is not None or port == 0:
            src: Any = _InProcessSource(host, port, self.function, self._wake)
        else:
            src = _RemoteSource(host, port, self.function, token, self._wake)
        self._sources.append(src)
        self._infos.append((host, port))

    def activate(self) -> None:
        for src in self._sources:
            src.activate()

    def deactivate(self) -> None:
        for src in self._sources:
            src.deactivate()

    def close(self) -> None:
        for src in self._sources:
            src.close()

    def next_tuple(self) -> None:
        sources = self._sources
        n = len(sources)
        start = self._index
        for k in range(n):
            i = (start + k) % n
            req = sources[i].pop()
            if req is not None:
                self._index = (i + 1) % n
                host, port = self._infos[i]
                rid = req.request_id
                self.emit([req.func_args, return_info(rid, host, port)], tup_id=(rid, i))
                return

    def ack(self, tup_id: Any) -> None:
        """Nothing to do: ``ReturnResults`` already delivered the result."""

    def fail(self, tup_id: Any) -> None:
        """The tuple tree failed or timed out: fail the request (the caller gets 400)."""
        rid, i = tup_id
        self._sources[i].fail(rid)
