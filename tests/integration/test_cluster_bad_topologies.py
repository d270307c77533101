"""Bad topologies are refused at submit and leave nothing behind (reliability plan T6).

A real cluster (ZooKeeper, nimbus, a supervisor). Each invalid topology in
``bad_project/bad_topologies.py``, and a config value of the wrong type, is refused by
``squall submit`` with a message naming the component, stream, field or key at
fault. Afterwards ZooKeeper holds no topology node, nimbus keeps no upload and no
worker was started. A topology with a cycle, which Storm allows, is accepted and runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.chaos.harness import Cluster, running_cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FILE = Path(__file__).resolve().parent / "bad_project" / "bad_topologies.py"

CASES = [
    ("UnknownComponent", [], "component 'echo': subscribes to unknown component 'nowhere'"),
    ("UnknownStream", [], "component 'echo': subscribes to stream 'side' of 'words'"),
    ("UndeclaredField", [], "groups words:default by field 'colour'"),
    ("ZeroParallelism", [], "component 'echo': parallelism must be a positive int, got 0"),
    ("ReservedId", [], "component '__acker': ids starting with '__' are reserved"),
    ("NoSpout", [], "has no spout"),
    ("Cycle", ["-c", "topology.workers=abc"], "topology.workers"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(supervisors=1, slots=1) as c:
        yield c


def leftovers(cluster: Cluster) -> dict[str, list[str]]:
    state = cluster.state()
    found = {
        folder: list(state.store.children(state.path(folder)))
        for folder in ("storms", "assignments", "workerbeats", "errors")
    }
    uploads = cluster.nimbi[0].dir / "nimbus" / "uploads"
    found["uploads"] = [p.name for p in uploads.iterdir()] if uploads.is_dir() else []
    return {k: v for k, v in found.items() if v}


@pytest.mark.parametrize(("attr", "extra", "message"), CASES, ids=[c[0] for c in CASES])
def test_an_invalid_topology_is_refused_at_submit_naming_what_is_wrong(
    cluster: Cluster, attr: str, extra: list[str], message: str
) -> None:
    proc = cluster.squall("submit", f"{FILE}:{attr}", "--name", "bad", *extra, check=False)
    assert proc.returncode == 1, proc.stdout
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert leftovers(cluster) == {}
    assert cluster.live_worker_pids() == {}


def test_a_topology_with_a_cycle_is_accepted_and_runs(cluster: Cluster) -> None:
    proc = cluster.squall("submit", f"{FILE}:Cycle", "--name", "cycle")
    assert "Submitted topology 'cycle'" in proc.stdout
    wait_until(lambda: cluster.running_workers("cycle") == 1, 60, "the cycle's worker")
    cluster.squall("kill", "cycle", "-w", "0")
    wait_until(lambda: leftovers(cluster) == {}, 30, "the cycle to be removed")
