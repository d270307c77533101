"""LocalCluster's own promises, beyond what the topology tests cover."""

from __future__ import annotations

import pytest
from tests.topologies import WordCount  # type: ignore[import-not-found]

from squall import LocalCluster


def test_simulated_time_refuses_several_worker_processes_with_a_clear_error() -> None:
    cluster = LocalCluster(simulated_time=True)
    with cluster, pytest.raises(ValueError, match=r"simulated time runs in one process.*workers=2"):
        cluster.submit("wc", WordCount, {"topology.workers": 2})


def test_an_in_process_topology_has_no_worker_pids() -> None:
    with LocalCluster(simulated_time=True) as cluster:
        run = cluster.submit("wc", WordCount, {"test.sentences": 10})
        assert run.worker_pids == []
