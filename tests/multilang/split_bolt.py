"""An unmodified pystorm bolt (peers.md §2.1): splits sentences into words.

Run as ``python split_bolt.py [json|msgpack]``; "boom" makes it raise, which
pystorm turns into log, error, sync, fail and exit(1).
"""

import sys

from pystorm import Bolt


class SplitSentenceBolt(Bolt):
    outputs = ["word"]

    def initialize(self, conf, ctx):
        self.count = 0

    def process(self, tup):
        sentence = tup.values[0]
        if sentence == "boom":
            raise ValueError("boom requested")
        for word in sentence.split():
            self.emit([word])


if __name__ == "__main__":
    SplitSentenceBolt(serializer=sys.argv[1] if len(sys.argv) > 1 else "json").run()
