"""How a bolt subscribes to a stream: Storm's groupings, streamparse's spelling.

>>> Grouping.fields("word")
Grouping.fields('word')
>>> Grouping.SHUFFLE
Grouping.SHUFFLE
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

SHUFFLE: Final = "shuffle"
LOCAL_OR_SHUFFLE: Final = "local_or_shuffle"
ALL: Final = "all"
GLOBAL: Final = "global"
NONE: Final = "none"
DIRECT: Final = "direct"
FIELDS: Final = "fields"
PARTIAL_KEY: Final = "partial_key"
CUSTOM: Final = "custom"

KINDS: Final = frozenset(
    {SHUFFLE, LOCAL_OR_SHUFFLE, ALL, GLOBAL, NONE, DIRECT, FIELDS, PARTIAL_KEY, CUSTOM}
)


@runtime_checkable
class CustomStreamGrouping(Protocol):
    """Storm's CustomStreamGrouping: ``prepare`` once, then ``choose_tasks`` per tuple."""

    def prepare(self, context: Any, stream: Any, target_tasks: Sequence[int]) -> None: ...

    def choose_tasks(self, task_id: int, values: Sequence[Any]) -> Sequence[int]: ...


@dataclass(frozen=True, slots=True)
class GroupingSpec:
    """A grouping as data: its kind, the fields it selects, and the custom object."""

    kind: str
    fields: tuple[str, ...] = ()
    custom: Any = field(default=None, compare=False)

    def __repr__(self) -> str:
        if self.kind in (FIELDS, PARTIAL_KEY):
            return f"Grouping.{self.kind}({', '.join(repr(f) for f in self.fields)})"
        if self.kind == CUSTOM:
            return f"Grouping.custom({self.custom!r})"
        return f"Grouping.{self.kind.upper()}"


def _names(kind: str, names: tuple[Any, ...]) -> tuple[str, ...]:
    # Accept fields("a", "b") and fields(["a", "b"]) like streamparse does.
    if len(names) == 1 and isinstance(names[0], list | tuple):
        names = tuple(names[0])
    if not names:
        raise ValueError(f"Grouping.{kind}() needs at least one field name")
    for n in names:
        if not isinstance(n, str) or not n:
            raise TypeError(f"Grouping.{kind}(): field names must be strings, got {n!r}")
    return tuple(names)


class Grouping:
    """Factory and constants for groupings (the streamparse ``Grouping`` surface)."""

    SHUFFLE: Final = GroupingSpec(SHUFFLE)
    LOCAL_OR_SHUFFLE: Final = GroupingSpec(LOCAL_OR_SHUFFLE)
    ALL: Final = GroupingSpec(ALL)
    GLOBAL: Final = GroupingSpec(GLOBAL)
    NONE: Final = GroupingSpec(NONE)
    DIRECT: Final = GroupingSpec(DIRECT)

    @staticmethod
    def fields(*names: Any) -> GroupingSpec:
        """Tuples with equal values in ``names`` go to the same task (stable hash)."""
        return GroupingSpec(FIELDS, _names(FIELDS, names))

    @staticmethod
    def partial_key(*names: Any) -> GroupingSpec:
        """Key grouping that splits each key over two tasks ("power of both choices")."""
        return GroupingSpec(PARTIAL_KEY, _names(PARTIAL_KEY, names))

    @staticmethod
    def custom(obj: Any) -> GroupingSpec:
        """A user grouping: an object with ``prepare(...)`` and ``choose_tasks(...)``."""
        if not (
            callable(getattr(obj, "prepare", None)) and callable(getattr(obj, "choose_tasks", None))
        ):
            raise TypeError(
                f"Grouping.custom({obj!r}): the object needs prepare(context, stream, "
                "target_tasks) and choose_tasks(task_id, values) methods"
            )
        return GroupingSpec(CUSTOM, (), obj)
