"""``LinearDRPCTopologyBuilder`` and the ``DRPCTopology`` class DSL.

A DRPC function as a chain of bolts, with Storm's shape (component ids first)::

    spout              DRPCSpout(function)
    prepare-request    PrepareRequest: streams default [request, args],
                       "ret" [request, return] and "id" [request]
    bolt0 .. bolt{n-1} the user's bolts, each wrapped in a CoordinatedBolt;
                       bolt0 reads the args, the last one may also read "id"
    bolt{n}            JoinResult: the last bolt's [id, result] joined with
                       "ret" on the request id
    bolt{n+1}          ReturnResults

``prepare-request`` gives each request a random id; every tuple's first value
is that id. Each user bolt is wrapped in a
:class:`~squall.drpc.coordinated.CoordinatedBolt`, so a
:class:`~squall.drpc.batch.BatchBolt` (or any bolt with ``finished_id``)
learns when it has seen every tuple of a request. The last bolt must declare
exactly one stream of two fields ``[id, result]``; ``JoinResult`` joins its
result with the request's return-info and ``ReturnResults`` sends it back.

>>> from squall import Bolt
>>> class Exclaim(Bolt):
...     outputs = ["id", "result"]
...     def process(self, tup):
...         self.emit([tup.values[0], tup.values[1] + "!"])
>>> builder = LinearDRPCTopologyBuilder("exclamation")
>>> _ = builder.add_bolt(Exclaim, 3)
>>> sorted(builder.create_topology().components)
['bolt0', 'bolt1', 'bolt2', 'prepare-request', 'spout']

The class DSL says the same with specs, in order; ``inputs=`` is the grouping
from the previous bolt:

>>> from squall import Grouping
>>> class ExclamationDRPC(DRPCTopology):
...     function = "exclamation"
...     exclaim = Exclaim.spec(par=3, inputs=Grouping.SHUFFLE)
>>> sorted(ExclamationDRPC.definition().components)
['exclaim', 'join-result', 'prepare-request', 'return-results', 'spout']
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from squall import config as C
from squall.api.builder import TopologyBuilder
from squall.api.component import Bolt, Component, ComponentSpec
from squall.api.context import TopologyContext
from squall.api.errors import InvalidTopologyError
from squall.api.grouping import Grouping, GroupingSpec
from squall.api.ids import DEFAULT_STREAM
from squall.api.stream import Stream, normalize_outputs
from squall.api.topology import Topology, TopologyDef
from squall.api.tuple import Tuple
from squall.drpc.batch import BatchBolt
from squall.drpc.coordinated import (
    ALL,
    COORDINATED_STREAM,
    EXPIRY_TICK_SECS,
    SINGLE,
    CoordinatedBolt,
)
from squall.drpc.return_results import ReturnResults, result_text
from squall.drpc.spout import DRPCSpout

SPOUT_ID = "spout"
PREPARE_ID = "prepare-request"
ARGS_STREAM = DEFAULT_STREAM
RETURN_STREAM = "ret"
ID_STREAM = "id"


class PrepareRequest(Bolt):
    """Gives each request a random id and fans it out on three streams (Storm's)."""

    outputs = [
        Stream(["request", "args"]),
        Stream(["request", "return"], name=RETURN_STREAM),
        Stream(["request"], name=ID_STREAM),
    ]

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        self._rand = random.Random()

    def process(self, tup: Tuple) -> None:
        values = tup.values
        rid = self._rand.getrandbits(63)
        self.emit([rid, values[0]])
        self.emit([rid, values[1]], stream=RETURN_STREAM)
        self.emit([rid], stream=ID_STREAM)


class JoinResult(Bolt):
    """Joins each request's result with its return-info (Storm's JoinResult).

    Emits ``[result, return-info]`` with the result as a string, anchored to both.
    Halves of joins that never complete (their tree failed) are dropped after
    ``topology.message.timeout.secs``.
    """

    outputs = ["result", "return-info"]
    auto_ack: ClassVar[bool] = False

    def __init__(self, return_component: str = PREPARE_ID) -> None:
        super().__init__()
        self.return_component = return_component
        self._results: dict[Any, tuple[Tuple, float]] = {}
        self._returns: dict[Any, tuple[Tuple, float]] = {}
        self._age = 0.0

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        self._timeout = float(conf.get(C.TOPOLOGY_MESSAGE_TIMEOUT_SECS) or 30)

    def process(self, tup: Tuple) -> None:
        values = tup.values
        rid = values[0]
        if tup.component == self.return_component:
            self._returns[rid] = (tup, self._age)
        else:
            self._results[rid] = (tup, self._age)
        if rid in self._returns and rid in self._results:
            result = self._results.pop(rid)[0]
            returner = self._returns.pop(rid)[0]
            self.emit(
                [result_text(result.values[1]), returner.values[1]], anchors=[result, returner]
            )
            self.ack(result)
            self.ack(returner)

    def process_tick(self, tup: Tuple) -> None:
        self._age += float(tup.values[0] or EXPIRY_TICK_SECS)
        horizon = self._age - self._timeout
        for table in (self._results, self._returns):
            for rid in [r for r, (_, born) in table.items() if born < horizon]:
                del table[rid]


@dataclass
class _Step:
    """One user bolt of the chain, with its input declarations."""

    bolt: type[Component]
    par: int
    name: str | None
    kwargs: Mapping[str, Any]
    config: Mapping[str, Any]
    tasks: int | None
    outputs: Any
    inputs: list[tuple[str, GroupingSpec]] = field(default_factory=list)


class LinearDRPCInputDeclarer:
    """Returned by ``add_bolt``: how the bolt subscribes to the previous bolt.

    Each grouping method takes an optional ``stream`` of the previous bolt
    (default ``"default"``) and returns the declarer, for chaining.
    """

    def __init__(self, step: _Step) -> None:
        self._step = step

    def grouping(
        self, grouping: GroupingSpec, stream: str = DEFAULT_STREAM
    ) -> LinearDRPCInputDeclarer:
        if not isinstance(grouping, GroupingSpec):
            raise TypeError(f"expected a grouping such as Grouping.SHUFFLE, got {grouping!r}")
        if any(s == stream for s, _ in self._step.inputs):
            raise InvalidTopologyError(
                f"bolt {self._step.name or self._step.bolt.__name__}: subscribes to the "
                f"previous bolt's stream {stream!r} twice"
            )
        self._step.inputs.append((stream, grouping))
        return self

    def shuffle_grouping(self, stream: str = DEFAULT_STREAM) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.SHUFFLE, stream)

    def local_or_shuffle_grouping(self, stream: str = DEFAULT_STREAM) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.LOCAL_OR_SHUFFLE, stream)

    def fields_grouping(
        self, fields: Sequence[str], stream: str = DEFAULT_STREAM
    ) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.fields(*fields), stream)

    def partial_key_grouping(
        self, fields: Sequence[str], stream: str = DEFAULT_STREAM
    ) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.partial_key(*fields), stream)

    def global_grouping(self, stream: str = DEFAULT_STREAM) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.GLOBAL, stream)

    def none_grouping(self, stream: str = DEFAULT_STREAM) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.NONE, stream)

    def all_grouping(self, stream: str = DEFAULT_STREAM) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.ALL, stream)

    def custom_grouping(self, obj: Any, stream: str = DEFAULT_STREAM) -> LinearDRPCInputDeclarer:
        return self.grouping(Grouping.custom(obj), stream)


def _finishes(cls: type) -> bool:
    """Does the bolt want ``finished_id`` (Storm's FinishedCallback)?"""
    return issubclass(cls, BatchBolt) or callable(getattr(cls, "finished_id", None))


class LinearDRPCTopologyBuilder:
    """Build a DRPC function as a linear chain of bolts (Storm's builder).

    Args:
        function: the DRPC function name the topology serves.
    """

    def __init__(self, function: str) -> None:
        if not isinstance(function, str) or not function:
            raise TypeError(f"LinearDRPCTopologyBuilder needs a function name, got {function!r}")
        self.function = function
        self._steps: list[_Step] = []
        self._config: dict[str, Any] = {}

    def add_bolt(
        self,
        bolt: type[Component],
        parallelism: int = 1,
        *,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tasks: int | None = None,
        outputs: Sequence[str] | Sequence[Stream] | None = None,
        **kwargs: Any,
    ) -> LinearDRPCInputDeclarer:
        """Append ``bolt`` (a Bolt or BatchBolt class) to the chain.

        Args:
            bolt: the class; every task gets a fresh instance (``bolt(**kwargs)``).
            parallelism: number of executors.
            name: component id (default ``bolt<i>``, as in Storm).
            config: component config (a tick frequency here reaches the bolt's
                ``process_tick``).
            tasks: number of tasks.
            outputs: override the class's ``outputs``.
            kwargs: constructor arguments.

        Returns:
            A declarer for the grouping from the previous bolt (default: none
            grouping from ``prepare-request`` for the first bolt, shuffle after).
        """
        where = f"LinearDRPCTopologyBuilder({self.function!r}).add_bolt"
        if not isinstance(bolt, type) or not issubclass(bolt, Bolt | BatchBolt):
            raise InvalidTopologyError(
                f"{where}: expected a Bolt or BatchBolt subclass (the class, not an "
                f"instance), got {bolt!r}"
            )
        step = _Step(bolt, parallelism, name, dict(kwargs), dict(config or {}), tasks, outputs)
        self._steps.append(step)
        return LinearDRPCInputDeclarer(step)

    def set_config(self, conf: Mapping[str, Any]) -> LinearDRPCTopologyBuilder:
        """Topology config for the topologies this builder creates."""
        self._config.update(conf)
        return self

    def create_local_topology(self, drpc: Any, name: str | None = None) -> TopologyDef:
        """The topology, served by ``drpc`` (a :class:`~squall.drpc.LocalDRPC` or its id)."""
        local_id = getattr(drpc, "service_id", drpc)
        if not isinstance(local_id, str):
            raise TypeError(f"create_local_topology takes a LocalDRPC, got {drpc!r}")
        return self._create(name, local_id)

    def create_remote_topology(self, name: str | None = None) -> TopologyDef:
        """The topology, served by the DRPC servers in ``drpc.servers``."""
        return self._create(name, None)

    def create_topology(self, name: str | None = None) -> TopologyDef:
        """Same as :meth:`create_remote_topology` (what ``squall run`` serves over HTTP)."""
        return self._create(name, None)

    def _create(self, name: str | None, local_id: str | None) -> TopologyDef:
        where = f"LinearDRPCTopologyBuilder({self.function!r})"
        steps = self._steps
        if not steps:
            raise InvalidTopologyError(f"{where}: add at least one bolt (add_bolt)")
        names = [s.name or f"bolt{i}" for i, s in enumerate(steps)]
        named = any(s.name for s in steps)
        n = len(steps)
        join_id = "join-result" if named else f"bolt{n}"
        return_id = "return-results" if named else f"bolt{n + 1}"
        taken = {SPOUT_ID, PREPARE_ID, join_id, return_id}
        for cname in names:
            if cname in taken:
                raise InvalidTopologyError(
                    f"{where}: bolt name {cname!r} is taken (reserved: {sorted(taken)})"
                )
            taken.add(cname)

        last = steps[-1]
        last_outputs = _outputs_of(last, names[-1], where)
        if len(last_outputs) != 1 or len(next(iter(last_outputs.values())).fields) != 2:
            declared = {s: list(st.fields) for s, st in last_outputs.items()} or "nothing"
            raise InvalidTopologyError(
                f"{where}: the last bolt {names[-1]!r} ({last.bolt.__name__}) must declare "
                f"exactly one output stream with exactly two fields [request id, result]; "
                f"it declares {declared}"
            )
        ((last_stream, last_decl),) = last_outputs.items()

        b = TopologyBuilder()
        b.set_config(self._config)
        b.set_spout(SPOUT_ID, DRPCSpout, 1, function=self.function, drpc=local_id)
        b.set_bolt(PREPARE_ID, PrepareRequest, 1).none_grouping(SPOUT_ID)
        for i, step in enumerate(steps):
            is_last = i == n - 1
            finishes = _finishes(step.bolt)
            sources: dict[str, str] = {}
            if i == 1:
                sources[names[0]] = SINGLE
            elif i >= 2:
                sources[names[i - 1]] = ALL
            id_stream = (PREPARE_ID, ID_STREAM) if is_last and finishes else None
            outputs = list(_outputs_of(step, names[i], where).values())
            outputs.append(Stream(["id", "count"], name=COORDINATED_STREAM, direct=True))
            config: dict[str, Any] = {C.TOPOLOGY_TICK_TUPLE_FREQ_SECS: EXPIRY_TICK_SECS}
            config.update(step.config)
            d = b.set_bolt(
                names[i],
                CoordinatedBolt,
                step.par,
                outputs=outputs,
                delegate=step.bolt,
                delegate_kwargs=dict(step.kwargs),
                sources=sources,
                id_stream=id_stream,
                forward_ticks=C.TOPOLOGY_TICK_TUPLE_FREQ_SECS in step.config,
            )
            d.add_configurations(config)
            if step.tasks is not None:
                d.set_num_tasks(step.tasks)
            prev = PREPARE_ID if i == 0 else names[i - 1]
            if step.inputs:
                for stream, grouping in step.inputs:
                    d.grouping(prev, grouping, stream)
            elif i == 0:
                # Storm uses a none grouping. When this bolt is also the last one and
                # waits for the request id, group by request instead, so that the
                # args and the id reach the same task, in that order.
                d.grouping(
                    PREPARE_ID,
                    Grouping.fields("request") if id_stream else Grouping.NONE,
                    ARGS_STREAM,
                )
            else:
                d.shuffle_grouping(prev)
            if i > 0:
                d.direct_grouping(names[i - 1], COORDINATED_STREAM)
            if id_stream is not None:
                d.fields_grouping(PREPARE_ID, ["request"], ID_STREAM)
        (
            b.set_bolt(join_id, JoinResult, 1, return_component=PREPARE_ID)
            .fields_grouping(names[-1], [last_decl.fields[0]], last_stream)
            .fields_grouping(PREPARE_ID, ["request"], RETURN_STREAM)
        )
        b.set_bolt(return_id, ReturnResults, 1).none_grouping(join_id)
        try:
            return b.create_topology(name or self.function)
        except InvalidTopologyError as e:
            raise InvalidTopologyError(f"{where}: {e}") from None


def _outputs_of(step: _Step, name: str, where: str) -> dict[str, Stream]:
    raw = step.outputs if step.outputs is not None else getattr(step.bolt, "outputs", None)
    try:
        return normalize_outputs(raw, name)
    except (TypeError, ValueError) as e:
        raise InvalidTopologyError(f"{where}: {e}") from None


class DRPCTopology(Topology):
    """A DRPC function as a class: bolt specs in chain order, and the function name.

    ``inputs=`` on a spec is the grouping from the previous bolt: a grouping
    (on its default stream) or ``{stream: grouping}``. The component ids are
    the attribute names. :meth:`definition` builds the topology served by
    ``drpc.servers`` (what ``squall run`` uses); :meth:`local_definition`
    the one served by a :class:`~squall.drpc.LocalDRPC`.
    """

    function: ClassVar[str] = ""

    @classmethod
    def builder(cls) -> LinearDRPCTopologyBuilder:
        """The equivalent :class:`LinearDRPCTopologyBuilder`."""
        if not isinstance(cls.function, str) or not cls.function:
            raise InvalidTopologyError(
                f"DRPC topology {cls.__name__!r}: set the class attribute function = "
                "'<name>' (the DRPC function it serves)"
            )
        b = LinearDRPCTopologyBuilder(cls.function)
        b.set_config(cls.config)
        for attr, spec in cls._specs.items():
            _add_spec(b, attr, spec, cls.__name__)
        return b

    @classmethod
    def definition(cls, name: str | None = None) -> TopologyDef:
        return cls.builder().create_remote_topology(name or cls.__name__)

    @classmethod
    def local_definition(cls, drpc: Any, name: str | None = None) -> TopologyDef:
        """The topology served by ``drpc`` (a :class:`~squall.drpc.LocalDRPC`)."""
        return cls.builder().create_local_topology(drpc, name or cls.__name__)


def _add_spec(b: LinearDRPCTopologyBuilder, attr: str, spec: ComponentSpec, owner: str) -> None:
    where = f"DRPC topology {owner!r}, bolt {attr!r}"
    if not issubclass(spec.cls, Bolt | BatchBolt):
        raise InvalidTopologyError(
            f"{where}: {spec.cls.__name__} is not a Bolt or BatchBolt; a DRPC topology's "
            "spout is made for you"
        )
    d = b.add_bolt(
        spec.cls,
        spec.par,
        name=spec.name or attr,
        config=spec.config,
        tasks=spec.tasks,
        outputs=spec.outputs,
        **spec.kwargs,
    )
    raw = spec.inputs
    if raw is None:
        return
    if isinstance(raw, GroupingSpec):
        d.grouping(raw)
    elif isinstance(raw, Mapping):
        for stream, grouping in raw.items():
            if not isinstance(stream, str) or not isinstance(grouping, GroupingSpec):
                raise InvalidTopologyError(
                    f"{where}: inputs must map a stream name of the previous bolt to a "
                    f"grouping, got {stream!r}: {grouping!r}"
                )
            d.grouping(grouping, stream)
    else:
        raise InvalidTopologyError(
            f"{where}: inputs is the grouping from the previous bolt (for example "
            f"Grouping.fields('id')) or {{stream: grouping}}, got {raw!r}"
        )


__all__ = [
    "ID_STREAM",
    "PREPARE_ID",
    "RETURN_STREAM",
    "SPOUT_ID",
    "DRPCTopology",
    "JoinResult",
    "LinearDRPCInputDeclarer",
    "LinearDRPCTopologyBuilder",
    "PrepareRequest",
]
