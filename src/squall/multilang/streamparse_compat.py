"""Run streamparse projects: a streamparse ``Topology`` class becomes a Squall topology.

streamparse topologies describe Storm's Thrift structures; under Storm every
Python component is a ``ShellBolt``/``ShellSpout`` running
``streamparse_run module.Class``. Here it is the same, with Squall's launcher
(``python -m squall.multilang.run module.Class``, which does what
``streamparse_run`` does), so the components run unmodified as multilang
children. Other shell components keep their command and script. Java
components cannot run without a JVM and are refused with a clear error.

Working directory of the children (the "resources" directory): the project's
``src/`` when the topology file sits in a ``topologies/`` directory next to it
(``sparse quickstart``'s layout), else the topology file's directory.

Nothing here imports streamparse: a topology file that defines a streamparse
topology has imported it already.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from squall.api.component import ComponentSpec
from squall.api.errors import InvalidTopologyError
from squall.api.grouping import Grouping, GroupingSpec
from squall.api.stream import Stream
from squall.api.topology import TopologyDef, build_definition
from squall.api.validation import validate
from squall.multilang.shell import ShellBolt, ShellSpout

SERIALIZER_KEYS = ("topology.multilang.serializer", "serializer")


def is_streamparse_topology(obj: Any) -> bool:
    """True for a streamparse ``Topology`` subclass that declares components."""
    mod = sys.modules.get("streamparse.dsl.topology")
    base = getattr(mod, "Topology", None)
    return (
        base is not None
        and isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and bool(getattr(obj, "specs", None))
    )


def project_resource_dir(topology_file: str | None) -> str | None:
    """``<project>/src`` for ``<project>/topologies/x.py`` (streamparse's layout), else its dir."""
    if not topology_file:
        return None
    folder = os.path.dirname(os.path.abspath(topology_file))
    src = os.path.join(os.path.dirname(folder), "src")
    if os.path.basename(folder) == "topologies" and os.path.isdir(src):
        return src
    return folder


def _grouping(owner: str, g: Any) -> GroupingSpec:
    if getattr(g, "fields", None) is not None:
        return Grouping.fields(*g.fields) if g.fields else Grouping.GLOBAL
    for attr, spec in (
        ("shuffle", Grouping.SHUFFLE),
        ("local_or_shuffle", Grouping.LOCAL_OR_SHUFFLE),
        ("all", Grouping.ALL),
        ("none", Grouping.NONE),
        ("direct", Grouping.DIRECT),
    ):
        if getattr(g, attr, None) is not None:
            return spec
    raise InvalidTopologyError(
        f"component {owner!r}: grouping {g!r} needs Java (custom_object/custom_serialized), "
        "which Squall cannot run"
    )


def _par(owner: str, par: Any) -> int:
    if isinstance(par, dict):
        # streamparse allows a parallelism per environment; local mode is "local".
        chosen = par.get("local", next(iter(par.values()), 1))
        return int(chosen)
    if not isinstance(par, int):
        raise InvalidTopologyError(f"component {owner!r}: parallelism {par!r} is not an int")
    return par


def from_streamparse(cls: type, name: str | None = None) -> TopologyDef:
    """The Squall topology for the streamparse ``Topology`` subclass ``cls``."""
    conf: dict[str, Any] = dict(getattr(cls, "config", None) or {})
    serializer = next((str(conf[k]) for k in SERIALIZER_KEYS if conf.get(k)), "json")
    conf.pop("serializer", None)
    module = sys.modules.get(cls.__module__)
    cwd = project_resource_dir(getattr(module, "__file__", None))
    specs: dict[str, ComponentSpec] = {}
    for sp in cls.specs:  # type: ignore[attr-defined]
        cname = str(sp.name)
        kind = type(sp).__name__
        obj = sp.component_object
        shell = getattr(obj, "shell", None)
        if shell is None:
            raise InvalidTopologyError(
                f"component {cname!r} is a Java component ({kind}); Squall runs Python and "
                "shell components only"
            )
        command = str(shell.execution_command)
        script = str(shell.script)
        if command == "streamparse_run":
            argv = [sys.executable, "-m", "squall.multilang.run", *script.split()]
            if "-s" not in argv and "--serializer" not in argv:
                argv += ["-s", serializer]
        else:
            argv = [command, *([script] if script else [])]
        outputs = [
            Stream(list(info.output_fields or []), name=stream, direct=bool(info.direct))
            for stream, info in (sp.outputs or {}).items()
        ]
        config = json.loads(sp.config) if isinstance(sp.config, str) else dict(sp.config or {})
        inputs = {
            f"{sid.componentId}:{sid.streamId}": _grouping(cname, g)
            for sid, g in (sp.inputs or {}).items()
        }
        host = ShellSpout if "Spout" in kind else ShellBolt
        specs[cname] = ComponentSpec(
            cls=host,
            name=cname,
            inputs=inputs or None,
            par=_par(cname, sp.par),
            config=config,
            outputs=outputs,
            kwargs={"command": argv, "serializer": serializer, "cwd": cwd},
        )
    d = build_definition(name or cls.__name__, specs, conf)
    validate(d)
    return d


__all__ = ["from_streamparse", "is_streamparse_topology", "project_resource_dir"]
