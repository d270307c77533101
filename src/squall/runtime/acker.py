"""The acker's bookkeeping, as a pure class (Storm's Acker.execute).

Each spout tuple tree is tracked by its root id with one 64-bit value: the XOR
of every edge id seen so far. Every edge is XORed in twice, once when created
(in ``init`` or in its parent's ack) and once when acked, so the value is 0
exactly when every edge of the tree has been acked.

Calls return the outcome for the spout task, or None; the caller sends it.

>>> ledger = AckerLedger(now=lambda: 0.0)
>>> ledger.init(root=7, init_val=0b101, spout_task=1)
>>> ledger.ack(root=7, ack_val=0b100)
>>> ledger.ack(root=7, ack_val=0b001)
(1, 'ack', 7, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Final

from squall import speedups
from squall.runtime.messages import OP_ACK, OP_FAIL, OP_INIT, OP_RESET
from squall.runtime.rotating_map import RotatingMap

ACK: Final = "ack"
FAIL: Final = "fail"
RESET: Final = "reset"

# (spout task, outcome, root id, time since the tree was first seen, in ms)
Outcome = tuple[int, str, int, float]
# spout task -> [(op, root), ...], as sent to spout tasks
Outcomes = MutableMapping[int, list[tuple[int, int]]]


_c_apply = speedups.acker_apply

# An entry is a list [val, spout_task, failed, start] (a list, not an object, so the
# C twin of ``apply`` can share it): the XOR so far, the spout task once the init
# arrived (-1 before), whether any part failed, and when the entry was created.
VAL: Final = 0
TASK: Final = 1
FAILED: Final = 2
START: Final = 3


def _new_entry(start: float) -> list[Any]:
    return [0, -1, False, start]


class AckerLedger:
    """XOR ledger with a 3-bucket rotating map for expiry (the spout owns timeouts)."""

    def __init__(self, now: Callable[[], float], buckets: int = 3) -> None:
        self._now = now
        self._pending: RotatingMap[int, list[Any]] = RotatingMap(buckets)

    def _entry(self, root: int) -> list[Any]:
        e = self._pending.get(root)
        if e is None:
            e = _new_entry(self._now())
            self._pending.put(root, e)
        return e

    def _settle(self, root: int, e: list[Any], reset: bool = False) -> Outcome | None:
        spout_task: int = e[TASK]
        if spout_task < 0:
            return None  # the init has not arrived yet; nothing to tell anyone
        delta = (self._now() - e[START]) * 1000.0
        if e[VAL] == 0:
            self._pending.pop(root)
            return (spout_task, ACK, root, delta)
        if e[FAILED]:
            self._pending.pop(root)
            return (spout_task, FAIL, root, delta)
        if reset:
            return (spout_task, RESET, root, delta)
        return None

    def init(self, root: int, init_val: int, spout_task: int) -> Outcome | None:
        e = self._entry(root)
        e[VAL] ^= init_val
        e[TASK] = spout_task
        return self._settle(root, e)

    def ack(self, root: int, ack_val: int) -> Outcome | None:
        e = self._entry(root)
        e[VAL] ^= ack_val
        return self._settle(root, e)

    def fail(self, root: int) -> Outcome | None:
        e = self._entry(root)
        e[FAILED] = True
        return self._settle(root, e)

    def reset_timeout(self, root: int) -> Outcome | None:
        e = self._entry(root)
        self._pending.put(root, e)  # refresh its bucket
        return self._settle(root, e, reset=True)

    def apply(self, msgs: Iterable[tuple[int, int, int, int]], out: Outcomes) -> None:
        """Apply a batch of ``(op, root, val, spout_task)`` messages (ops from messages.py).

        Same results as calling :meth:`init`/:meth:`ack`/:meth:`fail`/
        :meth:`reset_timeout` one by one, written flat because it runs per message:
        each outcome is appended to ``out[spout_task]`` as ``(op, root)`` with
        ``OP_ACK``/``OP_FAIL``/``OP_RESET``. (The time delta is not computed: spouts
        measure complete latency from their own emit time.)
        """
        if _c_apply is not None and type(msgs) is list:
            # the C twin of the loop below (same entries, same outcomes)
            self._pending._size += _c_apply(self._pending._buckets, msgs, out, self._now())
            return
        buckets = self._pending._buckets
        newest = buckets[0]
        older = buckets[1:]
        now = self._now
        for op, root, val, spout_task in msgs:
            e = newest.get(root)
            if e is None:
                for b in older:
                    e = b.get(root)
                    if e is not None:
                        break
                else:
                    e = _new_entry(now())
                    self._pending.add_new(root, e)
            if op == OP_ACK:
                e[VAL] ^= val
            elif op == OP_INIT:
                e[VAL] ^= val
                e[TASK] = spout_task
            elif op == OP_FAIL:
                e[FAILED] = True
            else:
                # reset: refresh the entry's bucket
                self._pending.put(root, e)
            st = e[TASK]
            if st < 0:
                continue
            if e[VAL] == 0:
                self._pending.pop(root)
                out[st].append((OP_ACK, root))
            elif e[FAILED]:
                self._pending.pop(root)
                out[st].append((OP_FAIL, root))
            elif op == OP_RESET:
                out[st].append((OP_RESET, root))

    def rotate(self) -> int:
        """Expire the oldest bucket silently; returns how many trees were dropped."""
        return len(self._pending.rotate())

    def __len__(self) -> int:
        return len(self._pending)
