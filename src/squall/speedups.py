"""Loads the optional C accelerator (``squall._speedups``) if it was built.

``AVAILABLE`` says whether it is in use; set ``SQUALL_NO_SPEEDUPS=1`` to force the
pure-Python path (the tests run both). Every accelerated function has a Python
twin that defines its behaviour.
"""

from __future__ import annotations

import os
from typing import Any

_mod: Any = None
if not os.environ.get("SQUALL_NO_SPEEDUPS"):
    try:
        import squall._speedups as _mod
    except ImportError:  # not compiled on this machine: the Python path runs
        _mod = None

_off = set(os.environ.get("SQUALL_SPEEDUPS_OFF", "").split(","))


def _pick(name: str, default: Any) -> Any:
    if _mod is None or name in _off:
        return default
    return getattr(_mod, name)


AVAILABLE: bool = _mod is not None
make_values: Any = _pick("make_values", tuple.__new__)


def _make_values_many(cls: Any, seqs: list[Any]) -> list[Any]:
    new = tuple.__new__
    return [new(cls, s) for s in seqs]


make_values_many: Any = _pick("make_values_many", _make_values_many)
SelfDescriptor: Any = _pick("SelfDescriptor", None)
RouteBase: Any = _mod.RouteBase if _mod is not None else object
Emitter: Any = _pick("Emitter", None)
run_unanchored: Any = _pick("run_unanchored", None)
run_anchored: Any = _pick("run_anchored", None)
acker_apply: Any = _pick("acker_apply", None)
AckedTuple: Any = _pick("AckedTuple", None)
