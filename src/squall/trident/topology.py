"""The Trident API: streams of batches, with exactly-once state (Storm's Trident, Pythonic).

>>> from squall.trident import TridentTopology, FixedBatchSpout, Count
>>> from squall.state import memory_map_state
>>> spout = FixedBatchSpout(["sentence"], 3, ["the cow"], ["the man"], cycle=True)
>>> topology = TridentTopology()
>>> counts = (
...     topology.new_stream("spout1", spout)
...     .each(["sentence"], str.split, ["word"])
...     .group_by(["word"])
...     .persistent_aggregate(memory_map_state(), Count(), ["count"], state_id="counts")
... )
>>> definition = topology.build("wordcount")
>>> sorted(definition.components)
['$mastercoord-bg0', 'b-0', 'spout1']

A stream is processed as a sequence of small batches, each with a transaction
id (txid). Operations are either partition-local (``each``, ``map``,
``flat_map``, ``filter``, ``peek``, ``project``, ``partition_aggregate``,
``state_query``, ``partition_persist``), repartitioning (``shuffle``,
``partition_by``, ``broadcast``, ``global_``, ``batch_global``), or aggregating
(``aggregate``, ``group_by(...).aggregate``, ``persistent_aggregate``,
``min_by``/``max_by``). ``build()`` compiles the topology into ordinary Squall
components: consecutive partition-local operations run fused in one bolt, and
combiner aggregators aggregate each partition before the repartition.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from squall.api.component import ComponentSpec
from squall.api.errors import InvalidTopologyError
from squall.api.grouping import Grouping
from squall.api.stream import Stream as OutStream
from squall.api.topology import GlobalStreamId, TopologyDef, build_definition
from squall.drpc.return_results import ReturnResults
from squall.state.backend import Backend, MemoryBackend
from squall.state.values import NON_TRANSACTIONAL, OPAQUE, TRANSACTIONAL
from squall.trident import operations as ops
from squall.trident.bolt import TridentBolt
from squall.trident.coordinator import DRPCBatchSpout, MasterBatchCoordinator
from squall.trident.plan import (
    ALL,
    BATCH,
    BATCH_STREAM,
    COMMIT,
    COMMIT_STREAM,
    DATA,
    DATA_FIELDS,
    FIELDS,
    GLOBAL,
    RETURN_STREAM,
    SHUFFLE,
    SUCCESS,
    SUCCESS_STREAM,
    EntrySpec,
    OutputSpec,
    ProcSpec,
    SpoutRef,
    StagePlan,
)
from squall.trident.spouts import BatchSpout, OpaqueSpout, TransactionalSpout, spout_kind

PARTIAL_FIELD = "$partial"


@dataclass(eq=False)
class Node:
    """One operation of the logical Trident graph."""

    id: int
    kind: str
    parents: list[Node]
    fields: tuple[str, ...]
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    par: int | None = None
    children: list[Node] = field(default_factory=list)
    # Filled in by the compiler.
    group: int = -1
    stage: _Stage | None = None


def _field_list(fields: Any, where: str) -> tuple[str, ...]:
    if isinstance(fields, str):
        raise InvalidTopologyError(
            f"{where}: fields must be a list of names, not the string {fields!r} "
            f"(write [{fields!r}])"
        )
    try:
        out = tuple(fields)
    except TypeError:
        raise InvalidTopologyError(
            f"{where}: fields must be a list of names, got {fields!r}"
        ) from None
    for f in out:
        if not isinstance(f, str) or not f:
            raise InvalidTopologyError(f"{where}: field names must be non-empty strings, got {f!r}")
    if len(set(out)) != len(out):
        raise InvalidTopologyError(f"{where}: duplicate field names in {list(out)}")
    return out


def _is_fields(obj: Any) -> bool:
    return isinstance(obj, list | tuple) and all(isinstance(f, str) for f in obj)


def _unpack_row(row: Any) -> Any:
    """``min_by``/``max_by``: the kept tuple becomes the stream's row again."""
    return row


class TridentState:
    """What ``persistent_aggregate`` returns: a state to query with ``state_query``."""

    def __init__(
        self,
        topology: TridentTopology,
        node: Node | None,
        factory: Any,
        table: str,
        state_id: str,
        grouped: bool,
    ) -> None:
        self.topology = topology
        self.node = node
        self.factory = factory
        self.table = table
        self.state_id = state_id
        self.grouped = grouped

    def __repr__(self) -> str:
        return f"<TridentState {self.state_id!r} table={self.table!r}>"

    def parallelism_hint(self, n: int) -> TridentState:
        """Keep this state in ``n`` partitions (tasks)."""
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise InvalidTopologyError(f"parallelism_hint: must be an int > 0, got {n!r}")
        if self.node is None:
            raise InvalidTopologyError(f"state {self.state_id!r} is static: it has no tasks")
        self.node.par = n
        return self


class Stream:
    """A stream of batches; every method returns a new stream (or state)."""

    def __init__(self, topology: TridentTopology, node: Node) -> None:
        self._topology = topology
        self._node = node

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields of this stream's tuples."""
        return self._node.fields

    def __repr__(self) -> str:
        return f"<Stream {self._node.name} fields={list(self.fields)}>"

    # -- helpers --------------------------------------------------------------------
    def _add(
        self,
        kind: str,
        fields: Sequence[str],
        name: str,
        parents: list[Node] | None = None,
        **params: Any,
    ) -> Stream:
        node = self._topology._new_node(kind, parents or [self._node], tuple(fields), name, params)
        return Stream(self._topology, node)

    def _indexes(self, fields: Sequence[str], where: str) -> tuple[int, ...]:
        have = self.fields
        missing = [f for f in fields if f not in have]
        if missing:
            raise InvalidTopologyError(
                f"{where}: field(s) {missing} are not in the stream, whose fields are {list(have)}"
            )
        return tuple(have.index(f) for f in fields)

    def _new_fields(self, fields: Sequence[str], where: str) -> tuple[str, ...]:
        out = _field_list(fields, where)
        clash = [f for f in out if f in self.fields]
        if clash:
            raise InvalidTopologyError(
                f"{where}: output field(s) {clash} are already in the stream {list(self.fields)}; "
                "pick new names (or project first)"
            )
        return out

    # -- partition-local operations ----------------------------------------------------
    def each(self, *args: Any) -> Stream:
        """``each(input_fields, function, function_fields)``: append the function's output.

        Also ``each(function, function_fields)`` (all fields in), and
        ``each(input_fields, filter)`` with a :class:`~squall.trident.Filter`.
        """
        if len(args) == 2 and _is_fields(args[0]) and isinstance(args[1], ops.Filter):
            return self.filter(args[0], args[1])
        if len(args) == 2:
            inputs, fn, out = self.fields, args[0], args[1]
        elif len(args) == 3:
            inputs, fn, out = args
        else:
            raise InvalidTopologyError(
                "each() takes (input_fields, function, function_fields) "
                "or (function, function_fields)"
            )
        where = f"each({ops.describe(fn)})"
        inputs = _field_list(inputs, where)
        fields = self._new_fields(out, where)
        if not isinstance(fn, ops.Function):
            ops._check_callable(fn, where)
        return self._add(
            "each",
            self.fields + fields,
            where,
            op=fn,
            in_idx=self._indexes(inputs, where),
            in_fields=inputs,
            width=len(fields),
        )

    def filter(self, *args: Any) -> Stream:
        """``filter(fn)`` on every field, or ``filter(input_fields, fn)``: keep where true."""
        if len(args) == 1:
            inputs, fn = self.fields, args[0]
        elif len(args) == 2:
            inputs, fn = args
        else:
            raise InvalidTopologyError("filter() takes (fn) or (input_fields, fn)")
        where = f"filter({ops.describe(fn)})"
        inputs = _field_list(inputs, where)
        if not isinstance(fn, ops.Filter):
            ops._check_callable(fn, where)
        return self._add(
            "filter",
            self.fields,
            where,
            op=fn,
            in_idx=self._indexes(inputs, where),
            in_fields=inputs,
        )

    def _mapping(self, kind: str, fn: Any, output_fields: Any, input_fields: Any) -> Stream:
        where = f"{kind}({ops.describe(fn)})"
        inputs = self.fields if input_fields is None else _field_list(input_fields, where)
        out = self.fields if output_fields is None else _field_list(output_fields, where)
        if not isinstance(fn, ops.MapFunction | ops.FlatMapFunction | ops.Function):
            ops._check_callable(fn, where)
        return self._add(
            kind,
            out,
            where,
            op=fn,
            in_idx=self._indexes(inputs, where),
            in_fields=inputs,
            width=len(out),
        )

    def map(
        self,
        fn: Any,
        output_fields: Sequence[str] | None = None,
        input_fields: Sequence[str] | None = None,
    ) -> Stream:
        """Replace each tuple by ``fn(*inputs)`` (one row; fields stay unless given)."""
        return self._mapping("map", fn, output_fields, input_fields)

    def flat_map(
        self,
        fn: Any,
        output_fields: Sequence[str] | None = None,
        input_fields: Sequence[str] | None = None,
    ) -> Stream:
        """Replace each tuple by the rows ``fn(*inputs)`` returns."""
        return self._mapping("flat_map", fn, output_fields, input_fields)

    def peek(self, fn: Any, input_fields: Sequence[str] | None = None) -> Stream:
        """Call ``fn(*inputs)`` on each tuple for its side effect; the tuple goes on."""
        where = f"peek({ops.describe(fn)})"
        ops._check_callable(fn, where)
        inputs = self.fields if input_fields is None else _field_list(input_fields, where)
        return self._add(
            "peek", self.fields, where, op=fn, in_idx=self._indexes(inputs, where), in_fields=inputs
        )

    def project(self, fields: Sequence[str]) -> Stream:
        """Keep only ``fields``, in that order."""
        where = "project"
        out = _field_list(fields, where)
        return self._add(
            "project", out, f"project({', '.join(out)})", in_idx=self._indexes(out, where)
        )

    def parallelism_hint(self, n: int) -> Stream:
        """Run the operations since the last repartition on ``n`` tasks."""
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise InvalidTopologyError(f"parallelism_hint: must be an int > 0, got {n!r}")
        self._node.par = n
        return self

    # -- repartitioning ---------------------------------------------------------------
    def _partition(self, routing: str, key: tuple[int, ...] = (), label: str = "") -> Stream:
        return self._add("partition", self.fields, label or routing, routing=routing, key=key)

    def shuffle(self) -> Stream:
        """Spread tuples evenly over the next operation's tasks."""
        return self._partition(SHUFFLE)

    def partition_by(self, fields: Sequence[str]) -> Stream:
        """Tuples with equal ``fields`` go to the same task."""
        f = _field_list(fields, "partition_by")
        return self._partition(
            FIELDS, self._indexes(f, "partition_by"), f"partition_by({', '.join(f)})"
        )

    def broadcast(self) -> Stream:
        """Every tuple goes to every task of the next operation."""
        return self._partition(ALL)

    def global_(self) -> Stream:
        """Every tuple goes to one task (Storm's ``global``)."""
        return self._partition(GLOBAL)

    def batch_global(self) -> Stream:
        """All tuples of a batch go to one task (one task for all batches here)."""
        return self._partition(GLOBAL, label="batch_global")

    # -- aggregation --------------------------------------------------------------------
    def _agg_args(
        self, args: tuple[Any, ...], what: str
    ) -> tuple[tuple[str, ...], Any, tuple[str, ...]]:
        if len(args) == 3:
            inputs, agg, out = args
        elif len(args) == 2:
            inputs, agg, out = self.fields, args[0], args[1]
        else:
            raise InvalidTopologyError(
                f"{what}() takes (input_fields, aggregator, function_fields) or "
                "(aggregator, function_fields)"
            )
        where = f"{what}({ops.describe(agg)})"
        inputs = _field_list(inputs, where)
        self._indexes(inputs, where)
        return inputs, ops.as_aggregator(agg, where), _field_list(out, where)

    def _agg(
        self,
        mode: str,
        agg: Any,
        inputs: tuple[str, ...],
        group: tuple[str, ...] | None,
        out: tuple[str, ...],
        where: str,
        value_index: int = -1,
    ) -> Stream:
        return self._add(
            "agg",
            out,
            where,
            op=agg,
            mode=mode,
            in_idx=self._indexes(inputs, where),
            in_fields=inputs,
            group_idx=None if group is None else self._indexes(group, where),
            value_index=value_index,
        )

    def partition_aggregate(self, *args: Any) -> Stream:
        """Aggregate each partition of each batch: ``(input_fields, aggregator, fields)``."""
        inputs, agg, out = self._agg_args(args, "partition_aggregate")
        return self._agg(
            "full", agg, inputs, None, out, f"partition_aggregate({type(agg).__name__})"
        )

    def aggregate(self, *args: Any) -> Stream:
        """Aggregate each whole batch (one result row per batch)."""
        inputs, agg, out = self._agg_args(args, "aggregate")
        where = f"aggregate({type(agg).__name__})"
        _check_width(agg, out, where)
        if isinstance(agg, ops.CombinerAggregator):
            partial = self._agg("partial", agg, inputs, None, (PARTIAL_FIELD,), where + "/partial")
            return partial.global_()._agg(
                "merge", agg, (PARTIAL_FIELD,), None, out, where, value_index=0
            )
        return self.global_()._agg("full", agg, inputs, None, out, where)

    def group_by(self, fields: Sequence[str]) -> GroupedStream:
        """Group by ``fields``: aggregations then run per group."""
        f = _field_list(fields, "group_by")
        self._indexes(f, "group_by")
        return GroupedStream(self, f)

    def min_by(self, field_name: str) -> Stream:
        """The tuple of the batch with the least ``field_name``."""
        return self._by(field_name, greatest=False)

    def max_by(self, field_name: str) -> Stream:
        """The tuple of the batch with the greatest ``field_name``."""
        return self._by(field_name, greatest=True)

    def _by(self, field_name: str, greatest: bool) -> Stream:
        what = "max_by" if greatest else "min_by"
        (i,) = self._indexes([field_name], what)
        row = self.aggregate(list(self.fields), ops._ByField(i, greatest), ["$row"])
        return row.filter(["$row"], ops.FilterNull()).map(_unpack_row, list(self.fields))

    # -- state ------------------------------------------------------------------------
    def persistent_aggregate(
        self,
        state_factory: Any,
        *args: Any,
        state_id: str | None = None,
        exactly_once: bool | None = None,
    ) -> TridentState:
        """Aggregate every batch into state: ``(factory, [input_fields,] aggregator, fields)``.

        The state holds one value, under the key ``()``; query it with
        ``state_query(state, [], SnapshotGet(), [...])``.
        """
        return _persist(self, None, state_factory, args, state_id, exactly_once)

    def partition_persist(
        self,
        state_factory: Any,
        input_fields: Sequence[str],
        updater: Any,
        *,
        state_id: str | None = None,
        exactly_once: bool | None = None,
    ) -> TridentState:
        """Hand each partition's batch to ``updater.update_state(state, tuples, collector)``.

        ``updater`` may also be a plain callable ``fn(state, tuples)``. The state
        is ``state_factory.make_state(table)``; writes run at the batch's commit.
        """
        where = f"partition_persist({ops.describe(updater)})"
        inputs = _field_list(input_fields, where)
        if not isinstance(updater, ops.StateUpdater):
            ops._check_callable(updater, where)
        _check_factory(state_factory, where)
        sid, table = self._topology._state_name(state_factory, state_id)
        node = self._add(
            "persist",
            (),
            where,
            op=updater,
            update="update",
            factory=state_factory,
            table=table,
            in_idx=self._indexes(inputs, where),
            in_fields=inputs,
            state_id=sid,
            exactly_once=exactly_once,
        )._node
        return TridentState(self._topology, node, state_factory, table, sid, grouped=False)

    def state_query(self, state: TridentState, *args: Any) -> Stream:
        """Look tuples up in ``state``: ``(state, input_fields, query_function, fields)``."""
        return _query(self, None, state, args)

    # -- combining streams -------------------------------------------------------------
    def to_stream(self) -> Stream:
        return self


def _check_width(agg: Any, out: tuple[str, ...], where: str) -> None:
    if isinstance(agg, ops.CombinerAggregator | ops.ReducerAggregator) and len(out) != 1:
        raise InvalidTopologyError(
            f"{where}: a {type(agg).__name__} produces one value; give one function field, "
            f"got {list(out)}"
        )


def _check_factory(factory: Any, where: str) -> None:
    if not callable(getattr(factory, "make_state", None)):
        raise InvalidTopologyError(
            f"{where}: {factory!r} is not a state factory; use a squall.state.MapStateFactory "
            "(for example memory_map_state()) or an object with make_state(table)"
        )


def _persist(
    stream: Stream,
    group: tuple[str, ...] | None,
    factory: Any,
    args: tuple[Any, ...],
    state_id: str | None,
    exactly_once: bool | None,
) -> TridentState:
    inputs, agg, out = stream._agg_args(args, "persistent_aggregate")
    where = f"persistent_aggregate({type(agg).__name__})"
    _check_factory(factory, where)
    _check_width(agg, out, where)
    sid, table = stream._topology._state_name(factory, state_id)
    common = {
        "factory": factory,
        "table": table,
        "state_id": sid,
        "exactly_once": exactly_once,
        "op": agg,
    }
    g = group or ()
    k = len(g)
    if isinstance(agg, ops.CombinerAggregator):
        partial = stream._agg(
            "partial", agg, inputs, group, (*g, PARTIAL_FIELD), where + "/partial"
        )
        moved = partial.partition_by(list(g)) if group else partial.global_()
        node = moved._add(
            "persist",
            g + out,
            where,
            update="combine",
            group_idx=tuple(range(k)),
            value_index=k,
            in_idx=(k,),
            in_fields=(PARTIAL_FIELD,),
            **common,
        )._node
    elif isinstance(agg, ops.ReducerAggregator):
        moved = stream.partition_by(list(g)) if group else stream.global_()
        node = moved._add(
            "persist",
            g + out,
            where,
            update="reduce",
            group_idx=moved._indexes(g, where),
            in_idx=moved._indexes(inputs, where),
            in_fields=inputs,
            **common,
        )._node
    else:
        raise InvalidTopologyError(
            f"{where}: persistent_aggregate needs a CombinerAggregator or a ReducerAggregator "
            f"(got {type(agg).__name__}); aggregate first, then partition_persist"
        )
    return TridentState(stream._topology, node, factory, table, sid, grouped=group is not None)


def _query(
    stream: Stream, group: tuple[str, ...] | None, state: Any, args: tuple[Any, ...]
) -> Stream:
    if not isinstance(state, TridentState):
        raise InvalidTopologyError(
            f"state_query: the first argument must be a TridentState (from persistent_aggregate "
            f"or new_static_state), got {state!r}"
        )
    if len(args) == 3:
        inputs, fn, out = args
    elif len(args) == 2:
        inputs, fn, out = stream.fields, args[0], args[1]
    else:
        raise InvalidTopologyError(
            "state_query() takes (state, input_fields, query_function, function_fields)"
        )
    where = f"state_query({type(fn).__name__}, {state.state_id})"
    if not isinstance(fn, ops.QueryFunction):
        raise InvalidTopologyError(
            f"{where}: {fn!r} is not a QueryFunction (use MapGet(), SnapshotGet() or a subclass)"
        )
    inputs = _field_list(inputs, where)
    fields = stream._new_fields(out, where)
    if group is not None:
        moved = stream.partition_by(list(group))
    elif state.grouped:
        moved = stream.shuffle()
    else:
        moved = stream.global_()
    return moved._add(
        "query",
        stream.fields + fields,
        where,
        op=fn,
        state=state,
        factory=state.factory,
        table=state.table,
        in_idx=moved._indexes(inputs, where),
        in_fields=inputs,
        width=len(fields),
    )


class GroupedStream:
    """A stream grouped by fields (``stream.group_by([...])``)."""

    def __init__(self, stream: Stream, group_fields: tuple[str, ...]) -> None:
        self._stream = stream
        self.group_fields = group_fields

    def __repr__(self) -> str:
        return f"<GroupedStream by {list(self.group_fields)} of {self._stream!r}>"

    @property
    def fields(self) -> tuple[str, ...]:
        return self._stream.fields

    def aggregate(self, *args: Any) -> Stream:
        """Aggregate each group of each batch: output = group fields + function fields."""
        s = self._stream
        inputs, agg, out = s._agg_args(args, "aggregate")
        g = self.group_fields
        where = f"group_by({', '.join(g)}).aggregate({type(agg).__name__})"
        _check_width(agg, out, where)
        k = len(g)
        if isinstance(agg, ops.CombinerAggregator):
            partial = s._agg("partial", agg, inputs, g, (*g, PARTIAL_FIELD), where + "/partial")
            moved = partial.partition_by(list(g))
            return moved._agg("merge", agg, (PARTIAL_FIELD,), g, g + out, where, value_index=k)
        moved = s.partition_by(list(g))
        return moved._agg("full", agg, inputs, g, g + out, where)

    def partition_aggregate(self, *args: Any) -> Stream:
        """Aggregate each group within each partition (no repartition)."""
        s = self._stream
        inputs, agg, out = s._agg_args(args, "partition_aggregate")
        g = self.group_fields
        return s._agg("full", agg, inputs, g, g + out, f"partition_aggregate({type(agg).__name__})")

    def persistent_aggregate(
        self,
        state_factory: Any,
        *args: Any,
        state_id: str | None = None,
        exactly_once: bool | None = None,
    ) -> TridentState:
        """Aggregate into a map state keyed by the group fields."""
        return _persist(
            self._stream, self.group_fields, state_factory, args, state_id, exactly_once
        )

    def state_query(self, state: TridentState, *args: Any) -> Stream:
        """Query ``state`` with each group's key (the stream is partitioned by the group)."""
        return _query(self._stream, self.group_fields, state, args)

    def each(self, *args: Any) -> GroupedStream:
        return GroupedStream(self._stream.each(*args), self.group_fields)

    def filter(self, *args: Any) -> GroupedStream:
        return GroupedStream(self._stream.filter(*args), self.group_fields)

    def to_stream(self) -> Stream:
        return self._stream


class TridentTopology:
    """A Trident topology; ``build()`` compiles it to a :class:`~squall.api.TopologyDef`.

    Args:
        exactly_once: require every state to be updated exactly once; ``build``
            refuses a spout/state combination that cannot give it.
        meta: where spouts and coordinators keep their metadata (committed txid,
            batch offsets); a squall.state backend. Use a durable one (SQLite,
            Redis) for exactly-once across restarts; by default it is in memory.
    """

    def __init__(self, *, exactly_once: bool = False, meta: Backend | None = None) -> None:
        self.exactly_once = exactly_once
        self.meta: Backend = meta if meta is not None else MemoryBackend("trident-meta")
        if not isinstance(self.meta, Backend):
            raise InvalidTopologyError(
                f"TridentTopology(meta=...) takes a state backend, got {meta!r}"
            )
        self._nodes: list[Node] = []
        self._ids = itertools.count()
        self._stream_ids: set[str] = set()
        self._state_ids: set[str] = set()

    def _new_node(
        self,
        kind: str,
        parents: list[Node],
        fields: tuple[str, ...],
        name: str,
        params: dict[str, Any],
    ) -> Node:
        node = Node(next(self._ids), kind, list(parents), fields, name, dict(params))
        for p in parents:
            p.children.append(node)
        self._nodes.append(node)
        return node

    def _state_name(self, factory: Any, state_id: str | None) -> tuple[str, str]:
        sid = state_id or f"state{len(self._state_ids)}"
        if sid in self._state_ids:
            raise InvalidTopologyError(f"state id {sid!r} is used twice in this topology")
        self._state_ids.add(sid)
        table = getattr(factory, "table", None) or f"trident:{{topology}}:{sid}"
        return sid, table

    def new_stream(self, stream_id: str, spout: Any, parallelism: int | None = None) -> Stream:
        """A stream from a Trident spout. ``stream_id`` names it (and its metadata) for good."""
        where = f"new_stream({stream_id!r})"
        if not isinstance(stream_id, str) or not stream_id or stream_id.startswith(("$", "__")):
            raise InvalidTopologyError(
                f"{where}: the stream id must be a non-empty string not starting with '$' or '__'"
            )
        if ":" in stream_id or stream_id in self._stream_ids:
            raise InvalidTopologyError(f"{where}: stream ids must be unique and contain no ':'")
        kind = spout_kind(spout, where)
        fields = _field_list(spout.fields, f"{where}: the spout's fields")
        if not fields:
            raise InvalidTopologyError(f"{where}: the spout declares no fields")
        self._stream_ids.add(stream_id)
        node = self._new_node(
            "spout", [], fields, stream_id, {"spout": spout, "spout_id": stream_id, "kind": kind}
        )
        node.par = parallelism
        return Stream(self, node)

    def new_drpc_stream(self, function: str, drpc: Any = None) -> Stream:
        """A stream of DRPC requests for ``function``, one batch each, with field ``args``.

        The last operation's tuples of each batch are returned to the caller as
        JSON (``[[5078]]``). ``drpc``: a :class:`~squall.drpc.LocalDRPC` to serve
        in-process; otherwise the servers in ``drpc.servers``.
        """
        if not isinstance(function, str) or not function:
            raise InvalidTopologyError(
                f"new_drpc_stream: function must be a name, got {function!r}"
            )
        drpc_id = getattr(drpc, "service_id", drpc)
        node = self._new_node(
            "drpc_spout",
            [],
            ("args",),
            f"drpc({function})",
            {"function": function, "drpc": drpc_id},
        )
        return Stream(self, node)

    def new_static_state(
        self, factory: Any, state_id: str, table: str | None = None
    ) -> TridentState:
        """A state written elsewhere, to query with ``state_query``."""
        _check_factory(factory, f"new_static_state({state_id!r})")
        tbl = table or getattr(factory, "table", None) or f"trident:{{topology}}:{state_id}"
        return TridentState(self, None, factory, tbl, state_id, grouped=True)

    def merge(self, *streams: Stream) -> Stream:
        """One stream of every tuple of ``streams`` (same batch group, same field count)."""
        if len(streams) == 1 and isinstance(streams[0], list | tuple):
            streams = tuple(streams[0])
        if len(streams) < 2:
            raise InvalidTopologyError("merge() needs at least two streams")
        width = len(streams[0].fields)
        for s in streams:
            if len(s.fields) != width:
                raise InvalidTopologyError(
                    f"merge(): every stream needs {width} field(s) like the first "
                    f"{list(streams[0].fields)}; {s!r} has {len(s.fields)}"
                )
        node = self._new_node("merge", [s._node for s in streams], streams[0].fields, "merge", {})
        return Stream(self, node)

    def join(self, *args: Any) -> Stream:
        """Inner join of streams within each batch.

        ``join(s1, fields1, s2, fields2, out_fields)`` or
        ``join([s1, s2, ...], [fields1, fields2, ...], out_fields)``. The output
        has the join fields first, then each stream's other fields in order.
        """
        if len(args) == 5:
            streams, keys, out = [args[0], args[2]], [args[1], args[3]], args[4]
        elif len(args) == 3:
            streams, keys, out = list(args[0]), list(args[1]), args[2]
        else:
            raise InvalidTopologyError("join() takes (s1, fields1, s2, fields2, out_fields)")
        if len(streams) < 2 or len(streams) != len(keys):
            raise InvalidTopologyError(
                "join(): give one list of join fields per stream (2 or more)"
            )
        where = "join"
        key_idx = []
        other_idx = []
        width = None
        for s, k in zip(streams, keys, strict=True):
            kf = _field_list(k, where)
            if width is None:
                width = len(kf)
            elif len(kf) != width:
                raise InvalidTopologyError(f"{where}: every stream needs {width} join field(s)")
            ki = s._indexes(kf, where)
            key_idx.append(ki)
            other_idx.append(tuple(i for i in range(len(s.fields)) if i not in ki))
        out_f = _field_list(out, where)
        expect = (width or 0) + sum(len(o) for o in other_idx)
        if len(out_f) != expect:
            raise InvalidTopologyError(
                f"{where}: the output has {expect} field(s) (the join fields, then the others of "
                f"each stream), got {len(out_f)}: {list(out_f)}"
            )
        node = self._new_node(
            "join",
            [s._node for s in streams],
            out_f,
            "join",
            {"key_idx": tuple(key_idx), "other_idx": tuple(other_idx)},
        )
        return Stream(self, node)

    def build(self, name: str = "trident", config: dict[str, Any] | None = None) -> TopologyDef:
        """Compile to a :class:`~squall.api.TopologyDef` (validated)."""
        from squall.api.validation import validate

        d = _Compiler(self, name, dict(config or {})).compile()
        validate(d)
        return d

    def create_topology(self) -> TopologyDef:
        """``LocalCluster.submit`` accepts the TridentTopology itself (Storm's ``build()``)."""
        return self.build()


# -- the compiler ---------------------------------------------------------------------
@dataclass(eq=False)
class _Stage:
    name: str
    nodes: list[Node] = field(default_factory=list)
    inputs: list[_Edge] = field(default_factory=list)
    outputs: list[_Edge] = field(default_factory=list)
    emitter: Node | None = None
    force_one: bool = False
    hint: int = 0  # a parallelism hint given right after the repartition


@dataclass(eq=False)
class _Edge:
    src: Node
    dst: Node
    routing: str
    key: tuple[int, ...]
    stream: str = ""
    side: int | None = None


class _Compiler:
    def __init__(self, topology: TridentTopology, name: str, config: dict[str, Any]) -> None:
        self.t = topology
        self.name = name
        self.config = config
        self.nodes = list(topology._nodes)
        self.stages: list[_Stage] = []
        self.edges: list[_Edge] = []
        self.bolt_count = itertools.count()

    # groups: connected components over data edges
    def _groups(self) -> dict[int, list[Node]]:
        parent: dict[int, int] = {n.id: n.id for n in self.nodes}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for n in self.nodes:
            for p in n.parents:
                parent[find(n.id)] = find(p.id)
        roots: dict[int, int] = {}
        groups: dict[int, list[Node]] = {}
        for n in self.nodes:
            r = find(n.id)
            g = roots.setdefault(r, len(roots))
            n.group = g
            groups.setdefault(g, []).append(n)
        return groups

    def _synthetic(self, kind: str, parent: Node, name: str, params: dict[str, Any]) -> Node:
        """A node the compiler adds (not kept in the topology: ``build`` may run again)."""
        node = Node(
            next(self.t._ids), kind, [parent], parent.fields, name, {**params, "_synthetic": True}
        )
        parent.children.append(node)
        node.group = parent.group
        self.nodes.append(node)
        return node

    def compile(self) -> TopologyDef:
        if not self.nodes:
            raise InvalidTopologyError("the Trident topology has no streams (call new_stream)")
        for n in self.nodes:
            n.stage = None
            n.group = -1
            n.params.pop("_stage", None)
            n.params.pop("_extra", None)
            n.children = [c for c in n.children if not c.params.get("_synthetic")]
        groups = self._groups()
        drpc_groups: set[int] = set()
        for g, nodes in groups.items():
            spouts = [n for n in nodes if n.kind == "spout"]
            drpcs = [n for n in nodes if n.kind == "drpc_spout"]
            if drpcs and (spouts or len(drpcs) > 1):
                raise InvalidTopologyError(
                    "a DRPC stream cannot be merged or joined with another spout's stream "
                    f"({', '.join(n.name for n in drpcs + spouts)}); query their state instead"
                )
            if drpcs:
                drpc_groups.add(g)
                last = max((n for n in nodes if n.kind != "persist"), key=lambda n: n.id)
                ret = self._synthetic(
                    "partition", last, "batch_global", {"routing": GLOBAL, "key": ()}
                )
                self._synthetic("drpc_return", ret, "return-results", {})
        self._check_exactly_once(groups)
        self._assign_stages()
        return self._emit_definition(groups, drpc_groups)

    def _check_exactly_once(self, groups: dict[int, list[Node]]) -> None:
        for nodes in groups.values():
            spouts = [n for n in nodes if n.kind in ("spout", "drpc_spout")]
            for n in nodes:
                if n.kind != "persist":
                    continue
                wanted = n.params.get("exactly_once")
                if wanted is None:
                    wanted = self.t.exactly_once
                if not wanted:
                    continue
                kind = getattr(n.params["factory"], "kind", NON_TRANSACTIONAL)
                for s in spouts:
                    skind = s.params.get("kind", NON_TRANSACTIONAL)
                    ok = (skind == TRANSACTIONAL and kind in (TRANSACTIONAL, OPAQUE)) or (
                        skind == OPAQUE and kind == OPAQUE
                    )
                    if not ok:
                        fix = (
                            "use an opaque state (MapStateFactory(..., kind='opaque'))"
                            if skind == OPAQUE
                            else "use a transactional or opaque spout and an opaque state"
                        )
                        raise InvalidTopologyError(
                            f"state {n.params['state_id']!r} ({kind}) is fed by spout "
                            f"{s.name!r} ({skind}), which cannot give exactly-once: exactly-once "
                            "needs a transactional spout with transactional or opaque state, or "
                            f"an opaque spout with opaque state; {fix}"
                        )

    def _new_stage(self, name: str | None = None) -> _Stage:
        st = _Stage(name or f"b-{next(self.bolt_count)}")
        self.stages.append(st)
        return st

    @staticmethod
    def _source(node: Node) -> tuple[Node, str, tuple[int, ...]]:
        """(real upstream node, routing, key) through a chain of partition nodes."""
        routing, key = node.params["routing"], node.params["key"]
        src = node.parents[0]
        while src.kind == "partition":
            src = src.parents[0]
        return src, routing, key

    def _edge(
        self, src: Node, dst: Node, routing: str, key: tuple[int, ...], side: int | None = None
    ) -> None:
        e = _Edge(src, dst, routing, key, f"s{len(self.edges)}", side)
        self.edges.append(e)
        assert src.stage is not None and dst.stage is not None
        src.stage.outputs.append(e)
        dst.stage.inputs.append(e)
        if routing == GLOBAL:
            dst.stage.force_one = True

    def _assign_stages(self) -> None:
        for n in sorted(self.nodes, key=lambda n: n.id):
            if n.kind == "spout":
                n.stage = self._new_stage(n.name)
                n.stage.emitter = n
            elif n.kind == "drpc_spout":
                n.stage = self._new_stage()
                n.stage.emitter = n
            elif n.kind == "partition":
                continue
            elif n.kind in ("merge", "join"):
                n.stage = self._new_stage()
                for side, p in enumerate(n.parents):
                    if n.kind == "join":
                        src = p
                        while src.kind == "partition":
                            src = src.parents[0]
                        # Re-key by the join fields in the source's own layout.
                        key = tuple(n.params["key_idx"][side])
                        self._edge(src, n, FIELDS, key, side)
                    elif p.kind == "partition":
                        src, routing, key = self._source(p)
                        self._edge(src, n, routing, key, side)
                    else:
                        self._edge(p, n, SHUFFLE, (), side)
            else:
                (p,) = n.parents
                if n.kind == "query" and n.params["state"].node is not None:
                    target = n.params["state"].node.stage
                    if target is None:
                        raise InvalidTopologyError(f"{n.name}: its state is not built yet")
                    n.stage = target
                    if p.kind != "partition":
                        raise InvalidTopologyError(f"{n.name}: internal error: no repartition")
                    src, routing, key = self._source(p)
                    if src.stage is target:
                        raise InvalidTopologyError(
                            f"{n.name}: a stream cannot query the state it writes in the same step"
                        )
                    self._edge(src, n, routing, key)
                elif p.kind == "partition":
                    target = p.params.get("_stage")
                    if target is None:
                        target = p.params["_stage"] = self._new_stage()
                        target.hint = p.par or 0
                        n.stage = target
                        src, routing, key = self._source(p)
                        self._edge(src, n, routing, key)
                    else:
                        # Another operation after the same repartition: same stage, same entry.
                        n.stage = target
                        p.params.setdefault("_extra", []).append(n)
                else:
                    n.stage = p.stage
            if n.stage is not None:
                n.stage.nodes.append(n)

    def _emit_definition(self, groups: dict[int, list[Node]], drpc_groups: set[int]) -> TopologyDef:
        specs: dict[str, ComponentSpec] = {}
        coord_of: dict[int, str] = {}
        meta = self.t.meta
        for g, nodes in groups.items():
            if g in drpc_groups:
                drpc_node = next(n for n in nodes if n.kind == "drpc_spout")
                cname = f"$drpc-spout-bg{g}"
                specs[cname] = DRPCBatchSpout.spec(
                    name=cname,
                    function=drpc_node.params["function"],
                    drpc=drpc_node.params["drpc"],
                )
                coord_of[g] = cname
                continue
            spouts = [n for n in nodes if n.kind == "spout"]
            cname = f"$mastercoord-bg{g}"
            specs[cname] = MasterBatchCoordinator.spec(
                name=cname,
                group=g,
                spouts=[SpoutRef(n.name, n.params["spout"]) for n in spouts],
                meta=meta,
                meta_table="trident-coord:" + "+".join(sorted(n.name for n in spouts)),
            )
            coord_of[g] = cname
        for st in self.stages:
            spec = self._stage_spec(st, coord_of, drpc_groups)
            specs[st.name] = spec
        for g in drpc_groups:
            ret_stage = next(
                st
                for st in self.stages
                for n in st.nodes
                if n.kind == "drpc_return" and n.group == g
            )
            rname = f"$return-bg{g}"
            specs[rname] = ReturnResults.spec(
                name=rname, inputs={GlobalStreamId(ret_stage.name, RETURN_STREAM): Grouping.SHUFFLE}
            )
        return build_definition(self.name, specs, self.config)

    def _stage_spec(
        self, st: _Stage, coord_of: dict[int, str], drpc_groups: set[int]
    ) -> ComponentSpec:
        nodes = sorted(st.nodes, key=lambda n: n.id)
        procs: list[dict[str, Any]] = []
        index: dict[int, int] = {}
        side_index: dict[tuple[int, int], int] = {}
        for n in nodes:
            if n.kind == "join":
                for side in range(len(n.parents)):
                    side_index[(n.id, side)] = len(procs)
                    procs.append(
                        {
                            "kind": "join_side",
                            "name": f"join/side{side}",
                            "group": n.group,
                            "children": [],
                            "params": {"side": side},
                        }
                    )
            index[n.id] = len(procs)
            procs.append(
                {
                    "kind": _proc_kind(n),
                    "name": n.name,
                    "group": n.group,
                    "children": [],
                    "params": _proc_params(n),
                }
            )
        for n in nodes:
            if n.kind == "join":
                for side in range(len(n.parents)):
                    procs[side_index[(n.id, side)]]["children"].append(index[n.id])
        # Children in this stage, possibly through a repartition into the same stage.
        for n in nodes:
            for c in n.children:
                if c.stage is st and c.kind != "partition" and c.id in index:
                    if c.kind == "join":
                        side = c.parents.index(n)
                        procs[index[n.id]]["children"].append(side_index[(c.id, side)])
                    elif not (c.kind == "query" and c.params["state"].node is not None):
                        procs[index[n.id]]["children"].append(index[c.id])
        outputs: list[OutputSpec] = []
        for e in st.outputs:
            out_i = len(outputs)
            assert e.dst.stage is not None
            outputs.append(OutputSpec(e.stream, e.dst.stage.name, e.routing, e.key, e.src.group))
            pi = len(procs)
            procs.append(
                {
                    "kind": "output",
                    "name": f"output({e.stream} -> {e.dst.stage.name})",
                    "group": e.src.group,
                    "children": [],
                    "params": {"output": out_i},
                }
            )
            procs[index[e.src.id]]["children"].append(pi)
        # Operations after the same repartition, beyond the first, are fed by the same entry.
        entries: list[EntrySpec] = []
        for e in st.inputs:
            if e.dst.kind == "join" and e.side is not None:
                dst_procs = [side_index[(e.dst.id, e.side)]]
            else:
                dst_procs = [index[e.dst.id]]
            for extra in self._extras(e):
                dst_procs.append(index[extra.id])
            assert e.src.stage is not None
            entries.append(
                EntrySpec(e.src.stage.name, e.stream, DATA, e.dst.group, tuple(dst_procs))
            )
        commit_groups: set[int] = set()
        needs_success = False
        if st.emitter is not None:
            em = st.emitter
            g = em.group
            entries.append(EntrySpec(coord_of[g], BATCH_STREAM, BATCH, g, (index[em.id],)))
            spout = em.params.get("spout")
            if isinstance(spout, OpaqueSpout):
                commit_groups.add(g)
            if isinstance(spout, BatchSpout | TransactionalSpout):
                needs_success = True
        for n in nodes:
            if n.kind == "persist":
                commit_groups.add(n.group)
        for g in sorted(commit_groups):
            if g in drpc_groups:
                raise InvalidTopologyError(
                    "a DRPC stream cannot write state (persistent_aggregate)"
                )
            entries.append(EntrySpec(coord_of[g], COMMIT_STREAM, COMMIT, g, ()))
        if needs_success and st.emitter is not None:
            g = st.emitter.group
            entries.append(
                EntrySpec(coord_of[g], SUCCESS_STREAM, SUCCESS, g, (index[st.emitter.id],))
            )
        plan = StagePlan(
            name=st.name,
            procs=tuple(
                ProcSpec(p["kind"], p["name"], p["group"], tuple(p["children"]), p["params"])
                for p in procs
            ),
            entries=tuple(entries),
            outputs=tuple(outputs),
            commit_groups=frozenset(commit_groups),
            meta=self.t.meta,
        )
        inputs: dict[GlobalStreamId, Any] = {}
        for entry in entries:
            sid = GlobalStreamId(entry.source, entry.stream)
            inputs[sid] = Grouping.DIRECT if entry.kind == DATA else Grouping.ALL
        out_streams = [OutStream(DATA_FIELDS, name=o.stream, direct=True) for o in outputs]
        if any(n.kind == "drpc_return" for n in nodes):
            out_streams.append(OutStream(["result", "return-info"], name=RETURN_STREAM))
        par = max([n.par or 0 for n in nodes] + [st.hint, 1])
        if st.force_one:
            par = 1
        return TridentBolt.spec(
            name=st.name, inputs=inputs, par=par, outputs=out_streams, plan=plan
        )

    @staticmethod
    def _extras(e: _Edge) -> list[Node]:
        # The partition node between e.src and e.dst may feed more operations.
        for p in e.dst.parents:
            if p.kind == "partition" and p.params.get("_stage") is e.dst.stage:
                return list(p.params.get("_extra", []))
        return []


def _proc_kind(n: Node) -> str:
    if n.kind == "spout":
        return "spout"
    if n.kind == "drpc_spout":
        return "drpc_args"
    if n.kind == "merge":
        return "project"
    return n.kind


def _proc_params(n: Node) -> dict[str, Any]:
    p = {k: v for k, v in n.params.items() if not k.startswith("_") and k != "state"}
    if n.kind == "spout":
        return {"spout": p["spout"], "spout_id": p["spout_id"], "fields": n.fields}
    if n.kind == "drpc_spout":
        return {"task": "hash"}
    if n.kind == "merge":
        return {"in_idx": tuple(range(len(n.fields)))}
    return p


__all__ = ["GroupedStream", "Stream", "TridentState", "TridentTopology"]
