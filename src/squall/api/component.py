"""What topology authors subclass: :class:`Spout`, :class:`Bolt`, :class:`ReliableSpout`.

The names and signatures are pystorm's/streamparse's, so their code carries over.
The engine attaches a collector before ``initialize``; until then ``emit`` raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from squall.api.grouping import GroupingSpec
from squall.api.ids import DEFAULT_STREAM
from squall.api.stream import Stream

if TYPE_CHECKING:
    from squall.api.context import TopologyContext
    from squall.api.tuple import Tuple

_LEVELS = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class SpoutCollector(Protocol):
    """What the engine gives a spout (Storm's SpoutOutputCollector)."""

    def emit(
        self,
        tup: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None: ...

    def report_error(self, error: BaseException) -> None: ...

    def report_metric(self, name: str, value: Any) -> None: ...


class BoltCollector(Protocol):
    """What the engine gives a bolt (Storm's OutputCollector)."""

    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        anchors: Sequence[Tuple] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None: ...

    def ack(self, tup: Tuple) -> None: ...

    def fail(self, tup: Tuple) -> None: ...

    def reset_timeout(self, tup: Tuple) -> None: ...

    def report_error(self, error: BaseException) -> None: ...

    def report_metric(self, name: str, value: Any) -> None: ...


class _Detached:
    """Collector stand-in before the engine attaches one: every call explains itself."""

    def __init__(self, owner: str) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"{self._owner}.{name}() was called before the component was started by a "
            "topology; call it from initialize/next_tuple/process"
        )


@dataclass(frozen=True, slots=True)
class StreamRef:
    """``spec["stream"]``: subscribe to a named stream of a component."""

    spec: ComponentSpec
    stream: str


@dataclass(eq=False)
class ComponentSpec:
    """A component declared in a topology: ``MyBolt.spec(inputs=..., par=...)``.

    Equality is identity, so specs can be dict keys in ``inputs``.
    """

    cls: type[Component]
    name: str | None = None
    inputs: Any = None
    par: int = 1
    config: Mapping[str, Any] = field(default_factory=dict)
    tasks: int | None = None
    outputs: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # Run each task in its own child process (squall.multilang): False, True or options.
    isolated: Any = False

    def __getitem__(self, stream: str) -> StreamRef:
        if not isinstance(stream, str):
            raise TypeError(f"spec[...] takes a stream name, got {stream!r}")
        return StreamRef(self, stream)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<{self.cls.__name__}.spec name={self.name!r} par={self.par}>"


class Component:
    """Behaviour shared by spouts and bolts."""

    #: Output declaration: field names for the default stream, or a list of Streams.
    outputs: ClassVar[Sequence[str] | Sequence[Stream] | None] = None

    conf: Mapping[str, Any]
    context: TopologyContext
    logger: logging.Logger
    _collector: Any

    def __init__(self) -> None:
        self._collector = _Detached(type(self).__name__)
        self.logger = logging.getLogger(f"squall.component.{type(self).__name__}")

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        config: Mapping[str, Any] | None = None,
        *,
        tasks: int | None = None,
        outputs: Sequence[str] | Sequence[Stream] | None = None,
        isolated: bool | Mapping[str, Any] = False,
        **kwargs: Any,
    ) -> ComponentSpec:
        """Declare this component in a topology.

        Args:
            name: component id; defaults to the attribute name in the Topology class.
            inputs: what it subscribes to: a list of specs (shuffle on their
                default stream), or a dict ``{spec or spec["stream"]: Grouping}``.
            par: parallelism hint (number of executors).
            config: component-specific config (for example tick frequency).
            tasks: number of tasks (``topology.tasks``); defaults to ``par``.
            outputs: override the class's ``outputs`` for this declaration.
            isolated: run each task in its own Python process over the multilang
                protocol (``True``, or options such as ``{"python": "/venv/bin/python"}``;
                see docs/multilang.md). Same semantics as in process.
            kwargs: passed to the component's constructor on every task.
        """
        return ComponentSpec(
            cls=cls,
            name=name,
            inputs=inputs,
            par=par,
            config=dict(config or {}),
            tasks=tasks,
            outputs=outputs,
            kwargs=dict(kwargs),
            isolated=isolated,
        )

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        """Called once per task before any tuple; override to set up state."""

    def log(self, message: str, level: str | int = "info") -> None:
        """Log through Squall's logging, tagged with the component and task."""
        lvl = _LEVELS.get(level, logging.INFO) if isinstance(level, str) else int(level)
        self.logger.log(lvl, "%s", message)

    def report_metric(self, name: str, value: Any) -> None:
        """Record a user metric (``report_metric("queue-depth", 12)``)."""
        self._collector.report_metric(name, value)

    def report_error(self, error: BaseException) -> None:
        """Report an error for this task without failing anything."""
        self._collector.report_error(error)


class Spout(Component):
    """A source of tuples. Override ``next_tuple`` and call ``emit``.

    >>> class Numbers(Spout):
    ...     outputs = ["n"]
    ...     def initialize(self, conf, context):
    ...         self.n = 0
    ...     def next_tuple(self):
    ...         self.n += 1
    ...         self.emit([self.n], tup_id=self.n)
    """

    def next_tuple(self) -> None:
        """Emit zero or more tuples; never block for long."""

    def ack(self, tup_id: Any) -> None:
        """The tuple tree of ``tup_id`` was fully processed."""

    def fail(self, tup_id: Any) -> None:
        """The tuple tree of ``tup_id`` failed or timed out; re-emit to replay."""

    def activate(self) -> None:
        """The topology was activated."""

    def deactivate(self) -> None:
        """The topology was deactivated; ``next_tuple`` will not be called."""

    def close(self) -> None:
        """The spout is shutting down."""

    def emit(
        self,
        tup: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """Emit ``tup``; with a ``tup_id`` it is tracked and ``ack``/``fail`` follow.

        Returns the target task ids when ``need_task_ids`` is true.
        """
        return self._collector.emit(  # type: ignore[no-any-return]
            tup, tup_id=tup_id, stream=stream, direct_task=direct_task, need_task_ids=need_task_ids
        )


class ReliableSpout(Spout):
    """A spout that remembers what it emitted and re-emits on ``fail``.

    After ``max_fails`` failures of one id it gives up and treats the id as done
    (pystorm's behaviour), logging the loss at error level.
    """

    max_fails: ClassVar[int] = 3

    def __init__(self) -> None:
        super().__init__()
        self.unacked_tuples: dict[Any, tuple[Sequence[Any], str | None, int | None]] = {}
        self.failed_tuples: dict[Any, int] = {}

    def emit(
        self,
        tup: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        if tup_id is not None:
            self.unacked_tuples[tup_id] = (tup, stream, direct_task)
        return self._collector.emit(  # type: ignore[no-any-return]
            tup, tup_id=tup_id, stream=stream, direct_task=direct_task, need_task_ids=need_task_ids
        )

    def ack(self, tup_id: Any) -> None:
        self.unacked_tuples.pop(tup_id, None)
        self.failed_tuples.pop(tup_id, None)

    def fail(self, tup_id: Any) -> None:
        fails = self.failed_tuples.get(tup_id, 0) + 1
        if tup_id not in self.unacked_tuples:
            return
        if fails > self.max_fails:
            self.log(f"tuple {tup_id!r} failed {fails - 1} times; giving up on it", level="error")
            self.ack(tup_id)
            return
        self.failed_tuples[tup_id] = fails
        tup, stream, direct_task = self.unacked_tuples[tup_id]
        self.emit(tup, tup_id=tup_id, stream=stream, direct_task=direct_task)


class Bolt(Component):
    """Transforms tuples. Override ``process``; emits are anchored and inputs acked for you.

    Class flags (pystorm's meaning):
        auto_anchor: emits inside ``process`` are anchored to the current tuple.
        auto_ack: the tuple is acked after ``process`` returns.
        auto_fail: the tuple is failed if ``process`` raises.

    >>> class Split(Bolt):
    ...     outputs = ["word"]
    ...     def process(self, tup):
    ...         for word in tup.values.sentence.split():
    ...             self.emit([word])
    """

    auto_anchor: ClassVar[bool] = True
    auto_ack: ClassVar[bool] = True
    auto_fail: ClassVar[bool] = True

    def process(self, tup: Tuple) -> None:
        """Handle one input tuple."""

    def process_tick(self, tup: Tuple) -> None:
        """Handle a tick tuple (``topology.tick.tuple.freq.secs``)."""

    def cleanup(self) -> None:
        """The bolt is shutting down."""

    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        anchors: Sequence[Tuple] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """Emit ``tup`` on ``stream`` (default ``"default"``), anchored to ``anchors``."""
        return self._collector.emit(  # type: ignore[no-any-return]
            tup,
            stream=stream,
            anchors=anchors,
            direct_task=direct_task,
            need_task_ids=need_task_ids,
        )

    def ack(self, tup: Tuple) -> None:
        """Mark ``tup`` as processed."""
        self._collector.ack(tup)

    def fail(self, tup: Tuple) -> None:
        """Fail ``tup``: its spout tuple's ``fail`` is called."""
        self._collector.fail(tup)

    def reset_timeout(self, tup: Tuple) -> None:
        """Restart the message timeout of ``tup``'s spout tuples."""
        self._collector.reset_timeout(tup)


def component_kind(cls: type) -> str:
    """``"spout"`` or ``"bolt"`` for a component class."""
    if isinstance(cls, type) and issubclass(cls, Spout):
        return "spout"
    if isinstance(cls, type) and issubclass(cls, Bolt):
        return "bolt"
    raise TypeError(f"{cls!r} is neither a Spout nor a Bolt subclass")


__all__ = [
    "DEFAULT_STREAM",
    "Bolt",
    "BoltCollector",
    "Component",
    "ComponentSpec",
    "GroupingSpec",
    "ReliableSpout",
    "Spout",
    "SpoutCollector",
    "StreamRef",
    "component_kind",
]
