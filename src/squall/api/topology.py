"""The topology as data (:class:`TopologyDef`) and the declarative class DSL (:class:`Topology`).

>>> from squall.api.component import Spout, Bolt
>>> from squall.api.grouping import Grouping
>>> class Words(Spout):
...     outputs = ["word"]
>>> class Count(Bolt):
...     outputs = ["word", "count"]
>>> class WordCount(Topology):
...     words = Words.spec()
...     count = Count.spec(inputs={words: Grouping.fields("word")}, par=2)
>>> d = WordCount.definition()
>>> sorted(d.components), d.components["count"].par
(['count', 'words'], 2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from squall.api.component import Component, ComponentSpec, StreamRef, component_kind
from squall.api.errors import InvalidTopologyError
from squall.api.grouping import Grouping, GroupingSpec
from squall.api.ids import DEFAULT_STREAM
from squall.api.stream import Stream, normalize_outputs


@dataclass(frozen=True, slots=True)
class GlobalStreamId:
    """A stream as (component, stream), Storm's GlobalStreamId."""

    component: str
    stream: str = DEFAULT_STREAM

    def __str__(self) -> str:
        return f"{self.component}:{self.stream}"


@dataclass(frozen=True)
class ComponentDef:
    """One spout or bolt of a topology, fully resolved."""

    name: str
    kind: str  # "spout" | "bolt"
    cls: type[Component]
    par: int
    tasks: int | None
    inputs: tuple[tuple[GlobalStreamId, GroupingSpec], ...]
    outputs: Mapping[str, Stream]
    config: Mapping[str, Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # False, True or a mapping of options: each task runs in a child process.
    isolated: Any = False

    def make(self) -> Component:
        """A fresh instance for one task (for an isolated component, its host-side proxy)."""
        if self.isolated:
            if _ISOLATION is None:
                raise RuntimeError(
                    f"component {self.name!r} is isolated=True, which needs squall.multilang "
                    "(import squall)"
                )
            return _ISOLATION(self)
        return self.cls(**self.kwargs)


# Set by squall.multilang on import (it sits above this layer): builds the host-side
# proxy that runs an isolated component's class in a child process.
_ISOLATION: Callable[[ComponentDef], Component] | None = None


def set_isolation(factory: Callable[[ComponentDef], Component]) -> None:
    """Register what ``ComponentDef.make`` uses for ``isolated=True`` components."""
    global _ISOLATION
    _ISOLATION = factory


@dataclass(frozen=True)
class TopologyDef:
    """A whole topology: what ``Topology`` classes and ``TopologyBuilder`` both produce."""

    name: str
    components: Mapping[str, ComponentDef]
    config: Mapping[str, Any] = field(default_factory=dict)

    def spouts(self) -> list[ComponentDef]:
        return [c for c in self.components.values() if c.kind == "spout"]

    def bolts(self) -> list[ComponentDef]:
        return [c for c in self.components.values() if c.kind == "bolt"]

    def with_config(self, conf: Mapping[str, Any]) -> TopologyDef:
        """This topology with ``conf`` merged over its own config."""
        merged = {**self.config, **conf}
        return TopologyDef(self.name, self.components, MappingProxyType(merged))


def resolve_outputs(cls: type[Component], override: Any, name: str) -> dict[str, Stream]:
    raw = override if override is not None else getattr(cls, "outputs", None)
    return normalize_outputs(raw, name)


def resolve_inputs(
    owner: str, raw: Any, name_of: Mapping[int, str]
) -> tuple[tuple[GlobalStreamId, GroupingSpec], ...]:
    """Turn ``inputs=`` (list or dict of specs, StreamRefs or names) into stream ids."""

    def source(key: Any) -> GlobalStreamId:
        if isinstance(key, StreamRef):
            comp = name_of.get(id(key.spec))
            if comp is None:
                raise InvalidTopologyError(
                    f"component {owner!r}: input {key.spec!r} is not declared in this topology"
                )
            return GlobalStreamId(comp, key.stream)
        if isinstance(key, ComponentSpec):
            comp = name_of.get(id(key))
            if comp is None:
                raise InvalidTopologyError(
                    f"component {owner!r}: input {key!r} is not declared in this topology"
                )
            return GlobalStreamId(comp, DEFAULT_STREAM)
        if isinstance(key, GlobalStreamId):
            return key
        if isinstance(key, str):
            comp, _, stream = key.partition(":")
            return GlobalStreamId(comp, stream or DEFAULT_STREAM)
        raise InvalidTopologyError(
            f"component {owner!r}: cannot subscribe to {key!r}; use a spec, "
            "spec['stream'] or a component name"
        )

    if raw is None:
        return ()
    pairs: list[tuple[GlobalStreamId, GroupingSpec]] = []
    if isinstance(raw, Mapping):
        for key, grouping in raw.items():
            if not isinstance(grouping, GroupingSpec):
                raise InvalidTopologyError(
                    f"component {owner!r}: input {key!r} has grouping {grouping!r}; "
                    "use Grouping.SHUFFLE, Grouping.fields(...), ..."
                )
            pairs.append((source(key), grouping))
    elif isinstance(raw, list | tuple):
        for key in raw:
            pairs.append((source(key), Grouping.SHUFFLE))
    else:
        pairs.append((source(raw), Grouping.SHUFFLE))
    seen: set[GlobalStreamId] = set()
    for sid, _ in pairs:
        if sid in seen:
            raise InvalidTopologyError(f"component {owner!r}: subscribes to stream {sid} twice")
        seen.add(sid)
    return tuple(pairs)


def build_definition(
    name: str, specs: Mapping[str, ComponentSpec], config: Mapping[str, Any]
) -> TopologyDef:
    """Resolve named specs into a :class:`TopologyDef` (no structural validation)."""
    name_of: dict[int, str] = {}
    for attr, spec in specs.items():
        cname = spec.name or attr
        name_of[id(spec)] = cname
    components: dict[str, ComponentDef] = {}
    for attr, spec in specs.items():
        cname = name_of[id(spec)]
        if cname in components:
            raise InvalidTopologyError(f"duplicate component id {cname!r}")
        kind = component_kind(spec.cls)
        components[cname] = ComponentDef(
            name=cname,
            kind=kind,
            cls=spec.cls,
            par=spec.par,
            tasks=spec.tasks,
            inputs=resolve_inputs(cname, spec.inputs, name_of),
            outputs=MappingProxyType(resolve_outputs(spec.cls, spec.outputs, cname)),
            config=MappingProxyType(dict(spec.config)),
            kwargs=MappingProxyType(dict(spec.kwargs)),
            isolated=spec.isolated,
        )
        del attr
    return TopologyDef(name, MappingProxyType(components), MappingProxyType(dict(config)))


class _TopologyMeta(type):
    def __new__(
        mcs, cls_name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> _TopologyMeta:
        cls = super().__new__(mcs, cls_name, bases, namespace)
        specs: dict[str, ComponentSpec] = {}
        for base in reversed(cls.__mro__[1:]):
            specs.update(getattr(base, "_specs", {}))
        for attr, value in namespace.items():
            if isinstance(value, ComponentSpec):
                specs[attr] = value
        cls._specs = specs  # type: ignore[attr-defined]
        return cls


class Topology(metaclass=_TopologyMeta):
    """Declare a topology as a class whose attributes are component specs.

    ``config`` holds topology config; ``definition()`` returns the resolved topology.
    """

    config: ClassVar[Mapping[str, Any]] = {}
    _specs: ClassVar[dict[str, ComponentSpec]] = {}

    @classmethod
    def definition(cls, name: str | None = None) -> TopologyDef:
        """Resolve and validate this class into a :class:`TopologyDef`."""
        from squall.api.validation import validate

        if not cls._specs:
            raise InvalidTopologyError(f"topology {cls.__name__!r} declares no components")
        d = build_definition(name or cls.__name__, cls._specs, cls.config)
        validate(d)
        return d


def as_definition(obj: Any, name: str | None = None) -> TopologyDef:
    """Accept a Topology class, a TopologyDef, or a TopologyBuilder and return the def."""
    if isinstance(obj, TopologyDef):
        if name and name != obj.name:
            return TopologyDef(name, obj.components, obj.config)
        return obj
    if isinstance(obj, type) and issubclass(obj, Topology):
        return obj.definition(name)
    create = getattr(obj, "create_topology", None)
    if callable(create):
        d = create()
        if isinstance(d, TopologyDef):
            return as_definition(d, name)
    raise TypeError(
        f"{obj!r} is not a topology: pass a Topology subclass, a TopologyBuilder or a TopologyDef"
    )
