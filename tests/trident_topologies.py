"""Topologies that integration tests run in local worker processes.

Worker processes import this module as ``tests.trident_topologies`` (the test's
``sys.path`` is passed on), so everything a topology refers to lives at module level.
"""

from __future__ import annotations

from typing import Any

from squall import Bolt, TopologyBuilder
from squall.spouts import RedisStreamSpout
from squall.state import KeyValueState, MapStateFactory, RedisBackend, StatefulBolt
from squall.trident import Count, TridentTopology
from squall.trident.sources import RedisStreamOpaqueSpout, RedisStreamTransactionalSpout


def split(sentence: str) -> list[str]:
    return sentence.split()


def trident_word_count(
    redis: RedisBackend, stream: str, opaque: bool = False, batch_size: int = 200
) -> TridentTopology:
    """Word count over a Redis stream into an opaque map state in Redis, metadata in Redis."""
    spout_cls = RedisStreamOpaqueSpout if opaque else RedisStreamTransactionalSpout
    t = TridentTopology(exactly_once=True, meta=redis)
    (
        t.new_stream("sentences", spout_cls(redis, [stream], ["sentence"], batch_size=batch_size))
        .each(["sentence"], split, ["word"])
        .group_by(["word"])
        .persistent_aggregate(
            MapStateFactory(redis, kind="opaque"), Count(), ["count"], state_id="counts"
        )
        .parallelism_hint(2)
    )
    return t


class SplitBolt(Bolt):
    outputs = ["word"]

    def process(self, tup: Any) -> None:
        for word in tup.values.sentence.split():
            self.emit([word])


class CountBolt(StatefulBolt):
    """Counts words in its key-value state (saved at checkpoints)."""

    outputs = ["word", "count"]

    def init_state(self, state: KeyValueState) -> None:
        self.counts = state

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts.put(word, self.counts.get(word, 0) + 1)


def stateful_word_count(redis: RedisBackend, stream: str) -> TopologyBuilder:
    """Redis stream -> split -> a stateful counter with its state in Redis (at-least-once)."""
    b = TopologyBuilder()
    b.set_spout(
        "sentences",
        RedisStreamSpout,
        outputs=["sentence"],
        redis=redis,
        stream=stream,
        group="wc",
        claim_idle_ms=1000,
    )
    b.set_bolt("split", SplitBolt, 2).shuffle_grouping("sentences")
    b.set_bolt("count", CountBolt, 2).fields_grouping("split", ["word"])
    return b
