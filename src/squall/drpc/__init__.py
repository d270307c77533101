"""DRPC: call a topology like a function (Storm's distributed RPC).

A client sends ``(function, args)`` to a DRPC server; a topology's
:class:`DRPCSpout` fetches the request and emits it as a tuple; bolts compute;
:class:`ReturnResults` sends the result back, and the server answers the
client. Storm's HTTP interface is kept: ``GET /drpc/<function>/<args>``,
``POST /drpc/<function>`` and ``GET /drpc/<function>`` on port 3774.

* :class:`DRPCServer`: the HTTP server (``squall drpc``); :class:`LocalDRPC`: an
  in-process one for tests; :class:`DRPCClient`: the client, with retries.
* :class:`DRPCSpout` and :class:`ReturnResults`: usable in any topology.
* :class:`LinearDRPCTopologyBuilder` and the :class:`DRPCTopology` class DSL:
  a chain of bolts with request ids and coordination, so that a
  :class:`BatchBolt` knows when it has seen every tuple of a request.
"""

from squall.drpc.batch import BatchBolt
from squall.drpc.client import DRPCClient
from squall.drpc.coordinated import COORDINATED_STREAM, CoordinatedBolt
from squall.drpc.errors import (
    DRPCAuthorizationError,
    DRPCConnectionError,
    DRPCError,
    DRPCErrorType,
    DRPCExecutionError,
)
from squall.drpc.linear import (
    DRPCTopology,
    JoinResult,
    LinearDRPCInputDeclarer,
    LinearDRPCTopologyBuilder,
    PrepareRequest,
)
from squall.drpc.local import LocalDRPC
from squall.drpc.return_results import ReturnResults
from squall.drpc.server import DRPCServer
from squall.drpc.service import DRPCRequest, DRPCService
from squall.drpc.spout import DRPCSpout

__all__ = [
    "COORDINATED_STREAM",
    "BatchBolt",
    "CoordinatedBolt",
    "DRPCAuthorizationError",
    "DRPCClient",
    "DRPCConnectionError",
    "DRPCError",
    "DRPCErrorType",
    "DRPCExecutionError",
    "DRPCRequest",
    "DRPCServer",
    "DRPCService",
    "DRPCSpout",
    "DRPCTopology",
    "JoinResult",
    "LinearDRPCInputDeclarer",
    "LinearDRPCTopologyBuilder",
    "LocalDRPC",
    "PrepareRequest",
    "ReturnResults",
]
