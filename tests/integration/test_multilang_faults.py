"""Misbehaving shell components (reliability plan T5): detected, reported, restarted, nothing lost.

One topology runs a shell bolt per fault, all fed by one reliable spout, so
every case runs at the same time. Each child misbehaves once (after a few
tuples); the restarted child is healthy. Every case must leave an error naming
the topology, component, task and reason, a dead (reaped) first child, and a
sink that saw every spout tuple.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, LocalCluster, ReliableSpout, ShellBolt, Topology
from squall.runtime.stats import ErrorReport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CHILDREN = Path(__file__).resolve().parents[1] / "multilang"
TOTAL = 30
AFTER = 5

# fault mode -> what the error must say
FAULTS = {
    "invalid_json": "invalid JSON",
    "no_command": "no 'command'",
    "unknown_command": "unknown command 'explode'",
    "tuple_not_list": "must be a list of values",
    "undeclared_stream": "undeclared stream 'nowhere'",
    "wrong_fields": "declares 1 field(s)",
    "ack_unknown": "unknown or already acked/failed",
    "no_end_silence": "stopped answering",
    "ignore_heartbeat": "stopped answering",
    "exit1": "exit code 1",
    "segv": "killed by SIGSEGV",
    "huge_line": "without an 'end' line",
    "no_handshake": "never completed the handshake",
    "non_utf8": "not valid UTF-8",
}
# Faults in a message the child sent: the error quotes that message.
QUOTES_INPUT = {
    "invalid_json",
    "no_command",
    "unknown_command",
    "tuple_not_list",
    "undeclared_stream",
    "wrong_fields",
    "ack_unknown",
    "huge_line",
}


class Numbers(ReliableSpout):
    """0..TOTAL-1 with ids; failed ids are re-emitted (as often as it takes)."""

    outputs = ["n"]
    max_fails = 1000

    def initialize(self, conf: Any, context: Any) -> None:
        self.todo = iter(range(TOTAL))
        self.done: set[int] = set()
        self.report_metric("acked", self.done)

    def next_tuple(self) -> None:
        n = next(self.todo, None)
        if n is not None:
            self.emit([n], tup_id=n)

    def ack(self, tup_id: Any) -> None:
        super().ack(tup_id)
        self.done.add(tup_id)


class Seen(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        self.seen: set[int] = set()
        self.report_metric("seen", self.seen)

    def process(self, tup: Any) -> None:
        self.seen.add(tup.values[0])


def fault_topology(marks: Path, modes: list[str]) -> type[Topology]:
    specs: dict[str, Any] = {"numbers": Numbers.spec()}
    for mode in modes:
        specs[mode] = ShellBolt.spec(
            command=[sys.executable, "scripted_child.py", mode, str(AFTER)],
            cwd=str(CHILDREN),
            env={"FAULT_ONCE": str(marks / mode)},
            inputs=[specs["numbers"]],
            outputs=["n"],
        )
        specs[f"{mode}_seen"] = Seen.spec(inputs=[specs[mode]])
    return type("Faults", (Topology,), specs)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    marks = tmp_path_factory.mktemp("faults")
    errors: list[ErrorReport] = []
    modes = [*FAULTS, "stderr_flood"]
    conf = {
        "topology.subprocess.timeout.secs": 1,
        "topology.max.spout.pending": 10,
        "topology.message.timeout.secs": 60,
    }
    with LocalCluster() as cluster:
        run = cluster.submit("faults", fault_topology(marks, modes), conf, on_error=errors.append)
        seen: dict[str, Any] = {}

        def finished() -> bool:
            st = run.stats()
            seen.update({m: st[f"{m}_seen"].metrics.get("seen", set()) for m in modes})
            return len(st["numbers"].metrics["acked"]) == TOTAL

        cluster.wait_until(finished, timeout=60, interval=0.1)
        assert run.engine is not None
        shells = {
            t.component.context.component_id: t.component
            for ex in run.engine.executors
            for t in ex.tasks.values()
            if isinstance(t.component, ShellBolt)
        }
        yield {"errors": errors, "seen": seen, "shells": shells, "marks": marks}


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_a_faulty_child_is_reported_restarted_and_loses_nothing(
    outcome: dict[str, Any], mode: str
) -> None:
    assert (outcome["marks"] / mode).exists(), "the fault was never triggered"
    mine = [e for e in outcome["errors"] if e.component == mode]
    assert mine, f"no error reported for {mode}"
    first = mine[0]
    text = first.error
    assert first.topology == "faults" and first.task > 0
    assert f"[faults] shell bolt '{mode}' task {first.task}" in text
    assert FAULTS[mode] in text
    assert "restarting the child" in text
    # Offending input is quoted, truncated to about 1 KiB.
    if mode in QUOTES_INPUT:
        assert "offending input:" in text
    if "offending input:" in text:
        quoted = text.split("offending input:", 1)[1].split("; pid ", 1)[0]
        assert len(quoted) <= 1200
    pid = int(re.search(r"; pid (\d+),", text).group(1))  # type: ignore[union-attr]
    assert not _alive(pid), f"first child {pid} of {mode} is still there"
    shell = outcome["shells"][mode]
    assert shell.restarts >= 1
    assert shell.child_pid is not None and _alive(shell.child_pid)
    assert outcome["seen"][mode] == set(range(TOTAL))


def test_a_child_flooding_stderr_neither_blocks_nor_is_restarted(outcome: dict[str, Any]) -> None:
    assert (outcome["marks"] / "stderr_flood").exists()
    assert not [e for e in outcome["errors"] if e.component == "stderr_flood"]
    shell = outcome["shells"]["stderr_flood"]
    assert shell.restarts == 0
    # About a million 1 KiB lines went by; a rate-limited handful were logged.
    assert shell._proc.stderr_skipped > 900_000
    assert outcome["seen"]["stderr_flood"] == set(range(TOTAL))
