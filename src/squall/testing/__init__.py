"""Squall's test kit, for Squall's own tests and for your topologies' pytest suites.

Storm's testing helpers, in Python casing:

* :func:`complete_topology` (Storm's ``completeTopology``): run a topology on
  fixed input, on a simulated clock, until it is done, and read what every
  component emitted on every stream with :func:`read_tuples`.
* :class:`FeederSpout`: a spout the test feeds by hand, with an
  :class:`AckFailTracker` recording which message ids were acked or failed.
* :class:`FixedTupleSpout` and :class:`FixedTuple`: a spout with fixed input.
* Simulated time: :func:`simulated_cluster`, ``cluster.advance_time``,
  ``cluster.run_until_idle``, :func:`advance_until`, :func:`wait_until_quiescent`.
* A pytest fixture, ``squall_cluster``: add
  ``pytest_plugins = ["squall.testing.pytest_plugin"]`` to your ``conftest.py``.

Everything here runs topologies in the test's own process; nothing in
``squall`` itself imports this package.

>>> from squall import Bolt, Spout, Topology
>>> from squall.testing import complete_topology, read_tuples
>>> class Words(Spout):
...     outputs = ["word"]
>>> class Shout(Bolt):
...     outputs = ["word"]
...     def process(self, tup):
...         self.emit([tup.values.word.upper() + "!"])
>>> class T(Topology):
...     words = Words.spec()
...     shout = Shout.spec(inputs=[words])
>>> result = complete_topology(T, mock_sources={"words": [["hey"], ["ho"]]})
>>> read_tuples(result, "shout")
[['HEY!'], ['HO!']]
"""

from squall.testing.complete import (
    CapturedTuple,
    CompleteTopologyResult,
    CompleteTopologyTimeout,
    complete_topology,
    read_tuples,
)
from squall.testing.feeder import AckFailDelegate, AckFailTracker, AckTracker, FeederSpout
from squall.testing.fixed import CompletableSpout, FixedTuple, FixedTupleSpout
from squall.testing.simulated import advance_until, simulated_cluster, wait_until_quiescent

__all__ = [
    "AckFailDelegate",
    "AckFailTracker",
    "AckTracker",
    "CapturedTuple",
    "CompletableSpout",
    "CompleteTopologyResult",
    "CompleteTopologyTimeout",
    "FeederSpout",
    "FixedTuple",
    "FixedTupleSpout",
    "advance_until",
    "complete_topology",
    "read_tuples",
    "simulated_cluster",
    "wait_until_quiescent",
]
