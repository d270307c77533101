"""``LocalDRPC``: a DRPC server inside the test's process, with no sockets (Storm's LocalDRPC).

Build the topology against it (``LinearDRPCTopologyBuilder.create_local_topology(drpc)``
or ``DRPCSpout(function, drpc=drpc)``) and call ``drpc.execute(function, args)``.

>>> from squall import Bolt, LocalCluster, TopologyBuilder
>>> from squall.drpc import DRPCSpout, ReturnResults
>>> class Exclaim(Bolt):
...     outputs = ["result", "return-info"]
...     def process(self, tup):
...         self.emit([tup.values[0] + "!!!", tup.values[1]])
>>> with LocalDRPC() as drpc, LocalCluster() as cluster:
...     b = TopologyBuilder()
...     _ = b.set_spout("spout", DRPCSpout, function="exclaim", drpc=drpc.service_id)
...     _ = b.set_bolt("exclaim", Exclaim).shuffle_grouping("spout")
...     _ = b.set_bolt("return", ReturnResults).shuffle_grouping("exclaim")
...     _ = cluster.submit("exclaim", b)
...     drpc.execute("exclaim", "aaa")
'aaa!!!'
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from squall.drpc import conf as K
from squall.drpc import registry
from squall.drpc.service import DRPCRequest, DRPCService
from squall.runtime.clock import Clock


class LocalDRPC:
    """An in-process DRPC server for tests and embedding.

    Args:
        conf: ``drpc.request.timeout.secs`` and ``drpc.queue.size`` are read from it.
        clock: a ``SimulatedClock`` to drive timeouts by hand (then call
            :meth:`reap`); with the default real clock a thread reaps them.

    Attributes:
        service_id: the id topologies use to find this server (return-info host).
        service: the underlying :class:`~squall.drpc.service.DRPCService`.
    """

    def __init__(
        self, conf: Mapping[str, Any] | None = None, *, clock: Clock | None = None
    ) -> None:
        c = dict(conf or {})
        self.service_id = f"local-drpc-{uuid.uuid4().hex[:12]}"
        self.service = DRPCService(
            timeout_secs=float(K.get(c, K.DRPC_REQUEST_TIMEOUT_SECS)),
            queue_size=int(K.get(c, K.DRPC_QUEUE_SIZE)),
            clock=clock,
        )
        if not self.service.clock.simulated:
            self.service.start()
        registry.register(self.service_id, 0, self.service)

    def __enter__(self) -> LocalDRPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<LocalDRPC {self.service_id}>"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self!r} lives in this process only and cannot be sent to a worker process; "
            "with topology.workers > 1 run a DRPCServer and set drpc.servers"
        )

    def execute(self, function: str, args: str = "", timeout: float | None = None) -> str:
        """Call ``function`` with ``args`` and wait for the result.

        Raises:
            DRPCExecutionError: the request failed (``FAILED_REQUEST``), timed out
                (``SERVER_TIMEOUT``) or was refused (``SERVER_SHUTDOWN``, ``QUEUE_FULL``).
        """
        return self.service.execute(function, args, timeout)

    def execute_async(self, function: str, args: str = "") -> Future[str]:
        """Call ``function`` without waiting: a future for the result."""
        return self.service.execute_async(function, args)

    # Storm's DistributedRPCInvocations, for topologies and tests.
    def fetch_request(self, function: str) -> DRPCRequest:
        return self.service.fetch_request(function)

    def result(self, request_id: str, result: str) -> None:
        self.service.result(request_id, result)

    def fail_request(self, request_id: str, message: str = "Request failed") -> None:
        self.service.fail_request(request_id, message)

    def reap(self) -> int:
        """Fail timed-out requests now (for simulated clocks)."""
        return self.service.reap()

    def shutdown(self) -> None:
        """Fail every pending request with ``SERVER_SHUTDOWN`` and unregister."""
        registry.unregister(self.service_id, 0, self.service)
        self.service.close()
