"""Reliable word count: failures are replayed and the counts still come out exact.

The spout gives every sentence a message id, so Squall tracks the tree of
tuples each sentence causes (the sentence, then its words) and calls the
spout's ``ack(id)`` once all of them were processed, or ``fail(id)`` as soon as
one failed (or after ``topology.message.timeout.secs``). ``ReliableSpout``
re-emits a sentence when it fails.

``CountBolt`` plays a flaky store: the first time it sees some words it raises
``FailedError``, which fails the tuple, and with it the whole sentence, without
reporting an error. The replayed sentence brings back words that were already
counted, so the bolt remembers which (sentence id, position) pairs it counted:
at-least-once delivery plus an idempotent update gives exact counts.

The spout emits the corpus ``ROUNDS`` times (``-c reliable_wordcount.rounds=N``
changes it) and then goes quiet, so the totals can be checked by hand.

Run it with ``squall run examples/reliable_wordcount.py --duration 5``.
"""

from __future__ import annotations

from collections import Counter

from squall import Bolt, FailedError, Grouping, ReliableSpout, Topology

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]
ROUNDS = 200
#: One word position in FAIL_EVERY fails the first time the count bolt sees it.
FAIL_EVERY = 10


def sentence(sentence_id):
    """The sentence a message id stands for."""
    return SENTENCES[sentence_id % len(SENTENCES)]


class SentenceSpout(ReliableSpout):
    """Emits sentence ids 0..ROUNDS*len(SENTENCES)-1, split over its tasks, with replay."""

    outputs = ["id", "sentence"]

    def initialize(self, conf, context):
        total = int(conf.get("reliable_wordcount.rounds", ROUNDS)) * len(SENTENCES)
        ntasks = len(context.get_component_tasks(context.component_id))
        self.todo = iter(range(context.task_index, total, ntasks))
        self.emitting = True

    def next_tuple(self):
        sentence_id = next(self.todo, None)
        if sentence_id is None:
            self.emitting = False
            return
        self.emit([sentence_id, sentence(sentence_id)], tup_id=sentence_id)

    def is_exhausted(self):
        """True once every sentence was emitted and none is waiting for ack or replay."""
        return not self.emitting and not self.unacked_tuples


class SplitBolt(Bolt):
    """Splits a sentence into words; each word is anchored to the sentence (automatic)."""

    outputs = ["id", "pos", "word"]

    def process(self, tup):
        sentence_id, text = tup.values
        for pos, word in enumerate(text.split()):
            self.emit([sentence_id, pos, word])


class CountBolt(Bolt):
    """Counts each (sentence id, position) once, however often it is replayed."""

    outputs = ["word", "count"]

    def initialize(self, conf, context):
        self.counts = Counter()
        self.counted = set()
        self.tried = set()

    def process(self, tup):
        sentence_id, pos, word = tup.values
        key = (sentence_id, pos)
        if key in self.counted:
            return  # A replay of a word already counted: just ack it (automatic).
        if (sentence_id * 7 + pos) % FAIL_EVERY == 0 and key not in self.tried:
            self.tried.add(key)
            raise FailedError(f"store busy, could not count {word!r}")
        self.counted.add(key)
        self.counts[word] += 1
        self.emit([word, self.counts[word]])


class ReliableWordCount(Topology):
    sentences = SentenceSpout.spec(par=2)
    split = SplitBolt.spec(inputs=[sentences], par=2)
    count = CountBolt.spec(inputs={split: Grouping.fields("word")}, par=2)
