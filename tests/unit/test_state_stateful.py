"""Stateful bolts with checkpointing (storm-spec §1.8), on simulated time."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from squall import TopologyBuilder
from squall.state import MemoryBackend, SQLiteBackend
from squall.state.stateful import (
    CHECKPOINT_COMPONENT,
    KeyValueState,
    StatefulBolt,
    state_backend,
    with_checkpoints,
)
from squall.testing import FeederSpout, simulated_cluster

pytestmark = pytest.mark.timeout(20)

_names = itertools.count()
SEEN: list[tuple[str, int]] = []


class WordCounter(StatefulBolt):
    outputs = ["word", "count"]

    def init_state(self, state: KeyValueState) -> None:
        self.counts = state

    def process(self, tup: Any) -> None:
        word = tup.values.word
        count = self.counts.get(word, 0) + 1
        self.counts.put(word, count)
        SEEN.append((word, count))
        self.emit([word, count])


class FailsFirstPrepare(WordCounter):
    failed = False

    def pre_prepare(self, txid: int) -> None:
        if not FailsFirstPrepare.failed:
            FailsFirstPrepare.failed = True
            raise RuntimeError("injected prepare failure")


def build(feeder: Any, bolt: type[StatefulBolt] = WordCounter) -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("words", feeder)
    b.set_bolt("count", bolt, 2).fields_grouping("words", ["word"])
    return b


def conf(backend: Any) -> dict[str, Any]:
    return {"topology.state.provider": backend, "topology.state.checkpoint.interval.ms": 1000}


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def test_the_checkpoint_spout_is_added_for_stateful_bolts_only() -> None:
    feeder = FeederSpout(["word"])
    d = with_checkpoints(build(feeder).create_topology("t"))
    assert CHECKPOINT_COMPONENT in d.components
    assert ("$checkpointspout:$checkpoint", "Grouping.ALL") in [
        (str(s), repr(g)) for s, g in d.components["count"].inputs
    ]
    b = TopologyBuilder()
    b.set_spout("words", feeder)
    plain = b.create_topology("p")
    assert with_checkpoints(plain) is plain


def test_input_tuples_are_acked_when_the_checkpoint_that_holds_them_commits() -> None:
    feeder = FeederSpout(["word"])
    with simulated_cluster() as cluster:
        cluster.submit("wc", build(feeder), conf(MemoryBackend(f"s{next(_names)}")))
        for i, w in enumerate(["dog", "cat", "dog"]):
            feeder.feed([w], msg_id=i)
        cluster.run_until_idle()
        assert sorted(SEEN) == [("cat", 1), ("dog", 1), ("dog", 2)]
        assert feeder.tracker.acked == []
        cluster.advance_time(2)
        assert sorted(feeder.tracker.acked) == [0, 1, 2]


def test_state_is_restored_before_the_first_tuple_after_a_restart() -> None:
    backend = MemoryBackend(f"s{next(_names)}")
    feeder = FeederSpout(["word"])
    with simulated_cluster() as cluster:
        cluster.submit("wc", build(feeder), conf(backend))
        for w in ["dog", "cat", "dog"]:
            feeder.feed([w])
        cluster.advance_time(2)  # committed
        feeder.feed(["dog"])  # processed, never committed: lost with the crash
        cluster.run_until_idle()
        cluster.kill("wc")
        SEEN.clear()
        cluster.submit("wc", build(feeder), conf(backend))
        feeder.feed(["dog"])
        feeder.feed(["cow"])
        cluster.advance_time(2)
    assert sorted(SEEN) == [("cow", 1), ("dog", 3)]


def test_a_failed_prepare_rolls_back_and_fails_the_tuples_since_the_last_commit() -> None:
    FailsFirstPrepare.failed = False
    feeder = FeederSpout(["word"])
    with simulated_cluster() as cluster:
        handle = cluster.submit(
            "wc", build(feeder, FailsFirstPrepare), conf(MemoryBackend(f"s{next(_names)}"))
        )
        feeder.feed(["dog"], msg_id="a")
        feeder.feed(["cat"], msg_id="b")
        cluster.advance_time(3)
        assert sorted(feeder.tracker.failed) == ["a", "b"]
        assert "injected prepare failure" in handle.errors[0].error
        feeder.feed(["dog"], msg_id="c")  # after the rollback the count starts over
        cluster.advance_time(2)
        assert feeder.tracker.acked == ["c"]
    assert SEEN[-1] == ("dog", 1)


def test_a_prepared_checkpoint_commits_or_rolls_back_after_a_crash(tmp_path: Any) -> None:
    backend = SQLiteBackend(str(tmp_path / "state.db"))
    state = KeyValueState(backend.connect(), "s")
    state.put("a", 1)
    state.put(["k", 2], {"x": 1})
    state.prepare_commit(1)
    # A new process (the old one crashed after the prepare) finishes the commit.
    again = KeyValueState(backend.connect(), "s")
    assert again.get("a") is None
    again.commit(1)
    assert again.get("a") == 1 and again.get(["k", 2]) == {"x": 1}
    again.commit(1)  # idempotent
    again.put("a", 5)
    again.delete(["k", 2])
    again.prepare_commit(2)
    third = KeyValueState(backend.connect(), "s")
    third.rollback()
    assert third.get("a") == 1 and sorted(repr(k) for k, _ in third.items()) == ["'a'", "['k', 2]"]
    assert third.committed_txid == 1


def test_the_state_provider_config_names_the_backend() -> None:
    assert state_backend({}) == MemoryBackend("squall-state")
    with pytest.raises(ValueError, match=r"topology\.state\.provider = 'mongo://x'"):
        state_backend({"topology.state.provider": "mongo://x"})
