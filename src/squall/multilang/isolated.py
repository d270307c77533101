"""``isolated=True``: a Squall component's tasks each run in their own Python process.

``MyBolt.spec(..., isolated=True)`` keeps every semantic of the in-process
component; only where the code runs changes. The engine gets a host-side proxy
(:class:`IsolatedBolt`/:class:`IsolatedSpout`, which are shell components) and
the child runs the class with Squall's adapter (:mod:`squall.multilang.adapter`)
over the multilang protocol: msgpack with batches by default.

Why: a crash (even a segfault in a C extension) cannot take the worker down
(the child is restarted and its tuples replayed), CPU-heavy Python gets its own
core, and ``isolated={"python": "/other/venv/bin/python"}`` runs it in another
virtualenv (which must have squall installed).

Options (a mapping instead of ``True``): ``python`` (interpreter), ``serializer``
(``"msgpack"`` or ``"json"``), ``cwd``, ``env``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pickle
import sys
import time
from collections.abc import Mapping
from typing import Any

from squall.api.component import Component, Spout
from squall.api.context import TopologyContext, no_engine
from squall.api.topology import ComponentDef, set_isolation
from squall.multilang.adapter import PickleMsgpackCodec
from squall.multilang.codec import Codec, codec_for
from squall.multilang.shell import ShellBolt, ShellSpout, _Shell

_OPTIONS = frozenset({"python", "serializer", "cwd", "env"})


def isolated_command(
    cls: type[Component], python: str, serializer: str
) -> tuple[list[str], dict[str, str]]:
    """The child's command line and extra environment for running ``cls`` isolated."""
    module = cls.__module__
    argv = [python, "-m", "squall.multilang.run", f"{module}:{cls.__qualname__}", "-s", serializer]
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path:
        # Not every module is importable by name (a script run as __main__, a topology
        # file loaded by path): the child then loads the file itself.
        argv += ["--file", os.path.abspath(path)]
    env: dict[str, str] = {}
    if python == sys.executable:
        # The child sees what this process sees (squall, the topology's modules).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    elif path:
        env["PYTHONPATH"] = os.path.dirname(os.path.abspath(path))
    return argv, env


def _plain(ctx: TopologyContext) -> TopologyContext:
    """The context with plain dicts (mapping proxies do not pickle), and no engine hooks.

    The child has no engine: its clock is its own and there is nothing to wake.
    """
    return dataclasses.replace(
        ctx,
        now=time.monotonic,
        wake=no_engine,
        task_to_component=dict(ctx.task_to_component),
        component_tasks={k: tuple(v) for k, v in ctx.component_tasks.items()},
        sources=dict(ctx.sources),
        targets={k: dict(v) for k, v in ctx.targets.items()},
        output_fields={k: tuple(v) for k, v in ctx.output_fields.items()},
        stream_fields={
            k: {s: tuple(f) for s, f in v.items()} for k, v in ctx.stream_fields.items()
        },
    )


class _Isolated(_Shell):
    _user_cls: type[Component]
    _user_kwargs: dict[str, Any]

    def _setup(self, cdef: ComponentDef) -> None:
        opts: Mapping[str, Any] = cdef.isolated if isinstance(cdef.isolated, Mapping) else {}
        unknown = set(opts) - _OPTIONS
        if unknown:
            raise TypeError(
                f"component {cdef.name!r}: unknown isolated option(s) {sorted(unknown)}; "
                f"use {sorted(_OPTIONS)}"
            )
        self._user_cls = cdef.cls
        self._user_kwargs = dict(cdef.kwargs)
        serializer = str(opts.get("serializer", "msgpack"))
        argv, env = isolated_command(cdef.cls, str(opts.get("python", sys.executable)), serializer)
        env.update(opts.get("env") or {})
        _Shell.__init__(
            self, argv, serializer=serializer, cwd=opts.get("cwd"), env=env, resource_dir=None
        )
        self._kind_label = f"isolated {'spout' if isinstance(self, Spout) else 'bolt'}"

    def make_codec(self, name: str) -> Codec:
        return PickleMsgpackCodec() if name == "msgpack" else codec_for(name)

    def handshake_extension(self) -> dict[str, Any]:
        init = pickle.dumps((self._user_kwargs, _plain(self.context)))
        if self._codec.name == "json":
            # JSON has no bytes type.
            return {"batch": True, "init": base64.b64encode(init).decode("ascii")}
        return {"batch": True, "init": init}


class IsolatedBolt(_Isolated, ShellBolt):
    """Host side of an isolated bolt: a ShellBolt running the class with Squall's adapter."""

    def __init__(self, cdef: ComponentDef) -> None:
        ShellBolt.__init__(self, ["python"])
        self._setup(cdef)


class IsolatedSpout(_Isolated, ShellSpout):
    """Host side of an isolated spout."""

    def __init__(self, cdef: ComponentDef) -> None:
        ShellSpout.__init__(self, ["python"])
        self._setup(cdef)


def make_isolated(cdef: ComponentDef) -> Component:
    """``ComponentDef.make`` for ``isolated=True``: the host-side proxy of one task."""
    if issubclass(cdef.cls, Spout):
        return IsolatedSpout(cdef)
    return IsolatedBolt(cdef)


set_isolation(make_isolated)

__all__ = ["IsolatedBolt", "IsolatedSpout", "isolated_command", "make_isolated"]
