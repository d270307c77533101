"""A local worker process: ``python -m squall.daemon.worker_main`` (started by LocalWorkers).

Life of a worker:

1. read the :class:`~squall.daemon.shipping.WorkerBoot` record from stdin (a local
   pipe, the only place anything is unpickled), load the topology sources, unpickle
   the topology and make the same plan as the parent;
2. bind its data socket, say ``hello`` (with the port) on the control socket, get
   every peer's port back, connect, build the engine and initialize every task;
3. say ``started`` (or ``start_failed`` with the reason), then run the engine loop
   until told to stop; a control thread relays requests (activate, deactivate,
   stats) to the loop and sends errors and log records back to the parent;
4. on ``stop``: leave the loop, deactivate and close every task, say ``bye``, exit.

The worker also exits when its parent goes away: the parent holds the write end
of the worker's stdin, so EOF on stdin means the parent is gone (even after
``kill -9``). SIGINT is ignored; Ctrl-C in a terminal reaches the whole process
group, and the parent decides how to stop.

Control messages are msgpack lists over a ZeroMQ DEALER socket (never pickle):
``[kind, worker, ...]`` upward and ``[kind, ...]`` downward.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgpack
import zmq

from squall import config as C
from squall.api.ids import SYSTEM_COMPONENT
from squall.daemon import shipping
from squall.runtime.engine import Engine
from squall.runtime.plan import TopologyPlan, make_plan
from squall.runtime.stats import ErrorReport
from squall.serialization.batch import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_FRAME_BYTES_KEY,
    BatchDecoder,
    BatchEncoder,
)
from squall.transport.zmq_link import DEFAULT_WINDOW, WINDOW_KEY, CurveKeys, ZmqLink

log = logging.getLogger("squall.worker")

# How long a worker waits for its peers' ports before giving up.
PEERS_TIMEOUT_SECS = 60.0
# After the parent is gone, how long the worker may take to shut down cleanly.
ORPHAN_GRACE_SECS = 5.0
# How often the control thread wakes up to forward errors, logs and replies.
CONTROL_TICK_MS = 5


def pack(msg: Any) -> bytes:
    """Encode a control message (msgpack; unknown objects become their repr)."""
    return msgpack.packb(msg, use_bin_type=True, default=repr)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    """Decode a control message."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class _ForwardLogs(logging.Handler):
    """Queues log records for the parent, which re-emits them through its own logging."""

    def __init__(self, worker: int, outbox: deque[list[Any]]) -> None:
        super().__init__()
        self.worker = worker
        self.outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self.outbox.append(
                [
                    "log",
                    self.worker,
                    {
                        "name": record.name,
                        "levelno": record.levelno,
                        "levelname": record.levelname,
                        "msg": msg,
                        "created": record.created,
                        "funcName": record.funcName,
                        "lineno": record.lineno,
                        "pathname": record.pathname,
                        "module": record.module,
                        "threadName": f"worker-{self.worker}:{record.threadName}",
                        "processName": f"worker-{self.worker}",
                    },
                ]
            )
        except Exception:
            self.handleError(record)


def report_on_emitting_task(engine: Engine | None, error: ValueError) -> bool:
    """Report a tuple that cannot cross workers as an error of the task that emitted it.

    The link's ``on_send_error`` of both kinds of worker. False when no such task
    runs here (the caller decides what that means).

    >>> report_on_emitting_task(None, ValueError("cannot encode"))
    False
    """
    task = getattr(error, "task", 0)
    ex = engine.task_exec.get(task) if engine is not None else None
    if ex is None:
        return False
    ex.report_error(task, error)
    return True


_Command = TypeVar("_Command")


def poll_with_commands(
    link_poll: Callable[[], int], commands: deque[_Command], run: Callable[[_Command], None]
) -> Callable[[], int]:
    """The engine's ``poll``: what the link received, then the commands other threads queued.

    Both kinds of worker take commands from their control thread this way, so that the
    engine is only ever touched from its loop thread.

    >>> done: list[str] = []
    >>> poll = poll_with_commands(lambda: 3, deque(["activate"]), done.append)
    >>> poll(), poll(), done
    (4, 3, ['activate'])
    """

    def poll() -> int:
        n = link_poll()
        if commands:
            while commands:
                run(commands.popleft())
            n += 1
        return n

    return poll


def make_link(
    plan: TopologyPlan,
    index: int,
    worker_tasks: Mapping[int, Iterable[int]],
    on_send_error: Callable[[ValueError], None],
    *,
    context: zmq.Context[Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    link_class: type[ZmqLink] = ZmqLink,
    curve: CurveKeys | None = None,
) -> ZmqLink:
    """Worker ``index``'s ZeroMQ link, sized by the topology config (local and cluster workers)."""
    max_frame = int(plan.conf.get(MAX_FRAME_BYTES_KEY) or DEFAULT_MAX_FRAME_BYTES)
    return link_class(
        index,
        BatchEncoder(max_frame),
        BatchDecoder.for_topology(plan.topology, max_frame),
        worker_tasks=worker_tasks,
        context=context,
        host=host,
        port=port,
        backpressure_check_secs=float(plan.conf[C.TOPOLOGY_BACKPRESSURE_CHECK_MILLIS]) / 1000,
        hwm=int(plan.conf[C.TOPOLOGY_TRANSFER_BUFFER_SIZE]),
        window=int(plan.conf.get(WINDOW_KEY) or DEFAULT_WINDOW),
        on_send_error=on_send_error,
        curve=curve,
    )


class Worker:
    """The state of one worker process (one instance per process)."""

    def __init__(self, boot: shipping.WorkerBoot) -> None:
        self.boot = boot
        self.index = boot.worker_index
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.ctl = self.ctx.socket(zmq.DEALER)
        self.ctl.setsockopt(zmq.IDENTITY, b"w%d" % self.index)
        self.ctl.setsockopt(zmq.LINGER, 2000)
        self.ctl.connect(boot.control_endpoint)
        self.stop = threading.Event()
        self.done = threading.Event()
        self.parent_gone = threading.Event()
        # From the control thread to the loop thread: [req_id, op, arg].
        self.commands: deque[list[Any]] = deque()
        # From any thread to the control thread: messages for the parent.
        self.outbox: deque[list[Any]] = deque()
        self.link: ZmqLink | None = None
        self.engine: Engine | None = None

    # -- startup ----------------------------------------------------------------
    def setup(self) -> None:
        boot = self.boot
        with shipping.bootstrapping():
            for source in boot.sources:
                source.load()
        topology, conf = shipping.unpack_topology(boot.payload)
        plan = make_plan(topology, conf)
        if plan.num_workers != boot.num_workers:
            raise RuntimeError(
                f"the worker's plan has {plan.num_workers} workers, the parent's {boot.num_workers}"
            )
        worker_tasks: dict[int, list[int]] = {}
        for t, w in plan.task_to_worker.items():
            worker_tasks.setdefault(w, []).append(t)
        self.link = make_link(plan, self.index, worker_tasks, self._send_error, context=self.ctx)
        self.ctl.send(pack(["hello", self.index, self.link.port]))
        peers = self._wait_for_peers()
        self.link.connect(peers)
        self.engine = Engine(plan, self.index, remote=self.link, on_error=self._on_error)
        self.link.attach(self.engine)
        self.engine.start(active=False)

    def _wait_for_peers(self) -> dict[int, int]:
        deadline = time.monotonic() + PEERS_TIMEOUT_SECS
        while not self.stop.is_set():
            if self.ctl.poll(100):
                msg = unpack(self.ctl.recv())
                if msg[0] == "peers":
                    return {int(w): int(p) for w, p in msg[1]}
                if msg[0] == "stop":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no peer list from the parent within {PEERS_TIMEOUT_SECS}s")
        raise SystemExit(0)

    # -- errors -----------------------------------------------------------------
    def _on_error(self, report: ErrorReport) -> None:
        self.outbox.append(["error", self.index, dataclasses.asdict(report)])

    def _send_error(self, error: ValueError) -> None:
        if not report_on_emitting_task(self.engine, error):
            self._fatal(error)

    def _fatal(self, error: BaseException) -> None:
        report = ErrorReport(
            topology=self.boot.topology_name,
            component=SYSTEM_COMPONENT,
            task=-1,
            time=time.time(),
            error=f"worker {self.index}: {type(error).__name__}: {error}",
            traceback="".join(traceback.format_exception(error)),
            worker=self.index,
        )
        log.error("%s\n%s", report.headline(), report.traceback.rstrip())
        self._on_error(report)

    # -- the loop ---------------------------------------------------------------
    def run(self) -> None:
        engine = self.engine
        link = self.link
        assert engine is not None and link is not None
        poll = poll_with_commands(link.poll, self.commands, self._run_command)
        control = threading.Thread(target=self._control_loop, name="squall-control", daemon=True)
        control.start()
        try:
            engine.run(self.stop, idle_wait=link.idle_wait, poll=poll)
        except BaseException as e:
            self._fatal(e)
            raise
        finally:
            try:
                engine.shutdown()
            finally:
                self.outbox.append(["bye", self.index])
                self.done.set()
                control.join(ORPHAN_GRACE_SECS)

    def _run_command(self, cmd: list[Any]) -> None:
        req_id, op, arg = cmd
        engine = self.engine
        assert engine is not None
        try:
            if op == "activate":
                engine.activate()
                result: Any = None
            elif op == "deactivate":
                engine.deactivate()
                result = None
            elif op == "stats":
                stats = engine.component_stats(bool(arg))
                result = {name: _stats_dict(s) for name, s in stats.items()}
            elif op == "snapshot":
                result = [s.to_wire() for s in engine.executor_snapshots()]
            elif op == "debug":
                engine.set_debug(arg[0], float(arg[1]))
                result = None
            else:
                raise ValueError(f"unknown request {op!r}")
        except Exception as e:
            self.outbox.append(["reply", self.index, req_id, False, f"{type(e).__name__}: {e}"])
            return
        self.outbox.append(["reply", self.index, req_id, True, result])

    def _control_loop(self) -> None:
        ctl = self.ctl
        outbox = self.outbox
        while True:
            if ctl.poll(CONTROL_TICK_MS):
                msg = unpack(ctl.recv())
                kind = msg[0]
                if kind == "request":
                    self.commands.append([msg[1], msg[2], msg[3]])
                elif kind == "stop":
                    self.stop.set()
            while outbox:
                try:
                    ctl.send(pack(outbox.popleft()))
                except Exception as e:  # one bad message must not silence the rest
                    log.error("worker %s: cannot send a control message: %s", self.index, e)
            if self.done.is_set() and not outbox:
                return

    def flush_outbox(self) -> None:
        """Send what is queued for the parent from the calling thread (startup, failure)."""
        while self.outbox:
            self.ctl.send(pack(self.outbox.popleft()))

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        # Pending messages (bye) get a moment to reach the parent, unless it is gone.
        self.ctl.close(linger=0 if self.parent_gone.is_set() else 2000)
        self.ctx.term()


def _stats_dict(stats: Any) -> dict[str, Any]:
    # Shallow on purpose: user metrics need not survive a deepcopy, only msgpack (or repr).
    out = {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
    out["emitted_by_stream"] = dict(stats.emitted_by_stream)
    out["metrics"] = dict(stats.metrics)
    return out


def _watch_parent(worker: Worker) -> None:
    """Exit when stdin reaches EOF: the parent is gone (or done with us)."""
    # os.read, not sys.stdin: a daemon thread blocked in a buffered reader aborts
    # the interpreter at exit.
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    worker.parent_gone.set()
    worker.stop.set()
    # Give the loop a moment to shut the tasks down, then make sure we are gone.
    time.sleep(ORPHAN_GRACE_SECS)
    os._exit(3)


def _setup_logging(boot: shipping.WorkerBoot, outbox: deque[list[Any]]) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_ForwardLogs(boot.worker_index, outbox))
    for name, level in boot.log_levels.items():
        logging.getLogger(name or None).setLevel(level)


def main() -> int:
    """Run one worker: the boot record comes on stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open(0, "rb", buffering=0, closefd=False) as stdin:
            boot = shipping.read_boot(stdin)
    except Exception as e:
        print(f"squall worker: cannot read the boot record: {e}", file=sys.stderr)
        return 2
    sys.path[:0] = [p for p in boot.sys_path if p not in sys.path]
    worker = Worker(boot)
    _setup_logging(boot, worker.outbox)
    threading.Thread(
        target=_watch_parent, args=(worker,), name="squall-parent-watch", daemon=True
    ).start()
    try:
        try:
            worker.setup()
        except SystemExit:
            return 0
        except BaseException as e:
            msg = f"{type(e).__name__}: {e}"
            tb = "".join(traceback.format_exception(e))
            worker.flush_outbox()
            worker.ctl.send(pack(["start_failed", worker.index, msg, tb]))
            return 1
        worker.ctl.send(pack(["started", worker.index]))
        worker.flush_outbox()
        try:
            worker.run()
        except BaseException:
            return 1
        return 0
    finally:
        worker.close()


if __name__ == "__main__":
    sys.exit(main())
