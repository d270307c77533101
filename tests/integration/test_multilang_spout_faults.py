"""Misbehaving shell spouts: detected, reported, restarted; the new child's tuples flow."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, LocalCluster, ShellSpout, Topology
from squall.runtime.stats import ErrorReport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CHILDREN = Path(__file__).resolve().parents[1] / "multilang"
TOTAL = 20
FAULTS = {
    "exit1": "exit code 1",
    "hang": "stopped answering",
    "bolt_command": "unknown command 'ack' for a spout",
    "not_list": "must be a list of values",
}


class Seen(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        self.seen: set[int] = set()
        self.report_metric("seen", self.seen)

    def process(self, tup: Any) -> None:
        self.seen.add(tup.values[0])


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    marks = tmp_path_factory.mktemp("spout-faults")
    specs: dict[str, Any] = {}
    for mode in FAULTS:
        specs[mode] = ShellSpout.spec(
            command=[sys.executable, "scripted_spout.py", mode, "5"],
            cwd=str(CHILDREN),
            env={"FAULT_ONCE": str(marks / mode)},
            outputs=["n"],
        )
        specs[f"{mode}_seen"] = Seen.spec(inputs=[specs[mode]])
    errors: list[ErrorReport] = []
    conf = {"topology.subprocess.timeout.secs": 1, "test.numbers": TOTAL}
    with LocalCluster() as cluster:
        run = cluster.submit(
            "spouts", type("Spouts", (Topology,), specs), conf, on_error=errors.append
        )

        def finished() -> bool:
            st = run.stats()
            return all(
                st[f"{m}_seen"].metrics.get("seen", set()) == set(range(TOTAL)) for m in FAULTS
            )

        cluster.wait_until(finished, timeout=30, interval=0.1)
        assert run.engine is not None
        shells = {
            t.component.context.component_id: t.component
            for ex in run.engine.executors
            for t in ex.tasks.values()
            if isinstance(t.component, ShellSpout)
        }
        yield {"errors": errors, "shells": shells}


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_a_faulty_spout_child_is_reported_and_restarted(outcome: dict[str, Any], mode: str) -> None:
    mine = [e for e in outcome["errors"] if e.component == mode]
    assert mine, f"no error reported for {mode}"
    assert f"[spouts] shell spout '{mode}' task {mine[0].task}" in mine[0].error
    assert FAULTS[mode] in mine[0].error
    assert outcome["shells"][mode].restarts >= 1
