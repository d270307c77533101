"""What Trident operations are made of: functions, filters, aggregators, state queries.

Plain Python callables work everywhere a function or filter is expected; the
small classes below are Storm's interfaces in Python casing, for operations
that need ``prepare``/``cleanup`` or see the whole tuple.

* a **function** (``each``): ``fn(*input_values)`` returns an iterable of output
  rows (or ``None`` for no output). With one output field a row may be given
  bare, unless the value itself is a list or tuple. Or subclass :class:`Function`.
* a **filter**: ``fn(*input_values)`` returns true to keep the tuple, or
  subclass :class:`Filter`.
* a **map** / **flat map**: ``fn(*input_values)`` returns one row / an iterable of rows.
* an **aggregator**: :class:`CombinerAggregator` (``init``/``combine``/``zero``:
  aggregated partially on each partition *before* the repartition, so only
  partial results cross the network), :class:`ReducerAggregator`
  (``init``/``reduce``), or the general :class:`Aggregator`. A plain two-argument
  callable (``operator.add``, ``max``) is a combiner over the first input field.
* a **state query**: :class:`QueryFunction` (``batch_retrieve`` + ``execute``).

Built-ins: :class:`Count`, :class:`Sum`, :class:`First`, :class:`FilterNull`,
:class:`MapGet`, :class:`SnapshotGet`.

>>> rows = as_function(lambda s: s.split(), 1, "split")
>>> rows(("the cat",))
[('the',), ('cat',)]
>>> Count().combine(Count().init(("x",)), 2)
3
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from squall.api.errors import InvalidTopologyError
from squall.api.tuple import ValuesTuple, values_class


def trident_tuple_class(fields: Sequence[str], where: str) -> type[ValuesTuple]:
    """The tuple class user code sees: values with the fields as attributes."""
    return values_class("$trident", where, tuple(fields), 0)


# -- interfaces ---------------------------------------------------------------------
class Operation:
    """Hooks shared by every operation class (no-ops by default)."""

    def prepare(self, conf: Any, context: Any) -> None:
        """Called once per task before the first tuple."""

    def cleanup(self) -> None:
        """Called when the task shuts down."""


class Collector:
    """What ``Function.execute`` and ``Aggregator`` methods emit into."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[Sequence[Any]] = []

    def emit(self, values: Sequence[Any]) -> None:
        self.rows.append(values)


class Function(Operation):
    """Storm's ``Function``: ``execute(tup, collector)`` emits zero or more rows.

    >>> class Split(Function):
    ...     def execute(self, tup, collector):
    ...         for word in tup.sentence.split():
    ...             collector.emit([word])
    """

    def execute(self, tup: Any, collector: Collector) -> None:
        raise NotImplementedError


class Filter(Operation):
    """Storm's ``Filter``: ``is_keep(tup)`` says whether the tuple goes on."""

    def is_keep(self, tup: Any) -> bool:
        raise NotImplementedError


class MapFunction(Operation):
    """``execute(tup)`` returns exactly one output row."""

    def execute(self, tup: Any) -> Sequence[Any]:
        raise NotImplementedError


class FlatMapFunction(Operation):
    """``execute(tup)`` returns an iterable of output rows."""

    def execute(self, tup: Any) -> Iterable[Sequence[Any]]:
        raise NotImplementedError


class CombinerAggregator(Operation):
    """``init(tup)`` makes a value from one tuple; ``combine`` merges two; ``zero`` is the empty.

    ``combine`` must be associative and commutative: Trident combines partial
    results per partition before the repartition, then again after it.
    """

    def init(self, tup: Any) -> Any:
        raise NotImplementedError

    def combine(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def zero(self) -> Any:
        raise NotImplementedError


class ReducerAggregator(Operation):
    """``init()`` is the start value; ``reduce(curr, tup)`` folds in one tuple."""

    def init(self) -> Any:
        raise NotImplementedError

    def reduce(self, curr: Any, tup: Any) -> Any:
        raise NotImplementedError


class Aggregator(Operation):
    """The general aggregator: ``init`` per batch (and group), ``aggregate``, ``complete``."""

    def init(self, batch_id: Any, collector: Collector) -> Any:
        raise NotImplementedError

    def aggregate(self, state: Any, tup: Any, collector: Collector) -> None:
        raise NotImplementedError

    def complete(self, state: Any, collector: Collector) -> None:
        raise NotImplementedError


class QueryFunction(Operation):
    """Reads state for a batch: ``batch_retrieve`` once, then ``execute`` per input tuple."""

    def batch_retrieve(self, state: Any, tuples: Sequence[Any]) -> Sequence[Any]:
        raise NotImplementedError

    def execute(self, tup: Any, result: Any, collector: Collector) -> None:
        raise NotImplementedError


class StateUpdater(Operation):
    """``partition_persist``: ``update_state(state, tuples, collector)`` once per batch."""

    def update_state(self, state: Any, tuples: Sequence[Any], collector: Collector) -> None:
        raise NotImplementedError


# -- built-ins ----------------------------------------------------------------------
class Count(CombinerAggregator):
    """Counts tuples (Storm's ``Count``)."""

    def init(self, tup: Any) -> int:
        return 1

    def combine(self, a: Any, b: Any) -> Any:
        return a + b

    def zero(self) -> int:
        return 0


class Sum(CombinerAggregator):
    """Sums the first input field (Storm's ``Sum``); ``None`` counts as nothing."""

    def init(self, tup: Any) -> Any:
        v = tup[0]
        return 0 if v is None else v

    def combine(self, a: Any, b: Any) -> Any:
        return a + b

    def zero(self) -> int:
        return 0


class First(Aggregator):
    """Emits the first tuple of the batch (or group) (Storm's ``First``)."""

    def init(self, batch_id: Any, collector: Collector) -> Any:
        return [None]

    def aggregate(self, state: Any, tup: Any, collector: Collector) -> None:
        if state[0] is None:
            state[0] = tuple(tup)

    def complete(self, state: Any, collector: Collector) -> None:
        if state[0] is not None:
            collector.emit(state[0])


class FilterNull(Filter):
    """Drops tuples in which any input field is ``None`` (Storm's ``FilterNull``)."""

    def is_keep(self, tup: Any) -> bool:
        return all(v is not None for v in tup)


class MapGet(QueryFunction):
    """Looks each input (the group key) up in a map state (Storm's ``MapGet``)."""

    def batch_retrieve(self, state: Any, tuples: Sequence[Any]) -> Sequence[Any]:
        return state.multi_get([tuple(t) for t in tuples])  # type: ignore[no-any-return]

    def execute(self, tup: Any, result: Any, collector: Collector) -> None:
        collector.emit([result])


class SnapshotGet(QueryFunction):
    """Reads the single value of an ungrouped (global) persistent aggregate."""

    def batch_retrieve(self, state: Any, tuples: Sequence[Any]) -> Sequence[Any]:
        value = state.multi_get([()])[0]
        return [value] * len(tuples)

    def execute(self, tup: Any, result: Any, collector: Collector) -> None:
        collector.emit([result])


class _CallableCombiner(CombinerAggregator):
    """A two-argument callable as a combiner over the first input field; ``None`` is empty."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def init(self, tup: Any) -> Any:
        return tup[0]

    def combine(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        return self.fn(a, b)

    def zero(self) -> Any:
        return None


class _ByField(CombinerAggregator):
    """``min_by``/``max_by``: keeps the whole tuple with the least/greatest ``field``."""

    def __init__(self, index: int, greatest: bool) -> None:
        self.index = index
        self.greatest = greatest

    def init(self, tup: Any) -> Any:
        return tuple(tup)

    def combine(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        i = self.index
        if self.greatest:
            return b if b[i] > a[i] else a
        return b if b[i] < a[i] else a

    def zero(self) -> Any:
        return None


# -- adapters: every function shape -> one calling convention ------------------------
Rows = list[tuple[Any, ...]]


def _row(value: Any, width: int, where: str) -> tuple[Any, ...]:
    if width == 1 and not isinstance(value, list | tuple):
        return (value,)
    if not isinstance(value, list | tuple):
        raise TypeError(
            f"{where}: expected a row of {width} value(s) (a list or tuple), got {value!r}"
        )
    if len(value) != width:
        raise TypeError(f"{where}: expected a row of {width} value(s), got {len(value)}: {value!r}")
    return tuple(value)


def _rows(result: Any, width: int, where: str) -> Rows:
    if result is None:
        return []
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise TypeError(
            f"{where}: a function returns an iterable of rows (or None), got {result!r}"
        )
    return [_row(r, width, where) for r in result]


def as_function(fn: Any, width: int, where: str, fields: Sequence[str] = ()) -> Callable[..., Rows]:
    """``each``: inputs tuple -> output rows of ``width`` values."""
    if isinstance(fn, Function):
        cls = trident_tuple_class(fields, where)
        make = cls.make

        def run_function(inputs: Sequence[Any]) -> Rows:
            c = Collector()
            fn.execute(make(inputs), c)
            return [_row(r, width, where) for r in c.rows]

        return run_function
    _check_callable(fn, where)
    if width == 1:

        def run_callable_1(inputs: Sequence[Any]) -> Rows:
            result = fn(*inputs)
            if result is None:
                return []
            if isinstance(result, str | bytes) or not isinstance(result, Iterable):
                raise TypeError(
                    f"{where}: a function returns an iterable of rows (or None), got {result!r}"
                )
            return [
                (r,)
                if not isinstance(r, list | tuple)
                else (tuple(r) if len(r) == 1 else _row(r, 1, where))
                for r in result
            ]

        return run_callable_1
    return lambda inputs: _rows(fn(*inputs), width, where)


def as_map(fn: Any, width: int, where: str, fields: Sequence[str] = ()) -> Callable[..., Any]:
    """``map``: inputs tuple -> one output row."""
    if isinstance(fn, MapFunction):
        make = trident_tuple_class(fields, where).make
        return lambda inputs: _row(fn.execute(make(inputs)), width, where)
    _check_callable(fn, where)
    return lambda inputs: _row(fn(*inputs), width, where)


def as_flat_map(fn: Any, width: int, where: str, fields: Sequence[str] = ()) -> Callable[..., Rows]:
    """``flat_map``: inputs tuple -> output rows."""
    if isinstance(fn, FlatMapFunction):
        make = trident_tuple_class(fields, where).make
        return lambda inputs: _rows(fn.execute(make(inputs)), width, where)
    return as_function(fn, width, where, fields)


def as_filter(fn: Any, where: str, fields: Sequence[str] = ()) -> Callable[..., bool]:
    """``filter``: inputs tuple -> keep?"""
    if isinstance(fn, Filter):
        make = trident_tuple_class(fields, where).make
        return lambda inputs: bool(fn.is_keep(make(inputs)))
    _check_callable(fn, where)
    return lambda inputs: bool(fn(*inputs))


def as_aggregator(agg: Any, where: str) -> Any:
    """The aggregator object for ``agg`` (a plain callable becomes a combiner)."""
    if isinstance(agg, CombinerAggregator | ReducerAggregator | Aggregator):
        return agg
    if isinstance(agg, type) and issubclass(
        agg, CombinerAggregator | ReducerAggregator | Aggregator
    ):
        raise InvalidTopologyError(
            f"{where}: pass an aggregator instance ({agg.__name__}()), not the class"
        )
    if callable(agg):
        return _CallableCombiner(agg)
    raise InvalidTopologyError(
        f"{where}: {agg!r} is not an aggregator; use Count(), Sum(), a CombinerAggregator, "
        "a ReducerAggregator, an Aggregator or a two-argument callable"
    )


def _check_callable(fn: Any, where: str) -> None:
    if isinstance(fn, type):
        raise InvalidTopologyError(
            f"{where}: pass an instance or a function, not the class {fn.__name__}"
        )
    if not callable(fn):
        raise InvalidTopologyError(f"{where}: {fn!r} is not callable")


def describe(fn: Any) -> str:
    """A short name for an operation, for component and error names."""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return name if inspect.isroutine(fn) else type(fn).__name__


__all__ = [
    "Aggregator",
    "Collector",
    "CombinerAggregator",
    "Count",
    "Filter",
    "FilterNull",
    "First",
    "FlatMapFunction",
    "Function",
    "MapFunction",
    "MapGet",
    "Operation",
    "QueryFunction",
    "ReducerAggregator",
    "SnapshotGet",
    "StateUpdater",
    "Sum",
    "as_aggregator",
    "as_filter",
    "as_flat_map",
    "as_function",
    "as_map",
    "trident_tuple_class",
]
