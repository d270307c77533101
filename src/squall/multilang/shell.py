"""``ShellBolt`` and ``ShellSpout``: components whose code runs in a child process.

The child speaks Storm's multilang protocol on its stdin/stdout (storm-spec.md
§2): any program in any language, unmodified pystorm/streamparse components, or
Squall's own classes run out of process (``isolated=True``).

>>> from squall.api.topology import Topology
>>> from squall.api.component import Spout
>>> class Sentences(Spout):
...     outputs = ["sentence"]
>>> class WordCount(Topology):
...     sentences = Sentences.spec()
...     split = ShellBolt.spec(command="python3", script="split.py",
...                            inputs=[sentences], outputs=["word"], par=4)
>>> WordCount.definition().components["split"].kwargs["script"]
'split.py'

How it fits the engine: ``process`` (bolt) and ``next_tuple``/``ack``/``fail``
(spout) only queue messages; the engine calls ``squall_pending`` on every pass,
which writes what is queued and reads what the child wrote, both without
blocking, and ``squall_drain`` applies the child's commands on the loop thread
through the normal collector, so acking, anchoring and stats work as for any
other component.

Faults (a child that exits, crashes, hangs or breaks the protocol) are reported
as errors naming the topology, component, task, reason and the offending input
(truncated), the child is killed with everything it started, the tuples it held
are failed so their spouts replay them, and a new child is started (after a
short back-off if children keep dying young). Storm instead kills the whole
worker (``System.exit(11)``); restarting only the child is Squall's documented
difference.

Liveness: a bolt child gets a ``__heartbeat`` tuple every second, as in Storm.
It is declared hung only when a heartbeat (or, for a spout, a command) has been
waiting for ``topology.subprocess.timeout.secs`` **and** in that time the child
wrote nothing **and** its process session used no CPU. A child that is busy on
a long tuple keeps computing, so it is never killed for being slow, which is
Storm's most common multilang complaint; one stuck in a blocking call (or
deadlocked) uses no CPU and is detected.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from squall import config as C
from squall.api.component import Bolt, Component, ComponentSpec, Spout
from squall.api.context import TopologyContext
from squall.api.errors import EmitError
from squall.api.stream import Stream
from squall.api.tuple import Tuple
from squall.multilang.codec import Codec, ProtocolError, codec_for, excerpt
from squall.multilang.process import ChildProcess, cpu_secs
from squall.multilang.protocol import (
    BOLT_COMMANDS,
    SPOUT_COMMANDS,
    anchor_ids,
    command_of,
    context_json,
    emit_fields,
    handshake_message,
    heartbeat_message,
    json_safe_conf,
    log_level,
    parse_pid_reply,
    spout_command,
    tuple_message,
)

#: Storm's keys for how long a silent, idle child may take before it is declared hung.
SUBPROCESS_TIMEOUT_SECS = "topology.subprocess.timeout.secs"
WORKER_TIMEOUT_SECS = "supervisor.worker.timeout.secs"
#: Squall's cap on one message from a child (a longer line is a protocol error).
MAX_MESSAGE_BYTES = "topology.multilang.max.message.bytes"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT_SECS = 30.0
HEARTBEAT_SECS = 1.0
#: Where a shell component's child runs when nothing else says (see ``resource_dir``).
RESOURCE_DIR = "topology.multilang.resource.dir"

_CHECK_SECS = 0.1
# A bolt writes queued tuples to the pipe every this many (and on every engine pass).
_FLUSH_EVERY = 64
_IDLE_NEXT_SECS = 0.001
_SQUALL_DIR = str(Path(__file__).resolve().parents[1])

_STARTING = 0
_READY = 1
_DEAD = 2
_CLOSED = 3


class ShellProcessError(RuntimeError):
    """A shell component's child failed; the message names topology, component, task, reason."""


class ShellError(RuntimeError):
    """An ``error`` command sent by a child (Storm: "Shell Process Exception: <msg>")."""


def declaring_dir() -> str | None:
    """Directory of the first caller outside the squall package (the topology's file)."""
    frame = sys._getframe(1)
    while frame is not None:
        fname = frame.f_code.co_filename
        if not fname.startswith("<") and not os.path.abspath(fname).startswith(_SQUALL_DIR):
            return os.path.dirname(os.path.abspath(fname))
        frame = frame.f_back  # type: ignore[assignment]
    return None


def resource_dir(base: str | None) -> str | None:
    """``base/resources`` if that directory exists (Storm's and streamparse's layout), else base.

    >>> resource_dir(None) is None
    True
    """
    if base is None:
        return None
    res = os.path.join(base, "resources")
    return res if os.path.isdir(res) else base


class _Shell(Component):
    """What ShellBolt and ShellSpout share: the child's life, handshake, faults and restarts."""

    #: Class-level defaults, so ``class Split(ShellBolt): command = ...`` works too.
    command: ClassVar[str | Sequence[str] | None] = None
    script: ClassVar[str | None] = None
    serializer: ClassVar[str | None] = None

    _kind_label = "shell component"

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        script: str | None = None,
        *,
        args: Sequence[str] = (),
        serializer: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        resource_dir: str | None = None,
    ) -> None:
        super().__init__()
        cmd = command if command is not None else type(self).command
        if cmd is None:
            raise TypeError(
                f"{type(self).__name__} needs a command, e.g. "
                f'{type(self).__name__}.spec(command="python3", script="split.py", ...)'
            )
        argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
        if not argv:
            raise TypeError(f"{type(self).__name__}: empty command")
        scr = script if script is not None else type(self).script
        if scr is not None:
            argv.append(str(scr))
        argv.extend(str(a) for a in args)
        self.argv: list[str] = argv
        self._serializer_name = serializer or type(self).serializer
        self._cwd_arg = cwd
        self._resource_base = resource_dir
        self._env = dict(env or {})
        self._proc: ChildProcess | None = None
        self._state = _CLOSED
        self._inbox: list[Any] = []
        self._fault: ProtocolError | None = None
        self._restart_at: float | None = None
        self._restarts = 0
        self._backoff = 0.0
        self._next_check = 0.0
        self._cpu_last = 0
        self._cpu_progress = 0.0
        self._pid_dir: str | None = None
        self._label = type(self).__name__
        self.child_pid: int | None = None
        self.extension: dict[str, Any] = {}

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        config: Mapping[str, Any] | None = None,
        *,
        tasks: int | None = None,
        outputs: Sequence[str] | Sequence[Stream] | None = None,
        **kwargs: Any,
    ) -> ComponentSpec:
        """Declare a shell component; ``command``/``script``/``serializer``... go to the child.

        The child's working directory is the topology's resource directory: the
        directory of the file that declares this spec, or ``resources/`` under it
        when that exists (as Storm and streamparse lay projects out). ``cwd=``
        overrides it.
        """
        if "cwd" not in kwargs and "resource_dir" not in kwargs:
            kwargs["resource_dir"] = declaring_dir()
        return super().spec(name, inputs, par, config, tasks=tasks, outputs=outputs, **kwargs)

    # -- setup ---------------------------------------------------------------------
    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        self._label = (
            f"[{context.topology_name}] {self._kind_label} {context.component_id!r} "
            f"task {context.task_id}"
        )
        timeout = conf.get(SUBPROCESS_TIMEOUT_SECS) or conf.get(WORKER_TIMEOUT_SECS)
        self._timeout = float(timeout or DEFAULT_TIMEOUT_SECS)
        self._heartbeat_secs = min(HEARTBEAT_SECS, self._timeout / 3)
        self._max_bytes = int(conf.get(MAX_MESSAGE_BYTES) or DEFAULT_MAX_MESSAGE_BYTES)
        name = self._serializer_name or conf.get(C.TOPOLOGY_MULTILANG_SERIALIZER) or "json"
        try:
            self._codec: Codec = self.make_codec(str(name))
        except ValueError as e:
            raise ShellProcessError(f"{self._label}: {e}") from None
        base = self._resource_base or conf.get(RESOURCE_DIR)
        self._cwd = self._cwd_arg or resource_dir(base) or os.getcwd()
        if not os.path.isdir(self._cwd):
            raise ShellProcessError(
                f"{self._label}: working directory {self._cwd!r} does not exist"
            )
        self._pid_dir = tempfile.mkdtemp(prefix=f"squall-pids-{context.component_id}-")
        self._conf_json = json_safe_conf(conf)
        self._context_json = context_json(context)
        try:
            self._spawn()
        except OSError as e:
            raise ShellProcessError(
                f"{self._label}: cannot start {' '.join(self.argv)!r} in {self._cwd}: {e}"
            ) from None

    def make_codec(self, name: str) -> Codec:
        """The codec for serializer ``name`` (Squall's adapter host uses a richer msgpack)."""
        return codec_for(name)

    def handshake_extension(self) -> dict[str, Any]:
        """Extra handshake entries offered to the child (Squall's adapter overrides this)."""
        return {}

    def _spawn(self) -> None:
        self._proc = ChildProcess(
            self.argv,
            cwd=self._cwd,
            env=self._env,
            codec=self._codec,
            max_message_bytes=self._max_bytes,
            logger=self.logger,
        )
        self._state = _STARTING
        self._fault = None
        self._inbox = []
        self.child_pid = None
        self.extension = {}
        now = time.monotonic()
        self._cpu_last = 0
        self._cpu_progress = now
        self._next_check = now + _CHECK_SECS
        msg = handshake_message(
            os.path.realpath(self._pid_dir or tempfile.gettempdir()),
            self._conf_json,
            self._context_json,
            self.handshake_extension() or None,
        )
        self._proc.write(self._codec.encode(msg))

    # -- the engine's hooks ------------------------------------------------------------
    def squall_pending(self) -> bool:
        p = self._proc
        if p is None:
            return self._restart_at is not None and time.monotonic() >= self._restart_at
        if p.pending_out:
            p.flush()
        if not p.eof and self._fault is None:
            try:
                p.read(self._inbox)
            except ProtocolError as e:
                self._fault = e
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + _CHECK_SECS
            self._check(p, now)
        return bool(self._inbox) or p.eof or self._fault is not None

    def squall_drain(self) -> int:
        p = self._proc
        if p is None:
            if self._restart_at is not None and time.monotonic() >= self._restart_at:
                self._restart()
            return 0
        done = 0
        if self._inbox:
            msgs = self._inbox
            self._inbox = []
            try:
                if self._state == _STARTING:
                    pid, ext = parse_pid_reply(msgs[0])
                    self.child_pid = pid
                    self.extension = ext
                    self._state = _READY
                    self._backoff = 0.0
                    self.logger.debug("%s: launched subprocess with pid %s", self._label, pid)
                    self.on_ready()
                    msgs = msgs[1:]
                done = self.apply(msgs)
            except ProtocolError as e:
                self._die(e.reason, e.offending)
                return done
        if self._fault is not None:
            f = self._fault
            self._die(f.reason, f.offending)
        elif p.eof:
            self._die("the child exited (its stdout closed)")
        else:
            self.after_drain()
        return done

    # -- what subclasses provide ---------------------------------------------------------
    def apply(self, msgs: list[Any]) -> int:
        raise NotImplementedError

    def on_ready(self) -> None:
        """The handshake completed: send what waited for it."""

    def after_drain(self) -> None:
        """Called after the child's messages were applied (the child is still healthy)."""

    def waiting_since(self) -> float | None:
        """Since when the host waits for an answer from the child, or None if it does not."""
        return None

    def drop_inflight(self) -> int:
        """The child died: fail what it held; returns how many tuples were failed."""
        return 0

    # -- shared command handling -------------------------------------------------------------
    def _other(self, msg: Any, cmd: Any, allowed: frozenset[str], kind: str) -> None:
        """Apply ``log``/``error``/``metrics``, which mean the same to bolts and spouts.

        Anything else is a fault, reported by :func:`command_of`: the caller has
        already handled every other command ``allowed`` for its ``kind``.
        """
        if cmd == "log":
            self._log(msg)
        elif cmd == "error":
            self._error(msg)
        elif cmd == "metrics":
            self._metrics(msg)
        else:
            command_of(msg, allowed, kind)
            raise AssertionError(f"{kind}: command {cmd!r} is accepted but not handled")

    def _log(self, msg: dict[str, Any]) -> None:
        self.logger.log(
            log_level(msg.get("level", 2)),
            "ShellLog pid:%s, name:%s %s",
            self.child_pid,
            self.context.component_id,
            msg.get("msg"),
        )

    def _error(self, msg: dict[str, Any]) -> None:
        self.report_error(ShellError(f"Shell Process Exception: {msg.get('msg')}"))

    def _metrics(self, msg: dict[str, Any]) -> None:
        name = msg.get("name")
        if not isinstance(name, str):
            raise ProtocolError("metrics 'name' must be a string", msg)
        params = msg.get("params")
        if params is None:
            # Storm's CountShellMetric: null params means "increment by one".
            metrics = self._metric_counts
            metrics[name] = metrics.get(name, 0) + 1
            self.report_metric(name, metrics[name])
        else:
            self.report_metric(name, params)

    @property
    def _metric_counts(self) -> dict[str, int]:
        d: dict[str, int] | None = self.__dict__.get("_mcounts")
        if d is None:
            d = self.__dict__["_mcounts"] = {}
        return d

    def send(self, msg: Any) -> None:
        p = self._proc
        if p is not None:
            p.write(self._codec.encode(msg))

    # -- health ---------------------------------------------------------------------------------
    def _check(self, p: ChildProcess, now: float) -> None:
        if self._state == _READY:
            self.on_check(now)
        since = p.started if self._state == _STARTING else self.waiting_since()
        if since is None:
            return
        quiet = now - max(since, p.last_read, self._cpu_progress)
        if quiet < min(1.0, self._timeout / 3):
            return
        # Silent for a while: is it computing? (Read /proc only now, not every check.)
        ticks = p.cpu_ticks()
        if ticks != self._cpu_last:
            self._cpu_last = ticks
            self._cpu_progress = now
            return
        if quiet > self._timeout:
            what = (
                "never completed the handshake (no pid reply)"
                if self._state == _STARTING
                else "stopped answering"
            )
            self._fault = ProtocolError(
                f"the child {what}: silent and using no CPU for {quiet:.1f}s "
                f"(topology.subprocess.timeout.secs = {self._timeout:g}; "
                f"CPU used in all: {cpu_secs(ticks):.2f}s)"
            )

    def on_check(self, now: float) -> None:
        """Periodic work while the child is ready (the bolt sends heartbeats here)."""

    # -- death and restart --------------------------------------------------------------
    def _die(self, reason: str, offending: str | None = None) -> None:
        p = self._proc
        if p is None:
            return
        self._proc = None
        lived = time.monotonic() - p.started
        handshook = self._state != _STARTING
        self._state = _DEAD
        p.kill()
        failed = self.drop_inflight()
        self._inbox = []
        self._fault = None
        if handshook and lived > 5.0:
            self._backoff = 0.0
        else:
            self._backoff = min(5.0, max(0.1, self._backoff * 2))
        self._restart_at = time.monotonic() + self._backoff
        parts = [f"{self._label}: {reason}"]
        if offending:
            parts.append(f"offending input: {offending}")
        parts.append(p.describe())
        tail = p.stderr_excerpt()
        if tail:
            parts.append(f"last stderr: {tail}")
        parts.append(
            f"{failed} in-flight tuple(s) failed so their spouts replay them; "
            f"restarting the child in {self._backoff:.1f}s"
        )
        self.report_error(ShellProcessError("; ".join(parts)))

    def _restart(self) -> None:
        self._restart_at = None
        self._restarts += 1
        try:
            self._spawn()
        except OSError as e:
            self._state = _DEAD
            self._backoff = min(5.0, max(0.1, self._backoff * 2))
            self._restart_at = time.monotonic() + self._backoff
            self.report_error(
                ShellProcessError(
                    f"{self._label}: cannot restart {' '.join(self.argv)!r}: {e}; "
                    f"trying again in {self._backoff:.1f}s"
                )
            )

    @property
    def restarts(self) -> int:
        """How many times the child was restarted after a fault."""
        return self._restarts

    def _shutdown(self) -> None:
        self._state = _CLOSED
        self._restart_at = None
        p = self._proc
        self._proc = None
        if p is not None:
            p.close(grace_secs=1.0)
        if self._pid_dir is not None:
            shutil.rmtree(self._pid_dir, ignore_errors=True)
            self._pid_dir = None


class ShellBolt(_Shell, Bolt):
    """A bolt whose ``process`` runs in a child process speaking Storm's multilang protocol.

    Args:
        command: the program (``"python3"``, ``["node", "--no-warnings"]``); a string
            is split like a shell would.
        script: appended to the command (``"split.py"``), relative to the working dir.
        args: more arguments after the script.
        serializer: ``"json"`` (Storm's default) or ``"msgpack"`` (pystorm's); defaults
            to ``topology.multilang.serializer``.
        cwd: working directory; defaults to the topology's resource directory.
        env: extra environment variables (``PATH`` is appended, as in Storm).

    As in Storm, ``topology.shellbolt.max.pending`` bounds the queue of tuples
    waiting to be written to the child (the pipe itself holds what the child has
    not read yet). Tuples beyond it wait in the host and count towards this
    executor's queue, so the upstream backs off instead of memory growing. The
    number of tuples the child holds unacked is not bounded here (a batching
    bolt holds many until its next tick); the spout's
    ``topology.max.spout.pending`` bounds it.
    """

    auto_anchor = False
    auto_ack = False
    auto_fail = False
    _kind_label = "shell bolt"

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        script: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(command, script, **kwargs)
        self._inputs: dict[Any, Tuple] = {}
        self._overflow: deque[tuple[Any, Tuple]] = deque()
        self._out: list[Any] = []
        self._groups: dict[tuple[Any, str, int], list[Any]] = {}
        self._ids_out: list[bytes] = []
        self._next_id = 0
        self._hb_sent: float | None = None
        self._hb_last = 0.0
        self._executor: Any = None
        self._batch = False
        self._encode_tuple: Any = None

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        self._max_pending = max(1, int(conf.get(C.TOPOLOGY_SHELLBOLT_MAX_PENDING) or 100))
        # The executor's queue count drives upstream backpressure; tuples waiting
        # here for room in the child are counted in it (see the class docstring).
        self._executor = getattr(self._collector, "executor", None)
        self._acking = bool(getattr(self._collector, "acking", True))
        super().initialize(conf, context)

    # -- tuples in ----------------------------------------------------------------------
    def process(self, tup: Tuple) -> None:
        self._next_id += 1
        # Storm's ids are decimal strings; in Squall's batch mode plain ints do.
        tid: Any = self._next_id if self._batch else str(self._next_id)
        if self._state == _READY and not self._overflow and len(self._out) < self._max_pending:
            self._send_tuple(tid, tup)
        else:
            self._overflow.append((tid, tup))
            ex = self._executor
            if ex is not None:
                ex.queued += 1

    process_tick = process

    def _send_tuple(self, tid: Any, tup: Tuple) -> None:
        if self._batch:
            # Squall's adapter negotiated batches: tuples grouped by source, encoded
            # together at flush; _out only counts them.
            self._inputs[tid] = tup
            self._out.append(tid)
            key = (tup.component, tup.stream, tup.task)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = []
            group += (tid, tup.values)
            return
        values = tup.values
        try:
            enc = self._encode_tuple
            if enc is not None:
                data = enc(tid, tup.component, tup.stream, tup.task, values)
            else:
                data = self._codec.encode(
                    tuple_message(tid, tup.component, tup.stream, tup.task, values)
                )
        except (TypeError, ValueError, OverflowError) as e:
            self.report_error(
                ShellProcessError(
                    f"{self._label}: cannot send tuple {excerpt(values, 200)} to the child "
                    f"with the {self._codec.name} serializer: {e}; failing it"
                )
            )
            self.fail(tup)
            return
        self._inputs[tid] = tup
        self._out.append(data)
        if len(self._out) >= _FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        p = self._proc
        if p is None:
            return
        if self._ids_out:
            # Task-id replies (and heartbeats) go before queued tuples, and even when
            # the queue is full (Storm's ShellBoltMessageQueue).
            p.write(b"".join(self._ids_out))
            self._ids_out.clear()
        elif p.pending_out:
            p.flush()
        # Tuples move from the bounded queue into the pipe only while it takes them.
        if self._out and not p.pending_out:
            if self._batch:
                p.write(self._encode_groups())
            else:
                p.write(b"".join(self._out))
            self._out.clear()

    def _encode_groups(self) -> bytes:
        groups = [[c, s, t, items] for (c, s, t), items in self._groups.items()]
        self._groups.clear()
        try:
            return self._codec.encode({"g": groups})
        except (TypeError, ValueError, OverflowError):
            pass
        # Some value cannot be encoded: fail those tuples alone, send the rest.
        for group in groups:
            items = group[3]
            good: list[Any] = []
            for k in range(0, len(items), 2):
                tid, values = items[k], items[k + 1]
                try:
                    self._codec.encode(values)
                except (TypeError, ValueError, OverflowError) as e:
                    tup = self._inputs.pop(tid, None)
                    self.report_error(
                        ShellProcessError(
                            f"{self._label}: cannot send tuple {excerpt(values, 200)} to the "
                            f"child: {e}; failing it"
                        )
                    )
                    if tup is not None:
                        self.fail(tup)
                    continue
                good += (tid, values)
            group[3] = good
        return self._codec.encode({"g": groups})

    def squall_pending(self) -> bool:
        if self._out or self._ids_out:
            self._flush()
        busy = super().squall_pending()
        return busy or (
            bool(self._overflow) and self._state == _READY and len(self._out) < self._max_pending
        )

    def on_ready(self) -> None:
        self._hb_last = time.monotonic()
        self._batch = bool(self.extension.get("batch"))
        self._encode_tuple = getattr(self._codec, "encode_tuple", None)
        self._refill()

    def after_drain(self) -> None:
        self._refill()
        self._flush()

    def _refill(self) -> None:
        ov = self._overflow
        if not ov or self._state != _READY:
            return
        out = self._out
        limit = self._max_pending
        n = 0
        while ov and len(out) < limit:
            tid, tup = ov.popleft()
            self._send_tuple(tid, tup)
            n += 1
        ex = self._executor
        if ex is not None:
            ex.queued -= n

    # -- the child's commands ------------------------------------------------------------
    def apply(self, msgs: list[Any]) -> int:
        inputs = self._inputs
        emit = self.emit
        ack = self.ack
        fail = self.fail
        acking = self._acking
        for m in msgs:
            cmd = m.get("command") if type(m) is dict else None
            if cmd == "emit":
                values, stream, task, need = emit_fields(m)
                anchors: list[Tuple] = []
                for a in anchor_ids(m):
                    t = inputs.get(a)
                    if t is None:
                        raise ProtocolError(
                            f"emit anchored to id {a!r}, which is unknown or already "
                            "acked/failed (Storm: 'Anchored onto ... after ack/fail')",
                            m,
                        )
                    anchors.append(t)
                want = need and task is None
                try:
                    if acking or want or task is not None or stream != "default":
                        ids = emit(
                            values,
                            stream=stream,
                            anchors=anchors,
                            direct_task=task,
                            need_task_ids=want,
                        )
                    else:
                        ids = emit(values)
                except EmitError as e:
                    raise ProtocolError(str(e), m) from None
                if want:
                    self._ids_out.append(self._codec.encode(ids or []))
            elif cmd == "ack" or cmd == "fail":
                t = inputs.pop(m.get("id"), None)
                if t is None:
                    raise ProtocolError(
                        f"{cmd} of id {m.get('id')!r}, which is unknown or already acked/failed",
                        m,
                    )
                if cmd == "ack":
                    ack(t)
                else:
                    fail(t)
            elif cmd == "b":
                self._apply_rows(m.get("b"))
            elif cmd == "sync":
                self._hb_sent = None
            else:
                self._other(m, cmd, BOLT_COMMANDS, "a bolt")
        return len(msgs)

    def _apply_rows(self, rows: Any) -> None:
        """A batch from Squall's adapter: a flat list of operations (see docs/multilang.md).

        ``3, values, id``: emit on the default stream anchored to ``id``; ``4, values``:
        emit on the default stream, unanchored; ``0, values, [ids], stream``: any other
        emit; ``1, id``: ack; ``2, id``: fail; ``5, {command}``: any other command.
        """
        if not self._batch or type(rows) is not list:
            raise ProtocolError("a batch ('b') the host did not negotiate, or not a list", rows)
        inputs = self._inputs
        emit = self.emit
        ack = self.ack
        acking = self._acking
        i = 0
        n = len(rows)
        try:
            while i < n:
                op = rows[i]
                if op == 3:
                    values = rows[i + 1]
                    if acking:
                        t = inputs.get(rows[i + 2])
                        if t is None:
                            raise ProtocolError(f"emit anchored to unknown id {rows[i + 2]!r}")
                        emit(values, anchors=[t])
                    else:
                        emit(values)
                    i += 3
                elif op == 1:
                    t = inputs.pop(rows[i + 1], None)
                    if t is None:
                        raise ProtocolError(f"ack of unknown id {rows[i + 1]!r}")
                    ack(t)
                    i += 2
                elif op == 4:
                    emit(rows[i + 1])
                    i += 2
                elif op == 0:
                    values, ids, stream = rows[i + 1], rows[i + 2], rows[i + 3]
                    anchors = []
                    for a in ids:
                        t = inputs.get(a)
                        if t is None:
                            raise ProtocolError(f"emit anchored to unknown id {a!r}")
                        anchors.append(t)
                    emit(values, stream=stream or "default", anchors=anchors)
                    i += 4
                elif op == 2:
                    t = inputs.pop(rows[i + 1], None)
                    if t is None:
                        raise ProtocolError(f"fail of unknown id {rows[i + 1]!r}")
                    self.fail(t)
                    i += 2
                elif op == 5:
                    self.apply([rows[i + 1]])
                    i += 2
                else:
                    raise ProtocolError(f"unknown batch operation {op!r}")
        except EmitError as e:
            raise ProtocolError(str(e), rows[i : i + 4]) from None
        except IndexError:
            raise ProtocolError("truncated batch", rows[i:]) from None

    # -- health -----------------------------------------------------------------------------
    def on_check(self, now: float) -> None:
        if self._hb_sent is None and now - self._hb_last >= self._heartbeat_secs:
            self._hb_last = now
            self._hb_sent = now
            self._next_id += 1
            self._ids_out.append(self._codec.encode(heartbeat_message(str(self._next_id))))
            self._flush()

    def waiting_since(self) -> float | None:
        return self._hb_sent

    def drop_inflight(self) -> int:
        inputs = self._inputs
        self._inputs = {}
        self._out.clear()
        self._groups.clear()
        self._batch = False
        self._ids_out.clear()
        self._hb_sent = None
        for t in inputs.values():
            self.fail(t)
        return len(inputs)

    def cleanup(self) -> None:
        self._flush()
        self._shutdown()


class ShellSpout(_Shell, Spout):
    """A spout whose ``next_tuple``/``ack``/``fail`` run in a child process (Storm's multilang).

    Takes the same arguments as :class:`ShellBolt`. As in Storm, commands go to the
    child one at a time and each waits for the child's ``sync``; the engine's loop
    never waits for it: ``next_tuple`` sends ``next`` only when the previous
    command was answered, and emits are applied when they arrive.
    """

    _kind_label = "shell spout"

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        script: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(command, script, **kwargs)
        self._cmds: deque[dict[str, Any]] = deque()
        self._awaiting: float | None = None
        self._sent: str = ""
        self._emits = 0
        self._idle_until = 0.0
        self._active = False

    def next_tuple(self) -> None:
        if self._state == _READY and self._awaiting is None and not self._cmds:
            if self._idle_until and time.monotonic() < self._idle_until:
                return
            self._cmds.append(spout_command("next"))
            self._pump()

    def ack(self, tup_id: Any) -> None:
        self._cmds.append(spout_command("ack", tup_id))
        self._pump()

    def fail(self, tup_id: Any) -> None:
        self._cmds.append(spout_command("fail", tup_id))
        self._pump()

    def activate(self) -> None:
        self._active = True
        self._cmds.append(spout_command("activate"))
        self._pump()

    def deactivate(self) -> None:
        self._active = False
        self._cmds.append(spout_command("deactivate"))
        self._pump()

    def close(self) -> None:
        self._shutdown()

    def _pump(self) -> None:
        if self._awaiting is None and self._cmds and self._state == _READY:
            cmd = self._cmds.popleft()
            self.send(cmd)
            self._sent = cmd["command"]
            self._emits = 0
            self._awaiting = time.monotonic()

    def on_ready(self) -> None:
        # Acks and fails queued before this child answered are for an earlier child's
        # message ids, which this one never emitted.
        self._cmds = deque(c for c in self._cmds if c["command"] not in ("ack", "fail"))
        self._pump()

    def after_drain(self) -> None:
        self._pump()

    def waiting_since(self) -> float | None:
        return self._awaiting

    def drop_inflight(self) -> int:
        # A new child knows nothing of the old one's message ids: drop queued acks
        # and fails, and tell it the topology is active if it is.
        self._awaiting = None
        self._cmds.clear()
        if self._active:
            self._cmds.append(spout_command("activate"))
        return 0

    def apply(self, msgs: list[Any]) -> int:
        emit = self.emit
        done = 0
        for m in msgs:
            cmd = m.get("command") if type(m) is dict else None
            if cmd == "emit":
                done += 1
                self._emits += 1
                values, stream, task, need = emit_fields(m)
                want = need and task is None
                try:
                    ids = emit(
                        values,
                        tup_id=m.get("id"),
                        stream=stream,
                        direct_task=task,
                        need_task_ids=want,
                    )
                except EmitError as e:
                    raise ProtocolError(str(e), m) from None
                if want:
                    self.send(ids or [])
            elif cmd == "sync":
                self._awaiting = None
                # Storm's spout wait: a "next" that emitted nothing is not repeated for
                # a millisecond, so an idle child is not spun in a tight loop.
                idle = self._sent == "next" and self._emits == 0
                self._idle_until = time.monotonic() + _IDLE_NEXT_SECS if idle else 0.0
            else:
                self._other(m, cmd, SPOUT_COMMANDS, "a spout")
        # Only emits count as work: a sync alone lets the engine idle.
        return done


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_BYTES",
    "RESOURCE_DIR",
    "SUBPROCESS_TIMEOUT_SECS",
    "ShellBolt",
    "ShellError",
    "ShellProcessError",
    "ShellSpout",
    "declaring_dir",
    "resource_dir",
]
