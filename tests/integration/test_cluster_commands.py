"""A real cluster on loopback (ZooKeeper + nimbus + 2 supervisors) runs the ledger word count
and obeys every command: submit, list, activate, deactivate, rebalance, kill."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.chaos import ledger
from tests.chaos.harness import Cluster, is_worker, running_cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

SENTENCES = 3000


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(supervisors=2, slots=2) as c:
        yield c


def test_the_word_count_runs_with_exact_results_through_every_command(cluster: Cluster) -> None:
    folder = cluster.ledger("ledger")
    assert cluster.squall("list").stdout == "No topologies running.\n"

    # submit --inactive: the workers start, the spouts do not.
    out = cluster.submit_ledger("ledger", SENTENCES, 2, "--inactive", conf={"ledger.rate": 250})
    assert "Submitted topology 'ledger'" in out
    wait_until(lambda: cluster.running_workers("ledger") == 2, 60, "2 running workers")
    a = cluster.assignment("ledger")
    assert len({w.node for w in a.workers}) == 2, "the even scheduler uses both supervisors"
    time.sleep(1.0)
    assert ledger.emits(folder) == 0
    listing = cluster.squall("list").stdout.splitlines()
    assert listing[0].split() == [
        "Topology_name",
        "Status",
        "Num_tasks",
        "Num_workers",
        "Uptime_secs",
        "Topology_Id",
        "Owner",
    ]
    name, status, tasks, workers, *_ = listing[2].split()
    assert (name, status, tasks, workers) == ("ledger", "INACTIVE", "12", "2")

    # activate, then deactivate part way: emits stop.
    assert cluster.squall("activate", "ledger").stdout == "Activated topology: ledger\n"
    wait_until(lambda: ledger.acked_count(folder) >= 300, 30, "300 acks")
    assert cluster.squall("deactivate", "ledger").stdout == "Deactivated topology: ledger\n"
    time.sleep(0.5)
    stopped_at = ledger.emits(folder)
    time.sleep(1.0)
    assert ledger.emits(folder) == stopped_at < SENTENCES

    # activate again, and rebalance to 3 workers while tuples flow.
    cluster.squall("activate", "ledger")
    wait_until(lambda: ledger.emits(folder) >= SENTENCES // 2, 30, "half the sentences")
    out = cluster.squall("rebalance", "ledger", "-n", "3", "-e", "split=2", "-w", "0.5")
    assert out.stdout == "Topology ledger is rebalancing\n"
    wait_until(lambda: len(cluster.assignment("ledger").workers) == 3, 30, "3 assigned workers")
    wait_until(lambda: cluster.running_workers("ledger") == 3, 60, "3 running workers")

    wait_until(lambda: ledger.acked_count(folder) == SENTENCES, 90, "every sentence acked")
    report = ledger.verdict(folder, SENTENCES)
    assert report["pass"], report
    assert ledger.word_counts(folder) == ledger.expected_counts(SENTENCES)

    # kill: spouts off at once, everything gone after the wait.
    tid = cluster.topology_id("ledger")
    pids = list(cluster.live_worker_pids().values())
    # The wait is long enough for a `squall list` process to start on a loaded machine.
    assert cluster.squall("kill", "ledger", "-w", "12").stdout == "Killed topology: ledger\n"
    assert "KILLED" in cluster.squall("list").stdout
    wait_until(
        lambda: cluster.squall("list").stdout == "No topologies running.\n", 30, "the removal"
    )
    wait_until(lambda: not any(is_worker(p) for p in pids), 30, "every worker to exit")
    state = cluster.state()
    for folder_name in ("storms", "assignments", "workerbeats", "errors"):
        assert state.store.children(state.path(folder_name)) == [], folder_name
    for sup in cluster.supervisors:
        wait_until(
            lambda sup=sup: not (sup.dir / "supervisor" / "stormdist" / tid).exists(),
            10,
            "the supervisor to delete the code",
        )


def test_a_topology_name_in_use_is_refused_with_a_clear_message(cluster: Cluster) -> None:
    cluster.submit_ledger("twice", 10, 1)
    try:
        proc = cluster.squall(
            "submit",
            "tests/chaos/ledger_project/ledger_wordcount.py",
            "--name",
            "twice",
            check=False,
        )
        assert proc.returncode == 1
        assert "topology 'twice' is already running" in proc.stderr
    finally:
        cluster.squall("kill", "twice", "-w", "0")


def test_an_invalid_topology_is_refused_before_anything_is_sent(cluster: Cluster) -> None:
    proc = cluster.squall("submit", "tests/chaos/no_such_file.py", check=False)
    assert proc.returncode == 1
    assert "no such file" in proc.stderr
    proc = cluster.squall("kill", "nothing-here", check=False)
    assert proc.returncode == 1
    assert "topology 'nothing-here' is not running" in proc.stderr
    assert cluster.state().storm_bases() == {}


def _wheel(folder: Path, name: str, version: str, module_source: str) -> Path:
    """A minimal pure-Python wheel (so pip needs no index and builds nothing)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module_source,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for arc, text in files.items():
            z.writestr(arc, text)
        z.writestr(f"{dist}/RECORD", record)
    return path


PROJECT = """
import os
from squall import Bolt, Spout, Topology


class Once(Spout):
    outputs = ["x"]

    def initialize(self, conf, context):
        self.sent = False

    def next_tuple(self):
        if not self.sent:
            self.sent = True
            self.emit([1])


class UsesDep(Bolt):
    def initialize(self, conf, context):
        import tinydep  # installed from requirements.txt on the supervisor only

        self.value = tinydep.VALUE
        self.out = conf["test.out"]

    def process(self, tup):
        with open(self.out, "w") as f:
            f.write(str(self.value))


class Boom(Bolt):
    def process(self, tup):
        raise ValueError("boom from the cluster")


class WithRequirements(Topology):
    once = Once.spec()
    use = UsesDep.spec(inputs=[once])
    boom = Boom.spec(inputs=[once])
"""


def test_a_project_with_requirements_gets_its_own_virtualenv_and_errors_are_recorded(
    cluster: Cluster, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "topo.py").write_text(PROJECT)
    wheel = _wheel(project, "tinydep", "1.0", "VALUE = 42\n")
    (project / "requirements.txt").write_text(f"./{wheel.name}\n")
    out = tmp_path / "out.txt"
    cluster.squall("submit", str(project / "topo.py"), "--name", "reqs", "-c", f"test.out={out}")
    try:
        wait_until(lambda: out.is_file() and out.read_text() == "42", 120, "the bolt's output")
        tid = cluster.topology_id("reqs")
        venvs = [sup.dir / "supervisor" / "stormdist" / tid / "venv" for sup in cluster.supervisors]
        assert any((v / "bin" / "python").exists() for v in venvs)
        # Errors raised in workers are recorded in ZooKeeper, per component.
        errors = wait_until(lambda: cluster.state().errors(tid).get("boom"), 30, "the error")
        assert "ValueError: boom from the cluster" in errors[0].error
    finally:
        cluster.squall("kill", "reqs", "-w", "0")
