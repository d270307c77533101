"""Two-worker ZeroMQ links on loopback, for the link tests (no engine: a sink takes the entries)."""

from __future__ import annotations

from typing import Any

from squall.serialization import BatchDecoder, BatchEncoder
from squall.transport.zmq_link import ZmqLink

TASKS = {0: [1], 1: [2]}  # worker index -> its task ids


class Sink:
    """Stands in for the engine: keeps what the link delivers, never backpressured."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    def deliver(self, entries: Any) -> None:
        self.got.extend(entries)

    def backpressured_tasks(self) -> list[int]:
        return []


def link(index: int, **options: Any) -> tuple[ZmqLink, Sink]:
    """Worker ``index``'s link (``options`` go to ZmqLink), attached to a new Sink."""
    lk = ZmqLink(index, BatchEncoder(), BatchDecoder({}), worker_tasks=TASKS, **options)
    sink = Sink()
    lk.attach(sink)
    return lk, sink
