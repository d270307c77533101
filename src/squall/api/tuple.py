"""The tuple a bolt receives.

On the hot path a delivered tuple *is* its values: an immutable tuple subclass
made per (component, stream, source task), whose class carries ``component``,
``stream`` and ``task`` and whose properties name the fields. ``tup.values``
returns the tuple itself, so ``tup.values.word`` and ``tup.values[0]`` both
work and no wrapper object is built per tuple. When acking is on, each delivery
also carries its own anchor ids, so it is wrapped in an :class:`AckedTuple`.

>>> Word = values_class("split", "default", ("word",), 3)
>>> t = Word.make(["dog"])
>>> t.values.word, t.values[0], t.component, t.stream, t.task
('dog', 'dog', 'split', 'default', 3)
>>> isinstance(t, Tuple)
True
"""

from __future__ import annotations

import collections
import keyword
from abc import ABCMeta
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from squall import speedups


class Tuple(metaclass=ABCMeta):  # noqa: B024 (an ABC only so the C AckedTuple can register)
    """What ``Bolt.process`` receives.

    Attributes:
        values: the values: an immutable sequence that also exposes the stream's
            fields by name (``tup.values.word``).
        component: the id of the component that emitted it.
        stream: the stream it was emitted on.
        task: the task id that emitted it.
        id: a string id, unique among live tuples of this worker.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def component(self) -> str: ...

        @property
        def stream(self) -> str: ...

        @property
        def task(self) -> int: ...

        @property
        def values(self) -> Any: ...

    @property
    def id(self) -> str:
        return str(id(self))

    @property
    def is_tick(self) -> bool:
        """True for tick tuples (component ``__system``, stream ``__tick``)."""
        return self.stream == "__tick" and self.component == "__system"


class ValuesTuple(tuple, Tuple):  # type: ignore[type-arg]
    """Base of the per-(component, stream, task) value classes."""

    __slots__ = ()

    component: ClassVar[str] = ""
    stream: ClassVar[str] = ""
    task: ClassVar[int] = 0
    fields: ClassVar[tuple[str, ...]] = ()

    @property
    def values(self) -> ValuesTuple:
        return self

    @classmethod
    def make(cls, values: Iterable[Any]) -> ValuesTuple:
        return speedups.make_values(cls, values)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={v!r}" for f, v in zip(self.fields, self, strict=False))
        return f"Values[{self.component}:{self.stream}@{self.task}]({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))


if speedups.SelfDescriptor is not None:
    # Same meaning as the property above, without a Python frame per access.
    ValuesTuple.values = speedups.SelfDescriptor()  # type: ignore[method-assign]


class AckedTuple(Tuple):
    """One delivery of a tuple when acking is on: values plus this delivery's anchor ids."""

    __slots__ = ("_ack_val", "_roots", "values")

    values: ValuesTuple
    # root id -> XOR of this delivery's edge ids; None when unanchored.
    _roots: dict[int, int] | None
    # XOR of the edge ids of children anchored to this tuple; None once acked or failed.
    _ack_val: int | None

    def __init__(self, values: ValuesTuple, roots: dict[int, int] | None) -> None:
        self.values = values
        self._roots = roots
        self._ack_val = 0

    @property
    def component(self) -> str:
        return self.values.component

    @property
    def stream(self) -> str:
        return self.values.stream

    @property
    def task(self) -> int:
        return self.values.task

    # A delivered tuple is its values, with or without acking.
    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: Any) -> Any:
        return self.values[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __repr__(self) -> str:
        return f"Tuple({self.values!r}, anchored={self._roots is not None})"


PyAckedTuple = AckedTuple
if speedups.AckedTuple is not None:
    # The C twin of the class above (same attributes, same behaviour).
    AckedTuple = speedups.AckedTuple  # type: ignore[misc]
    Tuple.register(AckedTuple)


def _itemgetter_property(index: int, doc: str) -> Any:
    return property(itemgetter(index), doc=doc)


# namedtuple's own field descriptor (C, faster than property(itemgetter)); it is a
# private name of the standard library, so fall back if it ever goes away.
_field: Any = getattr(collections, "_tuplegetter", _itemgetter_property)

#: Field names that are not readable by name: a delivered tuple is its values, and
#: these are the tuple's own attributes (``tup.values.task`` is the emitting task, even
#: if the stream has a field "task"; read that field as ``tup.values[i]``).
RESERVED_FIELD_NAMES = frozenset(
    {"values", "component", "stream", "task", "fields", "make", "is_tick"}
)

_CLASSES: dict[tuple[str, str, tuple[str, ...], int], type[ValuesTuple]] = {}


def values_class(
    component: str, stream: str, fields: Sequence[str], task: int
) -> type[ValuesTuple]:
    """The value class for tuples emitted by ``task`` of ``component`` on ``stream``.

    Fields whose names are not identifiers (or clash with Tuple attributes) stay
    reachable by index only.
    """
    key = (component, stream, tuple(fields), task)
    cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    ns: dict[str, Any] = {
        "__slots__": (),
        "component": component,
        "stream": stream,
        "task": task,
        "fields": tuple(fields),
    }
    # A field named "id" wins over the tuple's own id (Storm's DRPC streams use it).
    # Fields named like the other tuple attributes stay reachable by index only
    # (tup.values[i]): the attribute keeps its meaning (see RESERVED_FIELD_NAMES).
    for i, f in enumerate(fields):
        if (
            f.isidentifier()
            and not keyword.iskeyword(f)
            and f not in RESERVED_FIELD_NAMES
            and not f.startswith("_")
        ):
            ns[f] = _field(i, f"field {f!r}")
    cls = type(f"Values[{component}:{stream}@{task}]", (ValuesTuple,), ns)
    _CLASSES[key] = cls
    return cls
