"""The spouts a Trident topology compiles to: the master batch coordinator and DRPC batches.

:class:`MasterBatchCoordinator` (Storm's ``MasterBatchCoordinator``) is the only
spout of a batch group. It

* starts batch ``txid`` (emits ``[bid]`` on ``$batch``, tracked by the acker)
  when fewer than ``topology.max.spout.pending`` batches (default 1) are
  active, at most every ``topology.trident.batch.emit.interval.millis``, and
  when every spout of the group ``is_ready(txid)``;
* when the lowest active batch is fully processed (its tuple tree is acked) and
  every earlier batch has committed, emits ``$commit`` for it: **commits are
  strictly ordered by txid** even when batches are processed in parallel;
* when the commit tree is acked, records the txid as committed in the metadata
  store and emits ``$success``;
* when a batch or a commit fails (or times out), emits it again with a new
  attempt id, together with every later active batch (an opaque spout's batch
  depends on where the previous one ended).

After a restart it continues after the last committed txid. Attempt ids carry
a "life" counter kept in the metadata store, so tasks that outlived a restarted
coordinator never mix a new attempt with an old one.

:class:`DRPCBatchSpout` turns each DRPC request into its own batch.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from squall import config as C
from squall.api.component import Spout
from squall.api.context import TopologyContext
from squall.api.stream import Stream
from squall.drpc.spout import DRPCSpout
from squall.state.backend import Backend
from squall.trident.plan import (
    BATCH_STREAM,
    COMMIT_STREAM,
    SUCCESS_STREAM,
    SpoutRef,
    batch_id,
)

log = logging.getLogger("squall.trident")

BATCH_EMIT_INTERVAL_KEY = "topology.trident.batch.emit.interval.millis"
DEFAULT_BATCH_EMIT_INTERVAL_MS = 500
_LIFE_SPAN = 1 << 20  # attempts per coordinator life before the counter reaches the next life


class MasterBatchCoordinator(Spout):
    """Starts, commits and replays the batches of one batch group (see the module docstring).

    Args:
        group: the batch group number (for names).
        spouts: the group's spouts (asked ``is_ready``).
        meta: the metadata backend (where the committed txid lives).
        meta_table: the table for this group's coordinator state.
    """

    outputs = [
        Stream(["bid", "committed"], name=BATCH_STREAM),
        Stream(["bid"], name=COMMIT_STREAM),
        Stream(["bid"], name=SUCCESS_STREAM),
    ]

    def __init__(
        self, group: int, spouts: Sequence[SpoutRef], meta: Backend, meta_table: str
    ) -> None:
        super().__init__()
        self.group = group
        self.spouts = tuple(spouts)
        self.meta = meta
        self.meta_table = meta_table
        # txid -> [attempt, status]; status "processing" | "processed" | "committing"
        self.active: dict[int, list[Any]] = {}
        self.committed = 0
        self.max_pending = 1
        self.interval_secs = DEFAULT_BATCH_EMIT_INTERVAL_MS / 1000.0
        self.last_start = float("-inf")
        self.attempt = 0
        self.batches_started = 0
        self.commits = 0
        self.replays = 0
        self._store: Any = None
        # The engine's clock (context.now): simulated time drives the batches in tests.
        self._now_fn: Callable[[], float] = time.monotonic
        self._started: dict[int, float] = {}
        self.batch_latencies_ms: deque[float] = deque(maxlen=4096)

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        where = f"Trident coordinator {context.component_id!r}"
        ackers = conf.get(C.TOPOLOGY_ACKER_EXECUTORS)
        if ackers == 0:
            raise ValueError(
                f"{where}: Trident tracks batches with the acker, but "
                "topology.acker.executors is 0; leave it unset or make it >= 1"
            )
        pending = conf.get(C.TOPOLOGY_MAX_SPOUT_PENDING)
        self.max_pending = int(pending) if pending else 1
        interval = conf.get(BATCH_EMIT_INTERVAL_KEY, DEFAULT_BATCH_EMIT_INTERVAL_MS)
        if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 0:
            raise ValueError(f"{where}: {BATCH_EMIT_INTERVAL_KEY} must be >= 0, got {interval!r}")
        self.interval_secs = float(interval) / 1000.0
        self._now_fn = context.now
        self._store = self.meta.connect()
        currtx, lives = self._store.get_many(self.meta_table, ["currtx", "lives"])
        self.committed = int(currtx or 0)
        life = int(lives or 0) + 1
        self._store.write({self.meta_table: {"lives": life}})
        self.attempt = (life * _LIFE_SPAN) & 0xFFFFFFFF
        log.info(
            "%s: starting after committed txid %d (life %d, %d batch(es) in flight at most)",
            where,
            self.committed,
            life,
            self.max_pending,
        )

    def _now(self) -> float:
        return float(self._now_fn())

    def _start(self, txid: int) -> None:
        self._started.setdefault(txid, self._now())
        self.attempt = (self.attempt + 1) & 0xFFFFFFFF
        attempt = self.attempt
        self.active[txid] = [attempt, "processing"]
        # The committed txid goes along: an emitter that never saw the batch before this one
        # (it went to a process that died) can tell "not emitted yet" from "committed".
        self.emit(
            [batch_id(txid, attempt), self.committed],
            tup_id=("b", txid, attempt),
            stream=BATCH_STREAM,
        )

    def next_tuple(self) -> None:
        if len(self.active) >= self.max_pending:
            return
        now = self._now()
        if now - self.last_start < self.interval_secs:
            return
        txid = max(self.active) + 1 if self.active else self.committed + 1
        for ref in self.spouts:
            if not ref.spout.is_ready(txid):
                return
        self.last_start = now
        self.batches_started += 1
        self._start(txid)

    def ack(self, tup_id: Any) -> None:
        phase, txid, attempt = tup_id
        entry = self.active.get(txid)
        if entry is None or entry[0] != attempt:
            return  # an attempt that was replaced already
        if phase == "b":
            entry[1] = "processed"
        else:
            self.committed = txid
            # Recorded before anything else happens: a restart continues after it.
            self._store.write({self.meta_table: {"currtx": txid}})
            del self.active[txid]
            self.commits += 1
            # Batch latency: from the first start of the batch to its commit (replays included).
            latency_ms = (self._now() - self._started.pop(txid, self._now())) * 1000.0
            self.batch_latencies_ms.append(latency_ms)
            self.report_metric("batch-latency-ms", round(latency_ms, 3))
            self.emit([batch_id(txid, attempt)], stream=SUCCESS_STREAM)
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        txid = self.committed + 1
        entry = self.active.get(txid)
        if entry is not None and entry[1] == "processed":
            entry[1] = "committing"
            attempt = entry[0]
            self.emit([batch_id(txid, attempt)], tup_id=("c", txid, attempt), stream=COMMIT_STREAM)

    def fail(self, tup_id: Any) -> None:
        _phase, txid, attempt = tup_id
        entry = self.active.get(txid)
        if entry is None or entry[0] != attempt:
            return
        # This batch and every later one start again, in txid order.
        for t in sorted(k for k in self.active if k >= txid):
            self.replays += 1
            self._start(t)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


class DRPCBatchSpout(DRPCSpout):
    """A DRPC spout whose every request is one Trident batch (Storm's batch-per-tuple spout).

    Emits ``[bid, args]`` on ``$batch`` where ``bid`` is the request's return-info;
    a failed batch fails the request, as with the plain DRPC spout.
    """

    outputs = [Stream(["bid", "args"], name=BATCH_STREAM)]  # type: ignore[list-item]

    def emit(
        self,
        tup: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        args, info = tup[0], tup[1]
        return self._collector.emit(  # type: ignore[no-any-return]
            [info, args], tup_id=tup_id, stream=BATCH_STREAM, need_task_ids=need_task_ids
        )


__all__ = [
    "BATCH_EMIT_INTERVAL_KEY",
    "DRPCBatchSpout",
    "MasterBatchCoordinator",
]
