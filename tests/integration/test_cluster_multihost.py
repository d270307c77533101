"""Several "machines": ZooKeeper, nimbus and two supervisors each in their own network
namespace with its own address; the word count's tuples cross between them."""

from __future__ import annotations

import pytest
from tests.chaos import ledger
from tests.chaos.harness import netns_cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_tuples_cross_between_hosts_and_the_counts_are_exact() -> None:
    with netns_cluster() as cluster:
        total = 4000
        cluster.submit_ledger("hosts", total, 2)
        folder = cluster.ledger("hosts")
        wait_until(lambda: ledger.acked_count(folder) == total, 90, "every sentence acked")
        (topology,) = cluster.topologies()
        hosts = sorted(w["host"] for w in topology["workers"])
        assert hosts == ["10.213.0.3", "10.213.0.4"], "one worker on each supervisor host"
        report = ledger.verdict(folder, total)
        assert report["pass"], report
        assert report["replays"] == 0
        assert ledger.word_counts(folder) == ledger.expected_counts(total)
        cluster.squall("kill", "hosts", "-w", "0")
