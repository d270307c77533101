"""Topologies mixing shell components with Squall-native ones, for the multilang tests.

Native components live at module level so local worker processes can import
them (as ``tests.multilang.topologies``). Shell specs declared here run their
children in this directory (the declaring file's directory is the resource dir).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

# The multilang tests feed the same inputs as the native ones (and read them as MT.<name>).
from tests.topologies import NUMBER_COUNT as NUMBER_COUNT
from tests.topologies import SENTENCE_COUNT as SENTENCE_COUNT
from tests.topologies import NumberSpout, SentenceSpout
from tests.topologies import expected_word_counts as expected_word_counts

from squall import (
    Bolt,
    FailedError,
    Grouping,
    ReliableSpout,
    ShellBolt,
    ShellSpout,
    Stream,
    Topology,
)


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


# -- isolated Squall components ------------------------------------------------------------
CRASH_MARK = "test.crash.mark"


class Sentences(ReliableSpout, SentenceSpout):
    """SentenceSpout's sentences (i with id i, split over tasks), replayed when they fail."""


class Split(Bolt):
    """Splits sentences; with ``crash_on`` set, the first child to see it dies hard."""

    outputs = ["word"]

    def __init__(self, crash_on: str | None = None) -> None:
        super().__init__()
        self.crash_on = crash_on

    def initialize(self, conf: Any, context: Any) -> None:
        self.mark = conf.get(CRASH_MARK)

    def process(self, tup: Any) -> None:
        words = tup.values.sentence.split()
        if self.crash_on in words and self.mark and not os.path.exists(self.mark):
            open(self.mark, "w").close()
            os.abort()  # SIGABRT: as a segfaulting C extension would
        for word in words:
            self.emit([word])


class Numbers(NumberSpout):
    """0..test.numbers-1 with ids; publishes the ids acked and failed as ``acked``, ``failed``."""

    acked_metric = "acked"
    failed_metric = "failed"


class RejectOdd(Bolt):
    """Raises on odd numbers (reported, tuple failed); fails multiples of 10 quietly."""

    outputs = ["n", "tags"]

    def process(self, tup: Any) -> None:
        n = tup.values.n
        if n % 2:
            raise ValueError(f"odd number {n}")
        if n % 10 == 0:
            raise FailedError()
        # A value msgpack cannot carry (a set) crosses the process boundary too.
        self.emit([n, {"even", f"n{n}"}])


class Tags(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        self.tags: dict[int, Any] = {}
        self.report_metric("tags", self.tags)

    def process(self, tup: Any) -> None:
        self.tags[tup.values.n] = tup.values.tags


def isolated_wordcount(options: Any = True, spout_isolated: Any = True) -> type[Topology]:
    class IsolatedWordCount(Topology):
        sentences = Sentences.spec(isolated=spout_isolated)
        split = Split.spec(inputs=[sentences], par=2, isolated=options, crash_on="dwarfs")
        count = WordCounter.spec(inputs={split: Grouping.fields("word")}, par=2)

    return IsolatedWordCount


def judge(isolated: Any) -> type[Topology]:
    class Judge(Topology):
        numbers = Numbers.spec()
        judge = RejectOdd.spec(inputs=[numbers], isolated=isolated)
        tags = Tags.spec(inputs=[judge])

    return Judge


class Router(Bolt):
    """Asks where each tuple went (need_task_ids) and sends a copy straight to a task."""

    outputs = [Stream(["n"]), Stream(["n", "went"], name="direct", direct=True)]

    def initialize(self, conf: Any, context: Any) -> None:
        self.targets = context.get_component_tasks("direct_sink")

    def process(self, tup: Any) -> None:
        n = tup.values.n
        went = self.emit([n], need_task_ids=True)
        task = self.targets[n % len(self.targets)]
        self.emit([n, went], stream="direct", direct_task=task)


class Where(Bolt):
    """Records (n, task ids the router was told, the task that got it)."""

    def initialize(self, conf: Any, context: Any) -> None:
        self.got: list[Any] = []
        self.report_metric(f"got.{context.task_id}", self.got)

    def process(self, tup: Any) -> None:
        self.got.append(
            (
                tup.values[0],
                tuple(tup.values[1]) if len(tup.values) > 1 else None,
                self.context.task_id,
            )
        )


def routing(isolated: Any) -> type[Topology]:
    class Routing(Topology):
        numbers = Numbers.spec()
        router = Router.spec(inputs=[numbers], isolated=isolated)
        sink = Where.spec(inputs={router: Grouping.fields("n")}, par=3)
        direct_sink = Where.spec(inputs={router["direct"]: Grouping.DIRECT}, par=2)

    return Routing
