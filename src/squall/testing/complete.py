"""Run a topology on fixed input until it is done, and see everything it emitted.

Storm's ``Testing.completeTopology`` and ``Testing.readTuples``. The topology
runs in this process on a simulated clock: mocked spouts are replaced by
:class:`~squall.testing.fixed.FixedTupleSpout`, every emit of every component
on every stream is captured, and the run goes on (moving simulated time to the
next timer when nothing else can happen, so ticks and message timeouts fire)
until every spout is exhausted, every tuple tree was acked or failed and no
tuple is in flight.

>>> from squall import Bolt, Grouping, Spout, Topology
>>> class Words(Spout):
...     outputs = ["word"]
>>> class Count(Bolt):
...     outputs = ["word", "count"]
...     def initialize(self, conf, ctx):
...         self.counts = {}
...     def process(self, tup):
...         word = tup.values.word
...         self.counts[word] = self.counts.get(word, 0) + 1
...         self.emit([word, self.counts[word]])
>>> class WordCount(Topology):
...     words = Words.spec()
...     count = Count.spec(inputs={words: Grouping.fields("word")}, par=2)
>>> result = complete_topology(
...     WordCount, mock_sources={"words": [["nathan"], ["bob"], ["joey"], ["nathan"]]}
... )
>>> sorted(read_tuples(result, "count"))
[['bob', 1], ['joey', 1], ['nathan', 1], ['nathan', 2]]
>>> result.acked["words"]
(0, 1, 2, 3)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from squall import config as C
from squall.api.component import Spout
from squall.api.ids import DEFAULT_STREAM
from squall.api.topology import ComponentDef, TopologyDef, as_definition
from squall.api.validation import validate
from squall.runtime.clock import SimulatedClock
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan
from squall.runtime.stats import ComponentStats, ErrorReport
from squall.testing.fixed import FixedTuple, FixedTupleSpout, as_fixed_tuple


class CompleteTopologyTimeout(TimeoutError):
    """The topology did not finish in time; the message says what was still going on."""


@dataclass(frozen=True)
class CapturedTuple:
    """One emit seen by ``complete_topology``: who emitted what, on which stream."""

    component: str
    stream: str
    task: int
    values: tuple[Any, ...]


@dataclass(frozen=True)
class CompleteTopologyResult:
    """What a :func:`complete_topology` run produced.

    Attributes:
        topology: the topology as it ran (mocked spouts swapped in).
        tuples: every emit of every component, in the order they happened.
        acked: mocked spout -> indexes (into its mock list) of the acked tuples.
        failed: mocked spout -> indexes of the tuples that failed or timed out.
        errors: errors raised by user code during the run.
        stats: per-component counters at the end of the run.
        component_tasks: component -> its task ids.
        elapsed_secs: simulated seconds the run took.
    """

    topology: TopologyDef
    tuples: tuple[CapturedTuple, ...]
    acked: Mapping[str, tuple[int, ...]]
    failed: Mapping[str, tuple[int, ...]]
    errors: tuple[ErrorReport, ...]
    stats: Mapping[str, ComponentStats]
    component_tasks: Mapping[str, tuple[int, ...]]
    elapsed_secs: float
    _by_stream: dict[tuple[str, str], list[CapturedTuple]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for t in self.tuples:
            self._by_stream.setdefault((t.component, t.stream), []).append(t)

    def read_tuples(self, component: str, stream: str = DEFAULT_STREAM) -> list[list[Any]]:
        """The values ``component`` emitted on ``stream``, in emit order.

        Raises:
            KeyError: the topology has no such component, or it declares no such stream.
        """
        return [list(t.values) for t in self.captured(component, stream)]

    def captured(self, component: str, stream: str = DEFAULT_STREAM) -> list[CapturedTuple]:
        """Like :meth:`read_tuples`, but whole records (with the emitting task)."""
        comp = self.topology.components.get(component)
        if comp is None:
            known = ", ".join(sorted(self.topology.components))
            raise KeyError(f"no component {component!r} in the topology (components: {known})")
        if stream not in comp.outputs:
            declared = ", ".join(sorted(comp.outputs)) or "none"
            raise KeyError(
                f"component {component!r} declares no stream {stream!r} (streams: {declared})"
            )
        return list(self._by_stream.get((component, stream), ()))


def read_tuples(
    result: CompleteTopologyResult, component: str, stream: str = DEFAULT_STREAM
) -> list[list[Any]]:
    """The values ``component`` emitted on ``stream`` (Storm's ``Testing.readTuples``)."""
    return result.read_tuples(component, stream)


MockSources = Mapping[str, Sequence[Sequence[Any] | FixedTuple]]


def complete_topology(
    topology: Any,
    mock_sources: MockSources | None = None,
    conf: Mapping[str, Any] | None = None,
    *,
    timeout_secs: float | None = None,
    wall_timeout_secs: float = 60.0,
    seed: int | None = 0,
    name: str | None = None,
) -> CompleteTopologyResult:
    """Run ``topology`` on fixed input until it is done; return everything it emitted.

    Every spout must be mocked (``mock_sources``) or be a
    :class:`~squall.testing.fixed.CompletableSpout` (``is_exhausted()``, e.g. a
    :class:`~squall.testing.FeederSpout`). The run is in this process, on one
    in-process worker (``topology.workers`` only sets the default acker count),
    on a simulated clock that starts at 0.

    Args:
        topology: a ``Topology`` subclass, a ``TopologyBuilder`` or a ``TopologyDef``.
        mock_sources: spout id -> its tuples: lists of values for the default
            stream, or :class:`~squall.testing.fixed.FixedTuple` for other streams.
            Tuple ``i`` is emitted with message id ``i``.
        conf: topology config, over the topology's own.
        timeout_secs: simulated seconds to allow; default three message timeouts
            (a tree that never completes fails by two).
        wall_timeout_secs: real seconds to allow (guards against a topology that
            never stops emitting, such as an endless cycle).
        seed: seeds shuffles and tuple ids, so runs repeat exactly; ``None`` for random.
        name: the topology name (default: the topology's own).

    Returns:
        A :class:`CompleteTopologyResult`; read it with :func:`read_tuples`.

    Raises:
        InvalidTopologyError: the topology or ``conf`` is invalid.
        ValueError: ``mock_sources`` names an unknown component or a bolt, a tuple
            does not fit its stream, or a spout is neither mocked nor completable.
        CompleteTopologyTimeout: the topology did not finish in time.
    """
    original = as_definition(topology, name)
    user_conf = dict(conf or {})
    validate(original.with_config(user_conf))
    full = {**C.defaults(), **original.config, **user_conf}
    ackers = full[C.TOPOLOGY_ACKER_EXECUTORS]
    run_conf = {
        **user_conf,
        C.TOPOLOGY_WORKERS: 1,
        # Keep as many ackers as a run on that many workers would have.
        C.TOPOLOGY_ACKER_EXECUTORS: int(full[C.TOPOLOGY_WORKERS]) if ackers is None else ackers,
    }
    definition = _with_mocks(original, dict(mock_sources or {})).with_config(run_conf)
    validate(definition)
    plan = make_plan(definition, {})

    if timeout_secs is None:
        timeout_secs = 3.0 * float(plan.conf[C.TOPOLOGY_MESSAGE_TIMEOUT_SECS])
    clock = SimulatedClock()
    errors: list[ErrorReport] = []
    engine = Engine(plan, 0, clock=clock, on_error=errors.append, seed=seed)
    captured: list[CapturedTuple] = []
    engine.start(active=False)
    try:
        _install_capture(engine, captured.append)
        spouts = _spout_tasks(engine)
        engine.activate()
        _run_to_completion(
            engine, clock, spouts, timeout_secs, time.monotonic() + wall_timeout_secs, errors
        )
        stats = engine.component_stats()
    finally:
        engine.shutdown()

    acked: dict[str, list[int]] = {}
    failed: dict[str, list[int]] = {}
    for comp_name, _task, comp in spouts:
        if comp_name in (mock_sources or {}) and isinstance(comp, FixedTupleSpout):
            acked.setdefault(comp_name, []).extend(comp.acked)
            failed.setdefault(comp_name, []).extend(comp.failed)
    return CompleteTopologyResult(
        topology=definition,
        tuples=tuple(captured),
        acked=MappingProxyType({k: tuple(sorted(v)) for k, v in acked.items()}),
        failed=MappingProxyType({k: tuple(sorted(v)) for k, v in failed.items()}),
        errors=tuple(errors),
        stats=MappingProxyType(stats),
        component_tasks=MappingProxyType(dict(plan.component_tasks)),
        elapsed_secs=clock.now(),
    )


def _with_mocks(topology: TopologyDef, mocks: dict[str, Any]) -> TopologyDef:
    """``topology`` with each mocked spout swapped for a FixedTupleSpout; checks the mocks."""
    spouts = sorted(c.name for c in topology.spouts())
    for comp_name in mocks:
        comp = topology.components.get(comp_name)
        if comp is None:
            raise ValueError(
                f"mock_sources: topology {topology.name!r} has no component {comp_name!r} "
                f"(spouts: {', '.join(spouts) or 'none'})"
            )
        if comp.kind != "spout":
            raise ValueError(
                f"mock_sources: {comp_name!r} is a bolt; only spouts can be mocked "
                f"(spouts: {', '.join(spouts)})"
            )
    components: dict[str, ComponentDef] = {}
    for comp in topology.components.values():
        if comp.name in mocks:
            tuples = _check_mock(comp, mocks[comp.name])
            comp = dataclasses.replace(
                comp, cls=FixedTupleSpout, kwargs=MappingProxyType({"tuples": tuples})
            )
        elif comp.kind == "spout" and not callable(getattr(comp.cls, "is_exhausted", None)):
            raise ValueError(
                f"spout {comp.name!r} ({comp.cls.__name__}) is neither mocked nor completable: "
                f"give its tuples in mock_sources[{comp.name!r}] or give the spout an "
                "is_exhausted() method"
            )
        components[comp.name] = comp
    return TopologyDef(topology.name, MappingProxyType(components), topology.config)


def _check_mock(comp: ComponentDef, items: Any) -> list[FixedTuple]:
    where = f"mock_sources[{comp.name!r}]"
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ValueError(f"{where} must be a list of tuples, got {items!r}")
    out: list[FixedTuple] = []
    for i, item in enumerate(items):
        t = as_fixed_tuple(item, f"{where}[{i}]")
        stream = comp.outputs.get(t.stream)
        if stream is None:
            declared = ", ".join(sorted(comp.outputs)) or "none"
            raise ValueError(
                f"{where}[{i}]: spout {comp.name!r} declares no stream {t.stream!r} "
                f"(streams: {declared})"
            )
        if stream.direct:
            raise ValueError(
                f"{where}[{i}]: stream {t.stream!r} of {comp.name!r} is direct; "
                "fixed tuples cannot be emitted on a direct stream"
            )
        if len(t.values) != len(stream.fields):
            raise ValueError(
                f"{where}[{i}]: stream {t.stream!r} of {comp.name!r} declares "
                f"{len(stream.fields)} field(s) {list(stream.fields)} but the tuple has "
                f"{len(t.values)}: {list(t.values)!r}"
            )
        out.append(t)
    return out


# -- capture ------------------------------------------------------------------


class _RecordingCollector:
    """Stands in for a component's collector: records emits, passes everything on."""

    def __init__(self, inner: Any, emit: Callable[..., Any]) -> None:
        self._inner = inner
        self.emit = emit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _install_capture(engine: Engine, record: Callable[[CapturedTuple], None]) -> None:
    """Record every successful emit of every task, whichever way the component emits."""
    for ex in engine.executors:
        for task in ex.tasks.values():
            comp = task.component
            # Spout.emit(tup, tup_id, stream, ...) vs Bolt.emit(tup, stream, ...)
            pos = 1 if isinstance(comp, Spout) else 0
            wrap = _recorder(task.name, task.task, pos, record)
            # The engine binds the collector's emit onto the instance unless the class
            # overrides emit; an override calls the collector, which we also wrap.
            bound = comp.__dict__.get("emit")
            if bound is not None:
                comp.emit = wrap(bound)
            comp._collector = _RecordingCollector(comp._collector, wrap(comp._collector.emit))


def _recorder(
    component: str, task: int, stream_pos: int, record: Callable[[CapturedTuple], None]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(emit: Callable[..., Any]) -> Callable[..., Any]:
        def recording_emit(tup: Any, *args: Any, **kwargs: Any) -> Any:
            result = emit(tup, *args, **kwargs)
            if "stream" in kwargs:
                stream = kwargs["stream"]
            else:
                stream = args[stream_pos] if len(args) > stream_pos else None
            record(CapturedTuple(component, stream or DEFAULT_STREAM, task, tuple(tup)))
            return result

        return recording_emit

    return wrap


# -- running ------------------------------------------------------------------


def _spout_tasks(engine: Engine) -> list[tuple[str, int, Any]]:
    return [
        (task.name, task.task, task.component)
        for ex in engine.executors
        for task in ex.tasks.values()
        if isinstance(task.component, Spout)
    ]


def _run_to_completion(
    engine: Engine,
    clock: SimulatedClock,
    spouts: list[tuple[str, int, Any]],
    timeout_secs: float,
    wall_deadline: float,
    errors: list[ErrorReport],
) -> None:
    start = clock.now()
    while True:
        _drain(engine, wall_deadline, spouts, errors)
        if all(comp.is_exhausted() for _, _, comp in spouts) and not engine.pending_work():
            return
        # Nothing can happen until a timer fires: move simulated time to it.
        nxt = engine.next_timer_in()
        if nxt is None:
            raise CompleteTopologyTimeout(
                "the topology can make no more progress and no timer is pending "
                "(message timeouts are off?): " + _describe(spouts, errors)
            )
        if clock.now() - start + nxt > timeout_secs:
            raise CompleteTopologyTimeout(
                f"not finished after {timeout_secs:g} simulated seconds: "
                + _describe(spouts, errors)
            )
        clock.advance(nxt)


def _drain(
    engine: Engine,
    wall_deadline: float,
    spouts: list[tuple[str, int, Any]],
    errors: list[ErrorReport],
) -> None:
    """Run passes until two in a row do nothing (an idle spout sits out one pass)."""
    quiet = 0
    passes = 0
    while quiet < 2:
        work = engine.run_once()
        quiet = quiet + 1 if work == 0 and not engine.pending_work() else 0
        passes += 1
        if passes % 64 == 0 and time.monotonic() > wall_deadline:
            raise CompleteTopologyTimeout(
                "still busy when the wall-clock timeout passed (a cycle or a spout that "
                "never stops emitting?): " + _describe(spouts, errors)
            )


def _describe(spouts: list[tuple[str, int, Any]], errors: list[ErrorReport]) -> str:
    parts: list[str] = []
    for comp_name, task, comp in spouts:
        if comp.is_exhausted():
            continue
        if isinstance(comp, FixedTupleSpout):
            served = len(comp._serve)
            parts.append(
                f"spout {comp_name!r} task {task} has {served - comp._next} tuple(s) left to "
                f"emit and {served - len(comp.acked) - len(comp.failed)} not yet acked or failed"
            )
        else:
            parts.append(f"spout {comp_name!r} task {task} is not exhausted")
    text = "; ".join(parts) or "tuples still in flight"
    if errors:
        text += f"; {len(errors)} error(s) in user code, the last: {errors[-1].headline()}"
    return text
