import json
import os
from collections import Counter

from streamparse import Bolt


class WordCountBolt(Bolt):
    """streamparse's quickstart bolt; also writes its counts to test.out/<task>.json."""

    outputs = ["word", "count"]

    def initialize(self, conf, ctx):
        self.counter = Counter()
        self.out = os.path.join(conf["test.out"], f"{ctx['taskid']}.json")

    def process(self, tup):
        word = tup.values[0]
        self.counter[word] += 1
        self.emit([word, self.counter[word]])
        with open(self.out, "w") as f:
            json.dump(self.counter, f)
