"""Trident spouts: where batches come from, and whether a replay is the same batch.

A Trident spout is split in two, as in Storm: the master batch coordinator
decides *when* batch ``txid`` starts (``is_ready``), and emitter tasks decide
*what* is in it, one set of partitions per task. What a batch holds is
described by a JSON-compatible **meta** per partition (offsets, ids...), kept in
the topology's metadata store so a restarted topology continues where it
committed.

* :class:`TransactionalSpout`: ``new_batch(partition, last_meta)`` describes the
  batch that follows ``last_meta``; ``read_batch(partition, meta)`` returns its
  rows, the same rows every time. The meta is saved *before* the batch is
  emitted, so a replay of the txid, even after a crash, is the same batch.
* :class:`OpaqueSpout`: ``emit_batch(partition, last_meta)`` returns
  ``(meta, rows)`` for the rows that follow ``last_meta``; a replay may hold
  different rows, but each row is in exactly one *committed* batch. The meta
  is saved when the batch commits.
* :class:`BatchSpout`: non-transactional (Storm's ``IBatchSpout``):
  ``emit_batch(txid)`` returns rows; ``ack(txid)`` after the batch committed.

Exactly-once needs a transactional spout with transactional or opaque state,
or an opaque spout with opaque state.

>>> spout = FixedBatchSpout(["sentence"], 2, ["a b"], ["c"], ["d e"])
>>> spout.new_batch("0", None), spout.new_batch("0", [0, 2])
([0, 2], [2, 3])
>>> list(spout.read_batch("0", [0, 2]))
[('a b',), ('c',)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final

from squall.state.values import NON_TRANSACTIONAL, OPAQUE, TRANSACTIONAL

SPOUT_KINDS: Final = (TRANSACTIONAL, OPAQUE, NON_TRANSACTIONAL)


class TridentSpout:
    """What every Trident spout has: its output ``fields`` and its ``kind``.

    Attributes:
        fields: the output field names.
        kind: ``"transactional"``, ``"opaque"`` or ``"non_transactional"``.
    """

    kind: ClassVar[str] = NON_TRANSACTIONAL
    fields: Sequence[str] = ()

    def open(self, conf: Mapping[str, Any], context: Any) -> None:
        """Called once per emitter task before its first batch."""

    def close(self) -> None:
        """Called when the emitter task shuts down."""

    def partitions(self) -> Sequence[str]:
        """This spout's partition ids; each emitter task takes every n-th (stable order)."""
        return ["0"]

    def is_ready(self, txid: int) -> bool:
        """Coordinator side: may batch ``txid`` start now? (False = nothing to read yet.)"""
        return True


class TransactionalSpout(TridentSpout):
    """A spout whose batch for a txid never changes (Storm's ``IPartitionedTridentSpout``)."""

    kind: ClassVar[str] = TRANSACTIONAL

    def new_batch(self, partition: str, last_meta: Any) -> Any:
        """The meta of the batch after ``last_meta`` (None: from the beginning)."""
        raise NotImplementedError

    def read_batch(self, partition: str, meta: Any) -> Iterable[Sequence[Any]]:
        """The rows of the batch that ``meta`` describes: the same on every call."""
        raise NotImplementedError


class OpaqueSpout(TridentSpout):
    """A spout whose replays may differ (Storm's ``IOpaquePartitionedTridentSpout``)."""

    kind: ClassVar[str] = OPAQUE

    def emit_batch(self, partition: str, last_meta: Any) -> tuple[Any, Iterable[Sequence[Any]]]:
        """``(meta, rows)``: the rows after ``last_meta`` (None: from the beginning)."""
        raise NotImplementedError


class BatchSpout(TridentSpout):
    """A non-transactional batch spout (Storm's ``IBatchSpout``)."""

    kind: ClassVar[str] = NON_TRANSACTIONAL

    def emit_batch(self, txid: int) -> Iterable[Sequence[Any]]:
        """The rows of batch ``txid`` (a replay calls it again with the same txid)."""
        raise NotImplementedError

    def ack(self, txid: int) -> None:
        """Batch ``txid`` was committed."""


class FixedBatchSpout(TransactionalSpout):
    """Fixed rows in batches of ``batch_size`` (Storm's ``FixedBatchSpout``), transactional.

    Args:
        fields: the output fields.
        batch_size: rows per batch.
        rows: the rows.
        cycle: start again from the first row after the last, forever.
    """

    def __init__(
        self, fields: Sequence[str], batch_size: int, *rows: Sequence[Any], cycle: bool = False
    ) -> None:
        if isinstance(fields, str):
            raise TypeError(f"FixedBatchSpout: fields must be a list of names, got {fields!r}")
        if batch_size <= 0:
            raise ValueError(f"FixedBatchSpout: batch_size must be > 0, got {batch_size}")
        self.fields = tuple(fields)
        self.batch_size = batch_size
        self.rows = [tuple(r) for r in rows]
        for r in self.rows:
            if len(r) != len(self.fields):
                raise ValueError(
                    f"FixedBatchSpout: row {r!r} has {len(r)} values for fields {list(fields)}"
                )
        self.cycle = cycle

    def is_ready(self, txid: int) -> bool:
        return self.cycle or (txid - 1) * self.batch_size < len(self.rows)

    def new_batch(self, partition: str, last_meta: Any) -> Any:
        start = 0 if last_meta is None else int(last_meta[1])
        end = start + self.batch_size
        if not self.cycle:
            end = min(end, len(self.rows))
        return [start, end]

    def read_batch(self, partition: str, meta: Any) -> Iterable[Sequence[Any]]:
        start, end = int(meta[0]), int(meta[1])
        n = len(self.rows)
        if not n:
            return []
        if not self.cycle:
            return self.rows[start:end]
        return [self.rows[i % n] for i in range(start, end)]


def spout_kind(spout: Any, where: str) -> str:
    """The kind of ``spout``, or a clear error if it is not a Trident spout."""
    kind = getattr(spout, "kind", None)
    if not isinstance(spout, TridentSpout) or kind not in SPOUT_KINDS:
        raise TypeError(
            f"{where}: {spout!r} is not a Trident spout; subclass TransactionalSpout, "
            "OpaqueSpout or BatchSpout (or use FixedBatchSpout)"
        )
    return str(kind)


__all__ = [
    "SPOUT_KINDS",
    "BatchSpout",
    "FixedBatchSpout",
    "OpaqueSpout",
    "TransactionalSpout",
    "TridentSpout",
    "spout_kind",
]
