"""Groupers: small pure objects that pick target tasks for one subscription.

Single-target groupers expose ``choose(values) -> int`` (``single = True``);
the others ``choose_many(values) -> Sequence[int]``. Fields and partial-key
grouping use :func:`stable_hash`, never Python's salted ``hash()``, so every
process and every run agrees on where a key goes.

>>> g = FieldsGrouper([4, 5, 6], (0,))
>>> g.choose(("dog",)) == FieldsGrouper([4, 5, 6], (0,)).choose(("dog",))
True
"""

from __future__ import annotations

import copy
import random
import zlib
from collections.abc import Sequence
from typing import Any

import msgpack

from squall.api import grouping as kinds
from squall.api.grouping import GroupingSpec

_CACHE_LIMIT = 1 << 16


def _canonical(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError):
        return repr(value).encode("utf-8", "surrogatepass")


def stable_hash(values: Sequence[Any]) -> int:
    """A 32-bit hash of ``values`` that is the same in every process and run.

    >>> stable_hash(["dog"]) == stable_hash(("dog",))
    True
    """
    if len(values) == 1:
        v = values[0]
        if type(v) is str:
            return zlib.crc32(v.encode("utf-8", "surrogatepass"))
        if type(v) is int and -(1 << 63) <= v < (1 << 64):
            return zlib.crc32(v.to_bytes(9, "little", signed=True))
        return zlib.crc32(_canonical(v))
    return zlib.crc32(_canonical(list(values)))


class Grouper:
    single: bool = True

    def choose(self, values: Sequence[Any]) -> int:
        raise NotImplementedError

    def choose_many(self, values: Sequence[Any]) -> Sequence[int]:
        return (self.choose(values),)


class ShuffleGrouper(Grouper):
    """Shuffle the targets once, then go round-robin (Storm's ShuffleGrouping)."""

    __slots__ = ("_i", "_n", "_targets")

    def __init__(self, targets: Sequence[int], rng: random.Random) -> None:
        t = list(targets)
        rng.shuffle(t)
        self._targets = t
        self._n = len(t)
        self._i = rng.randrange(self._n)

    def choose(self, values: Sequence[Any]) -> int:
        i = self._i + 1
        if i >= self._n:
            i = 0
        self._i = i
        return self._targets[i]


class FieldsGrouper(Grouper):
    """Same selected values, same task: ``stable_hash(selected) mod n`` over sorted targets."""

    __slots__ = ("_cache", "_idx", "_n", "_one", "_targets")

    def __init__(self, targets: Sequence[int], field_indexes: Sequence[int]) -> None:
        self._targets = sorted(targets)
        self._n = len(self._targets)
        self._idx = tuple(field_indexes)
        self._one = self._idx[0] if len(self._idx) == 1 else -1
        self._cache: dict[Any, int] = {}

    def choose(self, values: Sequence[Any]) -> int:
        if self._one >= 0:
            key = values[self._one]
            try:
                return self._cache[key]
            except KeyError:
                pass
            except TypeError:  # unhashable value: no caching
                return self._targets[stable_hash((key,)) % self._n]
            task = self._targets[stable_hash((key,)) % self._n]
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            # Only str keys are cached: 1, True and 1.0 are one dict key but stable_hash
            # tells them apart, so caching them could send one to another's task.
            if type(key) is str:
                self._cache[key] = task
            return task
        selected = [values[i] for i in self._idx]
        return self._targets[stable_hash(selected) % self._n]


class PartialKeyGrouper(Grouper):
    """Two candidate tasks per key; send to the one this sender used less."""

    __slots__ = ("_counts", "_idx", "_n", "_targets")

    def __init__(self, targets: Sequence[int], field_indexes: Sequence[int]) -> None:
        self._targets = sorted(targets)
        self._n = len(self._targets)
        self._idx = tuple(field_indexes)
        self._counts = [0] * self._n

    def choose(self, values: Sequence[Any]) -> int:
        h = stable_hash([values[i] for i in self._idx])
        n = self._n
        a = h % n
        if n == 1:
            self._counts[0] += 1
            return self._targets[0]
        b = (h // n + 1 + a) % n
        if b == a:
            b = (a + 1) % n
        pick = a if self._counts[a] <= self._counts[b] else b
        self._counts[pick] += 1
        return self._targets[pick]


class GlobalGrouper(Grouper):
    """Always the lowest target task id."""

    __slots__ = ("_task",)

    def __init__(self, targets: Sequence[int]) -> None:
        self._task = min(targets)

    def choose(self, values: Sequence[Any]) -> int:
        return self._task


class NoneGrouper(Grouper):
    """A uniformly random single target (Storm: "equivalent to shuffle")."""

    __slots__ = ("_rng", "_targets")

    def __init__(self, targets: Sequence[int], rng: random.Random) -> None:
        self._targets = list(targets)
        self._rng = rng

    def choose(self, values: Sequence[Any]) -> int:
        return self._targets[self._rng.randrange(len(self._targets))]


class AllGrouper(Grouper):
    """Every target gets a copy."""

    single = False
    __slots__ = ("_targets",)

    def __init__(self, targets: Sequence[int]) -> None:
        self._targets = tuple(sorted(targets))

    def choose_many(self, values: Sequence[Any]) -> Sequence[int]:
        return self._targets


class CustomGrouper(Grouper):
    """Wraps a user's CustomStreamGrouping; checks that it returns known tasks."""

    single = False
    __slots__ = ("_obj", "_owner", "_targets", "_task")

    def __init__(self, obj: Any, task: int, targets: Sequence[int], owner: str) -> None:
        self._obj = obj
        self._task = task
        self._targets = frozenset(targets)
        self._owner = owner

    def choose_many(self, values: Sequence[Any]) -> Sequence[int]:
        chosen = self._obj.choose_tasks(self._task, list(values))
        for t in chosen:
            if t not in self._targets:
                raise ValueError(
                    f"custom grouping for {self._owner} chose task {t!r}, which is not one of "
                    f"its target tasks {sorted(self._targets)}"
                )
        return list(chosen)


def make_grouper(
    spec: GroupingSpec,
    targets: Sequence[int],
    fields: Sequence[str],
    *,
    rng: random.Random,
    local_tasks: frozenset[int],
    source_task: int,
    owner: str,
    context: Any = None,
    stream_id: Any = None,
) -> Grouper | None:
    """Build the grouper for one subscription; ``None`` for direct grouping."""
    kind = spec.kind
    if kind == kinds.SHUFFLE:
        return ShuffleGrouper(targets, rng)
    if kind == kinds.LOCAL_OR_SHUFFLE:
        local = [t for t in targets if t in local_tasks]
        return ShuffleGrouper(local or targets, rng)
    if kind == kinds.FIELDS:
        return FieldsGrouper(targets, [fields.index(f) for f in spec.fields])
    if kind == kinds.PARTIAL_KEY:
        return PartialKeyGrouper(targets, [fields.index(f) for f in spec.fields])
    if kind == kinds.GLOBAL:
        return GlobalGrouper(targets)
    if kind == kinds.NONE:
        return NoneGrouper(targets, rng)
    if kind == kinds.ALL:
        return AllGrouper(targets)
    if kind == kinds.DIRECT:
        return None
    if kind == kinds.CUSTOM:
        # Each source task gets its own copy, as Storm deserializes one per task.
        obj = copy.deepcopy(spec.custom)
        obj.prepare(context, stream_id, sorted(targets))
        return CustomGrouper(obj, source_task, targets, owner)
    raise ValueError(f"unknown grouping {spec!r} for {owner}")
