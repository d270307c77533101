"""Squall: Apache Storm, done in Python.

General layout (layers import downward only; see ARCHITECTURE in docs/):
  api/            what topology authors write (Spout, Bolt, Stream, Grouping, Topology...)
  config.py       Storm's config keys and defaults
  runtime/        inside one worker: executors, routing, acker ledger, clock, stats
  serialization/  tuple batches <-> bytes (msgpack)
  transport/      bytes between workers (ZeroMQ)
  multilang/      shell components: other languages over Storm's protocol
  daemon/         processes: local cluster, local workers
  cli/            the ``squall`` command
  testing/        the public test kit
"""

from squall.api import (
    Bolt,
    Component,
    EmitError,
    FailedError,
    Grouping,
    InvalidTopologyError,
    ReliableSpout,
    Spout,
    Stream,
    Topology,
    TopologyBuilder,
    TopologyContext,
    TopologyDef,
    Tuple,
)
from squall.daemon.local_cluster import LocalCluster, LocalTopology
from squall.multilang import ShellBolt, ShellSpout

__version__ = "0.1.0"

__all__ = [
    "Bolt",
    "Component",
    "EmitError",
    "FailedError",
    "Grouping",
    "InvalidTopologyError",
    "LocalCluster",
    "LocalTopology",
    "ReliableSpout",
    "ShellBolt",
    "ShellSpout",
    "Spout",
    "Stream",
    "Topology",
    "TopologyBuilder",
    "TopologyContext",
    "TopologyDef",
    "Tuple",
    "__version__",
]
