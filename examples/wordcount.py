"""Word count: sentences -> split -> count, the "hello world" of Storm.

Run it with ``squall run examples/wordcount.py`` (or ``make run``).
"""

from __future__ import annotations

import itertools
from collections import Counter

from squall import Bolt, Grouping, Spout, Topology

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]


class SentenceSpout(Spout):
    """Cycles through a few sentences forever."""

    outputs = ["sentence"]

    def initialize(self, conf, context):
        self.sentences = itertools.cycle(SENTENCES)

    def next_tuple(self):
        self.emit([next(self.sentences)])


class SplitBolt(Bolt):
    """Splits each sentence into words."""

    outputs = ["word"]

    def process(self, tup):
        for word in tup.values.sentence.split():
            self.emit([word])


class CountBolt(Bolt):
    """Keeps a running count per word and emits it."""

    outputs = ["word", "count"]

    def initialize(self, conf, context):
        self.counts = Counter()

    def process(self, tup):
        word = tup.values.word
        self.counts[word] += 1
        self.emit([word, self.counts[word]])


class WordCount(Topology):
    """Sentences are shuffled over the split tasks; each word always goes to the same counter."""

    sentences = SentenceSpout.spec(par=2)
    split = SplitBolt.spec(inputs=[sentences], par=2)
    count = CountBolt.spec(inputs={split: Grouping.fields("word")}, par=2)
