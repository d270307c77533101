"""The txid logic that makes Trident state updates idempotent (Storm's Trident-state.md).

Three kinds of state, by what is stored next to each value:

* **non-transactional**: just the value. A replayed batch is applied again.
* **transactional**: ``[value, txid]``. A batch whose txid equals the stored txid
  was already applied, so it is skipped. Correct only if a replayed batch has
  exactly the same contents (a *transactional* spout).
* **opaque**: ``[curr, prev, txid]``. A batch whose txid equals the stored txid
  is re-applied on top of ``prev`` (the value before that batch), replacing the
  earlier result. Correct even if a replayed batch has different contents (an
  *opaque* spout), as long as the last attempt of each txid is the one that counts.

All functions here are pure: they take the stored form and return the new one.

>>> transactional_update(None, 1, lambda v: (v or 0) + 3)
([3, 1], 3)
>>> transactional_update([3, 1], 1, lambda v: (v or 0) + 3)  # replay of txid 1: skipped
([3, 1], 3)
>>> opaque_update([3, None, 1], 1, lambda v: (v or 0) + 5)  # txid 1 again, new contents
([5, None, 1], 5)
>>> opaque_update([5, None, 1], 2, lambda v: (v or 0) + 1)
([6, 5, 2], 6)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

NON_TRANSACTIONAL: Final = "non_transactional"
TRANSACTIONAL: Final = "transactional"
OPAQUE: Final = "opaque"
KINDS: Final = (NON_TRANSACTIONAL, TRANSACTIONAL, OPAQUE)

Updater = Callable[[Any], Any]


class StateBehindError(RuntimeError):
    """A batch older than the one the state already holds was applied (a bug upstream)."""


def check_kind(kind: str, owner: str) -> str:
    """``kind`` if it is one of :data:`KINDS`, else an error naming ``owner``."""
    if kind not in KINDS:
        raise ValueError(f"{owner}: state kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return kind


def transactional_update(stored: Any, txid: int, update: Updater) -> tuple[list[Any], Any]:
    """Apply ``update`` to a ``[value, txid]`` cell for batch ``txid``.

    Returns:
        (new stored form, value after this batch).
    """
    if stored is None:
        value = update(None)
        return [value, txid], value
    value, stored_txid = stored[0], stored[1]
    if stored_txid == txid:
        return list(stored), value  # this batch was applied already
    if stored_txid is not None and stored_txid > txid:
        raise StateBehindError(
            f"batch {txid} applied to a transactional value already at batch {stored_txid}"
        )
    new = update(value)
    return [new, txid], new


def opaque_update(stored: Any, txid: int, update: Updater) -> tuple[list[Any], Any]:
    """Apply ``update`` to a ``[curr, prev, txid]`` cell for batch ``txid``.

    Returns:
        (new stored form, value after this batch).
    """
    if stored is None:
        value = update(None)
        return [value, None, txid], value
    curr, prev, stored_txid = stored[0], stored[1], stored[2]
    if stored_txid is None or stored_txid < txid:
        base = curr
    elif stored_txid == txid:
        base = prev  # a replay of the batch applied last: redo it from the value before it
    else:
        raise StateBehindError(
            f"batch {txid} applied to an opaque value already at batch {stored_txid}"
        )
    new = update(base)
    return [new, base, txid], new


def read_value(kind: str, stored: Any) -> Any:
    """The current value of a stored cell of ``kind`` (what a query sees)."""
    if stored is None:
        return None
    if kind == TRANSACTIONAL:
        return stored[0]
    if kind == OPAQUE:
        return stored[0]
    return stored


def update_cell(kind: str, stored: Any, txid: int, update: Updater) -> tuple[Any, Any]:
    """Dispatch on ``kind``: (new stored form, value after this batch)."""
    if kind == OPAQUE:
        return opaque_update(stored, txid, update)
    if kind == TRANSACTIONAL:
        return transactional_update(stored, txid, update)
    new = update(stored)
    return new, new


def put_cell(kind: str, stored: Any, txid: int, value: Any) -> Any:
    """The stored form after setting the value to ``value`` in batch ``txid``."""
    if kind == TRANSACTIONAL:
        return [value, txid]
    if kind == OPAQUE:
        return opaque_update(stored, txid, lambda _old: value)[0]
    return value


__all__ = [
    "KINDS",
    "NON_TRANSACTIONAL",
    "OPAQUE",
    "TRANSACTIONAL",
    "StateBehindError",
    "check_kind",
    "opaque_update",
    "put_cell",
    "read_value",
    "transactional_update",
    "update_cell",
]
