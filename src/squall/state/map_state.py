"""``MapState``: keyed state with Trident's commit protocol, over any backend.

A Trident persistent aggregation keeps one ``MapState`` per partition. Each
batch is applied between ``begin_commit(txid)`` and ``commit(txid)``; batches
are committed strictly in txid order, and the stored txids make replays
idempotent (see :mod:`squall.state.values`). A batch's writes for one
partition go to the backend in one atomic ``write``.

Keys are tuples of group values (``("dog",)``); they are stored as JSON text
(``'["dog"]'``) so that every backend and every process agrees on them.

>>> from squall.state.backend import MemoryBackend
>>> s = MapState(MemoryBackend("map-doc").connect(), "counts", "opaque")
>>> s.begin_commit(1)
>>> s.multi_update([("dog",), ("cat",)], [lambda v: (v or 0) + 2, lambda v: (v or 0) + 1])
[2, 1]
>>> s.commit(1)
>>> s.multi_get([("dog",), ("cow",)])
[2, None]
>>> MemoryBackend.reset("map-doc")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from squall.state.backend import Backend, KeyValueStore, as_backend
from squall.state.values import OPAQUE, check_kind, put_cell, read_value, update_cell


def encode_key(key: Sequence[Any]) -> str:
    """The backend key for a tuple of group values.

    >>> encode_key(("dog",)), encode_key(()), encode_key(["a", 1])
    ('["dog"]', '[]', '["a", 1]')
    """
    return json.dumps(list(key), separators=(", ", ": "))


def decode_key(text: str) -> tuple[Any, ...]:
    """The inverse of :func:`encode_key`."""
    return tuple(json.loads(text))


class MapState:
    """Trident's ``MapState``: ``multi_get``, ``multi_update``, ``multi_put`` by txid.

    Args:
        store: an open :class:`~squall.state.backend.KeyValueStore`.
        table: the table (namespace) holding this state.
        kind: ``"non_transactional"``, ``"transactional"`` or ``"opaque"``.
    """

    def __init__(self, store: KeyValueStore, table: str, kind: str) -> None:
        self.store = store
        self.table = table
        self.kind = check_kind(kind, f"state {table!r}")
        self.txid: int | None = None

    # -- the commit protocol --------------------------------------------------------
    def begin_commit(self, txid: int) -> None:
        """Start applying batch ``txid``."""
        self.txid = txid

    def commit(self, txid: int) -> None:
        """Batch ``txid`` is applied (each write was atomic already)."""
        if self.txid != txid:
            raise RuntimeError(f"state {self.table!r}: commit({txid}) without begin_commit({txid})")
        self.txid = None

    # -- reads and writes -----------------------------------------------------------
    def multi_get(self, keys: Sequence[Sequence[Any]]) -> list[Any]:
        """Current values of ``keys`` (``None`` where absent)."""
        stored = self.store.get_many(self.table, [encode_key(k) for k in keys])
        kind = self.kind
        return [read_value(kind, s) for s in stored]

    def multi_update(
        self, keys: Sequence[Sequence[Any]], updaters: Sequence[Callable[[Any], Any]]
    ) -> list[Any]:
        """Apply ``updaters[i]`` (old value -> new value) to ``keys[i]`` in the current batch.

        Returns the values after the batch. Must run between ``begin_commit`` and ``commit``.
        """
        txid = self._require_txid("multi_update")
        enc = [encode_key(k) for k in keys]
        stored = self.store.get_many(self.table, enc)
        kind = self.kind
        puts: dict[str, Any] = {}
        out: list[Any] = []
        for k, s, up in zip(enc, stored, updaters, strict=True):
            new_stored, value = update_cell(kind, s, txid, up)
            if new_stored is not s:
                puts[k] = new_stored
            out.append(value)
        if puts:
            self.store.write({self.table: puts})
        return out

    def multi_put(self, keys: Sequence[Sequence[Any]], values: Sequence[Any]) -> None:
        """Set ``keys[i]`` to ``values[i]`` in the current batch."""
        txid = self._require_txid("multi_put")
        enc = [encode_key(k) for k in keys]
        stored = self.store.get_many(self.table, enc) if self.kind == OPAQUE else [None] * len(enc)
        puts = {
            k: put_cell(self.kind, s, txid, v) for k, s, v in zip(enc, stored, values, strict=True)
        }
        if puts:
            self.store.write({self.table: puts})

    def items(self) -> dict[tuple[Any, ...], Any]:
        """Every key and its current value (for tests and tools, not the hot path)."""
        kind = self.kind
        return {
            decode_key(k): read_value(kind, v) for k, v in self.store.get_all(self.table).items()
        }

    def _require_txid(self, what: str) -> int:
        if self.txid is None:
            raise RuntimeError(
                f"state {self.table!r}: {what} outside a batch (call begin_commit(txid) first)"
            )
        return self.txid


@dataclass(frozen=True)
class MapStateFactory:
    """How a Trident topology makes its ``MapState`` s: a backend, a kind and a table.

    Picklable, so the topology can be shipped to worker processes; each task
    connects on its own.

    Args:
        backend: where the state lives.
        kind: ``"opaque"`` (default, exactly-once with any replayable spout),
            ``"transactional"`` or ``"non_transactional"``.
        table: the table name; by default the Trident topology names it
            ``<topology name>:<state id>``.

    >>> from squall.state.backend import MemoryBackend
    >>> MapStateFactory(MemoryBackend("x"), kind="transactional").kind
    'transactional'
    """

    backend: Backend
    kind: str = OPAQUE
    table: str | None = None

    def __post_init__(self) -> None:
        as_backend(self.backend, "MapStateFactory")
        check_kind(self.kind, "MapStateFactory")

    def make_state(self, default_table: str) -> MapState:
        """Open a connection and return the ``MapState`` for this task."""
        return MapState(self.backend.connect(), self.table or default_table, self.kind)


def memory_map_state(name: str = "default", kind: str = OPAQUE) -> MapStateFactory:
    """A :class:`MapStateFactory` in this process's memory (Storm's ``MemoryMapState``)."""
    from squall.state.backend import MemoryBackend

    return MapStateFactory(MemoryBackend(name), kind)


__all__ = ["MapState", "MapStateFactory", "decode_key", "encode_key", "memory_map_state"]
