"""Trident on simulated time: exact counts through failed batches, failed commits and restarts.

storm-spec §1.9. Each test runs a Trident topology in one process on a
simulated clock (``topology.trident.batch.emit.interval.millis`` = 0, so
batches start as soon as the previous ones allow) until it is idle, then reads
the state.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from squall.api.errors import FailedError, InvalidTopologyError
from squall.state import MapState, MapStateFactory, MemoryBackend
from squall.testing import simulated_cluster
from squall.trident import (
    Count,
    FixedBatchSpout,
    OpaqueSpout,
    Sum,
    TridentTopology,
)

pytestmark = pytest.mark.timeout(30)

SENTENCES = [
    ["the cow jumped over the moon"],
    ["the man went to the store and bought some candy"],
    ["four score and seven years ago"],
    ["how many apples can you eat"],
    ["to be or not to be the person"],
] * 4
TRUTH = Counter(w for (s,) in SENTENCES for w in s.split())
FAST = {"topology.trident.batch.emit.interval.millis": 0}
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def counts_of(backend: MemoryBackend, table: str, kind: str = "opaque") -> dict[str, int]:
    state = MapState(backend.connect(), table, kind)
    return {k[0]: v for k, v in state.items().items()}


def split(sentence: str) -> list[str]:
    return sentence.split()


class FailSome:
    """A function that raises on the calls numbered in ``fail_on`` (1-based), then passes."""

    def __init__(self, fail_on: set[int], exc: type[Exception] = FailedError) -> None:
        self.fail_on = fail_on
        self.calls = 0
        self.exc = exc

    def __call__(self, sentence: str) -> list[str]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise self.exc(f"injected failure on call {self.calls}")
        return sentence.split()


class RecordingState(MapState):
    """A MapState that records the txid order of its commits and can fail some of them."""

    log: dict[str, list[int]] = {}
    fail_commits: dict[str, set[int]] = {}

    def begin_commit(self, txid: int) -> None:
        n = len(self.log.setdefault(self.table, [])) + 1
        if n in self.fail_commits.get(self.table, set()):
            self.fail_commits[self.table].discard(n)
            self.log[self.table].append(-txid)
            raise RuntimeError(f"injected commit failure at batch {txid}")
        self.log[self.table].append(txid)
        super().begin_commit(txid)


class RecordingFactory(MapStateFactory):
    def make_state(self, default_table: str) -> MapState:
        return RecordingState(self.backend.connect(), self.table or default_table, self.kind)


def word_count(
    spout: Any, factory: Any, fn: Any = split, par: int = 1, exactly_once: bool = False
) -> TridentTopology:
    t = TridentTopology(exactly_once=exactly_once, meta=MemoryBackend(unique("meta")))
    (
        t.new_stream("spout1", spout)
        .each(["sentence"], fn, ["word"])
        .group_by(["word"])
        .persistent_aggregate(factory, Count(), ["count"], state_id="counts")
        .parallelism_hint(par)
    )
    return t


def run(topology: TridentTopology, name: str, conf: dict[str, Any] | None = None) -> Any:
    with simulated_cluster() as cluster:
        handle = cluster.submit(name, topology, {**FAST, **(conf or {})})
        cluster.run_until_idle()
        coord = next(
            t.component
            for ex in handle.engine.executors
            for t in ex.tasks.values()
            if ex.component.startswith("$mastercoord")
        )
        return handle, coord


@pytest.mark.parametrize("kind", ["opaque", "transactional", "non_transactional"])
def test_word_count_counts_every_word_exactly_once(kind: str) -> None:
    backend = MemoryBackend(unique("wc"))
    topology = word_count(
        FixedBatchSpout(["sentence"], 3, *SENTENCES), MapStateFactory(backend, kind)
    )
    handle, coord = run(topology, "wc")
    assert counts_of(backend, "trident:wc:counts", kind) == TRUTH
    assert coord.committed == 7  # 20 sentences in batches of 3
    assert handle.errors == []


def test_counts_stay_exact_when_batches_fail_and_are_replayed() -> None:
    backend = MemoryBackend(unique("replay"))
    flaky = FailSome({2, 9, 10, 17, 30})
    topology = word_count(
        FixedBatchSpout(["sentence"], 3, *SENTENCES), MapStateFactory(backend), flaky, par=3
    )
    _handle, coord = run(topology, "replay", {"topology.max.spout.pending": 3})
    assert counts_of(backend, "trident:replay:counts") == TRUTH
    assert coord.replays >= 4  # each failure replays its batch and the later active ones


def test_a_user_error_fails_the_batch_and_is_reported() -> None:
    backend = MemoryBackend(unique("error"))
    flaky = FailSome({4}, exc=ValueError)
    topology = word_count(
        FixedBatchSpout(["sentence"], 3, *SENTENCES), MapStateFactory(backend), flaky
    )
    handle, coord = run(topology, "error")
    assert counts_of(backend, "trident:error:counts") == TRUTH
    assert coord.replays == 1
    assert [e.component for e in handle.errors] == ["spout1"]
    assert "injected failure on call 4" in handle.errors[0].error


@pytest.mark.parametrize("kind", ["opaque", "transactional"])
def test_failed_commits_are_retried_and_commits_stay_in_txid_order(kind: str) -> None:
    backend = MemoryBackend(unique("commit"))
    table = unique("commits")
    RecordingState.fail_commits[table] = {2, 5, 6}
    factory = RecordingFactory(backend, kind, table=table)
    topology = word_count(FixedBatchSpout(["sentence"], 2, *SENTENCES), factory, par=2)
    _handle, coord = run(topology, "commits", {"topology.max.spout.pending": 4})
    assert counts_of(backend, table, kind) == TRUTH
    # Per partition, every batch commits after all earlier ones: failures retry the same txid.
    applied = [t for t in RecordingState.log[table] if t > 0]
    assert coord.committed == 10
    assert sorted(set(applied)) == list(range(1, 11))
    assert any(t < 0 for t in RecordingState.log[table])


def test_commits_are_strictly_ordered_by_txid_with_batches_in_parallel() -> None:
    backend = MemoryBackend(unique("order"))
    table = unique("order")
    factory = RecordingFactory(backend, "opaque", table=table)
    topology = word_count(FixedBatchSpout(["sentence"], 1, *SENTENCES), factory)
    run(topology, "order", {"topology.max.spout.pending": 5})
    assert RecordingState.log[table] == sorted(RecordingState.log[table])
    assert len(RecordingState.log[table]) == 20


class GrowingSpout(OpaqueSpout):
    """An opaque spout over a list whose batch size grows on every call (replays differ)."""

    fields = ("sentence",)
    calls = 0

    def __init__(self, rows: list[list[str]]) -> None:
        self.rows = rows

    def is_ready(self, txid: int) -> bool:
        return txid <= 30

    def emit_batch(self, partition: str, last_meta: Any) -> tuple[Any, list[list[str]]]:
        GrowingSpout.calls += 1
        start = 0 if last_meta is None else last_meta
        end = min(len(self.rows), start + 1 + GrowingSpout.calls % 3)
        return end, self.rows[start:end]


def test_an_opaque_spout_whose_replays_differ_counts_exactly_with_opaque_state() -> None:
    backend = MemoryBackend(unique("opaque"))
    flaky = FailSome({3, 7, 8, 15})
    topology = word_count(GrowingSpout(SENTENCES), MapStateFactory(backend, "opaque"), flaky)
    _handle, coord = run(topology, "opaque", {"topology.max.spout.pending": 2})
    assert coord.replays >= 3
    assert counts_of(backend, "trident:opaque:counts") == TRUTH


def test_exactly_once_refuses_an_opaque_spout_with_transactional_state() -> None:
    factory = MapStateFactory(MemoryBackend("x"), "transactional")
    with pytest.raises(
        InvalidTopologyError,
        match=r"state 'counts' \(transactional\) is fed by spout 'spout1' \(opaque\), "
        r"which cannot give exactly-once.*use an opaque state",
    ):
        word_count(GrowingSpout(SENTENCES), factory, exactly_once=True).build("t")


def test_exactly_once_accepts_the_combinations_that_give_it() -> None:
    opaque = MapStateFactory(MemoryBackend("x"), "opaque")
    transactional = MapStateFactory(MemoryBackend("x"), "transactional")
    fixed = FixedBatchSpout(["sentence"], 3, *SENTENCES)
    word_count(GrowingSpout(SENTENCES), opaque, exactly_once=True).build("a")
    word_count(fixed, opaque, exactly_once=True).build("b")
    word_count(fixed, transactional, exactly_once=True).build("c")
    with pytest.raises(InvalidTopologyError, match="non_transactional"):
        word_count(
            fixed, MapStateFactory(MemoryBackend("x"), "non_transactional"), exactly_once=True
        ).build("d")


def test_a_restarted_topology_continues_after_the_last_committed_batch() -> None:
    backend = MemoryBackend(unique("restart"))
    meta = MemoryBackend(unique("restart-meta"))

    def build() -> TridentTopology:
        t = TridentTopology(meta=meta)
        (
            t.new_stream("spout1", FixedBatchSpout(["sentence"], 3, *SENTENCES))
            .each(["sentence"], split, ["word"])
            .group_by(["word"])
            .persistent_aggregate(MapStateFactory(backend), Count(), ["count"], state_id="counts")
        )
        return t

    with simulated_cluster() as cluster:
        handle = cluster.submit("restart", build(), {**FAST, "topology.max.spout.pending": 2})
        for _ in range(6):  # a few engine passes: some batches committed, some in flight
            handle.engine.run_once()
        cluster.kill("restart")
        partial = counts_of(backend, "trident:restart:counts")
        assert sum(partial.values()) < sum(TRUTH.values())
        cluster.submit("restart", build(), FAST)
        cluster.run_until_idle()
    assert counts_of(backend, "trident:restart:counts") == TRUTH


def test_global_aggregate_and_sum_of_a_persistent_state() -> None:
    backend = MemoryBackend(unique("global"))
    t = TridentTopology(meta=MemoryBackend(unique("meta")))
    (
        t.new_stream(
            "spout1", FixedBatchSpout(["n"], 4, *[[i] for i in range(1, 11)])
        ).persistent_aggregate(MapStateFactory(backend), ["n"], Sum(), ["total"], state_id="total")
    )
    run(t, "global")
    state = MapState(backend.connect(), "trident:global:total", "opaque")
    assert state.items() == {(): 55}


def test_a_batch_whose_predecessor_never_reached_this_emitter_fails_instead_of_starting_over() -> (
    None
):
    # On a cluster, batch N-1 may go to a worker that dies; its replacement then sees N
    # first. Reading from the beginning would count everything again: the batch fails
    # and the coordinator replays N-1 and N in order.
    from squall.trident.bolt import SpoutProc
    from squall.trident.plan import ProcSpec

    spout = FixedBatchSpout(["sentence"], 3, *SENTENCES)
    spec = ProcSpec(
        "spout", "spout(s)", 0, (), {"spout": spout, "spout_id": "s", "fields": ("sentence",)}
    )
    proc = SpoutProc(spec, None)  # type: ignore[arg-type]
    proc.store = MemoryBackend(unique("prev")).connect()
    with pytest.raises(FailedError, match="batch 5 arrived before batch 4 was emitted here"):
        proc._previous("0", 5, "tx", committed=3)
    assert proc._previous("0", 4, "tx", committed=3) is None  # a partition with no history yet
    proc.store.write({"trident:s": {"0:tx:4": [9, 12]}})
    assert proc._previous("0", 5, "tx", committed=3) == [9, 12]
