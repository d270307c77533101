"""Unmodified pystorm components (PyPI ``pystorm``), as a Storm user would write them.

Started by ``python -m squall.multilang.run pystorm_components:Class -s json|msgpack``,
which is what streamparse's ``streamparse_run`` does under Storm.
"""

import time
from collections import Counter

from pystorm import BatchingBolt, Bolt, ReliableSpout, Spout

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]


class SentenceSpout(ReliableSpout):
    """Emits sentence i with id i for i in 0..test.sentences-1; re-emits on fail."""

    def initialize(self, storm_conf, context):
        self.todo = iter(range(int(storm_conf["test.sentences"])))

    def next_tuple(self):
        i = next(self.todo, None)
        if i is None:
            time.sleep(0.001)
            return
        self.emit([SENTENCES[i % len(SENTENCES)]], tup_id=i)


class NumberSpout(Spout):
    """A plain pystorm Spout: emits 0..test.numbers-1 with ids, logs acks."""

    def initialize(self, storm_conf, context):
        self.todo = iter(range(int(storm_conf["test.numbers"])))

    def next_tuple(self):
        n = next(self.todo, None)
        if n is None:
            time.sleep(0.001)
            return
        self.emit([n], tup_id=str(n))

    def ack(self, tup_id):
        self.logger.debug("acked %s", tup_id)


class SplitSentenceBolt(Bolt):
    """pystorm's canonical bolt: auto-anchored emits, auto-ack."""

    def process(self, tup):
        for word in tup.values[0].split():
            self.emit([word])


class WordBatchBolt(BatchingBolt):
    """Counts words per batch (flushed on ticks) and emits [word, count] for each."""

    ticks_between_batches = 1

    def group_key(self, tup):
        return tup.values[0]

    def process_batch(self, key, tups):
        self.emit([key, len(tups)])


class EchoBolt(Bolt):
    """Emits each tuple unchanged (the benchmark's bolt: one emit + one ack)."""

    def process(self, tup):
        self.emit(tup.values)


class Counts(Bolt):
    """Counts words and emits running [word, count] (streamparse's quickstart bolt)."""

    def initialize(self, conf, ctx):
        self.counter = Counter()

    def process(self, tup):
        word = tup.values[0]
        self.counter[word] += 1
        self.emit([word, self.counter[word]])
