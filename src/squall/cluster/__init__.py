"""Cluster state behind one interface: ZooKeeper (kazoo) or in memory.

* :mod:`~squall.cluster.store`: the ZooKeeper-shaped store interface and its errors;
* :mod:`~squall.cluster.memory`: an in-memory store (local mode, unit tests, fault injection);
* :mod:`~squall.cluster.zookeeper`: the store on a real ZooKeeper, through kazoo;
* :mod:`~squall.cluster.records`: what is stored (frozen records, JSON);
* :mod:`~squall.cluster.state`: Storm's layout under one root, and nimbus leader election;
* :mod:`~squall.cluster.conf`: the daemons' config keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.cluster import conf as K
from squall.cluster.state import ClusterState, LeaderElection, NotLeaderError
from squall.cluster.store import (
    ConnectionState,
    CoordinationError,
    CoordinationStore,
    CoordinationUnavailableError,
)

__all__ = [
    "ClusterState",
    "ConnectionState",
    "CoordinationError",
    "CoordinationStore",
    "CoordinationUnavailableError",
    "LeaderElection",
    "NotLeaderError",
    "zookeeper_store",
]


def zookeeper_store(conf: Mapping[str, Any]) -> CoordinationStore:
    """A (not yet started) ZooKeeper store configured by Storm's ``storm.zookeeper.*`` keys."""
    from squall.cluster.zookeeper import ZooKeeperStore

    return ZooKeeperStore(
        K.zookeeper_hosts(conf),
        session_timeout_secs=float(K.get(conf, K.STORM_ZOOKEEPER_SESSION_TIMEOUT)) / 1000.0,
        auth=K.get(conf, K.STORM_ZOOKEEPER_AUTH_PAYLOAD),
    )
