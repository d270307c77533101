"""Starting a topology is all or nothing: a failed initialize undoes what already started."""

from __future__ import annotations

from typing import Any

import pytest

from squall import Bolt, Spout, Topology
from squall.api.topology import as_definition
from squall.runtime.clock import SimulatedClock
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan

EVENTS: list[str] = []


class Source(Spout):
    outputs = ["x"]

    def initialize(self, conf: Any, context: Any) -> None:
        EVENTS.append("spout up")

    def close(self) -> None:
        EVENTS.append("spout closed")


class Broken(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        raise OSError("cannot open the database")


class T(Topology):
    a_source = Source.spec()
    broken = Broken.spec(inputs=[a_source])


def test_a_failed_initialize_closes_the_components_that_already_started() -> None:
    EVENTS.clear()
    d = as_definition(T).with_config({"topology.acker.executors": 0})
    eng = Engine(make_plan(d, d.config), clock=SimulatedClock())
    with pytest.raises(RuntimeError, match=r"'broken' task \d+: initialize failed: OSError"):
        eng.start()
    assert EVENTS == ["spout up", "spout closed"]
