"""A topology's shape as JSON: what a cluster keeps so tools can draw it without its code.

``squall submit`` sends :func:`describe` of the topology with the code; nimbus
stores it, and the UI turns it back into a :class:`TopologyDef` with
:func:`from_description` (Storm's UI does the same with the ``StormTopology``
struct nimbus keeps). The rebuilt definition has every component's kind,
parallelism, inputs with their groupings, and output streams, but not its
class: it can be shown, never run.

>>> from squall.api import Bolt, Grouping, Spout, Topology
>>> class T(Topology):
...     words = Spout.spec(outputs=["word"])
...     count = Bolt.spec(inputs={words: Grouping.fields("word")}, outputs=["word", "n"], par=2)
>>> d = from_description(describe(T.definition("wc")))
>>> d.components["count"].inputs[0][1], d.components["count"].par
(Grouping.fields('word'), 2)
>>> d.components["words"].outputs["default"].fields
('word',)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.api.component import Bolt, Component, Spout
from squall.api.grouping import CUSTOM, GroupingSpec
from squall.api.stream import Stream
from squall.api.topology import ComponentDef, GlobalStreamId, TopologyDef


class DescriptionError(ValueError):
    """A topology description is malformed (the message names the component and field)."""


class _Described:
    """Marks a component rebuilt from a description: it has no code to run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a component rebuilt from a topology description cannot be run")


class DescribedSpout(_Described, Spout):
    """The stand-in class of a spout rebuilt from a description."""


class DescribedBolt(_Described, Bolt):
    """The stand-in class of a bolt rebuilt from a description."""


def describe(topology: TopologyDef) -> dict[str, Any]:
    """``topology``'s shape as JSON-able data (no classes, no arguments, no config values)."""
    comps: dict[str, Any] = {}
    for name, c in sorted(topology.components.items()):
        comps[name] = {
            "kind": c.kind,
            "class": f"{c.cls.__module__}.{c.cls.__qualname__}",
            "par": c.par,
            "tasks": c.tasks,
            "inputs": [
                {
                    "component": sid.component,
                    "stream": sid.stream,
                    "grouping": g.kind,
                    "fields": list(g.fields),
                    **({"custom": _custom_name(g.custom)} if g.kind == CUSTOM else {}),
                }
                for sid, g in c.inputs
            ],
            "outputs": {
                s.name: {"fields": list(s.fields), "direct": s.direct} for s in c.outputs.values()
            },
        }
    return {"name": topology.name, "components": comps}


def from_description(data: Mapping[str, Any]) -> TopologyDef:
    """The :class:`TopologyDef` of a description (components cannot be run).

    Raises:
        DescriptionError: naming the component and field at fault.
    """
    if not isinstance(data, Mapping):
        raise DescriptionError("a topology description must be a JSON object")
    name = data.get("name")
    raw = data.get("components")
    if not isinstance(name, str) or not isinstance(raw, Mapping):
        raise DescriptionError("a topology description needs 'name' and 'components'")
    components: dict[str, ComponentDef] = {}
    for cname, c in raw.items():
        components[cname] = _component(str(cname), c)
    return TopologyDef(name, components)


def _component(name: str, c: Any) -> ComponentDef:
    def bad(what: str) -> DescriptionError:
        return DescriptionError(f"component {name!r}: {what}")

    if not isinstance(c, Mapping):
        raise bad("must be a JSON object")
    kind = c.get("kind")
    if kind not in ("spout", "bolt"):
        raise bad(f"'kind' must be 'spout' or 'bolt', got {kind!r}")
    par = c.get("par")
    if isinstance(par, bool) or not isinstance(par, int) or par < 1:
        raise bad(f"'par' must be an integer > 0, got {par!r}")
    tasks = c.get("tasks")
    if tasks is not None and (isinstance(tasks, bool) or not isinstance(tasks, int)):
        raise bad(f"'tasks' must be an integer or null, got {tasks!r}")
    inputs: list[tuple[GlobalStreamId, GroupingSpec]] = []
    for i in c.get("inputs") or []:
        if not isinstance(i, Mapping) or not isinstance(i.get("component"), str):
            raise bad(f"bad input {i!r}")
        grouping = i.get("grouping")
        if not isinstance(grouping, str):
            raise bad(f"input {i.get('component')!r}: 'grouping' must be a string")
        inputs.append(
            (
                GlobalStreamId(i["component"], str(i.get("stream") or "default")),
                GroupingSpec(
                    grouping, tuple(str(f) for f in i.get("fields") or ()), i.get("custom")
                ),
            )
        )
    outputs: dict[str, Stream] = {}
    for sname, s in (c.get("outputs") or {}).items():
        if not isinstance(s, Mapping):
            raise bad(f"output stream {sname!r} must be a JSON object")
        try:
            outputs[str(sname)] = Stream(s.get("fields") or (), str(sname), bool(s.get("direct")))
        except (TypeError, ValueError) as e:
            raise bad(str(e)) from None
    cls: type[Component] = DescribedSpout if kind == "spout" else DescribedBolt
    return ComponentDef(
        name=name,
        kind=kind,
        cls=cls,
        par=par,
        tasks=tasks,
        inputs=tuple(inputs),
        outputs=outputs,
        config={},
    )


def _custom_name(custom: Any) -> str:
    cls = custom if isinstance(custom, type) else type(custom)
    return f"{cls.__module__}.{cls.__qualname__}"
