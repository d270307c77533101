"""``BatchBolt``: a bolt that sees all the tuples of one request, then finishes it.

Storm's ``IBatchBolt``: a fresh instance per batch (in DRPC, per request id),
``process`` for each of the batch's tuples, then ``finish_batch`` once the
coordination (:class:`~squall.drpc.coordinated.CoordinatedBolt`) knows that
every tuple of the batch has arrived. It is how a DRPC function aggregates:
count, sum, distinct.

>>> class Count(BatchBolt):
...     outputs = ["id", "count"]
...     def initialize(self, conf, context):
...         self.count = 0
...     def process(self, tup):
...         self.count += 1
...     def finish_batch(self):
...         self.emit([self.batch_id, self.count])

Emits are anchored for you (to the tuple that completed the batch, in
``finish_batch``), so the request's tuple tree stays alive until the result
reaches ``ReturnResults``. Raise :class:`~squall.api.FailedError` (or any
exception, which is also reported) to fail the request: its caller gets
HTTP 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from squall.api.component import Component
from squall.api.context import TopologyContext
from squall.api.tuple import Tuple


class BatchBolt(Component):
    """One instance per batch; override ``process`` and ``finish_batch``.

    Attributes:
        batch_id: the batch (request) id, set before ``initialize`` is called.
    """

    batch_id: Any = None

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        """Called once per batch, before its first tuple (``self.batch_id`` is set)."""

    def process(self, tup: Tuple) -> None:
        """Handle one tuple of this batch."""

    def finish_batch(self) -> None:
        """Every tuple of the batch has been processed: emit the batch's result."""

    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """Emit ``tup`` (its first value must be the batch id) on ``stream``."""
        return self._collector.emit(  # type: ignore[no-any-return]
            tup, stream=stream, direct_task=direct_task, need_task_ids=need_task_ids
        )


class BatchBoltExecutor:
    """Runs a :class:`BatchBolt` class as one bolt: an instance per open batch.

    Storm's ``BatchBoltExecutor``; a :class:`CoordinatedBolt` delegate.
    """

    auto_ack = True
    auto_fail = True
    auto_anchor = True

    def __init__(
        self,
        cls: type[BatchBolt],
        kwargs: Mapping[str, Any],
        conf: Mapping[str, Any],
        context: TopologyContext,
        collector: Any,
        logger: Any,
    ) -> None:
        self.cls = cls
        self.kwargs = dict(kwargs)
        self.conf = conf
        self.context = context
        self.collector = collector
        self.logger = logger
        self.open: dict[Any, BatchBolt] = {}

    def _batch(self, batch_id: Any) -> BatchBolt:
        bolt = self.open.get(batch_id)
        if bolt is None:
            bolt = self.cls(**self.kwargs)
            bolt.conf = self.conf
            bolt.context = self.context
            bolt.logger = self.logger
            bolt._collector = self.collector
            bolt.batch_id = batch_id
            bolt.initialize(self.conf, self.context)
            self.open[batch_id] = bolt
        return bolt

    def process(self, tup: Tuple) -> None:
        self._batch(tup.values[0]).process(tup)

    def process_tick(self, tup: Tuple) -> None: ...

    def finished_id(self, batch_id: Any) -> None:
        # A batch with no tuples still finishes (a count of zero is a result).
        bolt = self._batch(batch_id)
        del self.open[batch_id]
        bolt.finish_batch()

    def failed_id(self, batch_id: Any) -> None:
        self.open.pop(batch_id, None)

    def timeout_id(self, batch_id: Any) -> None:
        self.open.pop(batch_id, None)


__all__ = ["BatchBolt", "BatchBoltExecutor"]
