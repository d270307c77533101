"""Structural checks done before anything starts (Storm's validateStructure and more)."""

from __future__ import annotations

import re

from squall.api.errors import InvalidTopologyError
from squall.api.grouping import DIRECT, FIELDS, KINDS, PARTIAL_KEY
from squall.api.ids import is_system_id
from squall.api.topology import TopologyDef
from squall.config import ConfigError, check

_NAME_RE = re.compile(r"^[^/.:\\]+$")


def validate(topology: TopologyDef) -> None:
    """Raise :class:`InvalidTopologyError` listing every problem, each naming its culprit.

    A cycle is valid, as in Storm.
    """
    problems: list[str] = []
    if not _NAME_RE.match(topology.name):
        problems.append(f"topology name {topology.name!r} may not contain '/', '.', ':' or '\\'")
    try:
        check(topology.config, "topology")
    except ConfigError as e:
        problems.append(str(e))
    if not topology.components:
        problems.append(f"topology {topology.name!r} has no components")
    if topology.components and not topology.spouts():
        problems.append(f"topology {topology.name!r} has no spout")
    for comp in topology.components.values():
        where = f"component {comp.name!r}"
        if is_system_id(comp.name):
            problems.append(f"{where}: ids starting with '__' are reserved for Squall")
        if ":" in comp.name:
            problems.append(f"{where}: ids may not contain ':'")
        if not isinstance(comp.par, int) or isinstance(comp.par, bool) or comp.par <= 0:
            problems.append(f"{where}: parallelism must be a positive int, got {comp.par!r}")
        if comp.tasks is not None and (
            not isinstance(comp.tasks, int) or isinstance(comp.tasks, bool) or comp.tasks <= 0
        ):
            problems.append(f"{where}: tasks must be a positive int, got {comp.tasks!r}")
        try:
            check(comp.config, f"{where}")
        except ConfigError as e:
            problems.append(str(e))
        for stream in comp.outputs:
            if is_system_id(stream):
                problems.append(f"{where}: stream id {stream!r} is reserved (starts with '__')")
        if comp.kind == "spout" and comp.inputs:
            problems.append(f"{where}: a spout cannot declare inputs")
        for sid, grouping in comp.inputs:
            source = topology.components.get(sid.component)
            if grouping.kind not in KINDS:
                problems.append(f"{where}: unknown grouping {grouping!r} on {sid}")
                continue
            if source is None:
                problems.append(
                    f"{where}: subscribes to unknown component {sid.component!r} "
                    f"(known: {', '.join(sorted(topology.components))})"
                )
                continue
            declared_stream = source.outputs.get(sid.stream)
            if declared_stream is None:
                declared = ", ".join(sorted(source.outputs)) or "none"
                problems.append(
                    f"{where}: subscribes to stream {sid.stream!r} of {sid.component!r}, "
                    f"which declares streams: {declared}"
                )
                continue
            if grouping.kind in (FIELDS, PARTIAL_KEY):
                for f in grouping.fields:
                    if f not in declared_stream.fields:
                        problems.append(
                            f"{where}: groups {sid} by field {f!r}, but that stream declares "
                            f"fields {list(declared_stream.fields)}"
                        )
            if grouping.kind == DIRECT and not declared_stream.direct:
                problems.append(f"{where}: direct grouping on {sid}, which is not declared direct")
            if grouping.kind != DIRECT and declared_stream.direct:
                problems.append(
                    f"{where}: stream {sid} is direct; subscribe to it with Grouping.DIRECT"
                )
    if problems:
        raise InvalidTopologyError(
            f"invalid topology {topology.name!r}:\n  - " + "\n  - ".join(problems)
        )
