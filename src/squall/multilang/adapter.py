"""Squall's own multilang client: runs a Squall ``Bolt``/``Spout`` class in a child process.

The child speaks the same protocol as any other (storm-spec.md §2), so the host
side is a plain :class:`~squall.multilang.shell.ShellBolt`/``ShellSpout``. What
it adds, negotiated in the handshake under the ``"squall"`` key so that plain
protocol children are unaffected:

* ``init``: the component's constructor arguments and its full
  :class:`~squall.api.context.TopologyContext`, pickled (the pipe is local and
  both ends are this program; nothing from a socket is unpickled);
* ``batch``: many tuples per message each way (``{"b": [...]}``), which is what
  makes an isolated component cost little more than an in-process one;
* msgpack with pickled extension values, so tuples may hold any Python value,
  as they may in process.

Semantics match the in-process engine: emits are checked against the declared
streams (an :class:`~squall.api.errors.EmitError` is raised in user code),
``auto_anchor``/``auto_ack``/``auto_fail`` behave the same, an exception in
``process`` is reported and fails the tuple without ending the child, and
``FailedError`` fails it quietly.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import pickle
import sys
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from squall import speedups
from squall.api.component import Bolt, Component, Spout
from squall.api.context import TopologyContext
from squall.api.errors import EmitError, FailedError
from squall.api.ids import DEFAULT_STREAM, HEARTBEAT_STREAM, SYSTEM_COMPONENT, TICK_STREAM
from squall.api.tuple import Tuple, ValuesTuple, values_class
from squall.multilang.codec import JsonCodec, MsgpackCodec
from squall.multilang.protocol import EXTENSION_KEY

#: msgpack extension code for a pickled Python value (adapter <-> Squall host only).
PICKLE_EXT = 42


def pack_default(obj: Any) -> Any:
    """msgpack ``default``: values msgpack cannot represent travel pickled."""
    return msgpack.ExtType(PICKLE_EXT, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def ext_hook(code: int, data: bytes) -> Any:
    if code == PICKLE_EXT:
        return pickle.loads(data)
    return msgpack.ExtType(code, data)


class PickleMsgpackCodec(MsgpackCodec):
    """msgpack framing (pystorm's) whose unknown values travel pickled: Squall host <-> adapter."""

    def __init__(self) -> None:
        super().__init__(default=pack_default, ext_hook=ext_hook)


class _Pipe:
    """Blocking stdin/stdout for the child, with a read-ahead queue of whole messages."""

    def __init__(self, serializer: str) -> None:
        self.codec: Any = PickleMsgpackCodec() if serializer == "msgpack" else JsonCodec()
        self.decoder = self.codec.decoder(1 << 30)
        self.queue: deque[Any] = deque()
        self.out: list[bytes] = []
        # In batch mode (negotiated), commands collect here as rows until flush.
        self.rows: list[Any] | None = None
        self.in_fd = sys.stdin.fileno()
        self.out_fd = os.dup(sys.stdout.fileno())
        # print() in user code must not corrupt the protocol: stdout now goes to stderr.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def fill(self) -> None:
        """Block until at least one whole message is queued."""
        while not self.queue:
            data = os.read(self.in_fd, 1 << 16)
            if not data:
                raise SystemExit(2)  # the host went away (pystorm exits with 2 too)
            msgs: list[Any] = []
            self.decoder.feed(data, msgs)
            self.queue.extend(msgs)

    def read(self) -> Any:
        self.fill()
        return self.queue.popleft()

    def send(self, msg: Any) -> None:
        if self.rows is not None:
            self.rows += (5, msg)
        else:
            self.out.append(self.codec.encode(msg))

    def flush(self) -> None:
        rows = self.rows
        if rows:
            # Batch mode: everything since the last flush, in order, as one message.
            self.out.append(self.codec.encode({"command": "b", "b": rows}))
            self.rows = []
        if not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        view = memoryview(data)
        while view:
            n = os.write(self.out_fd, view)
            view = view[n:]

    def read_task_ids(self) -> list[int]:
        """Wait for the task-id reply to an emit; other messages keep their turn."""
        self.flush()
        held: list[Any] = []
        try:
            while True:
                msg = self.read()
                if isinstance(msg, list):
                    return msg
                held.append(msg)
        finally:
            self.queue.extendleft(reversed(held))


class _LogForwarder(logging.Handler):
    """Python logging in the child becomes multilang ``log`` commands."""

    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self.pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        lvl = record.levelno
        level = 4 if lvl >= 40 else 3 if lvl >= 30 else 2 if lvl >= 20 else 1 if lvl >= 10 else 0
        with contextlib.suppress(Exception):
            self.pipe.send({"command": "log", "msg": self.format(record), "level": level})


class _Collector:
    """The collector a Squall component sees in the child: protocol commands to the host."""

    def __init__(self, pipe: _Pipe, context: TopologyContext, component: Component) -> None:
        self.pipe = pipe
        self.context = context
        self.fields = {s: tuple(f) for s, f in context.output_fields.items()}
        self.name = context.component_id
        self.task = context.task_id
        self.current: Any = None
        cls = type(component)
        self.auto_anchor = bool(getattr(cls, "auto_anchor", True))

    def _check(self, tup: Sequence[Any], stream: str | None) -> tuple[list[Any], str]:
        s = stream or DEFAULT_STREAM
        fields = self.fields.get(s)
        if fields is None:
            declared = ", ".join(sorted(self.fields)) or "none"
            raise EmitError(
                f"component {self.name!r} task {self.task}: emit to undeclared stream {s!r} "
                f"(declared: {declared})"
            )
        if isinstance(tup, str | bytes) or not hasattr(tup, "__len__"):
            raise EmitError(
                f"component {self.name!r} task {self.task}: emit expects a list of values for "
                f"stream {s!r}, got {type(tup).__name__}"
            )
        values = list(tup)
        if len(values) != len(fields):
            raise EmitError(
                f"component {self.name!r} task {self.task}: stream {s!r} declares "
                f"{len(fields)} field(s) {list(fields)} but the emitted tuple has {len(values)}"
            )
        return values, s

    def _send_emit(self, msg: dict[str, Any], need: bool, direct: int | None) -> list[int] | None:
        if direct is not None:
            msg["task"] = direct
        if need and direct is None:
            self.pipe.send(msg)
            return self.pipe.read_task_ids()
        msg["need_task_ids"] = False
        self.pipe.send(msg)
        return [direct] if need and direct is not None else None

    def report_error(self, error: BaseException) -> None:
        text = "".join(traceback.format_exception(error))
        self.pipe.send({"command": "error", "msg": text})

    def report_metric(self, name: str, value: Any) -> None:
        self.pipe.send({"command": "metrics", "name": name, "params": value})


class _BoltCollector(_Collector):
    """A bolt's collector. Tuples given to ``process`` are the values themselves (as in
    process with acking off); the host's id of each live one is kept by identity."""

    def __init__(self, pipe: _Pipe, context: TopologyContext, component: Component) -> None:
        super().__init__(pipe, context, component)
        # id(tuple) -> (host id, tuple) for tuples not yet acked or failed.
        self.live: dict[int, tuple[Any, Any]] = {}
        self.cur_tid: Any = None
        self.widths = {s: len(f) for s, f in self.fields.items()}

    def _values(self, tup: Any, s: str) -> Any:
        """The values to send: tuples as they are, anything else checked and copied."""
        width = self.widths.get(s)
        if width is not None and isinstance(tup, tuple) and len(tup) == width:
            return tup
        return self._check(tup, s)[0]

    def _anchor_ids(self, anchors: Any) -> list[Any]:
        if isinstance(anchors, Tuple):
            anchors = [anchors]
        ids = []
        live = self.live
        for a in anchors:
            entry = live.get(id(a))
            if entry is not None and entry[1] is a:
                ids.append(entry[0])
            elif isinstance(a, ValuesTuple):
                raise EmitError(
                    f"component {self.name!r} task {self.task}: emit anchored to a "
                    f"tuple that was already acked or failed ({a!r})"
                )
        return ids

    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        anchors: Sequence[Tuple] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        s = stream or DEFAULT_STREAM
        values = self._values(tup, s)
        rows = self.pipe.rows
        if anchors is None:
            cur = self.cur_tid if self.auto_anchor else None
            if rows is not None and direct_task is None and not need_task_ids:
                if s == DEFAULT_STREAM:
                    if cur is not None:
                        rows += (3, values, cur)
                    else:
                        rows += (4, values)
                else:
                    rows += (0, values, [] if cur is None else [cur], s)
                return None
            ids = [] if cur is None else [cur]
        else:
            ids = self._anchor_ids(anchors)
            if rows is not None and direct_task is None and not need_task_ids:
                rows += (0, values, ids, s)
                return None
        msg: dict[str, Any] = {"command": "emit", "tuple": values, "anchors": ids}
        if s != DEFAULT_STREAM:
            msg["stream"] = s
        return self._send_emit(msg, need_task_ids, direct_task)

    def _done(self, tup: Tuple, op: int, command: str) -> None:
        entry = self.live.pop(id(tup), None)
        if entry is None:
            return
        if entry[1] is not tup:
            self.live[id(tup)] = entry
            return
        rows = self.pipe.rows
        if rows is not None:
            rows += (op, entry[0])
        else:
            self.pipe.send({"command": command, "id": entry[0]})

    def ack(self, tup: Tuple) -> None:
        self._done(tup, 1, "ack")

    def fail(self, tup: Tuple) -> None:
        self._done(tup, 2, "fail")

    def reset_timeout(self, tup: Tuple) -> None:
        """Not in Storm's multilang protocol: a no-op out of process."""


class _SpoutCollector(_Collector):
    def emit(
        self,
        tup: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        values, s = self._check(tup, stream)
        msg: dict[str, Any] = {"command": "emit", "tuple": values}
        if tup_id is not None:
            msg["id"] = tup_id
        if s != DEFAULT_STREAM:
            msg["stream"] = s
        return self._send_emit(msg, need_task_ids, direct_task)


def _hashable(x: Any) -> Any:
    """Message ids come back as lists where they left as tuples: make them hashable again."""
    if isinstance(x, list):
        return tuple(_hashable(v) for v in x)
    return x


def _context_from_storm(ctx: Mapping[str, Any], topology: str) -> TopologyContext:
    """A TopologyContext from Storm's context JSON (when the host sent no pickled one)."""
    from squall.api.grouping import GroupingSpec
    from squall.api.topology import GlobalStreamId

    t2c = {int(k): v for k, v in ctx.get("task->component", {}).items()}
    tasks: dict[str, list[int]] = {}
    for t, c in sorted(t2c.items()):
        tasks.setdefault(c, []).append(t)
    sources = {
        GlobalStreamId(c, s): GroupingSpec(str(g.get("type", "shuffle")).lower())
        for c, streams in ctx.get("source->stream->grouping", {}).items()
        for s, g in streams.items()
    }
    stream_fields = {
        c: {s: tuple(f) for s, f in streams.items()}
        for c, streams in ctx.get("source->stream->fields", {}).items()
    }
    outputs = {s: tuple(f) for s, f in ctx.get("stream->outputfields", {}).items()}
    comp = str(ctx.get("componentid") or t2c.get(int(ctx["taskid"]), ""))
    stream_fields[comp] = outputs
    return TopologyContext(
        topology_name=topology,
        task_id=int(ctx["taskid"]),
        component_id=comp,
        task_to_component=t2c,
        component_tasks={c: tuple(ts) for c, ts in tasks.items()},
        sources=sources,
        targets={},
        output_fields=outputs,
        stream_fields=stream_fields,
    )


def run_component(cls: type[Component], serializer: str = "msgpack") -> int:
    """Run ``cls`` as a multilang child on this process's stdin/stdout until the host leaves."""
    pipe = _Pipe(serializer)
    try:
        return _run(cls, pipe)
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        with contextlib.suppress(OSError):
            pipe.flush()


def _run(cls: type[Component], pipe: _Pipe) -> int:
    hs = pipe.read()
    offered = hs.get(EXTENSION_KEY) or {}
    conf: dict[str, Any] = dict(hs.get("conf") or {})
    init = offered.get("init")
    kwargs: dict[str, Any] = {}
    context: TopologyContext
    if isinstance(init, str):
        init = base64.b64decode(init)
    if isinstance(init, bytes):
        kwargs, context = pickle.loads(init)
    else:
        context = _context_from_storm(hs["context"], str(conf.get("topology.name", "")))
    pid = os.getpid()
    with contextlib.suppress(OSError):
        open(os.path.join(hs["pidDir"], str(pid)), "w").close()
    # Batches are for bolts; a spout's commands are one at a time by protocol.
    accepted = {"batch": True} if offered.get("batch") and issubclass(cls, Bolt) else {}
    reply: dict[str, Any] = {"pid": pid}
    if accepted:
        reply[EXTENSION_KEY] = accepted
    pipe.send(reply)
    pipe.flush()

    component = cls(**kwargs)
    logger = logging.getLogger(f"squall.{context.topology_name}.{context.component_id}")
    logger.propagate = False
    handler = _LogForwarder(pipe)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if conf.get("topology.debug") else logging.INFO)
    component.logger = logger
    component.conf = conf
    component.context = context
    if accepted:
        pipe.rows = []
    if isinstance(component, Bolt):
        bc = _BoltCollector(pipe, context, component)
        component._collector = bc
        component.initialize(conf, context)
        pipe.flush()
        _bolt_loop(component, bc, pipe, bool(accepted))
    elif isinstance(component, Spout):
        sc = _SpoutCollector(pipe, context, component)
        component._collector = sc
        component.initialize(conf, context)
        pipe.flush()
        _spout_loop(component, sc, pipe)
    else:  # pragma: no cover - run.py only calls this for Bolt/Spout subclasses
        raise TypeError(f"{cls!r} is neither a Bolt nor a Spout")
    return 0


def _bolt_loop(bolt: Bolt, col: _BoltCollector, pipe: _Pipe, batch: bool) -> None:
    cls = type(bolt)
    auto_ack = bool(getattr(cls, "auto_ack", True))
    auto_fail = bool(getattr(cls, "auto_fail", True))
    fields_of: dict[tuple[Any, Any], tuple[str, ...]] = {}
    for c, streams in col.context.stream_fields.items():
        for s, f in streams.items():
            fields_of[(c, s)] = tuple(f)
    classes: dict[tuple[Any, Any, Any], Any] = {}
    process = bolt.process
    queue = pipe.queue
    live = col.live
    make = speedups.make_values

    def value_class(comp: Any, stream: Any, task: Any) -> Any:
        key = (comp, stream, task)
        vcls = classes.get(key)
        if vcls is None:
            names = fields_of.get((comp, stream))
            if names is None:
                names = ("rate_secs",) if stream == TICK_STREAM else ()
            vcls = classes[key] = values_class(comp or "", stream, names, task)
        return vcls

    def run(tid: Any, v: Any, tick: bool) -> None:
        live[id(v)] = (tid, v)
        col.cur_tid = tid
        col.current = v
        try:
            if tick:
                bolt.process_tick(v)
                col.ack(v)
                return
            process(v)
        except FailedError:
            col.fail(v)
            return
        except Exception as e:
            col.report_error(e)
            if auto_fail:
                col.fail(v)
            return
        finally:
            col.cur_tid = None
            col.current = None
        if auto_ack:
            col.ack(v)

    while True:
        pipe.fill()
        while queue:
            msg = queue.popleft()
            if isinstance(msg, list):
                continue  # a stale task-id reply
            groups = msg.get("g") if batch else None
            if groups is None:
                tid, comp, stream, task = msg["id"], msg["comp"], msg["stream"], msg["task"]
                if task == -1 and stream == HEARTBEAT_STREAM:
                    pipe.send({"command": "sync"})
                    continue
                tick = comp == SYSTEM_COMPONENT and stream == TICK_STREAM
                run(tid, make(value_class(comp, stream, task), msg["tuple"]), tick)
                continue
            for comp, stream, task, items in groups:
                vcls = value_class(comp, stream, task)
                if comp == SYSTEM_COMPONENT and stream == TICK_STREAM:
                    for k in range(0, len(items), 2):
                        run(items[k], make(vcls, items[k + 1]), True)
                    continue
                # The hot loop: run() inlined.
                for k in range(0, len(items), 2):
                    tid = items[k]
                    v = make(vcls, items[k + 1])
                    live[id(v)] = (tid, v)
                    col.cur_tid = tid
                    col.current = v
                    try:
                        process(v)
                    except FailedError:
                        col.fail(v)
                        continue
                    except Exception as e:
                        col.report_error(e)
                        if auto_fail:
                            col.fail(v)
                        continue
                    finally:
                        col.cur_tid = None
                        col.current = None
                    if auto_ack:
                        col.ack(v)
        pipe.flush()


def _spout_loop(spout: Spout, col: _SpoutCollector, pipe: _Pipe) -> None:
    while True:
        msg = pipe.read()
        if isinstance(msg, list):
            continue
        cmd = msg.get("command")
        try:
            if cmd == "next":
                spout.next_tuple()
            elif cmd == "ack":
                spout.ack(_hashable(msg.get("id")))
            elif cmd == "fail":
                spout.fail(_hashable(msg.get("id")))
            elif cmd == "activate":
                spout.activate()
            elif cmd == "deactivate":
                spout.deactivate()
        except Exception as e:
            col.report_error(e)
        pipe.send({"command": "sync"})
        pipe.flush()


__all__ = ["PICKLE_EXT", "PickleMsgpackCodec", "ext_hook", "pack_default", "run_component"]
