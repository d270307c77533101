"""The multilang messages themselves, as Storm writes and reads them (storm-spec.md §2).

Pure functions: what the host sends (handshake, tuples, spout commands) and how
it checks what a child sends. Key order follows Storm's ``JsonSerializer`` so a
transcript of a Squall host reads like one of a Storm worker.

>>> tuple_message("8812", "spout", "default", 1, ("a b",))
{'id': '8812', 'comp': 'spout', 'stream': 'default', 'task': 1, 'tuple': ('a b',)}
>>> heartbeat_message("7")
{'id': '7', 'comp': None, 'stream': '__heartbeat', 'task': -1, 'tuple': []}
>>> spout_command("next")
{'command': 'next', 'id': ''}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from squall.api.context import TopologyContext
from squall.api.grouping import (
    ALL,
    CUSTOM,
    DIRECT,
    FIELDS,
    GLOBAL,
    LOCAL_OR_SHUFFLE,
    NONE,
    PARTIAL_KEY,
    SHUFFLE,
    GroupingSpec,
)
from squall.api.ids import HEARTBEAT_STREAM
from squall.multilang.codec import ProtocolError

#: Extension key in the handshake (host -> child) and the pid reply (child -> host):
#: Squall's own adapter answers ``{"pid": N, "squall": {"batch": true}}`` to take
#: batched messages. Storm children ignore unknown handshake keys, so plain
#: protocol clients keep working.
EXTENSION_KEY = "squall"

#: Commands a child may send, and which component kind accepts each.
BOLT_COMMANDS = frozenset({"emit", "ack", "fail", "log", "error", "sync", "metrics"})
SPOUT_COMMANDS = frozenset({"emit", "log", "error", "sync", "metrics"})

# Storm's ShellLogLevel: 0=TRACE 1=DEBUG 2=INFO 3=WARN 4=ERROR; anything else is INFO.
TRACE = logging.DEBUG - 5
_LOG_LEVELS = {0: TRACE, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}

_STORM_GROUPING = {
    SHUFFLE: "SHUFFLE",
    LOCAL_OR_SHUFFLE: "LOCAL_OR_SHUFFLE",
    ALL: "ALL",
    NONE: "NONE",
    DIRECT: "DIRECT",
    FIELDS: "FIELDS",
    GLOBAL: "FIELDS",
    PARTIAL_KEY: "CUSTOM_SERIALIZED",
    CUSTOM: "CUSTOM_OBJECT",
}


def log_level(level: Any) -> int:
    """Python logging level for a multilang ``log`` level (Storm's ``fromInt``).

    >>> log_level(3) == logging.WARNING, log_level(99) == logging.INFO
    (True, True)
    """
    if isinstance(level, bool) or not isinstance(level, int):
        return logging.INFO
    return _LOG_LEVELS.get(level, logging.INFO)


def storm_grouping(g: GroupingSpec) -> dict[str, Any]:
    """A grouping as Storm's context JSON shows it (the Thrift union field name).

    >>> from squall.api.grouping import Grouping
    >>> storm_grouping(Grouping.fields("word"))
    {'type': 'FIELDS', 'fields': ['word']}
    >>> storm_grouping(Grouping.GLOBAL)
    {'type': 'FIELDS', 'fields': []}
    """
    kind = _STORM_GROUPING.get(g.kind, g.kind.upper())
    if g.kind == FIELDS:
        return {"type": kind, "fields": list(g.fields)}
    if g.kind == GLOBAL:
        return {"type": kind, "fields": []}
    return {"type": kind}


def context_json(ctx: TopologyContext) -> dict[str, Any]:
    """The ``context`` of the handshake, with Storm's keys (``TopologyContext.toJSONString``)."""
    sources: dict[str, dict[str, Any]] = {}
    source_fields: dict[str, dict[str, list[str]]] = {}
    for sid, g in ctx.sources.items():
        sources.setdefault(sid.component, {})[sid.stream] = storm_grouping(g)
        fields = ctx.stream_fields.get(sid.component, {}).get(sid.stream)
        if fields is not None:
            source_fields.setdefault(sid.component, {})[sid.stream] = list(fields)
    return {
        "task->component": {str(t): c for t, c in sorted(ctx.task_to_component.items())},
        "taskid": ctx.task_id,
        "componentid": ctx.component_id,
        "streams": sorted(ctx.output_fields),
        "stream->outputfields": {s: list(f) for s, f in ctx.output_fields.items()},
        "stream->target->grouping": {
            s: {c: storm_grouping(g) for c, g in targets.items()}
            for s, targets in ctx.targets.items()
        },
        "source->stream->grouping": sources,
        "source->stream->fields": source_fields,
    }


def json_safe_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The topology config as the child sees it: only JSON-representable entries.

    Storm's config is JSON by construction; a Squall config may hold Python
    objects (custom classes), which a child could not read anyway.

    >>> json_safe_conf({"topology.name": "wc", "obj": object(), "n": 3})
    {'topology.name': 'wc', 'n': 3}
    """
    out: dict[str, Any] = {}
    for k, v in conf.items():
        if not isinstance(k, str):
            continue
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def handshake_message(
    pid_dir: str,
    conf: Mapping[str, Any],
    context: Mapping[str, Any],
    extension: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The first message to a child: ``pidDir``, ``conf`` and ``context``."""
    msg: dict[str, Any] = {"pidDir": pid_dir, "conf": dict(conf), "context": dict(context)}
    if extension:
        msg[EXTENSION_KEY] = dict(extension)
    return msg


def parse_pid_reply(msg: Any) -> tuple[int, dict[str, Any]]:
    """The child's pid and any extension it accepted, from its first message.

    >>> parse_pid_reply({"pid": 4242})
    (4242, {})
    >>> parse_pid_reply({"command": "log", "msg": "hi"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    squall.multilang.codec.ProtocolError: the first message must be the pid reply ...
    """
    pid = msg.get("pid") if isinstance(msg, dict) else None
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise ProtocolError('the first message must be the pid reply {"pid": N}', msg)
    ext = msg.get(EXTENSION_KEY)
    return pid, dict(ext) if isinstance(ext, dict) else {}


def tuple_message(
    tid: str, comp: str | None, stream: str, task: int, values: Sequence[Any]
) -> dict[str, Any]:
    """A tuple for a bolt (Storm's ``BoltMsg``)."""
    return {"id": tid, "comp": comp, "stream": stream, "task": task, "tuple": values}


def heartbeat_message(tid: str) -> dict[str, Any]:
    """The heartbeat tuple; ``comp`` is null as in Storm's code (not its docs)."""
    return {"id": tid, "comp": None, "stream": HEARTBEAT_STREAM, "task": -1, "tuple": []}


def spout_command(command: str, msg_id: Any = "") -> dict[str, Any]:
    """A spout command; Storm always writes both keys (``id`` is "" for next/activate/...)."""
    return {"command": command, "id": msg_id}


def command_of(msg: Any, allowed: frozenset[str], kind: str = "") -> str:
    """The ``command`` of a child message, checked against what this component accepts.

    ``kind`` (``"a bolt"``) names the component in the error for an unknown command.
    """
    if not isinstance(msg, dict):
        raise ProtocolError(
            f"expected a command object, got a {type(msg).__name__}"
            + (
                " (task id lists only go from the host to the child)"
                if isinstance(msg, list)
                else ""
            ),
            msg,
        )
    cmd = msg.get("command")
    if cmd is None:
        raise ProtocolError("message has no 'command'", msg)
    if cmd not in allowed:
        who = f" for {kind}" if kind else ""
        raise ProtocolError(
            f"unknown command {cmd!r}{who} (expected one of {sorted(allowed)})", msg
        )
    return str(cmd)


def emit_fields(msg: dict[str, Any]) -> tuple[list[Any], str, int | None, bool]:
    """``(values, stream, direct task or None, need_task_ids)`` of an ``emit``, checked."""
    values = msg.get("tuple")
    if type(values) is not list:
        raise ProtocolError(
            f"emit 'tuple' must be a list of values, got {type(values).__name__}", msg
        )
    stream = msg.get("stream")
    if stream is None:
        stream = "default"
    elif not isinstance(stream, str):
        raise ProtocolError(f"emit 'stream' must be a string, got {type(stream).__name__}", msg)
    task = msg.get("task")
    if task is not None and (isinstance(task, bool) or not isinstance(task, int)):
        raise ProtocolError(f"emit 'task' must be an integer, got {type(task).__name__}", msg)
    need = msg.get("need_task_ids", True)
    return values, stream, (task or None), need is not False


def anchor_ids(msg: dict[str, Any]) -> list[Any]:
    """The ``anchors`` of a bolt emit: a list of ids, a single id, or none.

    >>> anchor_ids({"anchors": "12"}), anchor_ids({}), anchor_ids({"anchors": ["1", "2"]})
    (['12'], [], ['1', '2'])
    """
    a = msg.get("anchors")
    if a is None:
        return []
    if isinstance(a, list):
        return a
    return [a]


__all__ = [
    "BOLT_COMMANDS",
    "EXTENSION_KEY",
    "SPOUT_COMMANDS",
    "TRACE",
    "anchor_ids",
    "command_of",
    "context_json",
    "emit_fields",
    "handshake_message",
    "heartbeat_message",
    "json_safe_conf",
    "log_level",
    "parse_pid_reply",
    "spout_command",
    "storm_grouping",
    "tuple_message",
]
