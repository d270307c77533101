"""Exclamation: words -> exclaim -> exclaim, Storm's ExclamationTopology.

Each ``ExclamationBolt`` appends "!!!", so every word leaves the second bolt
as, for example, ``"golda!!!!!!"``. Shuffle grouping spreads the words over
the bolts' tasks.

Run it with ``squall run examples/exclamation.py``.
"""

from __future__ import annotations

import random

from squall import Bolt, Spout, Topology

WORDS = ["nathan", "mike", "jackson", "golda", "bertels"]


class WordSpout(Spout):
    """Emits random words from a short list, forever (Storm's TestWordSpout)."""

    outputs = ["word"]

    def initialize(self, conf, context):
        # Seeded by task id: each task emits its own, repeatable, sequence.
        self.rng = random.Random(context.task_id)

    def next_tuple(self):
        self.emit([self.rng.choice(WORDS)])


class ExclamationBolt(Bolt):
    """Appends "!!!" to each word."""

    outputs = ["word"]

    def process(self, tup):
        self.emit([tup.values.word + "!!!"])


class Exclamation(Topology):
    word = WordSpout.spec(par=10)
    exclaim1 = ExclamationBolt.spec(inputs=[word], par=3)
    exclaim2 = ExclamationBolt.spec(inputs=[exclaim1], par=2)
