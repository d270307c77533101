"""What topology authors write: components, streams, groupings, topologies.

No threads, sockets or processes live here.
"""

from squall.api.builder import BoltDeclarer, SpoutDeclarer, TopologyBuilder
from squall.api.component import Bolt, Component, ComponentSpec, ReliableSpout, Spout
from squall.api.context import TopologyContext
from squall.api.errors import EmitError, FailedError, InvalidTopologyError
from squall.api.grouping import Grouping, GroupingSpec
from squall.api.stream import Stream
from squall.api.topology import (
    ComponentDef,
    GlobalStreamId,
    Topology,
    TopologyDef,
    as_definition,
)
from squall.api.tuple import AckedTuple, Tuple, ValuesTuple, values_class

__all__ = [
    "AckedTuple",
    "Bolt",
    "BoltDeclarer",
    "Component",
    "ComponentDef",
    "ComponentSpec",
    "EmitError",
    "FailedError",
    "GlobalStreamId",
    "Grouping",
    "GroupingSpec",
    "InvalidTopologyError",
    "ReliableSpout",
    "Spout",
    "SpoutDeclarer",
    "Stream",
    "Topology",
    "TopologyBuilder",
    "TopologyContext",
    "TopologyDef",
    "Tuple",
    "ValuesTuple",
    "as_definition",
    "values_class",
]
