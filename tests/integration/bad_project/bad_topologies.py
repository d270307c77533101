"""Topologies ``squall submit`` must refuse (reliability plan T6), and one it must take.

Each attribute is submitted alone (``bad_topologies.py:NAME``).
"""

from __future__ import annotations

from typing import Any

from squall import Bolt, Spout, Topology, TopologyBuilder


class Words(Spout):
    outputs = ["word"]

    def next_tuple(self) -> None:
        pass


class Echo(Bolt):
    outputs = ["word"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values.word])


def _unknown_component() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("echo", Echo).shuffle_grouping("nowhere")
    return b


def _unknown_stream() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("echo", Echo).shuffle_grouping("words", "side")
    return b


def _undeclared_field() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("echo", Echo).fields_grouping("words", ["colour"])
    return b


def _zero_parallelism() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("echo", Echo, 0).shuffle_grouping("words")
    return b


def _reserved_id() -> TopologyBuilder:
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("__acker", Echo).shuffle_grouping("words")
    return b


def _cycle() -> TopologyBuilder:
    # Storm allows cycles: echo feeds itself (and the spout feeds it).
    b = TopologyBuilder()
    b.set_spout("words", Words)
    b.set_bolt("echo", Echo).shuffle_grouping("words").shuffle_grouping("echo")
    return b


UnknownComponent = _unknown_component()
UnknownStream = _unknown_stream()
UndeclaredField = _undeclared_field()
ZeroParallelism = _zero_parallelism()
ReservedId = _reserved_id()
Cycle = _cycle()


class NoSpout(Topology):
    echo = Echo.spec()
