"""Topologies the UI tests run in real time (also in local worker processes).

Worker processes import them by name (``tests.ui_topologies``), so they live at
module level. Config keys let each test choose the traffic.
"""

from __future__ import annotations

import time
from typing import Any

from tests.integration.ui_project.ui_numbers import Double, Sink

from squall import Grouping, Spout, Topology

__all__ = ["COUNT", "RATE", "Double", "Numbers", "NumbersTopology", "Sink"]

#: How many numbers the spout emits in all (None: forever).
COUNT = "test.ui.count"
#: Numbers per second, across the spout's tasks (None: as fast as it can).
RATE = "test.ui.rate"


class Numbers(Spout):
    """Emits 1, 2, 3... with message ids, at a steady rate, up to a count."""

    outputs = ["n"]

    def initialize(self, conf: Any, context: Any) -> None:
        tasks = len(context.get_component_tasks(context.component_id))
        self.count = conf.get(COUNT)
        rate = conf.get(RATE)
        self.interval = tasks / float(rate) if rate else 0.0
        self.next_n = context.task_index + 1
        self.step = tasks
        self.next_at = time.monotonic()

    def next_tuple(self) -> None:
        if self.count is not None and self.next_n > self.count:
            return
        if self.interval:
            now = time.monotonic()
            if now < self.next_at:
                return
            self.next_at = max(self.next_at + self.interval, now - 1.0)
        self.emit([self.next_n], tup_id=self.next_n)
        self.next_n += self.step


class NumbersTopology(Topology):
    numbers = Numbers.spec()
    double = Double.spec(inputs={numbers: Grouping.fields("n")}, par=2)
    sink = Sink.spec(inputs={double: Grouping.SHUFFLE, double["odd"]: Grouping.SHUFFLE})
