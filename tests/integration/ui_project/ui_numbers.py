"""The topology the cluster UI test submits (shipped alone: this folder is the project).

``Double`` and ``Sink`` are also the bolts of the local UI tests (``tests.ui_topologies``).

``numbers`` emits 1, 2, 3... with message ids at ``ui.rate`` per second;
``double`` fails multiples of ten with an error (so the UI has errors to show)
and emits 2n, plus n on ``odd`` for odd n; ``sink`` counts, as a user metric.
"""

from __future__ import annotations

import time
from typing import Any

from squall import Bolt, Grouping, Spout, Topology
from squall.api.stream import Stream


class Numbers(Spout):
    outputs = ["n"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.interval = 1.0 / float(conf.get("ui.rate") or 100)
        self.n = 0
        self.next_at = time.monotonic()

    def next_tuple(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = max(self.next_at + self.interval, now - 1.0)
        self.n += 1
        self.emit([self.n], tup_id=self.n)


class Double(Bolt):
    """Emits 2n on the default stream and n on "odd" for odd n; raises on multiples of 10."""

    outputs = [Stream(["n2"]), Stream(["n"], name="odd")]

    def process(self, tup: Any) -> None:
        n = tup.values.n
        if n % 10 == 0:
            raise ValueError(f"no multiples of ten please: {n}")
        self.emit([2 * n])
        if n % 2:
            self.emit([n], stream="odd")


class Sink(Bolt):
    """Counts what it sees and reports it as a user metric."""

    def initialize(self, conf: Any, context: Any) -> None:
        self.seen = 0

    def process(self, tup: Any) -> None:
        self.seen += 1
        self.report_metric("seen", self.seen)
        self.report_metric("by-stream", {tup.stream: self.seen})
        if self.seen == 1:
            self.log("first tuple arrived")


class UINumbers(Topology):
    numbers = Numbers.spec()
    double = Double.spec(inputs={numbers: Grouping.fields("n")}, par=2)
    sink = Sink.spec(inputs={double: Grouping.SHUFFLE, double["odd"]: Grouping.SHUFFLE})
