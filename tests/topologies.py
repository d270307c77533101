"""Topologies and components that several tests use, some in local worker processes.

Worker processes import these by name (``tests.topologies``), so they live at
module level here; ``tests/conftest.py`` puts the repository root on sys.path,
and workers inherit the parent's sys.path.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from typing import Any

from squall import Bolt, Grouping, LocalCluster, Spout, Topology, TopologyBuilder

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]

# Config keys the test components read (users may put their own keys in the config).
SENTENCE_COUNT = "test.sentences"
NUMBER_COUNT = "test.numbers"
SLOW_SECS = "test.slow.secs"


def sentence(i: int) -> str:
    """The i-th sentence the word-count spout emits (a fixed, known input)."""
    return SENTENCES[i % len(SENTENCES)]


def expected_word_counts(total: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for i in range(total):
        counts.update(sentence(i).split())
    return counts


class SentenceSpout(Spout):
    """Emits sentences 0..N-1 (split over its tasks), each with a message id, then stops."""

    outputs = ["sentence"]

    def initialize(self, conf: Any, context: Any) -> None:
        total = int(conf[SENTENCE_COUNT])
        n = len(context.get_component_tasks(context.component_id))
        self.todo = iter(range(context.task_index, total, n))

    def next_tuple(self) -> None:
        i = next(self.todo, None)
        if i is not None:
            self.emit([sentence(i)], tup_id=i)


class SplitBolt(Bolt):
    outputs = ["word"]

    def process(self, tup: Any) -> None:
        for word in tup.values.sentence.split():
            self.emit([word])


class CountBolt(Bolt):
    """Counts words; publishes its counts as the metric ``counts.<task>``."""

    outputs = ["word", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.metric = f"counts.{context.task_id}"

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts[word] += 1
        self.report_metric(self.metric, self.counts)
        self.emit([word, self.counts[word]])


class WordCount(Topology):
    sentences = SentenceSpout.spec(par=2)
    split = SplitBolt.spec(inputs=[sentences], par=3)
    count = CountBolt.spec(inputs={split: Grouping.fields("word")}, par=3)


def final_counts(metrics: Any) -> Counter[str]:
    total: Counter[str] = Counter()
    for name, counts in metrics.items():
        if name.startswith("counts."):
            total.update(counts)
    return total


class NumberSpout(Spout):
    """Emits 0..N-1 with message ids; publishes the ids acked and failed.

    The metrics are named by ``acked_metric`` and ``failed_metric``.
    """

    outputs = ["n"]
    acked_metric = "acked_ids"
    failed_metric = "failed_ids"

    def initialize(self, conf: Any, context: Any) -> None:
        self.todo = iter(range(int(conf[NUMBER_COUNT])))
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.report_metric(self.acked_metric, self.acked)
        self.report_metric(self.failed_metric, self.failed)

    def next_tuple(self) -> None:
        n = next(self.todo, None)
        if n is not None:
            self.emit([n], tup_id=n)

    def ack(self, tup_id: Any) -> None:
        self.acked.append(tup_id)

    def fail(self, tup_id: Any) -> None:
        self.failed.append(tup_id)


class RelayBolt(Bolt):
    outputs = ["n"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values.n])


class RejectOddBolt(Bolt):
    """Raises on odd numbers: the error is reported and the tuple fails."""

    outputs = ["n"]

    def process(self, tup: Any) -> None:
        n = tup.values.n
        if n % 2:
            raise ValueError(f"odd number {n}")


class Judge(Topology):
    numbers = NumberSpout.spec()
    relay = RelayBolt.spec(inputs=[numbers], par=2)
    judge = RejectOddBolt.spec(inputs=[relay], par=2)


class FloodSpout(Spout):
    """Emits as fast as it is allowed to, forever."""

    outputs = ["n"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.n = itertools.count()

    def next_tuple(self) -> None:
        self.emit([next(self.n)])


class SlowBolt(Bolt):
    """Takes ``test.slow.secs`` per tuple."""

    def initialize(self, conf: Any, context: Any) -> None:
        self.delay = float(conf[SLOW_SECS])

    def process(self, tup: Any) -> None:
        time.sleep(self.delay)


class Flood(Topology):
    flood = FloodSpout.spec()
    slow = SlowBolt.spec(inputs=[flood])


class BrokenInit(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        raise RuntimeError("cannot open the database")


class BrokenStart(Topology):
    flood = FloodSpout.spec()
    broken = BrokenInit.spec(inputs=[flood])


class CrashBolt(Bolt):
    """Ends its worker process abruptly (as a segfault in an extension would) on tuple 1000."""

    def process(self, tup: Any) -> None:
        if tup.values.n == 1000:
            os._exit(7)


class Crash(Topology):
    flood = FloodSpout.spec()
    crash = CrashBolt.spec(inputs=[flood])


class AckOnTick(Bolt):
    """Holds tuples until the next tick, like a batching bolt."""

    auto_ack = False

    def initialize(self, conf: Any, context: Any) -> None:
        self.held: list[Any] = []

    def process(self, tup: Any) -> None:
        self.held.append(tup)

    def process_tick(self, tup: Any) -> None:
        for t in self.held:
            self.ack(t)
        self.held = []


def ticked(spout: tuple[str, Any], bolt: tuple[str, Any], tick_secs: float) -> TopologyBuilder:
    """``(name, spout)`` shuffled to ``(name, bolt)``; the bolt gets a tick every ``tick_secs``."""
    b = TopologyBuilder()
    b.set_spout(*spout)
    b.set_bolt(*bolt).shuffle_grouping(spout[0]).add_configuration(
        "topology.tick.tuple.freq.secs", tick_secs
    )
    return b


def run_until_killed(workers: int) -> None:
    """Start Flood in ``workers`` processes, print the worker pids, and wait forever.

    Run as a separate process by a test that then kills it with SIGKILL.
    """
    cluster = LocalCluster()
    run = cluster.submit(
        "orphans",
        Flood,
        {"topology.workers": workers, "topology.acker.executors": 0, SLOW_SECS: 0.001},
    )
    print(" ".join(str(p) for p in run._workers.pids), flush=True)
    while True:
        time.sleep(1)
