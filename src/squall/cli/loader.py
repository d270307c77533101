"""Find the topology named by ``FILE_OR_MODULE[:ATTR]`` on the command line.

A target is a ``.py`` file or a dotted module name, optionally followed by
``:ATTR``. Without ``ATTR`` the module must define exactly one topology: a
:class:`~squall.api.Topology` subclass defined in that module, or a
module-level :class:`~squall.api.TopologyDef` or
:class:`~squall.api.TopologyBuilder`. Every failure raises
:class:`TopologyLoadError` with a message that names the file, line or
attribute at fault.

>>> split_target("examples/wordcount.py:WordCount")
('examples/wordcount.py', 'WordCount')
>>> split_target("mypkg.topologies")
('mypkg.topologies', None)
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from squall.api.builder import TopologyBuilder
from squall.api.component import Bolt, Spout
from squall.api.topology import Topology, TopologyDef
from squall.daemon.shipping import load_topology_source
from squall.multilang.streamparse_compat import (
    from_streamparse,
    is_streamparse_topology,
    project_resource_dir,
)


class TopologyLoadError(Exception):
    """The target could not be imported, or holds no (or several, or a wrong) topology."""


@dataclass(frozen=True)
class LoadedTopology:
    """What a target resolved to.

    Attributes:
        obj: a Topology subclass, a TopologyDef or a TopologyBuilder.
        where: ``source:attr``, for messages.
        default_name: the topology name to use when ``--name`` is not given.
        module: the imported module.
    """

    obj: Any
    where: str
    default_name: str
    module: ModuleType


def split_target(target: str) -> tuple[str, str | None]:
    """Split ``FILE_OR_MODULE[:ATTR]``; a colon only counts before an identifier."""
    source, sep, attr = target.rpartition(":")
    if sep and source and attr.isidentifier():
        return source, attr
    return target, None


def is_file_target(source: str) -> bool:
    """A target is a file when it ends in ``.py``, has a path separator, or exists as a file."""
    return source.endswith(".py") or os.sep in source or "/" in source or Path(source).is_file()


def load_module(source: str) -> ModuleType:
    """Import ``source`` (a file path or a dotted module name)."""
    if is_file_target(source):
        return _load_file(Path(source))
    return _import_module(source)


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TopologyLoadError(f"{path}: no such file")
    # A streamparse project's topologies/x.py imports its components from ../src.
    src = project_resource_dir(str(path))
    if src is not None and src != str(path.resolve().parent) and src not in sys.path:
        sys.path.insert(0, src)
    try:
        # Registers the file's module under a name derived from its path, so that
        # local worker processes (--workers N) import the very same code.
        return load_topology_source(path)
    except SyntaxError as e:
        raise TopologyLoadError(
            f"{e.filename or path}:{e.lineno}: syntax error: {e.msg}"
            + (f"\n    {e.text.strip()}" if e.text else "")
        ) from e
    except Exception as e:
        raise TopologyLoadError(_import_failure(str(path), e, path)) from e


def _import_module(name: str) -> ModuleType:
    # Like ``python -m``: the current directory is importable.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_topology_source(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise TopologyLoadError(
                f"{name}: no module named {e.name!r} (and no file {name!r}); "
                "give a path to a .py file or an importable module"
            ) from e
        raise TopologyLoadError(_import_failure(name, e, None)) from e
    except SyntaxError as e:
        raise TopologyLoadError(f"{e.filename}:{e.lineno}: syntax error: {e.msg}") from e
    except Exception as e:
        raise TopologyLoadError(_import_failure(name, e, None)) from e


def _import_failure(source: str, error: BaseException, path: Path | None) -> str:
    """Name the line that raised: the deepest frame in the target file, else the deepest frame."""
    frames = traceback.extract_tb(error.__traceback__)
    culprit = frames[-1] if frames else None
    if path is not None:
        resolved = str(path.resolve())
        mine = [f for f in frames if f.filename and str(Path(f.filename).resolve()) == resolved]
        if mine:
            culprit = mine[-1]
    where = f" at {culprit.filename}:{culprit.lineno}" if culprit is not None else ""
    return f"importing {source} failed{where}: {type(error).__name__}: {error}"


def _is_topology_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Topology) and obj is not Topology


def _describe(obj: Any) -> str:
    if _is_topology_class(obj):
        return "Topology class"
    if isinstance(obj, TopologyDef):
        return "TopologyDef"
    if isinstance(obj, TopologyBuilder):
        return "TopologyBuilder"
    if isinstance(obj, type):
        kinds = [base.__name__ for base in (Spout, Bolt) if issubclass(obj, base)]
        return f"{kinds[0]} class" if kinds else "class"
    return type(obj).__name__


def find_topologies(module: ModuleType) -> dict[str, Any]:
    """The topologies a module defines, by attribute name.

    Topology subclasses count only when defined in this module (not imported)
    and declaring at least one component; TopologyDef and TopologyBuilder
    instances count wherever they came from.
    """
    found: dict[str, Any] = {}
    for attr, value in vars(module).items():
        if attr.startswith("_"):
            continue
        if _is_topology_class(value):
            if value.__module__ == module.__name__ and value._specs:
                found[attr] = value
        elif isinstance(value, TopologyDef | TopologyBuilder):
            found[attr] = value
        elif is_streamparse_topology(value) and value.__module__ == module.__name__:
            found[attr] = from_streamparse(value)
    return found


def load_topology(target: str) -> LoadedTopology:
    """Import the target and pick its topology.

    Raises:
        TopologyLoadError: the module cannot be imported, ATTR is missing or not a
            topology, or there is not exactly one topology to pick.
    """
    source, attr = split_target(target)
    module = load_module(source)
    if attr is not None:
        if not hasattr(module, attr):
            known = ", ".join(sorted(find_topologies(module))) or "none"
            raise TopologyLoadError(
                f"{source} has no attribute {attr!r} (topologies it defines: {known})"
            )
        obj = getattr(module, attr)
        if is_streamparse_topology(obj):
            obj = from_streamparse(obj)
        if not (_is_topology_class(obj) or isinstance(obj, TopologyDef | TopologyBuilder)):
            raise TopologyLoadError(
                f"{source}:{attr} is a {_describe(obj)}, not a topology; name a Topology "
                "subclass, a TopologyDef or a TopologyBuilder"
            )
        return LoadedTopology(obj, f"{source}:{attr}", _default_name(attr, obj), module)
    found = find_topologies(module)
    if not found:
        raise TopologyLoadError(
            f"{source} defines no topology: define a Topology subclass (or a module-level "
            "TopologyBuilder or TopologyDef), or name one with FILE:ATTR"
        )
    if len(found) > 1:
        listing = ", ".join(f"{a} ({_describe(o)})" for a, o in sorted(found.items()))
        raise TopologyLoadError(
            f"{source} defines {len(found)} topologies: {listing}; pick one with "
            f"{source}:NAME, for example {source}:{sorted(found)[0]}"
        )
    ((name, obj),) = found.items()
    return LoadedTopology(obj, f"{source}:{name}", _default_name(name, obj), module)


def _default_name(attr: str, obj: Any) -> str:
    if isinstance(obj, TopologyDef):
        return obj.name
    if _is_topology_class(obj):
        return str(obj.__name__)
    return attr
