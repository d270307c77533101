"""Getting a topology's code into local worker processes.

A worker process starts fresh (``python -m squall.daemon.worker_main``), so every
component class, custom grouping and constructor argument must be re-creatable
there. The parent pickles the :class:`~squall.api.topology.TopologyDef` and
hands it to the child over the child's stdin (a local pipe: pickle is allowed
there; nothing that arrives over a socket is ever unpickled). Classes are
pickled by reference (module + qualified name), so the child must be able to
import the same modules:

* modules importable by name from ``sys.path`` (the child gets the parent's
  ``sys.path``);
* a topology *file* loaded with :func:`load_topology_source`, which registers it
  in ``sys.modules`` under a name derived from its path, so that the child can
  load the same file under the same name (:class:`TopologySource`);
* the ``__main__`` script, when it is a file: the child runs it again under
  another name, as :mod:`multiprocessing` does, so code under
  ``if __name__ == "__main__":`` does not run again.

:func:`check_shippable` finds what cannot be re-created *before* anything
starts and raises :class:`NotShippableError` naming the component and the fix.

>>> from squall.api import Bolt, Spout, Topology
>>> def make():
...     class Local(Bolt):
...         pass
...     class T(Topology):
...         words = Spout.spec(outputs=["word"])
...         local = Local.spec(inputs=[words])
...     return T.definition()
>>> check_shippable(make())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
squall.daemon.shipping.NotShippableError: component 'local': its class make.<locals>.Local ...
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import io
import os
import pickle
import struct
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MappingProxyType, ModuleType
from typing import IO, Any

from squall.api.errors import InvalidTopologyError
from squall.api.topology import TopologyDef

MAIN_ALIAS = "__squall_main__"
"""The name a worker gives the parent's ``__main__`` script when it runs it again."""

_SOURCES: dict[str, TopologySource] = {}
_bootstrapping = False


class NotShippableError(InvalidTopologyError):
    """Part of the topology cannot be re-created in a worker process."""


@dataclass(frozen=True)
class TopologySource:
    """How a worker process gets a module that holds topology code.

    Attributes:
        module: the module name that pickled references use.
        path: the ``.py`` file to run as that module, or None when the module is
            importable by name.
    """

    module: str
    path: str | None = None

    def load(self) -> ModuleType:
        """Import the module (or run the file) and register it in ``sys.modules``."""
        if self.path is None:
            return importlib.import_module(self.module)
        if self.module == "__main__":
            # Run the parent's script under another name, so its ``__main__`` guard
            # does not run again, then let pickled ``__main__.X`` references find it.
            module = _exec_file(MAIN_ALIAS, Path(self.path))
            sys.modules["__main__"] = module
            return module
        return _exec_file(self.module, Path(self.path))


def source_module_name(path: str | os.PathLike[str]) -> str:
    """The module name :func:`load_topology_source` gives a file: stable per absolute path.

    >>> source_module_name("/srv/topos/word-count.py").startswith("squall_topology_word_count_")
    True
    """
    p = Path(path).resolve()
    stem = "".join(c if c.isalnum() else "_" for c in p.stem)
    digest = hashlib.sha1(str(p).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"squall_topology_{stem}_{digest}"


def load_topology_source(path_or_module: str | os.PathLike[str]) -> ModuleType:
    """Import topology code so that worker processes can import the very same module.

    A path to a ``.py`` file is run as a module named by :func:`source_module_name`
    and registered in ``sys.modules`` (again only if not already loaded); a dotted
    name is imported normally. Errors raised by the topology code propagate as is.

    Args:
        path_or_module: a ``.py`` file, or an importable module name.

    Returns:
        The module.

    >>> load_topology_source("json").__name__
    'json'
    """
    text = os.fspath(path_or_module)
    is_file = text.endswith(".py") or os.sep in text or "/" in text or Path(text).is_file()
    if not is_file:
        module = importlib.import_module(text)
        _SOURCES.setdefault(module.__name__, TopologySource(module.__name__))
        return module
    path = Path(text).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{text}: no such file")
    # Like ``python FILE``: modules next to the file are importable (here and, since
    # workers get this sys.path, in every worker).
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = source_module_name(path)
    source = TopologySource(name, str(path))
    module = _exec_file(name, path)
    _SOURCES[name] = source
    return module


def _exec_file(name: str, path: Path) -> ModuleType:
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as import does: dataclasses and pickle look it up.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def registered_sources() -> tuple[TopologySource, ...]:
    """Every source loaded with :func:`load_topology_source` in this process."""
    return tuple(_SOURCES.values())


@contextlib.contextmanager
def bootstrapping() -> Iterator[None]:
    """Marks a worker process loading topology code (see :func:`in_bootstrap`)."""
    global _bootstrapping
    _bootstrapping = True
    try:
        yield
    finally:
        _bootstrapping = False


def in_bootstrap() -> bool:
    """True while a worker process is loading topology code.

    A script that starts a multi-worker topology at import time, without an
    ``if __name__ == "__main__":`` guard, would otherwise have every worker start
    the topology again.
    """
    return _bootstrapping


# -- checking -------------------------------------------------------------------
def check_shippable(
    topology: TopologyDef, conf: Mapping[str, Any] | None = None
) -> tuple[TopologySource, ...]:
    """Check that worker processes can re-create ``topology``; return the sources they need.

    Raises:
        NotShippableError: naming the component (or config key) at fault and the fix.
    """
    needed: dict[str, TopologySource] = {}
    for comp in topology.components.values():
        owner = f"component {comp.name!r}"
        _check(owner, "its class", comp.cls, needed)
        for key, value in comp.kwargs.items():
            _check(owner, f"its constructor argument {key}={_short(value)}", value, needed)
        for sid, grouping in comp.inputs:
            if grouping.custom is not None:
                _check(
                    owner,
                    f"the custom grouping {_short(grouping.custom)} on its input {sid}",
                    grouping.custom,
                    needed,
                )
        for key, value in comp.config.items():
            _check(owner, f"its config {key!r}", value, needed)
    for key, value in topology.config.items():
        _check("topology config", f"{key!r}", value, needed)
    for key, value in (conf or {}).items():
        _check("topology config", f"{key!r}", value, needed)
    # Everything at once too: catches whatever the parts above do not cover.
    try:
        pack_topology(topology, conf or {})
    except Exception as e:
        raise NotShippableError(
            f"topology {topology.name!r} cannot be sent to worker processes: "
            f"{type(e).__name__}: {e}"
        ) from e
    return tuple(needed.values())


def _check(owner: str, what: str, obj: Any, needed: dict[str, TopologySource]) -> None:
    refs: list[Any] = []
    try:
        _dumps(obj, refs)
        failure: BaseException | None = None
    except Exception as e:
        failure = e
    for ref in refs:
        problem, source = _importable(ref)
        if problem is not None:
            name = _qualname(ref)
            if what == "its class":
                raise NotShippableError(f"{owner}: its class {name} {problem}")
            raise NotShippableError(f"{owner}: {what} refers to {name}, which {problem}")
        if source is not None:
            needed.setdefault(source.module, source)
    if failure is not None:
        raise NotShippableError(
            f"{owner}: {what} cannot be sent to a worker process "
            f"({type(failure).__name__}: {failure}). Worker processes re-create components "
            "from pickled data: use module-level classes and functions and picklable "
            "arguments, or run with topology.workers=1."
        ) from failure


def _qualname(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj)))


_FIX_LOCALS = (
    "is defined inside a function, so a worker process cannot import it. "
    "Move it to the top level of a module."
)
_FIX_LAMBDA = "is a lambda, which a worker process cannot import. Use a module-level function."


def _importable(obj: Any) -> tuple[str | None, TopologySource | None]:
    """(why a worker cannot import ``obj`` or None, the source it needs or None)."""
    qualname = _qualname(obj)
    module = getattr(obj, "__module__", None)
    if "<lambda>" in qualname:
        return _FIX_LAMBDA, None
    if "<locals>" in qualname:
        return _FIX_LOCALS, None
    if module is None:
        return None, None
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file and main_file.endswith(".py") and Path(main_file).is_file():
            return None, TopologySource("__main__", str(Path(main_file).resolve()))
        return (
            "is defined in __main__ (an interactive session, a notebook or python -c), "
            "which a worker process cannot import. Put it in a .py file and run it with "
            "`squall run FILE --workers N`, or import it from a module.",
            None,
        )
    if module == MAIN_ALIAS:
        return None, None  # inside a worker: the parent's script, already loaded
    if module in _SOURCES:
        return None, _SOURCES[module]
    return _module_problem(module), None


_MODULE_OK: dict[str, None] = {}


def _module_problem(module: str) -> str | None:
    if module in _MODULE_OK:
        return _MODULE_OK[module]
    top = module.partition(".")[0]
    problem: str | None = None
    if top not in sys.builtin_module_names and not _findable(top):
        problem = (
            f"lives in module {module!r}, which cannot be imported by name from sys.path "
            "(was it loaded from a file?). Load the file with "
            "squall.daemon.shipping.load_topology_source(path) (squall run does), "
            "or put its folder on PYTHONPATH."
        )
    if problem is None:
        _MODULE_OK[module] = None  # only successes are cached: sys.path may still grow
    return problem


def _findable(top: str) -> bool:
    if importlib.machinery.PathFinder.find_spec(top, sys.path) is not None:
        return True
    mod = sys.modules.get(top)
    spec = getattr(mod, "__spec__", None)
    # Frozen stdlib modules and the like: importable in any process.
    return spec is not None and spec.origin in ("frozen", "built-in")


# -- pickling -------------------------------------------------------------------
def _mappingproxy(d: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(d)


class _Pickler(pickle.Pickler):
    """Pickles read-only mappings (TopologyDef uses them) and records global references."""

    def __init__(self, file: IO[bytes], refs: list[Any] | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs = refs

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, MappingProxyType):
            return (_mappingproxy, (dict(obj),))
        if self._refs is not None and isinstance(obj, type | FunctionType | BuiltinFunctionType):
            self._refs.append(obj)
        return NotImplemented


def _dumps(obj: Any, refs: list[Any] | None = None) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, refs).dump(obj)
    return buf.getvalue()


def pack_topology(topology: TopologyDef, conf: Mapping[str, Any]) -> bytes:
    """Pickle ``(topology, conf)`` for a worker process (sent over a local pipe only)."""
    return _dumps((topology, dict(conf)))


def unpack_topology(data: bytes) -> tuple[TopologyDef, dict[str, Any]]:
    """The inverse of :func:`pack_topology`; load the sources first."""
    topology, conf = pickle.loads(data)
    if not isinstance(topology, TopologyDef) or not isinstance(conf, dict):
        raise TypeError("the worker payload is not a (TopologyDef, conf) pair")
    return topology, conf


# -- the boot record --------------------------------------------------------------
@dataclass(frozen=True)
class WorkerBoot:
    """Everything a worker process needs to start, written to its stdin by the parent.

    Attributes:
        topology_name: the running topology's name.
        worker_index: which worker of the plan this process is.
        num_workers: how many workers the plan has.
        control_endpoint: the parent's control socket (``tcp://127.0.0.1:PORT``).
        sources: modules to load before unpickling ``payload``.
        sys_path: the parent's ``sys.path``.
        payload: :func:`pack_topology` output.
        log_levels: logger name -> level, copied from the parent.
    """

    topology_name: str
    worker_index: int
    num_workers: int
    control_endpoint: str
    sources: tuple[TopologySource, ...]
    sys_path: tuple[str, ...]
    payload: bytes
    log_levels: Mapping[str, int] = field(default_factory=dict)


_LEN = struct.Struct("!Q")
_MAX_BOOT_BYTES = 1 << 31


def write_boot(stream: IO[bytes], boot: WorkerBoot) -> None:
    """Write ``boot`` length-prefixed to ``stream`` (a child's stdin)."""
    data = pickle.dumps(boot, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def read_boot(stream: IO[bytes]) -> WorkerBoot:
    """Read what :func:`write_boot` wrote; the stream stays open (EOF means the parent left)."""
    head = _read_exact(stream, _LEN.size)
    (size,) = _LEN.unpack(head)
    if size > _MAX_BOOT_BYTES:
        raise ValueError(f"boot record of {size} bytes is larger than {_MAX_BOOT_BYTES}")
    boot = pickle.loads(_read_exact(stream, size))
    if not isinstance(boot, WorkerBoot):
        raise TypeError(f"expected a WorkerBoot on stdin, got {type(boot).__name__}")
    return boot


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError(f"stdin closed after {n - left} of {n} bytes of the boot record")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parent_sys_path() -> tuple[str, ...]:
    """This process's ``sys.path`` with the relative entries made absolute."""
    cwd = os.getcwd()
    return tuple(os.path.join(cwd, p) if not os.path.isabs(p) else p for p in sys.path)
