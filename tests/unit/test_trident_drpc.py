"""Trident DRPC streams: Storm's tutorial word count and its DRPC query (storm-spec §1.9, §3.4)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import LocalCluster
from squall.api.errors import InvalidTopologyError
from squall.cli.loader import load_topology
from squall.drpc import LocalDRPC
from squall.state import MemoryBackend, memory_map_state
from squall.testing import simulated_cluster
from squall.trident import (
    Count,
    FilterNull,
    FixedBatchSpout,
    MapGet,
    SnapshotGet,
    Sum,
    TridentTopology,
)

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).parents[2] / "examples"

_names = itertools.count()
SENTENCES = [
    ["the cow jumped over the moon"],
    ["the man went to the store and bought some candy"],
    ["four score and seven years ago"],
    ["how many apples can you eat"],
]


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with simulated_cluster() as c:
        yield c


@pytest.fixture
def drpc(cluster: LocalCluster) -> Iterator[LocalDRPC]:
    with LocalDRPC({"drpc.request.timeout.secs": 100}, clock=cluster.clock) as d:
        yield d


def split(sentence: str) -> list[str]:
    return sentence.split()


def call(cluster: LocalCluster, drpc: LocalDRPC, function: str, *args: str) -> list[Any]:
    futures = [drpc.execute_async(function, a) for a in args]
    cluster.run_until_idle()
    return [json.loads(f.result(timeout=1)) for f in futures]


def word_count(drpc: LocalDRPC) -> TridentTopology:
    t = TridentTopology(meta=MemoryBackend(f"meta{next(_names)}"))
    counts = (
        t.new_stream("spout1", FixedBatchSpout(["sentence"], 3, *SENTENCES))
        .each(["sentence"], split, ["word"])
        .group_by(["word"])
        .persistent_aggregate(memory_map_state(f"wc{next(_names)}"), Count(), ["count"])
        .parallelism_hint(2)
    )
    (
        t.new_drpc_stream("words", drpc)
        .each(["args"], split, ["word"])
        .group_by(["word"])
        .state_query(counts, ["word"], MapGet(), ["count"])
        .each(["count"], FilterNull())
        .aggregate(["count"], Sum(), ["sum"])
    )
    return t


def test_the_tutorial_query_sums_the_counts_of_the_words_asked(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    cluster.submit("wc", word_count(drpc), {"topology.trident.batch.emit.interval.millis": 0})
    cluster.run_until_idle()
    assert call(cluster, drpc, "words", "cat dog the man", "the", "xyz", "cow moon") == [
        [[5]],
        [[4]],
        [[0]],
        [[2]],
    ]


def test_a_drpc_stream_returns_every_final_tuple_as_json(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    t = TridentTopology(meta=MemoryBackend(f"meta{next(_names)}"))
    t.new_drpc_stream("split", drpc).each(["args"], split, ["word"]).project(["word"])
    cluster.submit("split", t)
    assert call(cluster, drpc, "split", "a b c") == [[["a"], ["b"], ["c"]]]
    assert call(cluster, drpc, "split", "") == [[]]


def test_a_global_state_is_queried_with_snapshot_get(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    t = TridentTopology(meta=MemoryBackend(f"meta{next(_names)}"))
    total = t.new_stream(
        "nums", FixedBatchSpout(["n"], 2, *[[i] for i in range(5)])
    ).persistent_aggregate(memory_map_state(f"g{next(_names)}"), ["n"], Sum(), ["total"])
    t.new_drpc_stream("total", drpc).state_query(total, [], SnapshotGet(), ["total"]).project(
        ["total"]
    )
    cluster.submit("total", t, {"topology.trident.batch.emit.interval.millis": 0})
    cluster.run_until_idle()
    assert call(cluster, drpc, "total", "") == [[[10]]]


def test_a_drpc_stream_cannot_write_state(drpc: LocalDRPC) -> None:
    t = TridentTopology()
    t.new_drpc_stream("w", drpc).group_by(["args"]).persistent_aggregate(
        memory_map_state(), Count(), ["c"]
    )
    with pytest.raises(InvalidTopologyError, match="a DRPC stream cannot write state"):
        t.build("w")


def test_the_trident_wordcount_example_answers_its_drpc_query(
    cluster: LocalCluster, drpc: LocalDRPC
) -> None:
    module = load_topology(str(EXAMPLES / "trident_wordcount.py")).module
    handle = cluster.submit("twc", module.build(MemoryBackend(f"ex{next(_names)}"), drpc))
    cluster.advance_time(2.0, step=0.5)  # a batch of 3 sentences every 500 ms
    coordinator = next(
        t.component
        for ex in handle.engine.executors
        if ex.component.startswith("$mastercoord")
        for t in ex.tasks.values()
    )
    cluster.run_until_idle()  # the clock stands still: no batch starts until it moves
    sentences = [module.SENTENCES[i % 4][0] for i in range(3 * coordinator.committed)]
    words = [w for s in sentences for w in s.split()]
    assert coordinator.committed >= 3
    assert call(cluster, drpc, "words", "cat dog the man") == [
        [[words.count("the") + words.count("man")]]
    ]
