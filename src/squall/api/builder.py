"""Storm's imperative topology builder, in Python casing.

>>> from squall.api.component import Spout, Bolt
>>> class Words(Spout):
...     outputs = ["word"]
>>> class Count(Bolt):
...     outputs = ["word", "count"]
>>> b = TopologyBuilder()
>>> _ = b.set_spout("words", Words, 2)
>>> _ = b.set_bolt("count", Count, 4).fields_grouping("words", ["word"])
>>> t = b.create_topology("wc")
>>> t.components["count"].inputs[0][1]
Grouping.fields('word')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from squall.api.component import Bolt, Component, ComponentSpec, Spout
from squall.api.errors import InvalidTopologyError
from squall.api.grouping import Grouping, GroupingSpec
from squall.api.ids import DEFAULT_STREAM
from squall.api.stream import Stream
from squall.api.topology import GlobalStreamId, TopologyDef, build_definition


class _Declarer:
    def __init__(self, builder: TopologyBuilder, spec: ComponentSpec) -> None:
        self._builder = builder
        self._spec = spec

    def add_configuration(self, key: str, value: Any) -> _Declarer:
        """Set one component-specific config key."""
        self._spec.config = {**self._spec.config, key: value}
        return self

    def add_configurations(self, conf: Mapping[str, Any]) -> _Declarer:
        self._spec.config = {**self._spec.config, **conf}
        return self

    def set_num_tasks(self, tasks: int) -> _Declarer:
        """Set ``topology.tasks`` for this component."""
        self._spec.tasks = tasks
        return self

    def set_debug(self, debug: bool) -> _Declarer:
        return self.add_configuration("topology.debug", debug)


class SpoutDeclarer(_Declarer):
    """Returned by ``set_spout``."""


class BoltDeclarer(_Declarer):
    """Returned by ``set_bolt``; every grouping method returns the declarer for chaining."""

    def grouping(
        self, component: str, grouping: GroupingSpec, stream: str = DEFAULT_STREAM
    ) -> BoltDeclarer:
        if not isinstance(self._spec.inputs, dict):
            self._spec.inputs = {}
        key = GlobalStreamId(component, stream)
        if key in self._spec.inputs:
            raise InvalidTopologyError(
                f"component {self._spec.name!r}: subscribes to stream {key} twice"
            )
        self._spec.inputs[key] = grouping
        return self

    def shuffle_grouping(self, component: str, stream: str = DEFAULT_STREAM) -> BoltDeclarer:
        return self.grouping(component, Grouping.SHUFFLE, stream)

    def local_or_shuffle_grouping(
        self, component: str, stream: str = DEFAULT_STREAM
    ) -> BoltDeclarer:
        return self.grouping(component, Grouping.LOCAL_OR_SHUFFLE, stream)

    def fields_grouping(
        self, component: str, fields: Sequence[str], stream: str = DEFAULT_STREAM
    ) -> BoltDeclarer:
        return self.grouping(component, Grouping.fields(*fields), stream)

    def partial_key_grouping(
        self, component: str, fields: Sequence[str], stream: str = DEFAULT_STREAM
    ) -> BoltDeclarer:
        return self.grouping(component, Grouping.partial_key(*fields), stream)

    def all_grouping(self, component: str, stream: str = DEFAULT_STREAM) -> BoltDeclarer:
        return self.grouping(component, Grouping.ALL, stream)

    def global_grouping(self, component: str, stream: str = DEFAULT_STREAM) -> BoltDeclarer:
        return self.grouping(component, Grouping.GLOBAL, stream)

    def none_grouping(self, component: str, stream: str = DEFAULT_STREAM) -> BoltDeclarer:
        return self.grouping(component, Grouping.NONE, stream)

    def direct_grouping(self, component: str, stream: str = DEFAULT_STREAM) -> BoltDeclarer:
        return self.grouping(component, Grouping.DIRECT, stream)

    def custom_grouping(
        self, component: str, obj: Any, stream: str = DEFAULT_STREAM
    ) -> BoltDeclarer:
        return self.grouping(component, Grouping.custom(obj), stream)


class TopologyBuilder:
    """Build a topology step by step, as with Storm's ``TopologyBuilder``."""

    def __init__(self) -> None:
        self._specs: dict[str, ComponentSpec] = {}
        self._config: dict[str, Any] = {}

    def _add(
        self,
        component_id: str,
        cls: type[Component],
        parallelism: int,
        outputs: Sequence[str] | Sequence[Stream] | None,
        kwargs: Mapping[str, Any],
        kind: type[Component] = Component,
    ) -> ComponentSpec:
        if not isinstance(component_id, str) or not component_id:
            raise InvalidTopologyError(
                f"component id must be a non-empty string, got {component_id!r}"
            )
        if component_id in self._specs:
            raise InvalidTopologyError(f"duplicate component id {component_id!r}")
        if not isinstance(cls, type):
            raise InvalidTopologyError(
                f"component {component_id!r}: pass the component class, not an instance "
                f"({cls!r}); each task gets a fresh instance"
            )
        if not issubclass(cls, kind):
            raise InvalidTopologyError(
                f"component {component_id!r}: set_{kind.__name__.lower()} needs a "
                f"{kind.__name__} subclass, got {cls.__name__}"
            )
        spec = cls.spec(name=component_id, par=parallelism, outputs=outputs, **kwargs)
        self._specs[component_id] = spec
        return spec

    def set_spout(
        self,
        component_id: str,
        cls: type[Component],
        parallelism: int = 1,
        *,
        outputs: Sequence[str] | Sequence[Stream] | None = None,
        **kwargs: Any,
    ) -> SpoutDeclarer:
        return SpoutDeclarer(
            self, self._add(component_id, cls, parallelism, outputs, kwargs, Spout)
        )

    def set_bolt(
        self,
        component_id: str,
        cls: type[Component],
        parallelism: int = 1,
        *,
        outputs: Sequence[str] | Sequence[Stream] | None = None,
        **kwargs: Any,
    ) -> BoltDeclarer:
        return BoltDeclarer(self, self._add(component_id, cls, parallelism, outputs, kwargs, Bolt))

    def set_config(self, conf: Mapping[str, Any]) -> TopologyBuilder:
        self._config.update(conf)
        return self

    def create_topology(self, name: str = "topology") -> TopologyDef:
        """Resolve and validate the declared components."""
        from squall.api.validation import validate

        d = build_definition(name, self._specs, self._config)
        validate(d)
        return d
