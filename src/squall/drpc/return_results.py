"""``ReturnResults``: sends each ``[result, return-info]`` tuple's result to its caller.

Storm's ReturnResults bolt: the input's first value is the result, the second
the ``return-info`` JSON written by the DRPC spout. A server in this process
gets the result by a direct call and the tuple is acked at once. A server in
another process gets it over HTTP from a sender thread (results are batched);
the tuple is acked once the server took it, or failed after three failed
attempts. A tuple whose return-info cannot be parsed is failed, with an error.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from squall.api.component import Bolt
from squall.api.context import TopologyContext
from squall.api.tuple import Tuple
from squall.drpc import conf as K
from squall.drpc import registry
from squall.drpc.invocations import InvocationSender


def result_text(value: Any) -> str:
    """A result as the string the caller receives (Storm: ``"" + value``).

    >>> result_text("aaa!!!"), result_text(100), result_text(b"ok")
    ('aaa!!!', '100', 'ok')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


class ReturnResults(Bolt):
    """Delivers results to the DRPC server that the request came from."""

    auto_ack: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._senders: dict[tuple[str, int], InvocationSender] = {}
        # (tuple, ok) pairs completed by sender threads, acked on the engine's thread.
        self._done: deque[tuple[Tuple, bool]] = deque()
        self._token: str | None = None

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        _, self._token = K.tokens(conf)

    def process(self, tup: Tuple) -> None:
        values = tup.values
        if len(values) < 2:
            self._reject(tup, f"expected [result, return-info], got {len(values)} value(s)")
            return
        result, info = values[0], values[1]
        try:
            ri = json.loads(info)
            rid, host, port = str(ri["id"]), str(ri["host"]), int(ri["port"])
        except (TypeError, ValueError, KeyError) as e:
            self._reject(tup, f"unparsable return-info {info!r} ({type(e).__name__}: {e})")
            return
        text = result_text(result)
        svc = registry.lookup(host, port)
        if svc is not None:
            svc.result(rid, text)
            self.ack(tup)
            return
        if port == 0:
            # A LocalDRPC id, but that LocalDRPC is gone (or in another process).
            self._reject(tup, f"LocalDRPC {host!r} is not running in this process")
            return
        sender = self._senders.get((host, port))
        if sender is None:
            sender = InvocationSender(host, port, self._token, self._completed)
            self._senders[(host, port)] = sender
        sender.result(rid, text, tup)

    def _reject(self, tup: Tuple, why: str) -> None:
        self.report_error(ValueError(f"component {self.context.component_id!r}: {why}"))
        self.fail(tup)

    def _completed(self, tup: Any, ok: bool) -> None:
        self._done.append((tup, ok))

    # Engine hooks: completions arrive on sender threads and are acked here.
    def squall_pending(self) -> bool:
        return bool(self._done)

    def squall_drain(self) -> int:
        n = 0
        done = self._done
        while done:
            tup, ok = done.popleft()
            if ok:
                self.ack(tup)
            else:
                self.fail(tup)
            n += 1
        return n

    def cleanup(self) -> None:
        for sender in self._senders.values():
            sender.close()
        self.squall_drain()
