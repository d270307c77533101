"""``python -m squall.multilang.run module:Class``: start one component as a multilang child.

The launcher a shell component runs (streamparse's ``streamparse_run`` does the
same for Storm): it puts the working directory (and ``resources/`` under it) on
``sys.path``, imports the class, and runs it on stdin/stdout:

* a pystorm or streamparse component (anything with a pystorm-style ``run``):
  ``Class(serializer=...).run()``, unmodified;
* a Squall ``Bolt``/``Spout``: Squall's own adapter (:mod:`squall.multilang.adapter`).

Arguments: ``[-s json|msgpack] [--path DIR]... module:Class`` (``module.Class``
is accepted too, as streamparse writes it). Storm may pass the whole command as
one string; it is split again, as ``streamparse_run`` does.

>>> parse_args(["-s", "msgpack", "bolts.wordcount.WordCountBolt"])
('bolts.wordcount', 'WordCountBolt', 'msgpack', [])
>>> parse_args(["pkg.mod:Outer.Inner --serializer json"])
('pkg.mod', 'Outer.Inner', 'json', [])
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shlex
import sys
from typing import Any


def parse_args(argv: list[str]) -> tuple[str, str, str, list[str]]:
    """``(module, qualified class name, serializer, extra sys.path entries)``."""
    module, qual, serializer, paths, _ = _parse(argv)
    return module, qual, serializer, paths


def _parse(argv: list[str]) -> tuple[str, str, str, list[str], str | None]:
    if len(argv) == 1 and " " in argv[0]:
        argv = shlex.split(argv[0])
    p = argparse.ArgumentParser(prog="python -m squall.multilang.run")
    p.add_argument("target", help="module:Class or module.Class")
    p.add_argument("-s", "--serializer", default="json", choices=["json", "msgpack"])
    p.add_argument("--path", action="append", default=[], help="prepend to sys.path")
    p.add_argument("--file", default=None, help="the module's file, if not importable by name")
    ns = p.parse_args(argv)
    target: str = ns.target
    if ":" in target:
        module, _, qual = target.partition(":")
    else:
        module, _, qual = target.rpartition(".")
    if not module or not qual:
        p.error(f"expected module:Class or module.Class, got {target!r}")
    return module, qual, str(ns.serializer), list(ns.path), ns.file


#: The name a script that ran as ``__main__`` in the host gets here, so that its
#: ``if __name__ == "__main__":`` block does not run again.
MAIN_ALIAS = "__squall_main__"


def load_class(module: str, qual: str, file: str | None = None) -> Any:
    obj: Any
    try:
        if module == "__main__":
            raise ModuleNotFoundError(module)
        obj = importlib.import_module(module)
    except ModuleNotFoundError:
        if file is None:
            raise
        name = MAIN_ALIAS if module == "__main__" else module
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {file!r} as module {name!r}") from None
        obj = importlib.util.module_from_spec(spec)
        sys.modules[name] = obj
        spec.loader.exec_module(obj)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def main(argv: list[str] | None = None) -> int:
    module, qual, serializer, paths, file = _parse(list(sys.argv[1:] if argv is None else argv))
    cwd = os.getcwd()
    # streamparse's layout: the topology's code under resources/ (Storm >= 1.0.3).
    for extra in (os.path.join(cwd, "resources"), cwd):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    for extra in reversed(paths):
        sys.path.insert(0, extra)
    cls = load_class(module, qual, file)
    from squall.api.component import Component

    if isinstance(cls, type) and issubclass(cls, Component):
        from squall.multilang.adapter import run_component

        return run_component(cls, serializer)
    cls(serializer=serializer).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
