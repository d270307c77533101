"""State that survives failures: key-value backends and Trident's txid-guarded map states.

* Backends (picklable specs; ``connect()`` opens a store in the process that needs it):
  :class:`MemoryBackend` (embedded default), :class:`SQLiteBackend` (a file on local
  disk), :class:`RedisBackend` (a Redis server). The store interface is four
  methods; see :mod:`squall.state.backend` to add one.
* :class:`MapState` / :class:`MapStateFactory`: Trident's keyed state, in three
  kinds: non-transactional, transactional ``[value, txid]`` and opaque
  ``[curr, prev, txid]`` (:mod:`squall.state.values` holds the pure txid logic).
* :class:`KeyValueState`: the state of a stateful bolt, saved at checkpoints with
  prepare/commit/rollback.

This package sits below the runtime: it knows nothing of topologies.
"""

from squall.state.backend import (
    Backend,
    KeyValueStore,
    MemoryBackend,
    RedisBackend,
    SQLiteBackend,
    as_backend,
)
from squall.state.map_state import MapState, MapStateFactory, memory_map_state
from squall.state.stateful import (
    CheckpointSpout,
    KeyValueState,
    StatefulBolt,
    state_backend,
    with_checkpoints,
)
from squall.state.values import NON_TRANSACTIONAL, OPAQUE, TRANSACTIONAL

__all__ = [
    "NON_TRANSACTIONAL",
    "OPAQUE",
    "TRANSACTIONAL",
    "Backend",
    "CheckpointSpout",
    "KeyValueState",
    "KeyValueStore",
    "MapState",
    "MapStateFactory",
    "MemoryBackend",
    "RedisBackend",
    "SQLiteBackend",
    "StatefulBolt",
    "as_backend",
    "memory_map_state",
    "state_backend",
    "with_checkpoints",
]
