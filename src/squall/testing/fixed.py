"""Spouts that emit a fixed list of tuples and know when they are done.

``complete_topology`` swaps mocked spouts for :class:`FixedTupleSpout`; any
spout with an ``is_exhausted()`` method (:class:`CompletableSpout`) may stay
unmocked.

>>> FixedTuple(["dog"]), FixedTuple(["x", 1], stream="errors")
(FixedTuple(values=('dog',), stream='default'), FixedTuple(values=('x', 1), stream='errors'))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from squall.api.component import Spout
from squall.api.context import TopologyContext
from squall.api.ids import DEFAULT_STREAM


@dataclass(frozen=True, init=False)
class FixedTuple:
    """One tuple for a fixed-tuple spout: its values and the stream to emit them on."""

    values: tuple[Any, ...]
    stream: str

    def __init__(self, values: Sequence[Any], stream: str = DEFAULT_STREAM) -> None:
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise TypeError(f"FixedTuple values must be a list of values, got {values!r}")
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "stream", stream)


def as_fixed_tuple(item: Any, where: str) -> FixedTuple:
    """A :class:`FixedTuple` from a FixedTuple or a plain list of values (default stream)."""
    if isinstance(item, FixedTuple):
        return item
    if isinstance(item, str | bytes) or not isinstance(item, Sequence):
        raise TypeError(
            f"{where}: each tuple must be a list of values or a FixedTuple, got {item!r}"
        )
    return FixedTuple(item)


@runtime_checkable
class CompletableSpout(Protocol):
    """A spout that can tell when it has nothing left to do (Storm's ``CompletableSpout``).

    ``is_exhausted()`` is true once the spout will emit nothing more and every
    tuple tree it started was acked or failed.
    """

    def is_exhausted(self) -> bool: ...


class FixedTupleSpout(Spout):
    """Emits a fixed list of tuples once, each with its index in the list as message id.

    With several tasks, task ``i`` of ``n`` emits tuples ``i, i+n, i+2n, ...``
    (Storm's FixedTupleSpout). Outputs come from the declaration
    (``FixedTupleSpout.spec(outputs=[...], tuples=[...])``).

    Args:
        tuples: lists of values (default stream) or :class:`FixedTuple`s.

    Attributes:
        acked: message ids (indexes) acked so far, in order.
        failed: message ids (indexes) failed or timed out so far, in order.

    >>> from squall.testing import complete_topology, read_tuples
    >>> from squall import Topology
    >>> class T(Topology):
    ...     words = FixedTupleSpout.spec(outputs=["word"], tuples=[["a"], ["b"]])
    >>> read_tuples(complete_topology(T), "words")
    [['a'], ['b']]
    """

    def __init__(self, tuples: Sequence[Any] = ()) -> None:
        super().__init__()
        self.tuples = [
            as_fixed_tuple(t, f"FixedTupleSpout tuples[{i}]") for i, t in enumerate(tuples)
        ]
        self.acked: list[int] = []
        self.failed: list[int] = []
        self._serve: list[int] = []
        self._next = 0

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        n = len(context.get_component_tasks(context.component_id)) or 1
        self._serve = list(range(context.task_index, len(self.tuples), n))
        self._next = 0

    def next_tuple(self) -> None:
        if self._next >= len(self._serve):
            return
        i = self._serve[self._next]
        self._next += 1
        t = self.tuples[i]
        try:
            self.emit(list(t.values), tup_id=i, stream=t.stream)
        except Exception:
            # Count a tuple that could not be emitted as failed, so the spout still
            # finishes; the engine reports the error.
            self.failed.append(i)
            raise

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)

    def fail(self, tup_id: Any) -> None:
        self.failed.append(tup_id)

    def is_exhausted(self) -> bool:
        """Every tuple of this task was emitted and then acked or failed."""
        return self._next >= len(self._serve) and len(self.acked) + len(self.failed) >= len(
            self._serve
        )
