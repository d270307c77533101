"""Liveness without Storm's heartbeat kills, and a pystorm component's own error path.

A child busy computing for longer than ``topology.subprocess.timeout.secs`` is
healthy and must be left alone; a child silent and idle that long is hung.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, LocalCluster, ReliableSpout, ShellBolt, Topology
from squall.runtime.stats import ErrorReport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CHILDREN = Path(__file__).resolve().parents[1] / "multilang"
TOTAL = 10


class Items(ReliableSpout):
    outputs = ["item"]
    max_fails = 100

    def initialize(self, conf: Any, context: Any) -> None:
        self.todo = iter(conf["test.items"])
        self.done: set[Any] = set()
        self.report_metric("acked", self.done)

    def next_tuple(self) -> None:
        item = next(self.todo, None)
        if item is not None:
            self.emit([item], tup_id=item)

    def ack(self, tup_id: Any) -> None:
        super().ack(tup_id)
        self.done.add(tup_id)


class Seen(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        self.seen: list[Any] = []
        self.report_metric("seen", self.seen)

    def process(self, tup: Any) -> None:
        self.seen.append(tup.values[0])


def _topology(command: list[str], env: dict[str, str] | None = None) -> type[Topology]:
    items = Items.spec()
    shell = ShellBolt.spec(
        command=command, cwd=str(CHILDREN), env=env, inputs=[items], outputs=["item"]
    )
    seen = Seen.spec(inputs=[shell])
    return type("T", (Topology,), {"items": items, "shell": shell, "seen": seen})


@pytest.fixture
def real_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        yield c


def _run(cluster: LocalCluster, topology: type[Topology], items: list[Any]) -> Any:
    errors: list[ErrorReport] = []
    conf = {"topology.subprocess.timeout.secs": 1, "test.items": items}
    run = cluster.submit("live", topology, conf, on_error=errors.append)
    cluster.wait_until(lambda: len(run.stats()["items"].metrics["acked"]) == len(items), 30)
    assert run.engine is not None
    shell = next(
        t.component
        for ex in run.engine.executors
        for t in ex.tasks.values()
        if isinstance(t.component, ShellBolt)
    )
    return run, errors, shell


def test_a_child_busy_computing_longer_than_the_timeout_is_not_killed(
    real_cluster: LocalCluster,
) -> None:
    run, errors, shell = _run(
        real_cluster, _topology([sys.executable, "scripted_child.py", "busy"]), list(range(TOTAL))
    )
    assert errors == []
    assert shell.restarts == 0
    assert sorted(run.stats()["seen"].metrics["seen"]) == list(range(TOTAL))


def test_a_child_silent_and_idle_longer_than_the_timeout_is_hung(
    real_cluster: LocalCluster, tmp_path: Path
) -> None:
    command = [sys.executable, "scripted_child.py", "sleepy", "2"]
    topology = _topology(command, env={"FAULT_ONCE": str(tmp_path / "slept")})
    run, errors, shell = _run(real_cluster, topology, list(range(TOTAL)))
    assert shell.restarts >= 1
    assert "silent and using no CPU" in errors[0].error
    assert set(run.stats()["seen"].metrics["seen"]) == set(range(TOTAL))


def test_a_pystorm_exception_fails_the_tuple_reports_it_and_the_child_is_restarted(
    real_cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    items = ["a b", "boom", "c d"]
    command = [sys.executable, "split_bolt.py"]
    items_spec = Items.spec()
    shell = ShellBolt.spec(command=command, cwd=str(CHILDREN), inputs=[items_spec], outputs=["w"])
    seen = Seen.spec(inputs=[shell])
    topology = type("T", (Topology,), {"items": items_spec, "shell": shell, "seen": seen})
    errors: list[ErrorReport] = []
    conf = {"test.items": items}
    run = real_cluster.submit("boom", topology, conf, on_error=errors.append)
    # "boom" fails every time (pystorm exits after it); the others are acked.
    real_cluster.wait_until(
        lambda: (
            run.stats()["items"].metrics["acked"] == {"a b", "c d"}
            and run.stats()["items"].failed >= 2
        ),
        30,
    )
    texts = [e.error for e in errors]
    # The child's own report (pystorm's "error" command), then the exit it caused.
    assert any("ShellError: Shell Process Exception: Python ValueError" in t for t in texts)
    assert any("boom requested" in t for t in texts)
    assert any("the child exited" in t and "exit code 1" in t for t in texts)
    assert all(e.component == "shell" for e in errors)
    # pystorm's log commands arrive in Squall's logging, tagged with component and task.
    logs = [r for r in caplog.records if r.name.startswith("squall.boom.shell.")]
    assert any("StormHandler logging enabled" in r.getMessage() for r in logs)
    assert any(r.levelno == logging.ERROR and "boom requested" in r.getMessage() for r in logs)
