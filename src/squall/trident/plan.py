"""The compiled form of a Trident topology: what each generated component runs.

A Trident topology compiles to ordinary Squall components (see ``compiler``):

* one **master batch coordinator** spout per batch group (``$mastercoord-bg<N>``),
  which starts batches (``$batch``), orders commits (``$commit``) and announces
  them (``$success``); for a DRPC stream, a **DRPC batch spout** instead, one
  batch per request;
* **stage** bolts, each running a chain of fused partition-local operations
  (:class:`ProcSpec`), fed by the coordinator's streams and by other stages.

Between stages every stream is declared direct with fields ``["bid", "v"]``:
``bid`` identifies the batch (``txid << 32 | attempt`` for coordinated batches,
the request's return-info for DRPC batches) and ``v`` is either a row of values
(a list or tuple) or, as the last tuple a task sends to another task for a
batch, an ``int``: the number of rows it sent that task for that batch (the
batch-end *marker*). Streams are FIFO per (sender, receiver), so a task has
the whole batch once it has a marker from every upstream task and as many rows
as the markers announced.

Everything here is plain data and picklable (worker processes receive it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

BATCH_STREAM: Final = "$batch"
COMMIT_STREAM: Final = "$commit"
SUCCESS_STREAM: Final = "$success"
RETURN_STREAM: Final = "$return"
DATA_FIELDS: Final = ("bid", "v")

ATTEMPT_BITS: Final = 32
ATTEMPT_MASK: Final = (1 << ATTEMPT_BITS) - 1


def batch_id(txid: int, attempt: int) -> int:
    """The ``bid`` of a coordinated batch.

    >>> b = batch_id(7, 3); (txid_of(b), attempt_of(b))
    (7, 3)
    """
    return (txid << ATTEMPT_BITS) | (attempt & ATTEMPT_MASK)


def txid_of(bid: int) -> int:
    return bid >> ATTEMPT_BITS


def attempt_of(bid: int) -> int:
    return bid & ATTEMPT_MASK


# Entry kinds: what arrives on an input stream of a stage.
DATA: Final = "data"
BATCH: Final = "batch"
COMMIT: Final = "commit"
SUCCESS: Final = "success"

# Routing of a stage output (the stages route by hand: their streams are direct).
SHUFFLE: Final = "shuffle"
FIELDS: Final = "fields"
GLOBAL: Final = "global"
ALL: Final = "all"


@dataclass(frozen=True)
class ProcSpec:
    """One operation inside a stage.

    Attributes:
        kind: spout, drpc_args, each, filter, map, flat_map, peek, project, agg,
            persist, query, join_side, join, output, drpc_return.
        name: what error messages call it (``each(split)``).
        group: the batch group its batches belong to.
        children: indexes of the operations its output feeds (always larger).
        params: kind-specific settings.
    """

    kind: str
    name: str
    group: int
    children: tuple[int, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EntrySpec:
    """An input stream of a stage and what to do with it.

    Attributes:
        source: the upstream component.
        stream: the stream.
        kind: ``data`` (rows and markers), ``batch``/``commit``/``success``
            (from a coordinator or DRPC batch spout).
        group: the batch group.
        procs: the operations it feeds (the entry operation for data; the
            spout operations for a batch).
    """

    source: str
    stream: str
    kind: str
    group: int
    procs: tuple[int, ...] = ()


@dataclass(frozen=True)
class OutputSpec:
    """A stream out of a stage to exactly one downstream stage."""

    stream: str
    target: str
    routing: str
    key: tuple[int, ...] = ()
    group: int = 0


@dataclass(frozen=True)
class StagePlan:
    """Everything a stage bolt task needs; the ``plan`` argument of ``TridentBolt``."""

    name: str
    procs: tuple[ProcSpec, ...]
    entries: tuple[EntrySpec, ...]
    outputs: tuple[OutputSpec, ...]
    # Group -> the committing operations of that group in this stage (persist, opaque spouts).
    commit_groups: frozenset[int] = frozenset()
    meta: Any = None  # the metadata backend of the spouts (a squall.state Backend)


@dataclass(frozen=True)
class SpoutRef:
    """A spout as its coordinator sees it."""

    spout_id: str
    spout: Any


__all__ = [
    "ALL",
    "BATCH",
    "BATCH_STREAM",
    "COMMIT",
    "COMMIT_STREAM",
    "DATA",
    "DATA_FIELDS",
    "FIELDS",
    "GLOBAL",
    "RETURN_STREAM",
    "SHUFFLE",
    "SUCCESS",
    "SUCCESS_STREAM",
    "EntrySpec",
    "OutputSpec",
    "ProcSpec",
    "SpoutRef",
    "StagePlan",
    "attempt_of",
    "batch_id",
    "txid_of",
]
