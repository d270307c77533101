"""The CI subset of the chaos plan (reliability-plan.md §5.2), each with a ledger check.

* T1: kill -9 workers while the word count runs: every sentence is acked,
  none before its tree was done, and the supervisor restarts each worker.
* T2a: kill -9 nimbus: workers keep processing, supervisors still restart a
  dead worker, a submit fails fast with "no leader nimbus", and the restarted
  nimbus leaves the assignment as it was.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from tests.chaos import ledger
from tests.chaos.harness import Cluster, is_worker, running_cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(supervisors=2, slots=2) as c:
        yield c


def kill_worker(cluster: Cluster, which: int) -> tuple[tuple[int, int], int, float]:
    """SIGKILL one live worker (by the pid its supervisor recorded); wait for its replacement.

    Returns (slot, old pid, seconds until the new worker's first local heartbeat).
    """
    live = sorted(cluster.live_worker_pids().items())
    slot, pid = live[which % len(live)]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    sup, port = slot
    hb = cluster.supervisors[sup].dir / "supervisor" / "workers" / f"{port}.hb"

    def replaced() -> bool:
        new = cluster.worker_pids().get(slot)
        if new in (None, pid) or not is_worker(new):
            return False
        try:
            return f'"pid": {new}' in hb.read_text()
        except OSError:
            return False

    wait_until(replaced, 30, f"the supervisor to restart the worker on port {port}")
    return slot, pid, time.monotonic() - killed


def test_t1_kill_9_of_workers_loses_no_tuple(cluster: Cluster) -> None:
    total = 12000
    folder = cluster.ledger("t1")
    cluster.submit_ledger(
        "t1", total, 4, conf={"ledger.rate": 1000, "topology.max.spout.pending": 200}
    )
    wait_until(lambda: ledger.acked_count(folder) >= 1000, 60, "the warm-up")
    restarts = []
    for k in range(3):
        restarts.append(kill_worker(cluster, k)[2])
        time.sleep(0.5)
    kills_done = time.monotonic()
    wait_until(lambda: ledger.acked_count(folder) == total, 90, "every sentence acked")
    drain = time.monotonic() - kills_done
    report = ledger.verdict(folder, total)
    print(
        f"\nT1: kills=3 restart_s={[round(r, 2) for r in restarts]} drain_s={drain:.1f} "
        f"replays={report['replays']} dup_sink={report['sink_duplicate_records']} "
        f"lost={report['lost']} premature={report['premature_acks']}"
    )
    assert report["pass"], report
    assert report["replays"] <= 3 * 200 * 2, "replays bounded by kills x pending x spout tasks"
    assert ledger.word_counts(folder) == ledger.expected_counts(total)
    assert max(restarts) < 8, "each worker restarted within a monitor period + start time"
    cluster.squall("kill", "t1", "-w", "0")
    wait_until(lambda: cluster.topology_id("t1") is None, 30, "t1 removed")


def test_t2_workers_keep_processing_while_nimbus_is_dead(cluster: Cluster) -> None:
    total = 10000
    folder = cluster.ledger("t2")
    cluster.submit_ledger("t2", total, 2, conf={"ledger.rate": 500})
    wait_until(lambda: ledger.acked_count(folder) >= 500, 60, "the warm-up")
    version = cluster.state().assignment(cluster.topology_id("t2"))[1]
    before = ledger.acked_count(folder)
    time.sleep(1.0)
    baseline = ledger.acked_count(folder) - before

    nimbus = cluster.nimbi[0]
    nimbus.kill(signal.SIGKILL)
    before = ledger.acked_count(folder)
    time.sleep(1.0)
    during = ledger.acked_count(folder) - before
    print(f"\nT2: acked/s before {baseline}, with nimbus dead {during}")
    assert during >= 0.8 * baseline, "throughput holds with nimbus dead"

    _slot, _pid, restart = kill_worker(cluster, 0)
    print(f"T2: worker restarted without nimbus in {restart:.2f}s")

    started = time.monotonic()
    proc = cluster.squall("submit", "tests/chaos/ledger_project/ledger_wordcount.py", check=False)
    took = time.monotonic() - started
    assert proc.returncode == 1 and "no leader nimbus" in proc.stderr, proc.stderr
    assert took < 10

    nimbus.start()
    wait_until(cluster.leader_address, 30, "nimbus back as the leader")
    time.sleep(2.0)  # a few monitor passes
    assert cluster.state().assignment(cluster.topology_id("t2"))[1] == version
    wait_until(lambda: ledger.acked_count(folder) == total, 90, "every sentence acked")
    report = ledger.verdict(folder, total)
    assert report["pass"], report
    cluster.squall("kill", "t2", "-w", "0")
