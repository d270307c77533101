"""Topologies mixing shell components with Squall-native ones, for the multilang tests.

Native components live at module level so local worker processes can import
them (as ``tests.multilang.topologies``). Shell specs declared here run their
children in this directory (the declaring file's directory is the resource dir).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from squall import Bolt, Grouping, ShellBolt, ShellSpout, Topology

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]
SENTENCE_COUNT = "test.sentences"
NUMBER_COUNT = "test.numbers"


def expected_word_counts(total: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for i in range(total):
        counts.update(SENTENCES[i % len(SENTENCES)].split())
    return counts


def launcher(target: str, serializer: str) -> list[str]:
    """The command that runs a component class as a multilang child."""
    return [sys.executable, "-m", "squall.multilang.run", target, "-s", serializer]


class WordCounter(Bolt):
    """Counts words; publishes the counts as the metric ``counts.<task>``."""

    outputs = ["word", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.report_metric(f"counts.{context.task_id}", self.counts)

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts[word] += 1
        self.emit([word, self.counts[word]])


class BatchTotals(Bolt):
    """Sums ``[word, n]`` batch counts into the metric ``batch.<task>``."""

    def initialize(self, conf: Any, context: Any) -> None:
        self.totals: Counter[str] = Counter()
        self.report_metric(f"batch.{context.task_id}", self.totals)

    def process(self, tup: Any) -> None:
        self.totals[tup.values[0]] += tup.values[1]


class NumberSink(Bolt):
    """Collects numbers into the metric ``numbers.<task>``."""

    def initialize(self, conf: Any, context: Any) -> None:
        self.seen: list[Any] = []
        self.report_metric(f"numbers.{context.task_id}", self.seen)

    def process(self, tup: Any) -> None:
        self.seen.append(tup.values[0])


def merged(metrics: Any, prefix: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for name, value in metrics.items():
        if name.startswith(prefix):
            total.update(value)
    return total


def pystorm_topology(serializer: str) -> type[Topology]:
    """Every kind of pystorm component, unmodified, wired to Squall-native components."""
    tick = {"topology.tick.tuple.freq.secs": 0.2}

    class Pystorm(Topology):
        sentences = ShellSpout.spec(
            command=launcher("pystorm_components:SentenceSpout", serializer),
            serializer=serializer,
            outputs=["sentence"],
        )
        numbers = ShellSpout.spec(
            command=launcher("pystorm_components:NumberSpout", serializer),
            serializer=serializer,
            outputs=["n"],
        )
        split = ShellBolt.spec(
            command=launcher("pystorm_components:SplitSentenceBolt", serializer),
            serializer=serializer,
            inputs=[sentences],
            outputs=["word"],
            par=2,
        )
        count = WordCounter.spec(inputs={split: Grouping.fields("word")}, par=2)
        batch = ShellBolt.spec(
            command=launcher("pystorm_components:WordBatchBolt", serializer),
            serializer=serializer,
            inputs={split: Grouping.fields("word")},
            outputs=["word", "n"],
            config=tick,
        )
        batch_totals = BatchTotals.spec(inputs=[batch])
        number_sink = NumberSink.spec(inputs=[numbers])

    return Pystorm
