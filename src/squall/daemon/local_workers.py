"""Local mode across N worker processes on this machine (``topology.workers`` > 1).

The parent (this object) starts ``python -m squall.daemon.worker_main`` once per
worker, writes each one its boot record on stdin (see ``shipping``), and talks
to all of them over one ZeroMQ ROUTER socket on 127.0.0.1 (msgpack messages).
Workers exchange tuples among themselves over ZeroMQ (``ZmqLink``); the parent
carries no data, only control: start, activate/deactivate, stats, errors, logs
and stop.

Startup is two-phase, so no tuple is sent before every worker can receive:
each worker binds its data socket and says ``hello`` with its port; once all
have, the parent sends everyone the port map; each worker connects, builds its
engine, initializes its tasks and says ``started``. Only then are spouts
activated. If any worker fails to start, every worker is stopped and the
failure is raised, naming the component.

Stopping sends ``stop`` and waits for the workers to close their tasks and
exit; a worker that does not exit within the grace period is terminated, then
killed, by the pid this object started. Workers also exit on their own when the
parent goes away (their stdin reaches EOF), so none is left behind even if the
parent is killed.

Errors that user code raises in a worker reach ``on_error`` here, and the
workers' log records are re-emitted through this process's logging.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import zmq

import squall
from squall.api.ids import SYSTEM_COMPONENT
from squall.daemon import shipping
from squall.daemon.worker_main import pack, unpack
from squall.runtime.plan import TopologyPlan
from squall.runtime.stats import ComponentStats, ErrorReport, ExecutorSnapshot

log = logging.getLogger("squall.local")

START_TIMEOUT_SECS = 60.0
REQUEST_TIMEOUT_SECS = 30.0
STOP_GRACE_SECS = 10.0
KILL_GRACE_SECS = 3.0
_CONTROL_TICK_MS = 5
_LIVENESS_EVERY_SECS = 0.1


class WorkerStartError(RuntimeError):
    """A worker process could not start the topology; the message says why."""


class _Request:
    __slots__ = ("done", "errors", "results", "waiting")

    def __init__(self, workers: Iterable[int]) -> None:
        self.waiting = set(workers)
        self.results: dict[int, Any] = {}
        self.errors: dict[int, str] = {}
        self.done = threading.Event()
        if not self.waiting:
            self.done.set()


class LocalWorkers:
    """Runs one topology plan across ``plan.num_workers`` local processes.

    Args:
        name: the topology name.
        plan: the plan; worker ``i`` runs ``plan.executors_of(i)``.
        on_error: receives every error report from user code in any worker, and
            a report (component ``__system``) if a worker dies unexpectedly.

    >>> from squall.runtime.plan import make_plan
    >>> from squall.api import Spout, Topology
    >>> class T(Topology):
    ...     s = Spout.spec(outputs=["n"], par=2)
    >>> plan = make_plan(T.definition(), {"topology.workers": 2})
    >>> workers = LocalWorkers("doc", plan)
    >>> workers.start()
    >>> sorted(workers.stats())
    ['s']
    >>> workers.stats()["s"].executors
    2
    >>> workers.stop()
    >>> [p.returncode for p in workers.processes]
    [0, 0]
    """

    def __init__(
        self,
        name: str,
        plan: TopologyPlan,
        on_error: Callable[[ErrorReport], None] | None = None,
    ) -> None:
        self.name = name
        self.plan = plan
        self.num_workers = plan.num_workers
        self._on_error = on_error
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports: dict[int, int] = {}
        self._ctx: zmq.Context[Any] | None = None
        self._router: zmq.Socket[Any] | None = None
        self._out: deque[tuple[int, list[Any]]] = deque()
        self._requests: dict[int, _Request] = {}
        self._req_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._exited: dict[int, int] = {}
        self._control: threading.Thread | None = None
        self._closing = threading.Event()
        self._stopping = False
        self._stopped = False
        self._started: set[int] = set()
        self._failures: dict[int, tuple[str, str]] = {}

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers this object started."""
        return [p.pid for p in self.processes]

    # -- start ------------------------------------------------------------------
    def start(self, active: bool = True) -> None:
        """Start every worker, wait until all have initialized, then activate if ``active``.

        Raises:
            NotShippableError: a component cannot be re-created in a worker process.
            WorkerStartError: a worker failed while starting (the message names the
                component when user code failed).
        """
        if shipping.in_bootstrap():
            raise RuntimeError(
                "a worker process started a topology while loading the topology code: "
                'put the code that submits it under `if __name__ == "__main__":`'
            )
        topology, conf = self.plan.topology, self.plan.conf
        sources = shipping.check_shippable(topology, conf)
        payload = shipping.pack_topology(topology, conf)
        self._ctx = zmq.Context()
        router = self._ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        self._router = router
        try:
            self._spawn(sources, payload, f"tcp://127.0.0.1:{port}")
            self._startup()
        except BaseException:
            self.stop()
            raise
        self._control = threading.Thread(
            target=self._control_loop, name=f"squall-workers-{self.name}", daemon=True
        )
        self._control.start()
        if active:
            self.activate()

    def _spawn(
        self, sources: tuple[shipping.TopologySource, ...], payload: bytes, endpoint: str
    ) -> None:
        env = dict(os.environ)
        # The workers must run this very squall, wherever it was imported from.
        root = str(Path(squall.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        levels = {
            "": logging.getLogger().getEffectiveLevel(),
            "squall": logging.getLogger("squall").getEffectiveLevel(),
        }
        sys_path = shipping.parent_sys_path()
        for i in range(self.num_workers):
            proc = subprocess.Popen(
                [sys.executable, "-m", "squall.daemon.worker_main"],
                stdin=subprocess.PIPE,
                env=env,
            )
            self.processes.append(proc)
            boot = shipping.WorkerBoot(
                topology_name=self.name,
                worker_index=i,
                num_workers=self.num_workers,
                control_endpoint=endpoint,
                sources=sources,
                sys_path=sys_path,
                payload=payload,
                log_levels=levels,
            )
            assert proc.stdin is not None
            shipping.write_boot(proc.stdin, boot)

    def _startup(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while len(self.ports) < self.num_workers and not self._failures:
            self._pump(deadline, "to start")
        if not self._failures:
            for i in range(self.num_workers):
                self._send_now(i, ["peers", sorted(self.ports.items())])
        while len(self._started) < self.num_workers and not self._failures:
            self._pump(deadline, "to initialize its tasks")
        if self._failures:
            i, (error, _tb) = min(self._failures.items())
            raise WorkerStartError(f"topology {self.name!r} failed to start in worker {i}: {error}")

    def _pump(self, deadline: float, what: str) -> None:
        """Startup only (the caller's thread owns the socket): handle one poll's worth."""
        router = self._router
        assert router is not None
        if router.poll(100):
            while router.poll(0):
                _ident, data = router.recv_multipart()
                self._handle(unpack(data))
        for i, proc in enumerate(self.processes):
            rc = proc.poll()
            if rc is not None and i not in self._started and i not in self._failures:
                raise WorkerStartError(
                    f"topology {self.name!r}: worker {i} (pid {proc.pid}) exited with code {rc} "
                    "before it started (its output above says why)"
                )
        if time.monotonic() > deadline:
            missing = [
                i for i in range(self.num_workers) if i not in self._started and i in self.ports
            ] or [i for i in range(self.num_workers) if i not in self.ports]
            raise WorkerStartError(
                f"topology {self.name!r}: worker(s) {missing} took longer than "
                f"{START_TIMEOUT_SECS:.0f}s {what}"
            )

    def _send_now(self, worker: int, msg: list[Any]) -> None:
        assert self._router is not None
        self._router.send_multipart([b"w%d" % worker, pack(msg)])

    # -- messages from workers ----------------------------------------------------
    def _handle(self, msg: list[Any]) -> None:
        kind = msg[0]
        worker = int(msg[1])
        if kind == "log":
            # Tagged with where it came from, so log files can be kept per worker.
            record = logging.makeLogRecord({**msg[2], "topology": self.name, "worker": worker})
            logging.getLogger(record.name).handle(record)
        elif kind == "error":
            self._report(ErrorReport(**msg[2]))
        elif kind == "reply":
            _, _, req_id, ok, payload = msg
            with self._lock:
                req = self._requests.get(req_id)
                if req is None:
                    return
                if ok:
                    req.results[worker] = payload
                else:
                    req.errors[worker] = str(payload)
                req.waiting.discard(worker)
                if not req.waiting:
                    req.done.set()
        elif kind == "hello":
            self.ports[worker] = int(msg[2])
        elif kind == "started":
            self._started.add(worker)
        elif kind == "start_failed":
            self._failures[worker] = (str(msg[2]), str(msg[3]))
        elif kind == "bye":
            pass
        else:
            log.warning("unknown message %r from worker %s", kind, worker)

    def _report(self, report: ErrorReport) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(report)
        except Exception:
            log.exception("on_error raised while handling a worker's error report")

    # -- the control thread (owns the socket once started) ----------------------------
    def _control_loop(self) -> None:
        router = self._router
        assert router is not None
        next_check = 0.0
        while not self._closing.is_set():
            if router.poll(_CONTROL_TICK_MS):
                while router.poll(0):
                    _ident, data = router.recv_multipart()
                    try:
                        self._handle(unpack(data))
                    except Exception:
                        log.exception("bad control message from a worker")
            while self._out:
                worker, msg = self._out.popleft()
                router.send_multipart([b"w%d" % worker, pack(msg)])
            now = time.monotonic()
            if now >= next_check:
                next_check = now + _LIVENESS_EVERY_SECS
                self._check_liveness()

    def _check_liveness(self) -> None:
        for i, proc in enumerate(self.processes):
            if i in self._exited:
                continue
            rc = proc.poll()
            if rc is None:
                continue
            self._exited[i] = rc
            if not self._stopping:
                msg = f"worker {i} (pid {proc.pid}) exited unexpectedly with code {rc}"
                log.error("[%s] %s", self.name, msg)
                self._report(
                    ErrorReport(
                        topology=self.name,
                        component=SYSTEM_COMPONENT,
                        task=-1,
                        time=time.time(),
                        error=msg,
                        traceback="",
                        worker=i,
                    )
                )
            with self._lock:
                for req in self._requests.values():
                    if i in req.waiting:
                        req.waiting.discard(i)
                        if not req.waiting:
                            req.done.set()

    def _request(self, op: str, arg: Any = None) -> dict[int, Any]:
        if self._control is None or self._stopped:
            raise RuntimeError(f"topology {self.name!r} is not running")
        req_id = next(self._req_ids)
        alive = [i for i in range(self.num_workers) if i not in self._exited]
        req = _Request(alive)
        with self._lock:
            self._requests[req_id] = req
        for i in alive:
            self._out.append((i, ["request", req_id, op, arg]))
        try:
            if not req.done.wait(REQUEST_TIMEOUT_SECS):
                raise TimeoutError(
                    f"topology {self.name!r}: worker(s) {sorted(req.waiting)} did not answer "
                    f"{op!r} within {REQUEST_TIMEOUT_SECS:.0f}s"
                )
        finally:
            with self._lock:
                del self._requests[req_id]
        if req.errors:
            i, err = min(req.errors.items())
            raise RuntimeError(f"topology {self.name!r}: {op} failed in worker {i}: {err}")
        return req.results

    # -- the LocalTopology interface -----------------------------------------------
    def activate(self) -> None:
        """Activate the spouts in every worker (returns once all have)."""
        self._request("activate")

    def deactivate(self) -> None:
        """Deactivate the spouts in every worker (returns once all have)."""
        self._request("deactivate")

    def stats(self, include_system: bool = False) -> dict[str, ComponentStats]:
        """Per-component totals over every worker (same shape as the in-process engine's)."""
        parts: dict[str, list[ComponentStats]] = {}
        for _worker, by_comp in sorted(self._request("stats", include_system).items()):
            for comp, d in by_comp.items():
                parts.setdefault(comp, []).append(ComponentStats(**d))
        return {comp: merge_component_stats(ps) for comp, ps in sorted(parts.items())}

    def snapshots(self) -> list[ExecutorSnapshot]:
        """Every executor's cumulative counters, from every worker."""
        out: list[ExecutorSnapshot] = []
        for _worker, wires in sorted(self._request("snapshot").items()):
            out.extend(ExecutorSnapshot.from_wire(w) for w in wires)
        return out

    def set_debug(self, component: str | None, percent: float) -> None:
        """Sample emitted tuples in every worker (see ``Engine.set_debug``)."""
        self._request("debug", [component, percent])

    def stop(self) -> None:
        """Stop every worker: ask, wait out the grace period, then terminate and kill."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping = True
        for i, proc in enumerate(self.processes):
            if proc.poll() is not None:
                continue
            if i not in self.ports:
                # Not connected yet (still loading): EOF on stdin tells it to quit.
                _close_stdin(proc)
            elif self._control is not None:
                self._out.append((i, ["stop"]))
            else:
                try:
                    self._send_now(i, ["stop"])
                except zmq.ZMQError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_SECS
        for proc in self.processes:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.processes:
            if proc.poll() is None:
                log.warning("[%s] worker pid %s did not stop; terminating it", self.name, proc.pid)
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(KILL_GRACE_SECS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proc in self.processes:
            _close_stdin(proc)
        self._closing.set()
        if self._control is not None:
            self._control.join(5)
        if self._router is not None:
            self._router.close(0)
        if self._ctx is not None:
            self._ctx.term()


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass


def merge_component_stats(parts: list[ComponentStats]) -> ComponentStats:
    """One component's totals from its totals in several workers.

    Counters add up; latencies are averaged weighted by the tuples they cover;
    capacity is the busiest executor's.

    >>> a = ComponentStats("count", "bolt", 1, 1, executed=10, execute_latency_ms=1.0)
    >>> b = ComponentStats("count", "bolt", 1, 2, executed=30, execute_latency_ms=3.0)
    >>> m = merge_component_stats([a, b])
    >>> m.executors, m.tasks, m.executed, m.execute_latency_ms
    (2, 3, 40, 2.5)
    """
    first = parts[0]
    if len(parts) == 1:
        return first
    executed = sum(p.executed for p in parts)
    acked = sum(p.acked for p in parts)

    def weighted(attr: str, weight: str, total: int) -> float:
        if not total:
            return 0.0
        return float(sum(getattr(p, attr) * getattr(p, weight) for p in parts)) / total

    by_stream: dict[str, int] = {}
    metrics: dict[str, Any] = {}
    for p in parts:
        for s, n in p.emitted_by_stream.items():
            by_stream[s] = by_stream.get(s, 0) + n
        metrics.update(p.metrics)
    return ComponentStats(
        component=first.component,
        kind=first.kind,
        executors=sum(p.executors for p in parts),
        tasks=sum(p.tasks for p in parts),
        emitted=sum(p.emitted for p in parts),
        transferred=sum(p.transferred for p in parts),
        executed=executed,
        acked=acked,
        failed=sum(p.failed for p in parts),
        errors=sum(p.errors for p in parts),
        execute_latency_ms=weighted("execute_latency_ms", "executed", executed),
        process_latency_ms=weighted("process_latency_ms", "executed", executed),
        complete_latency_ms=weighted("complete_latency_ms", "acked", acked),
        capacity=max(p.capacity for p in parts),
        emitted_by_stream=by_stream,
        metrics=metrics,
    )
