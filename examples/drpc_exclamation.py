"""Exclamation as a DRPC function: call a topology like a function.

``squall run`` sees the DRPC spout and starts a DRPC server on
127.0.0.1:3774, so, while it runs::

    $ squall run examples/drpc_exclamation.py
    $ curl http://127.0.0.1:3774/drpc/exclamation/hello
    hello!!!
    $ squall drpc-client exclamation hello
    hello!!!

Each request becomes a tuple ``[request id, args]``; ``ExclaimBolt`` emits
``[request id, result]``, and the DRPC machinery (``DRPCTopology``: a
``LinearDRPCTopologyBuilder`` underneath) sends the result back to the caller.
"""

from __future__ import annotations

from squall import Bolt
from squall.drpc import DRPCTopology


class ExclaimBolt(Bolt):
    """Appends "!!!" to the request's args."""

    outputs = ["id", "result"]

    def process(self, tup):
        request_id, args = tup.values
        self.emit([request_id, args + "!!!"])


class ExclamationDRPC(DRPCTopology):
    function = "exclamation"
    exclaim = ExclaimBolt.spec(par=3)
