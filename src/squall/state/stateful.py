"""Stateful bolts with checkpointing (Storm 1.0's ``IStatefulBolt``, storm-spec §1.8).

>>> from squall.api.component import Bolt
>>> class WordCounter(StatefulBolt):
...     outputs = ["word", "count"]
...     def init_state(self, state):
...         self.counts = state
...     def process(self, tup):
...         word = tup.values.word
...         count = self.counts.get(word, 0) + 1
...         self.counts.put(word, count)
...         self.emit([word, count])

A :class:`StatefulBolt` gets a :class:`KeyValueState` in ``init_state``, after
``initialize`` and before its first tuple, holding what its task had committed
at the last checkpoint. The topology gets a hidden ``$checkpointspout``
(:func:`with_checkpoints`; ``LocalCluster.submit`` adds it) that runs Storm's
three-phase protocol every ``topology.state.checkpoint.interval.ms`` (1000):

1. ``PREPARE(txid)``: each stateful task saves its changes since the last
   checkpoint aside (``prepare_commit``);
2. once every task acked the prepare, ``COMMIT(txid)``: each task makes them its
   committed state and only then acks the input tuples they came from;
3. if a prepare fails, ``ROLLBACK``: the tasks drop what was not committed and
   fail the tuples since, which the spouts replay.

The checkpoint spout records its phase, so after a crash it finishes the commit
(``COMMIT``) or undoes the prepare (``ROLLBACK``), then sends ``INITSTATE``; a
stateful task handles no tuple before ``INITSTATE`` (it buffers them).

The guarantee is at-least-once, as in Storm: a tuple is acked only once its
effect on the state is committed, so the state never misses a tuple; a tuple
may count twice if it is replayed after its effect was committed but before its
ack reached the spout.

The backend is ``topology.state.provider``: a squall.state backend object,
``"memory"`` (the default), ``"sqlite:PATH"`` or ``"redis://HOST:PORT[/DB]"``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, ClassVar, Final

from squall.api.component import Bolt, Spout
from squall.api.context import TopologyContext
from squall.api.grouping import Grouping
from squall.api.stream import Stream
from squall.api.topology import ComponentDef, GlobalStreamId, TopologyDef
from squall.api.tuple import Tuple
from squall.state.backend import Backend, KeyValueStore, MemoryBackend, RedisBackend, SQLiteBackend

log = logging.getLogger("squall.state")

CHECKPOINT_COMPONENT: Final = "$checkpointspout"
CHECKPOINT_STREAM: Final = "$checkpoint"
STATE_PROVIDER: Final = "topology.state.provider"
CHECKPOINT_INTERVAL_MS: Final = "topology.state.checkpoint.interval.ms"
DEFAULT_CHECKPOINT_INTERVAL_MS: Final = 1000

INITSTATE: Final = "INITSTATE"
PREPARE: Final = "PREPARE"
COMMIT: Final = "COMMIT"
ROLLBACK: Final = "ROLLBACK"

_DELETED: Final = object()


def state_backend(conf: Mapping[str, Any]) -> Backend:
    """The backend ``topology.state.provider`` names (memory by default).

    >>> state_backend({"topology.state.provider": "sqlite:/tmp/s.db"})
    SQLiteBackend(path='/tmp/s.db', timeout_secs=30.0)
    >>> state_backend({"topology.state.provider": "redis://10.0.0.5:6380/2"}).port
    6380
    """
    spec = conf.get(STATE_PROVIDER) or "memory"
    if isinstance(spec, Backend):
        return spec
    if isinstance(spec, str):
        if spec == "memory":
            return MemoryBackend("squall-state")
        if spec.startswith("sqlite:"):
            return SQLiteBackend(spec[len("sqlite:") :])
        if spec.startswith("redis://"):
            rest = spec[len("redis://") :]
            hostport, _, db = rest.partition("/")
            host, _, port = hostport.partition(":")
            return RedisBackend(host or "127.0.0.1", int(port or 6379), int(db or 0))
    raise ValueError(
        f"{STATE_PROVIDER} = {spec!r}: use a squall.state backend, 'memory', "
        "'sqlite:PATH' or 'redis://HOST:PORT[/DB]'"
    )


def _key(key: Any) -> str:
    return json.dumps(key)


class KeyValueState:
    """A task's key-value state, saved at checkpoints (Storm's ``KeyValueState``).

    Keys and values are JSON-compatible. Changes are kept in memory until the
    next checkpoint's ``prepare_commit``; ``commit`` makes them durable; ``rollback``
    returns to the last committed state.
    """

    def __init__(self, store: KeyValueStore, table: str) -> None:
        self.store = store
        self.table = table
        self.prepare_table = table + ":prepare"
        self.meta_table = table + ":meta"
        self._pending: dict[str, Any] = {}
        self._prepared: dict[str, Any] | None = None
        self._prepared_txid: int | None = None

    # -- the map --------------------------------------------------------------------
    def put(self, key: Any, value: Any) -> None:
        self._pending[_key(key)] = value

    def get(self, key: Any, default: Any = None) -> Any:
        k = _key(key)
        v = self._pending.get(k, _MISSING_VALUE)
        if v is _MISSING_VALUE and self._prepared is not None:
            v = self._prepared.get(k, _MISSING_VALUE)
        if v is _MISSING_VALUE:
            v = self.store.get_many(self.table, [k])[0]
            return default if v is None else v
        return default if v is _DELETED else v

    def delete(self, key: Any) -> None:
        self._pending[_key(key)] = _DELETED

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every key and value, as this task sees them now."""
        merged: dict[str, Any] = dict(self.store.get_all(self.table))
        for layer in (self._prepared or {}, self._pending):
            merged.update(layer)
        for k, v in merged.items():
            if v is not _DELETED:
                yield json.loads(k), v

    # -- the checkpoint protocol ----------------------------------------------------------
    @property
    def committed_txid(self) -> int:
        return int(self.store.get_many(self.meta_table, ["txid"])[0] or 0)

    def prepare_commit(self, txid: int) -> None:
        """Set the changes since the last checkpoint aside, durably, as transaction ``txid``."""
        ops: dict[str, Any] = {
            k: (["del"] if v is _DELETED else ["put", v]) for k, v in self._pending.items()
        }
        ops["$txid"] = txid
        stale = [k for k in self.store.get_all(self.prepare_table) if k not in ops]
        self.store.write({self.prepare_table: ops}, {self.prepare_table: stale})
        self._prepared = self._pending
        self._prepared_txid = txid
        self._pending = {}

    def commit(self, txid: int) -> None:
        """Make transaction ``txid`` the committed state (again: it is idempotent)."""
        prepared = self.store.get_all(self.prepare_table)
        if prepared.get("$txid") != txid:
            self._prepared = None
            return  # committed already, or nothing was prepared
        puts: dict[str, Any] = {}
        dels: list[str] = []
        for k, op in prepared.items():
            if k == "$txid":
                continue
            if op[0] == "put":
                puts[k] = op[1]
            else:
                dels.append(k)
        self.store.write(
            {self.table: puts, self.meta_table: {"txid": txid}},
            {self.table: dels, self.prepare_table: list(prepared)},
        )
        self._prepared = None
        self._prepared_txid = None

    def rollback(self) -> None:
        """Forget every change since the last commit."""
        prepared = self.store.get_all(self.prepare_table)
        if prepared:
            self.store.write({}, {self.prepare_table: list(prepared)})
        self._pending = {}
        self._prepared = None
        self._prepared_txid = None


_MISSING_VALUE = object()


class StatefulBolt(Bolt):
    """A bolt with a :class:`KeyValueState` restored before its first tuple.

    Override ``init_state(state)`` and ``process(tup)``; the hooks
    ``pre_prepare(txid)``, ``pre_commit(txid)`` and ``pre_rollback()`` run before
    each phase. Input tuples are acked when the checkpoint that holds their
    effect commits.
    """

    auto_ack: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        # The engine calls ``self.process``; the class's ``process`` is the user's.
        self._user_process = self.process
        self.process = self._squall_process  # type: ignore[method-assign]
        self.state: KeyValueState | None = None
        self._ready = False
        self._buffer: list[Tuple] = []
        self._held: list[Tuple] = []
        self._prepared: list[Tuple] = []

    def init_state(self, state: KeyValueState) -> None:
        """Called once, before the first tuple, with the state committed last."""

    def pre_prepare(self, txid: int) -> None:
        """Called before the state is prepared for checkpoint ``txid``."""

    def pre_commit(self, txid: int) -> None:
        """Called before checkpoint ``txid`` commits."""

    def pre_rollback(self) -> None:
        """Called before the state rolls back to the last commit."""

    def _open_state(self) -> KeyValueState:
        if self.state is None:
            ctx = self.context
            table = f"state:{ctx.topology_name}:{ctx.component_id}:{ctx.task_id}"
            self.state = KeyValueState(state_backend(self.conf).connect(), table)
        return self.state

    def _init(self) -> None:
        self._ready = True
        self.init_state(self._open_state())
        buffered, self._buffer = self._buffer, []
        for t in buffered:
            self._squall_process(t)

    def _squall_process(self, tup: Tuple) -> None:
        if tup.stream == CHECKPOINT_STREAM and tup.component == CHECKPOINT_COMPONENT:
            self._checkpoint(tup)
            return
        if not self._ready:
            if CHECKPOINT_COMPONENT not in self.context.component_tasks:
                log.warning(
                    "stateful bolt %r runs without a checkpoint spout: its state is never saved "
                    "(submit with LocalCluster, or use squall.state.with_checkpoints)",
                    self.context.component_id,
                )
                self._init()
            else:
                self._buffer.append(tup)
                return
        self._user_process(tup)
        self._held.append(tup)

    def _checkpoint(self, tup: Tuple) -> None:
        txid, action = tup.values[0], tup.values[1]
        state = self._open_state()
        if action == INITSTATE:
            if not self._ready:
                self._init()
        elif action == PREPARE:
            if not self._ready:
                self.fail(tup)  # restarted since INITSTATE: the spout rolls back and re-inits
                return
            self.pre_prepare(txid)
            state.prepare_commit(txid)
            self._prepared.extend(self._held)
            self._held = []
        elif action == COMMIT:
            if self._ready:
                self.pre_commit(txid)
            state.commit(txid)
            for t in self._prepared:
                self.ack(t)
            self._prepared = []
        elif action == ROLLBACK:
            if self._ready:
                self.pre_rollback()
            state.rollback()
            for t in self._prepared + self._held:
                self.fail(t)
            self._prepared, self._held = [], []
        self.ack(tup)


class CheckpointSpout(Spout):
    """Drives the checkpoints of a topology's stateful bolts (Storm's ``CheckpointSpout``)."""

    outputs = [Stream(["txid", "action"], name=CHECKPOINT_STREAM)]

    def __init__(self) -> None:
        super().__init__()
        self.txid = 0
        self.phase = "committed"
        self.recovering = True
        self.inflight = False
        self.last = float("-inf")
        self.interval_secs = DEFAULT_CHECKPOINT_INTERVAL_MS / 1000.0
        self.checkpoints = 0
        self._store: KeyValueStore | None = None
        self._clock: Any = None

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        ms = conf.get(CHECKPOINT_INTERVAL_MS, DEFAULT_CHECKPOINT_INTERVAL_MS)
        if not isinstance(ms, int | float) or isinstance(ms, bool) or ms <= 0:
            raise ValueError(f"{CHECKPOINT_INTERVAL_MS} must be a number > 0, got {ms!r}")
        timeout = conf.get("topology.message.timeout.secs", 30)
        if timeout and ms / 1000.0 >= float(timeout):
            raise ValueError(
                f"{CHECKPOINT_INTERVAL_MS} ({ms}) must be below topology.message.timeout.secs "
                f"({timeout}): tuples wait for the next checkpoint to be acked"
            )
        self.interval_secs = float(ms) / 1000.0
        self._store = state_backend(conf).connect()
        self._table = f"checkpoint:{context.topology_name}"
        txid, phase = self._store.get_many(self._table, ["txid", "phase"])
        self.txid = int(txid or 0)
        self.phase = str(phase or "committed")
        executor = getattr(getattr(self, "_collector", None), "executor", None)
        self._clock = getattr(getattr(executor, "engine", None), "clock", None)

    def _now(self) -> float:
        return float(self._clock.now()) if self._clock is not None else time.monotonic()

    def _save(self, txid: int, phase: str) -> None:
        self.txid, self.phase = txid, phase
        assert self._store is not None
        self._store.write({self._table: {"txid": txid, "phase": phase}})

    def _send(self, action: str, txid: int) -> None:
        self.inflight = True
        self.emit([txid, action], tup_id=(action, txid), stream=CHECKPOINT_STREAM)

    def next_tuple(self) -> None:
        if self.inflight:
            return
        if self.recovering:
            if self.phase == "preparing":
                self._send(ROLLBACK, self.txid)
            elif self.phase == "committing":
                self._send(COMMIT, self.txid)
            else:
                self._send(INITSTATE, self.txid)
            return
        now = self._now()
        if now - self.last >= self.interval_secs:
            self.last = now
            self._save(self.txid + 1, "preparing")
            self._send(PREPARE, self.txid)

    def ack(self, tup_id: Any) -> None:
        action, txid = tup_id
        self.inflight = False
        if action == PREPARE:
            self._save(txid, "committing")
            self._send(COMMIT, txid)
        elif action == COMMIT:
            self._save(txid, "committed")
            self.checkpoints += 1
        elif action == ROLLBACK:
            self._save(txid - 1, "committed")
            self.recovering = True  # re-initialize every task after a rollback
        elif action == INITSTATE:
            self.recovering = False
            self.last = self._now()  # the first checkpoint comes one interval later

    def fail(self, tup_id: Any) -> None:
        action, txid = tup_id
        self.inflight = False
        if action == PREPARE:
            self._send(ROLLBACK, txid)
        else:
            self._send(action, txid)  # COMMIT, ROLLBACK and INITSTATE are retried as they are

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def with_checkpoints(topology: TopologyDef) -> TopologyDef:
    """``topology`` with the checkpoint spout, if any bolt is a :class:`StatefulBolt`.

    Every stateful bolt subscribes to ``$checkpointspout:$checkpoint`` (all grouping).
    A topology without stateful bolts, or that has the spout already, is returned as is.
    """
    stateful = [
        c
        for c in topology.components.values()
        if isinstance(c.cls, type) and issubclass(c.cls, StatefulBolt)
    ]
    if not stateful or CHECKPOINT_COMPONENT in topology.components:
        return topology
    components: dict[str, ComponentDef] = dict(topology.components)
    components[CHECKPOINT_COMPONENT] = ComponentDef(
        name=CHECKPOINT_COMPONENT,
        kind="spout",
        cls=CheckpointSpout,
        par=1,
        tasks=1,
        inputs=(),
        outputs=MappingProxyType({CHECKPOINT_STREAM: CheckpointSpout.outputs[0]}),
        config=MappingProxyType({}),
    )
    sid = GlobalStreamId(CHECKPOINT_COMPONENT, CHECKPOINT_STREAM)
    for c in stateful:
        components[c.name] = replace(c, inputs=(*c.inputs, (sid, Grouping.ALL)))
    return TopologyDef(topology.name, MappingProxyType(components), topology.config)


__all__ = [
    "CHECKPOINT_COMPONENT",
    "CHECKPOINT_STREAM",
    "CheckpointSpout",
    "KeyValueState",
    "StatefulBolt",
    "state_backend",
    "with_checkpoints",
]
