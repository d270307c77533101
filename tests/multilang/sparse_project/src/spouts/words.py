import time
from itertools import cycle

from streamparse import Spout

WORDS = ["dog", "cat", "zebra", "elephant"]


class WordSpout(Spout):
    """Emits test.words words (a cycle of four) with ids, then nothing."""

    outputs = ["word"]

    def initialize(self, stormconf, context):
        self.words = cycle(WORDS)
        self.left = int(stormconf.get("test.words", 100))
        self.n = 0

    def next_tuple(self):
        if self.n >= self.left:
            time.sleep(0.01)
            return
        self.emit([next(self.words)], tup_id=self.n)
        self.n += 1
