"""``TridentBolt``: runs one compiled stage, batch by batch.

Per batch and task the bolt keeps a record: rows received, markers received,
what it sent each downstream task, and the per-batch state of its
aggregations. Rows go through the stage's operations as they arrive (each,
filter, map... are applied at once; aggregations, joins and state queries
collect them). When the batch is complete (a marker from every upstream task,
and as many rows as the markers announced) the collecting operations finish,
their output flows on, and the bolt sends a marker to every downstream task.

Acking keeps Trident's guarantees on top of the acker: rows are anchored to the
row they came from; everything sent when a batch finishes is anchored to the
last marker, which is acked only after that (earlier markers are acked as they
arrive: one held edge keeps the batch's tree open). A batch's tree therefore
completes only when every task finished it. Operations that write state
(``persistent_aggregate``, ``partition_persist``) keep their batch until the
coordinator's ``$commit`` for it arrives (in txid order), write, and only then
ack the commit tuple. A commit for a batch this task does not hold (it
restarted since) fails, so the batch is replayed rather than lost.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from squall.api.component import Bolt
from squall.api.context import TopologyContext
from squall.api.errors import FailedError
from squall.api.tuple import Tuple
from squall.runtime.grouper import stable_hash
from squall.trident import operations as ops
from squall.trident.plan import (
    ALL,
    BATCH,
    COMMIT,
    DATA,
    FIELDS,
    RETURN_STREAM,
    SHUFFLE,
    SUCCESS,
    ProcSpec,
    StagePlan,
    attempt_of,
    txid_of,
)
from squall.trident.spouts import BatchSpout, OpaqueSpout, TransactionalSpout

log = logging.getLogger("squall.trident")

_MISSING = object()


class BatchRecord:
    """What one task knows about one batch."""

    __slots__ = (
        "bid",
        "done",
        "expected_rows",
        "failed",
        "group",
        "markers",
        "received",
        "sent",
        "state",
    )

    def __init__(self, bid: Any, group: int) -> None:
        self.bid = bid
        self.group = group
        self.markers = 0
        self.received = 0
        self.expected_rows = 0
        # output index -> target task -> rows sent there in this batch
        self.sent: dict[int, dict[int, int]] = {}
        # operation index -> its per-batch state
        self.state: dict[int, Any] = {}
        self.failed = False
        self.done = False

    @property
    def txid(self) -> int | None:
        return txid_of(self.bid) if isinstance(self.bid, int) else None


def _getter(idx: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """row -> the values at ``idx`` as a tuple."""
    if len(idx) == 1:
        i = idx[0]
        return lambda row: (row[i],)
    if not idx:
        return lambda row: ()
    ix = tuple(idx)
    return lambda row: tuple(row[i] for i in ix)


class Proc:
    """One operation of a stage at run time."""

    finishing = False
    committing = False

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        self.spec = spec
        self.name = spec.name
        self.bolt = bolt
        self.children: list[Proc] = []
        self.index = 0

    def open(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        pass

    def ready(self) -> None:
        """Called once the operations after this one are known (and ready themselves)."""

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def emit(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        for c in self.children:
            c.push(rec, row)

    def finish(self, rec: BatchRecord) -> None:
        pass

    def commit(self, rec: BatchRecord) -> None:
        pass

    def close(self) -> None:
        pass


class _UserOp(Proc):
    """Calls ``prepare``/``cleanup`` on the user's operation object, if it has them."""

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.op: Any = spec.params.get("op")
        self.get = _getter(spec.params.get("in_idx", ()))
        self.fields: tuple[str, ...] = tuple(spec.params.get("in_fields", ()))

    def open(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        prepare = getattr(self.op, "prepare", None)
        if isinstance(self.op, ops.Operation) and callable(prepare):
            prepare(conf, context)

    def close(self) -> None:
        cleanup = getattr(self.op, "cleanup", None)
        if isinstance(self.op, ops.Operation) and callable(cleanup):
            cleanup()


class EachProc(_UserOp):
    """``each(inputs, function, fields)``: appends the function's output to the row."""

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.width = int(spec.params["width"])
        self.fn = ops.as_function(self.op, self.width, self.name, self.fields)

    def ready(self) -> None:
        # The common case, a plain function with one output field feeding one operation,
        # runs without the general adapter (this is the per-word path of a word count).
        if self.width == 1 and len(self.children) == 1 and not isinstance(self.op, ops.Function):
            self.push = self._push_plain_1  # type: ignore[method-assign]

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        children = self.children
        for out in self.fn(self.get(row)):
            new = row + out
            for c in children:
                c.push(rec, new)

    def _push_plain_1(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        result = self.op(*self.get(row))
        if result is None:
            return
        if type(result) is str or not isinstance(result, Iterable):
            raise TypeError(
                f"{self.name}: a function returns an iterable of rows (or None), got {result!r}"
            )
        nxt = self.children[0].push
        for r in result:
            if type(r) is str or not isinstance(r, list | tuple):
                nxt(rec, (*row, r))
            else:
                nxt(rec, row + ops._row(r[0] if len(r) == 1 else r, 1, self.name))


class FilterProc(_UserOp):
    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.keep = ops.as_filter(self.op, self.name, self.fields)

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        if self.keep(self.get(row)):
            for c in self.children:
                c.push(rec, row)


class MapProc(_UserOp):
    """``map``: replaces the row with the function's one output row."""

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.fn = ops.as_map(self.op, int(spec.params["width"]), self.name, self.fields)

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        new = self.fn(self.get(row))
        for c in self.children:
            c.push(rec, new)


class FlatMapProc(_UserOp):
    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.fn = ops.as_flat_map(self.op, int(spec.params["width"]), self.name, self.fields)

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        children = self.children
        for new in self.fn(self.get(row)):
            for c in children:
                c.push(rec, new)


class PeekProc(_UserOp):
    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        op = self.op
        self.fn: Callable[[tuple[Any, ...]], Any] = lambda inputs: op(*inputs)

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        self.fn(self.get(row))
        for c in self.children:
            c.push(rec, row)


class ProjectProc(Proc):
    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.get = _getter(spec.params["in_idx"])

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        new = self.get(row)
        for c in self.children:
            c.push(rec, new)


class AggProc(_UserOp):
    """Per-batch aggregation, grouped or not.

    Modes: ``full`` (aggregate input tuples), ``partial`` (the same, before a
    repartition: a combiner's partial result), ``merge`` (combine partial results,
    the last value of each row).
    """

    finishing = True

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        p = spec.params
        self.agg: Any = self.op
        self.mode: str = p["mode"]
        self.grouped = p["group_idx"] is not None
        self.key = _getter(p["group_idx"] or ())
        self.value_index = int(p.get("value_index", -1))
        self.raw = bool(getattr(self.agg, "_raw_inputs", False)) or isinstance(
            self.agg, ops.Count | ops.Sum | ops._CallableCombiner | ops._ByField
        )
        self.make = ops.trident_tuple_class(self.fields, self.name).make
        self.combiner = isinstance(self.agg, ops.CombinerAggregator)
        self.reducer = isinstance(self.agg, ops.ReducerAggregator)
        self.count = isinstance(self.agg, ops.Count) and self.mode != "merge"

    def _input(self, row: tuple[Any, ...]) -> Any:
        inputs = self.get(row)
        return inputs if self.raw else self.make(inputs)

    def ready(self) -> None:
        p = self.spec.params
        group_idx: tuple[int, ...] = tuple(p["group_idx"] or ())
        if self.count and len(group_idx) == 1:
            self._gi = group_idx[0]
            self.push = self._push_count_1  # type: ignore[method-assign]

    def _push_count_1(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        # Count grouped by one field: the per-word path of a word count.
        st = rec.state.get(self.index)
        if st is None:
            st = rec.state[self.index] = {}
        key = (row[self._gi],)
        st[key] = st.get(key, 0) + 1

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        st = rec.state.get(self.index, _MISSING)
        agg = self.agg
        if st is _MISSING:
            st = rec.state[self.index] = self._new_state(rec)
        if self.grouped:
            key = self.key(row)
            if self.count:
                st[key] = st.get(key, 0) + 1
                return
            if self.combiner:
                v = row[self.value_index] if self.mode == "merge" else agg.init(self._input(row))
                old = st.get(key, _MISSING)
                st[key] = v if old is _MISSING else agg.combine(old, v)
            elif self.reducer:
                old = st.get(key, _MISSING)
                st[key] = agg.reduce(agg.init() if old is _MISSING else old, self._input(row))
            else:
                entry = st.get(key)
                if entry is None:
                    c = ops.Collector()
                    entry = st[key] = [agg.init(rec.bid, c), c]
                agg.aggregate(entry[0], self._input(row), entry[1])
            return
        if self.combiner:
            v = row[self.value_index] if self.mode == "merge" else agg.init(self._input(row))
            st[0] = agg.combine(st[0], v)
        elif self.reducer:
            st[0] = agg.reduce(st[0], self._input(row))
        else:
            agg.aggregate(st[0], self._input(row), st[1])

    def _new_state(self, rec: BatchRecord) -> Any:
        if self.grouped:
            return {}
        if self.combiner:
            return [self.agg.zero()]
        if self.reducer:
            return [self.agg.init()]
        c = ops.Collector()
        return [self.agg.init(rec.bid, c), c]

    def finish(self, rec: BatchRecord) -> None:
        st = rec.state.pop(self.index, _MISSING)
        if st is _MISSING:
            if self.grouped:
                return
            st = self._new_state(rec)
        emit = self.emit
        if self.grouped:
            if self.combiner or self.reducer:
                for key, v in st.items():
                    emit(rec, (*key, v))
            else:
                for key, (state, c) in st.items():
                    self.agg.complete(state, c)
                    for out in c.rows:
                        emit(rec, (*key, *out))
            return
        if self.combiner or self.reducer:
            emit(rec, (st[0],))
        else:
            self.agg.complete(st[0], st[1])
            for out in st[1].rows:
                emit(rec, tuple(out))


class PersistProc(_UserOp):
    """``persistent_aggregate`` / ``partition_persist``: writes the batch at its commit."""

    committing = True

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        p = spec.params
        self.factory = p["factory"]
        self.table: str = p["table"]
        self.update_kind: str = p["update"]  # combine | reduce | update
        self.key = _getter(p.get("group_idx") or ())
        self.value_index = int(p.get("value_index", -1))
        self.make = ops.trident_tuple_class(self.fields, self.name).make
        self.state: Any = None
        self.raw = isinstance(self.op, ops.Count | ops.Sum | ops._CallableCombiner | ops._ByField)

    def open(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        super().open(conf, context)
        table = self.table.replace("{topology}", context.topology_name)
        self.state = self.factory.make_state(table)

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        st: Any = rec.state.get(self.index)
        if st is None:
            st = rec.state[self.index] = {} if self.update_kind != "update" else []
        if self.update_kind == "combine":
            key = self.key(row)
            v = row[self.value_index]
            old = st.get(key, _MISSING)
            st[key] = v if old is _MISSING else self.op.combine(old, v)
        elif self.update_kind == "reduce":
            inputs = self.get(row)
            st.setdefault(self.key(row), []).append(inputs if self.raw else self.make(inputs))
        else:
            st.append(self.make(self.get(row)))

    def commit(self, rec: BatchRecord) -> None:
        st = rec.state.pop(self.index, None)
        txid = rec.txid
        assert txid is not None
        state = self.state
        if self.update_kind == "update":
            state.begin_commit(txid)
            c = ops.Collector()
            up = self.op
            if isinstance(up, ops.StateUpdater):
                up.update_state(state, st or [], c)
            else:
                up(state, st or [])
            state.commit(txid)
            return
        if not st:
            return
        keys = list(st)
        op = self.op
        if self.update_kind == "combine":
            combine = op.combine

            def combiner(v: Any) -> Callable[[Any], Any]:
                return lambda old: v if old is None else combine(old, v)

            updaters = [combiner(st[k]) for k in keys]
        else:
            reduce, init = op.reduce, op.init

            def reducer(tuples: list[Any]) -> Callable[[Any], Any]:
                def run(old: Any) -> Any:
                    acc = init() if old is None else old
                    for t in tuples:
                        acc = reduce(acc, t)
                    return acc

                return run

            updaters = [reducer(st[k]) for k in keys]
        state.begin_commit(txid)
        state.multi_update(keys, updaters)
        state.commit(txid)

    def close(self) -> None:
        super().close()
        store = getattr(self.state, "store", None)
        if store is not None:
            store.close()


class QueryProc(_UserOp):
    """``state_query``: collects the batch, reads the state once, appends the results."""

    finishing = True

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        p = spec.params
        self.factory = p["factory"]
        self.table: str = p["table"]
        self.width = int(p["width"])
        self.make = ops.trident_tuple_class(self.fields, self.name).make
        self.state: Any = None

    def open(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        super().open(conf, context)
        table = self.table.replace("{topology}", context.topology_name)
        self.state = self.factory.make_state(table)

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        rec.state.setdefault(self.index, []).append(row)

    def finish(self, rec: BatchRecord) -> None:
        rows = rec.state.pop(self.index, None)
        if not rows:
            return
        tuples = [self.make(self.get(r)) for r in rows]
        results = self.op.batch_retrieve(self.state, tuples)
        if len(results) != len(tuples):
            raise ValueError(
                f"{self.name}: batch_retrieve returned {len(results)} results "
                f"for {len(tuples)} tuples"
            )
        for row, t, res in zip(rows, tuples, results, strict=True):
            c = ops.Collector()
            self.op.execute(t, res, c)
            for out in c.rows:
                self.emit(rec, row + ops._row(out, self.width, self.name))

    def close(self) -> None:
        super().close()
        store = getattr(self.state, "store", None)
        if store is not None:
            store.close()


class JoinSideProc(Proc):
    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        self.children[0].push_side(rec, int(self.spec.params["side"]), row)  # type: ignore[attr-defined]


class JoinProc(Proc):
    """An inner join of two or more streams within a batch, on key fields."""

    finishing = True

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        p = spec.params
        self.keys = [_getter(k) for k in p["key_idx"]]
        self.others = [_getter(o) for o in p["other_idx"]]

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        raise RuntimeError(f"{self.name}: rows reach a join through its sides")

    def push_side(self, rec: BatchRecord, side: int, row: tuple[Any, ...]) -> None:
        sides = rec.state.get(self.index)
        if sides is None:
            sides = rec.state[self.index] = [{} for _ in self.keys]
        sides[side].setdefault(self.keys[side](row), []).append(self.others[side](row))

    def finish(self, rec: BatchRecord) -> None:
        sides = rec.state.pop(self.index, None)
        if not sides:
            return
        first = sides[0]
        for key, rows0 in first.items():
            combos: list[tuple[Any, ...]] = [key + r for r in rows0]
            for other in sides[1:]:
                rows = other.get(key)
                if not rows:
                    combos = []
                    break
                combos = [c + r for c in combos for r in rows]
            for out in combos:
                self.emit(rec, out)


class OutputProc(Proc):
    """Sends rows to the next stage, routed by hand (its streams are direct)."""

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        self.out = int(spec.params["output"])

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        self.bolt.send(rec, self.out, row)


class DrpcArgsProc(Proc):
    """The first operation of a DRPC stream: one task emits the request's ``args``."""

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        for c in self.children:
            c.push(rec, row)


class DrpcReturnProc(Proc):
    """Collects a DRPC batch's final rows; sends their JSON to the request's caller."""

    finishing = True

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        rec.state.setdefault(self.index, []).append(list(row))

    def finish(self, rec: BatchRecord) -> None:
        rows = rec.state.pop(self.index, [])
        self.bolt.emit(
            [json.dumps(rows, default=str), rec.bid],
            stream=RETURN_STREAM,
            anchors=self.bolt.anchors,
        )


class SpoutProc(Proc):
    """Emits a spout's part of a batch (the emitter half of a Trident spout).

    Metadata keys (table ``trident:<stream id>``): ``<partition>:tx:<txid>`` for a
    transactional spout (written before the batch is emitted), and
    ``<partition>:c:<txid>`` for an opaque spout (written at commit).
    """

    committing = True

    def __init__(self, spec: ProcSpec, bolt: TridentBolt) -> None:
        super().__init__(spec, bolt)
        p = spec.params
        self.spout = p["spout"]
        self.spout_id: str = p["spout_id"]
        self.width = len(p["fields"])
        self.table = f"trident:{self.spout_id}"
        self.mine: list[str] = []
        self.store: Any = None
        # txid -> (attempt bid, {partition: meta}) of the batches emitted in this life
        self.cache: dict[int, tuple[int, dict[str, Any]]] = {}

    def open(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        self.spout.open(conf, context)
        parts = [str(p) for p in self.spout.partitions()]
        index = context.task_index
        n = len(context.get_component_tasks(context.component_id))
        self.mine = [p for i, p in enumerate(parts) if i % n == index]
        if self.bolt.plan.meta is not None:
            self.store = self.bolt.plan.meta.connect()

    def push(self, rec: BatchRecord, row: tuple[Any, ...]) -> None:
        raise RuntimeError(f"{self.name}: a spout has no input")

    def _rows(self, rows: Any, rec: BatchRecord) -> None:
        width = self.width
        emit = self.emit
        for r in rows:
            row = tuple(r)
            if len(row) != width:
                raise ValueError(
                    f"Trident spout {self.spout_id!r}: a row has {len(row)} values for "
                    f"{width} field(s): {row!r}"
                )
            emit(rec, row)

    def emit_batch(self, rec: BatchRecord, committed: int) -> None:
        """Emit this task's part of batch ``rec``; ``committed``: the last committed txid."""
        txid = rec.txid
        assert txid is not None
        spout = self.spout
        if isinstance(spout, BatchSpout):
            self._rows(spout.emit_batch(txid), rec)
            return
        store = self.store
        table = self.table
        metas: dict[str, Any] = {}
        if isinstance(spout, TransactionalSpout):
            keys = [f"{p}:tx:{txid}" for p in self.mine]
            stored = store.get_many(table, keys) if keys else []
            new: dict[str, Any] = {}
            for p, key, meta in zip(self.mine, keys, stored, strict=True):
                if meta is None:
                    meta = spout.new_batch(p, self._previous(p, txid, "tx", committed))
                    new[key] = meta
                metas[p] = meta
            if new:
                # Saved before a row leaves: a replay of this txid is this very batch.
                store.write({table: new})
            self.cache[txid] = (rec.bid, metas)
            for p in self.mine:
                self._rows(spout.read_batch(p, metas[p]), rec)
            return
        if isinstance(spout, OpaqueSpout):
            for p in self.mine:
                meta, rows = spout.emit_batch(p, self._previous(p, txid, "c", committed))
                metas[p] = meta
                self._rows(rows, rec)
            self.cache[txid] = (rec.bid, metas)
            return
        raise TypeError(f"{self.name}: unsupported spout {spout!r}")

    def _previous(self, partition: str, txid: int, kind: str, committed: int) -> Any:
        """Where batch ``txid`` starts: the meta of ``txid - 1`` (None: the beginning).

        Raises:
            FailedError: batch ``txid - 1`` is neither committed nor known here: it
                went to a process that died before emitting it. Starting from the
                beginning would count everything again; failing makes the coordinator
                replay the batches in order.
        """
        if txid <= 1:
            return None
        cached = self.cache.get(txid - 1)
        if cached is not None and partition in cached[1]:
            return cached[1][partition]
        meta = self.store.get_many(self.table, [f"{partition}:{kind}:{txid - 1}"])[0]
        if meta is None and txid - 1 > committed:
            raise FailedError(
                f"{self.name}: batch {txid} arrived before batch {txid - 1} was emitted here "
                f"(partition {partition!r}); the batches are replayed in order"
            )
        # None with txid - 1 committed: a partition without history yet starts at the beginning.
        return meta

    def commit(self, rec: BatchRecord) -> None:
        txid = rec.txid
        assert txid is not None
        if not isinstance(self.spout, OpaqueSpout):
            return
        cached = self.cache.get(txid)
        if cached is None or cached[0] != rec.bid:
            raise FailedError(
                f"{self.name}: commit of batch {txid} (attempt {attempt_of(rec.bid)}) that "
                "this task did not emit"
            )
        puts = {f"{p}:c:{txid}": m for p, m in cached[1].items()}
        dels = [f"{p}:c:{txid - 2}" for p in cached[1]]
        self.store.write({self.table: puts}, {self.table: dels})

    def success(self, txid: int) -> None:
        for t in [t for t in self.cache if t < txid]:
            del self.cache[t]
        spout = self.spout
        if isinstance(spout, BatchSpout):
            spout.ack(txid)
        elif isinstance(spout, TransactionalSpout) and txid > 1 and self.mine:
            self.store.write({}, {self.table: [f"{p}:tx:{txid - 1}" for p in self.mine]})

    def close(self) -> None:
        try:
            self.spout.close()
        finally:
            if self.store is not None:
                self.store.close()


_PROCS: dict[str, type[Proc]] = {
    "each": EachProc,
    "filter": FilterProc,
    "map": MapProc,
    "flat_map": FlatMapProc,
    "peek": PeekProc,
    "project": ProjectProc,
    "agg": AggProc,
    "persist": PersistProc,
    "query": QueryProc,
    "join_side": JoinSideProc,
    "join": JoinProc,
    "output": OutputProc,
    "drpc_args": DrpcArgsProc,
    "drpc_return": DrpcReturnProc,
    "spout": SpoutProc,
}


class _Route:
    """An output stream at run time: its target tasks and how to pick one."""

    __slots__ = ("group", "key", "n", "next", "routing", "stream", "tasks")

    def __init__(self, stream: str, routing: str, key: tuple[int, ...], tasks: list[int]) -> None:
        self.stream = stream
        self.routing = routing
        self.key = _getter(key)
        self.tasks = tasks
        self.n = len(tasks)
        self.next = 0
        self.group = 0


class TridentBolt(Bolt):
    """Runs one compiled Trident stage (see the module docstring)."""

    auto_ack = False

    def __init__(self, plan: StagePlan) -> None:
        super().__init__()
        self.plan = plan
        self.procs: list[Proc] = []
        self.anchors: list[Tuple] = []
        self.records: dict[Any, BatchRecord] = {}
        self.routes: list[_Route] = []
        # (source component, stream) -> (entry kind, group, [procs])
        self.entries: dict[tuple[str, str], tuple[str, int, list[Proc]]] = {}
        self.expected: dict[int, int] = {}
        self.finishers: dict[int, list[Proc]] = {}
        self.committers: dict[int, list[Proc]] = {}
        self.group_routes: dict[int, list[int]] = {}
        self.last_committed: dict[int, int] = {}
        self.committed_bids: deque[Any] = deque()
        self.task_index = 0
        self.n_tasks = 1
        self.batches_done = 0

    # -- set up -----------------------------------------------------------------------
    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        plan = self.plan
        self.task_index = context.task_index
        self.n_tasks = len(context.get_component_tasks(context.component_id))
        self.procs = [_PROCS[s.kind](s, self) for s in plan.procs]
        for i, (p, s) in enumerate(zip(self.procs, plan.procs, strict=True)):
            p.index = i
            p.children = [self.procs[c] for c in s.children]
            if p.finishing:
                self.finishers.setdefault(s.group, []).append(p)
            if p.committing:
                self.committers.setdefault(s.group, []).append(p)
        for i, o in enumerate(plan.outputs):
            tasks = sorted(context.get_component_tasks(o.target))
            if not tasks:
                raise ValueError(f"Trident stage {plan.name!r}: no tasks for {o.target!r}")
            route = _Route(o.stream, o.routing, o.key, tasks)
            route.group = o.group
            # Start shuffles at different tasks so that senders spread their rows.
            route.next = self.task_index % len(tasks)
            self.routes.append(route)
            self.group_routes.setdefault(o.group, []).append(i)
        for e in plan.entries:
            self.entries[(e.source, e.stream)] = (e.kind, e.group, [self.procs[i] for i in e.procs])
            if e.kind == DATA:
                n = len(context.get_component_tasks(e.source))
                self.expected[e.group] = self.expected.get(e.group, 0) + n
        for p in reversed(self.procs):
            p.ready()
        for p in self.procs:
            p.open(conf, context)

    def cleanup(self) -> None:
        for p in self.procs:
            try:
                p.close()
            except Exception:
                log.exception("Trident stage %r: closing %s failed", self.plan.name, p.name)

    # -- sending ------------------------------------------------------------------------
    def send(self, rec: BatchRecord, out: int, row: tuple[Any, ...]) -> None:
        route = self.routes[out]
        routing = route.routing
        sent = rec.sent.get(out)
        if sent is None:
            sent = rec.sent[out] = {}
        if routing == ALL:
            for t in route.tasks:
                self.emit([rec.bid, row], stream=route.stream, direct_task=t, anchors=self.anchors)
                sent[t] = sent.get(t, 0) + 1
            return
        if routing == FIELDS:
            t = route.tasks[stable_hash(route.key(row)) % route.n]
        elif routing == SHUFFLE:
            i = route.next
            route.next = i + 1 if i + 1 < route.n else 0
            t = route.tasks[i]
        else:  # GLOBAL: the lowest task, as Storm's global grouping
            t = route.tasks[0]
        self.emit([rec.bid, row], stream=route.stream, direct_task=t, anchors=self.anchors)
        sent[t] = sent.get(t, 0) + 1

    def _send_markers(self, rec: BatchRecord) -> None:
        for out in self.group_routes.get(rec.group, ()):
            route = self.routes[out]
            sent = rec.sent.get(out, {})
            for t in route.tasks:
                self.emit(
                    [rec.bid, sent.get(t, 0)],
                    stream=route.stream,
                    direct_task=t,
                    anchors=self.anchors,
                )

    # -- receiving ----------------------------------------------------------------------
    def _record(self, bid: Any, group: int) -> BatchRecord | None:
        rec = self.records.get(bid)
        if rec is not None:
            return rec
        if isinstance(bid, int):
            if bid in self.committed_bids:
                return None  # a late tuple of a batch this task committed already
            txid = txid_of(bid)
            # A new attempt of a txid replaces every older attempt held here.
            for other in [
                b
                for b, r in self.records.items()
                if r.group == group and isinstance(b, int) and txid_of(b) == txid
            ]:
                del self.records[other]
        rec = self.records[bid] = BatchRecord(bid, group)
        return rec

    def process(self, tup: Tuple) -> None:
        vals = tup.values
        entry = self.entries.get((tup.component, tup.stream))
        if entry is None:
            raise ValueError(
                f"Trident stage {self.plan.name!r}: unexpected input from "
                f"{tup.component}:{tup.stream}"
            )
        kind, group, procs = entry
        bid = vals[0]
        if kind == DATA:
            v = vals[1]
            rec = self._record(bid, group)
            if rec is None or rec.failed:
                self.ack(tup)
                return
            if type(v) is int:
                self._marker(tup, rec, v)
                return
            rec.received += 1
            self.anchors = [tup]
            row = v if type(v) is tuple else tuple(v)
            try:
                for p in procs:
                    p.push(rec, row)
            except Exception as e:
                self._fail_batch(tup, rec, e)
                return
            self.ack(tup)
        elif kind == BATCH:
            rec = self._record(bid, group)
            if rec is None:
                self.ack(tup)
                return
            self.anchors = [tup]
            try:
                for p in procs:
                    if isinstance(p, SpoutProc):
                        p.emit_batch(rec, int(vals[1]))
                    elif p.spec.params.get("task") is None or self._drpc_here(rec):
                        p.push(rec, (vals[1],))
                self._finish(rec)
            except Exception as e:
                self._fail_batch(tup, rec, e)
                return
            self.ack(tup)
        elif kind == COMMIT:
            self._commit(tup, bid, group)
        elif kind == SUCCESS:
            txid = txid_of(bid)
            for p in procs:
                if isinstance(p, SpoutProc):
                    p.success(txid)
            self.ack(tup)

    def _drpc_here(self, rec: BatchRecord) -> bool:
        """Whether this task emits a DRPC request's args (exactly one task of the stage does)."""
        return stable_hash([rec.bid]) % self.n_tasks == self.task_index

    def _marker(self, tup: Tuple, rec: BatchRecord, count: int) -> None:
        rec.markers += 1
        rec.expected_rows += count
        expected = self.expected.get(rec.group, 0)
        if rec.markers < expected or rec.received < rec.expected_rows:
            self.ack(tup)  # one held edge (the last marker) keeps the batch open
            return
        if rec.received > rec.expected_rows:
            self._fail_batch(
                tup,
                rec,
                FailedError(
                    f"batch {rec.bid}: {rec.received} rows for {rec.expected_rows} announced"
                ),
            )
            return
        self.anchors = [tup]
        try:
            self._finish(rec)
        except Exception as e:
            self._fail_batch(tup, rec, e)
            return
        self.ack(tup)

    def _finish(self, rec: BatchRecord) -> None:
        for p in self.finishers.get(rec.group, ()):
            p.finish(rec)
        self._send_markers(rec)
        self.batches_done += 1
        if rec.group in self.plan.commit_groups:
            rec.done = True  # kept for the commit
        else:
            self.records.pop(rec.bid, None)

    def _commit(self, tup: Tuple, bid: Any, group: int) -> None:
        rec = self.records.get(bid)
        if rec is None or not rec.done or rec.failed:
            # Not held here (this task restarted, or the batch failed): replay it.
            self.fail(tup)
            return
        self.anchors = [tup]
        try:
            for p in self.committers.get(group, ()):
                p.commit(rec)
        except Exception as e:
            self._fail_batch(tup, rec, e)
            return
        txid = txid_of(bid)
        self.last_committed[group] = txid
        # A committed batch may still be replayed (another task's commit failed): only
        # this very attempt is done. Remembered for a while, to drop its late tuples.
        self.committed_bids.append(bid)
        if len(self.committed_bids) > 64:
            self.committed_bids.popleft()
        for b in [
            b
            for b, r in self.records.items()
            if r.group == group and isinstance(b, int) and txid_of(b) <= txid
        ]:
            del self.records[b]
        self.ack(tup)

    def _fail_batch(self, tup: Tuple, rec: BatchRecord, error: Exception) -> None:
        rec.failed = True
        if not isinstance(error, FailedError):
            self.report_error(error)
        else:
            self.log(f"Trident stage {self.plan.name!r}: {error}", level="debug")
        self.fail(tup)


__all__ = ["BatchRecord", "TridentBolt"]
