"""The word count of ``bench/wordcount.py`` as a cluster topology (``bench/cluster_wordcount.py``).

The spout stops after its share of ``bench.sentences``; spout and count tasks
write their progress (acked sentences, counted words) to files in ``bench.out``
every few tens of milliseconds, so the bench can stop its clock without asking
the cluster.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

from squall import Bolt, Grouping, Spout, Topology

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]
EVERY_SECS = 0.02


def _write(path: str, value: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(value))
    os.replace(tmp, path)


class SentenceSpout(Spout):
    outputs = ["sentence"]

    def initialize(self, conf: Any, context: Any) -> None:
        ntasks = len(context.get_component_tasks(context.component_id))
        self.todo = iter(range(context.task_index, int(conf["bench.sentences"]), ntasks))
        self.reliable = bool(conf["bench.reliable"])
        self.path = os.path.join(conf["bench.out"], f"spout-{context.task_id}")
        self.done = 0
        self.last = 0.0
        _write(self.path, 0)

    def next_tuple(self) -> None:
        i = next(self.todo, None)
        if i is None:
            now = time.monotonic()
            if now - self.last > EVERY_SECS:
                self.last = now
                _write(self.path, self.done)
            return
        if self.reliable:
            self.emit([SENTENCES[i % 5]], tup_id=i)
        else:
            self.done += 1
            self.emit([SENTENCES[i % 5]])

    def ack(self, tup_id: Any) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last > EVERY_SECS:
            self.last = now
            _write(self.path, self.done)

    def deactivate(self) -> None:
        _write(self.path, self.done)


class SplitBolt(Bolt):
    outputs = ["word"]

    def process(self, tup: Any) -> None:
        for word in tup.values.sentence.split():
            self.emit([word])


class CountBolt(Bolt):
    outputs = ["word", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.n = 0
        self.path = os.path.join(conf["bench.out"], f"count-{context.task_id}")
        _write(self.path, 0)

    def process_tick(self, tup: Any) -> None:
        _write(self.path, self.n)

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts[word] += 1
        self.n += 1
        self.emit([word, self.counts[word]])


class ClusterWordCount(Topology):
    sentences = SentenceSpout.spec(par=2)
    split = SplitBolt.spec(inputs=[sentences], par=2)
    count = CountBolt.spec(
        inputs={split: Grouping.fields("word")},
        par=2,
        config={"topology.tick.tuple.freq.secs": EVERY_SECS},
    )
