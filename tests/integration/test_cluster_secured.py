"""A cluster with a token also secures its workers' data sockets (CURVE), end to end.

ZooKeeper, nimbus and 2 supervisors on loopback with ``nimbus.auth.token`` set: the
ledger word count on 2 workers gives exact results over encrypted links, while a
stranger that connects to a worker's port delivers nothing and the worker carries on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from tests.chaos import ledger
from tests.chaos.harness import Cluster, running_cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

SENTENCES = 1500


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(supervisors=2, slots=1, conf={"nimbus.auth.token": "t0ken"}) as c:
        yield c


def test_workers_of_a_secured_cluster_talk_over_curve_and_refuse_strangers(
    cluster: Cluster,
) -> None:
    folder = cluster.ledger("secured")
    cluster.submit_ledger("secured", SENTENCES, 2, conf={"ledger.rate": 500})
    wait_until(lambda: cluster.running_workers("secured") == 2, 60, "2 running workers")
    boots = [
        json.loads(f.read_text())
        for sup in cluster.supervisors
        for f in (sup.dir / "supervisor" / "workers").glob("*.boot.json")
    ]
    assert len(boots) == 2 and all(b["curve"] for b in boots), "every worker got the keys"
    assert boots[0]["curve"] == boots[1]["curve"], "one key set per topology"

    # A stranger floods a worker's data port while the topology runs.
    worker = cluster.assignment("secured").workers[0]
    ctx: zmq.Context[Any] = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(f"tcp://{worker.host}:{worker.port}")
    try:
        for _ in range(200):
            try:
                push.send(b"\x00\x01" + b"\xff" * 100, zmq.NOBLOCK)
            except zmq.Again:
                time.sleep(0.01)
        wait_until(lambda: ledger.acked_count(folder) == SENTENCES, 90, "every sentence acked")
    finally:
        push.close(0)
        ctx.term()
    report = ledger.verdict(folder, SENTENCES)
    assert report["pass"], report
    assert ledger.word_counts(folder) == ledger.expected_counts(SENTENCES)
    pids = cluster.live_worker_pids()
    assert len(pids) == 2, "no worker died or restarted"
    # Without the keys the stranger never got past the handshake: not one of its
    # messages was read (an open port would have logged them as malformed).
    logs = "".join(
        f.read_text(errors="replace")
        for sup in cluster.supervisors
        for f in (sup.dir / "supervisor" / "logs").rglob("worker.log")
    )
    assert "running" in logs
    assert "dropped a" not in logs
    cluster.squall("kill", "secured", "-w", "0")
