"""Storm's RotatingMap: a map whose keys expire after N-1 to N rotations.

``put`` moves a key into the newest bucket; ``rotate`` drops the oldest bucket
and returns its entries. With 2 buckets rotated every T seconds, an entry
expires between T and 2T after its last ``put``.

>>> m = RotatingMap(2)
>>> m.put("a", 1)
>>> m.rotate()
[]
>>> m.rotate()
[('a', 1)]
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class RotatingMap(Generic[K, V]):
    __slots__ = ("_buckets", "_size")

    def __init__(self, num_buckets: int) -> None:
        if num_buckets < 2:
            raise ValueError("a RotatingMap needs at least 2 buckets")
        # _buckets[0] is the newest. Invariant: a key is in at most one bucket, and
        # _size is the number of keys (kept so len() is O(1): spouts ask per call).
        self._buckets: list[dict[K, V]] = [{} for _ in range(num_buckets)]
        self._size = 0

    def put(self, key: K, value: V) -> None:
        buckets = self._buckets
        newest = buckets[0]
        if key not in newest:
            for b in buckets[1:]:
                if key in b:
                    del b[key]
                    break
            else:
                self._size += 1
        newest[key] = value

    def add_new(self, key: K, value: V) -> None:
        """``put`` for a key the caller knows is absent (skips the search)."""
        self._buckets[0][key] = value
        self._size += 1

    def get(self, key: K) -> V | None:
        for b in self._buckets:
            if key in b:
                return b[key]
        return None

    def __contains__(self, key: object) -> bool:
        return any(key in b for b in self._buckets)

    def pop(self, key: K) -> V | None:
        for b in self._buckets:
            if key in b:
                self._size -= 1
                return b.pop(key)
        return None

    def rotate(self) -> list[tuple[K, V]]:
        """Drop the oldest bucket and return what it held (the expired entries)."""
        dead = self._buckets.pop()
        self._buckets.insert(0, {})
        self._size -= len(dead)
        return list(dead.items())

    def __len__(self) -> int:
        return self._size
