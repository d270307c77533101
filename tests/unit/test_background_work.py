"""Components fed from outside the engine (child processes, sockets) get run when work arrives."""

from __future__ import annotations

from collections import deque
from typing import Any

from squall import Bolt, Spout, Topology
from squall.api.topology import as_definition
from squall.runtime.clock import SimulatedClock
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan

ARRIVED: deque[str] = deque()
SEEN: list[str] = []


class Quiet(Spout):
    outputs = ["x"]


class Outside(Bolt):
    """Emits what 'arrives from outside' (a deque standing in for a child's stdout)."""

    outputs = ["line"]

    def squall_pending(self) -> bool:
        return bool(ARRIVED)

    def squall_drain(self) -> int:
        n = 0
        while ARRIVED:
            line = ARRIVED.popleft()
            if line == "boom":
                raise RuntimeError("child said boom")
            self.emit([line])
            n += 1
        return n


class Collect(Bolt):
    def process(self, tup: Any) -> None:
        SEEN.append(tup.values.line)


class T(Topology):
    quiet = Quiet.spec()
    outside = Outside.spec(inputs=[quiet])
    collect = Collect.spec(inputs=[outside])


def _engine() -> Engine:
    d = as_definition(T).with_config({"topology.acker.executors": 0})
    eng = Engine(make_plan(d, d.config), clock=SimulatedClock())
    eng.start()
    return eng


def _run_to_idle(eng: Engine) -> None:
    for _ in range(100):
        if eng.run_once() == 0 and not eng.pending_work():
            break


def test_a_component_with_outside_work_is_run_when_that_work_arrives() -> None:
    ARRIVED.clear()
    SEEN.clear()
    eng = _engine()
    _run_to_idle(eng)
    assert SEEN == []
    ARRIVED.extend(["a", "b"])
    _run_to_idle(eng)
    assert SEEN == ["a", "b"]


def test_an_error_while_draining_outside_work_is_reported_for_the_task() -> None:
    ARRIVED.clear()
    SEEN.clear()
    eng = _engine()
    ARRIVED.extend(["boom"])
    _run_to_idle(eng)
    assert eng.error_count == 1
    assert eng.errors[0].component == "outside"
    assert "child said boom" in eng.errors[0].error
