"""Trident: exactly-once micro-batch processing on top of Squall (Storm's Trident).

Build a :class:`TridentTopology`, then submit it (or ``topology.build(name)``)
like any topology: it compiles to ordinary Squall components, runs in local
mode and on a cluster, and shows in the UI.

* streams: :class:`TridentTopology` (``new_stream``, ``new_drpc_stream``,
  ``merge``, ``join``), :class:`Stream`, :class:`GroupedStream`, :class:`TridentState`;
* spouts: :class:`TransactionalSpout`, :class:`OpaqueSpout`, :class:`BatchSpout`,
  :class:`FixedBatchSpout`;
* operations: :class:`Function`, :class:`Filter`, :class:`MapFunction`,
  :class:`FlatMapFunction`, :class:`CombinerAggregator`, :class:`ReducerAggregator`,
  :class:`Aggregator`, :class:`QueryFunction`, :class:`StateUpdater`; built-ins
  :class:`Count`, :class:`Sum`, :class:`First`, :class:`FilterNull`,
  :class:`MapGet`, :class:`SnapshotGet`;
* state: see :mod:`squall.state` (``memory_map_state()``, ``MapStateFactory``).
"""

from squall.trident.operations import (
    Aggregator,
    Collector,
    CombinerAggregator,
    Count,
    Filter,
    FilterNull,
    First,
    FlatMapFunction,
    Function,
    MapFunction,
    MapGet,
    QueryFunction,
    ReducerAggregator,
    SnapshotGet,
    StateUpdater,
    Sum,
)
from squall.trident.spouts import (
    BatchSpout,
    FixedBatchSpout,
    OpaqueSpout,
    TransactionalSpout,
    TridentSpout,
)
from squall.trident.topology import GroupedStream, Stream, TridentState, TridentTopology

__all__ = [
    "Aggregator",
    "BatchSpout",
    "Collector",
    "CombinerAggregator",
    "Count",
    "Filter",
    "FilterNull",
    "First",
    "FixedBatchSpout",
    "FlatMapFunction",
    "Function",
    "GroupedStream",
    "MapFunction",
    "MapGet",
    "OpaqueSpout",
    "QueryFunction",
    "ReducerAggregator",
    "SnapshotGet",
    "StateUpdater",
    "Stream",
    "Sum",
    "TransactionalSpout",
    "TridentSpout",
    "TridentState",
    "TridentTopology",
]
