"""pytest fixtures for testing topologies; enable with ``pytest_plugins``.

In your ``conftest.py``::

    pytest_plugins = ["squall.testing.pytest_plugin"]

then::

    def test_timeout(squall_cluster):
        feeder = FeederSpout(["word"])
        ...
        squall_cluster.submit("t", builder, {"topology.message.timeout.secs": 10})
        feeder.feed(["a"], msg_id=1)
        squall_cluster.advance_time(20)
        assert feeder.tracker.failed == [1]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from squall.daemon.local_cluster import LocalCluster
from squall.testing.simulated import simulated_cluster


@pytest.fixture
def squall_cluster() -> Iterator[LocalCluster]:
    """A LocalCluster on simulated time, shut down (every topology killed) after the test."""
    with simulated_cluster() as cluster:
        yield cluster
