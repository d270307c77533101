"""A worker process of a cluster: ``python -m squall.daemon.cluster_worker BOOT.json``.

A supervisor starts one per assigned slot, in its own session (so it outlives a
supervisor that dies), with a boot file naming the topology, the slot, the
unpacked code and the assignment as the supervisor last saw it. The worker:

1. loads the topology from the code folder, makes the plan, and replaces its
   placement with the assignment's (checked: the code must make the same tasks
   nimbus scheduled);
2. binds its slot's port, connects to every other worker, says ``hello`` (so
   peers restart their send windows if this is a restarted worker), builds its
   engine and initializes its tasks;
3. runs the engine loop on the main thread. Two other threads keep it
   connected to the cluster, and neither is on the data path:

   * the *coordination* thread has its own ZooKeeper session: it writes the
     worker's heartbeat (with its stats) every ``worker.heartbeat.frequency.secs``,
     reports errors, watches the topology's status (activating or deactivating
     the spouts) and its assignment (following workers that move, exiting when
     this worker's own executors change or the topology is gone). When
     ZooKeeper is unreachable it just retries: tuples keep flowing;
   * the *local heartbeat* thread touches a file the supervisor watches, so a
     hung worker is restarted.

The worker exits 0 when told to (SIGTERM, topology killed, slot reassigned) and
non-zero when something fatal happened (fail fast: its supervisor restarts it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from squall import config as C
from squall.api.ids import SYSTEM_COMPONENT
from squall.api.topology import TopologyDef, as_definition
from squall.cluster import conf as K
from squall.cluster import zookeeper_store
from squall.cluster.records import (
    ACTIVE,
    Assignment,
    ErrorInfo,
    StormBase,
    WorkerHeartbeat,
)
from squall.cluster.state import ClusterState
from squall.cluster.store import CoordinationError, CoordinationStore, NoNodeError
from squall.daemon import shipping
from squall.daemon.worker_main import make_link, poll_with_commands, report_on_emitting_task
from squall.runtime.engine import EVENT_LOGGER, Engine
from squall.runtime.plan import ExecutorPlan, TopologyPlan, make_plan
from squall.runtime.stats import ErrorReport
from squall.state.stateful import with_checkpoints
from squall.transport.zmq_link import CurveKeys, ZmqLink

log = logging.getLogger("squall.worker")

#: Worker logs rotate like local mode's: files of 10 MB, 5 kept.
LOG_MAX_BYTES: Final = 10 * 1024 * 1024
LOG_BACKUPS: Final = 5
#: Sampled tuples (debug) a worker keeps for its heartbeat: the UI reads them there.
EVENTS_IN_HEARTBEAT: Final = 100
#: The worker index given to tasks no worker runs (no free slot): tuples to them are dropped.
UNASSIGNED: Final = 0xFFFE
EXIT_OK: Final = 0
EXIT_FATAL: Final = 1
EXIT_BAD_BOOT: Final = 2


class AssignmentMismatchError(RuntimeError):
    """The topology code does not make the tasks nimbus scheduled (it changed?)."""


# -- pure parts ------------------------------------------------------------------------
def plan_for_assignment(
    plan: TopologyPlan,
    assignment: Assignment,
    component_tasks: Mapping[str, tuple[int, int]] | None = None,
) -> TopologyPlan:
    """``plan`` with nimbus's placement: executors and workers from ``assignment``.

    Tasks that no worker runs are mapped to :data:`UNASSIGNED`.

    Raises:
        AssignmentMismatchError: the plan's tasks differ from what nimbus scheduled.
    """
    if component_tasks is not None:
        mine = {c: (ts[0], ts[-1]) for c, ts in plan.component_tasks.items()}
        theirs = {c: (int(r[0]), int(r[1])) for c, r in component_tasks.items()}
        if mine != theirs:
            raise AssignmentMismatchError(
                f"the topology code makes tasks {mine}, but nimbus scheduled {theirs}: "
                "was the code changed after it was submitted?"
            )
    executors: list[ExecutorPlan] = []
    task_to_worker: dict[int, int] = dict.fromkeys(plan.task_to_component, UNASSIGNED)
    for w in assignment.workers:
        for start, end in w.executors:
            tasks = tuple(range(start, end + 1))
            comps = {plan.task_to_component.get(t) for t in tasks}
            if len(comps) != 1 or None in comps:
                raise AssignmentMismatchError(
                    f"executor [{start} {end}] of worker {w.index} does not match the "
                    "topology's tasks (one component per executor)"
                )
            executors.append(ExecutorPlan(str(comps.pop()), tasks, w.index))
            for t in tasks:
                if task_to_worker.get(t) != UNASSIGNED:
                    raise AssignmentMismatchError(f"task {t} is assigned twice")
                task_to_worker[t] = w.index
    executors.sort(key=lambda e: e.tasks[0])
    return dataclasses.replace(
        plan,
        executors=tuple(executors),
        task_to_worker=task_to_worker,
        num_workers=len(assignment.workers),
    )


def peers(assignment: Assignment, index: int) -> tuple[dict[int, list[int]], dict[int, str]]:
    """(worker index -> its tasks, worker index -> ``host:port``) of the other workers."""
    tasks = {w.index: w.tasks() for w in assignment.workers}
    endpoints = {w.index: w.endpoint for w in assignment.workers if w.index != index}
    return tasks, endpoints


def load_topology(code_dir: Path, target: str, name: str) -> TopologyDef:
    """Load ``FILE_OR_MODULE:ATTR`` from an unpacked project folder."""
    source, _, attr = target.rpartition(":")
    if not source or not attr:
        raise ValueError(f"bad topology target {target!r} (expected FILE_OR_MODULE:ATTR)")
    folder = str(code_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    with shipping.bootstrapping():
        if source.endswith(".py") or "/" in source:
            path = (code_dir / source).resolve()
            if code_dir.resolve() not in path.parents:
                raise ValueError(f"topology file {source!r} is outside the code folder")
            module = shipping.load_topology_source(path)
        else:
            module = shipping.load_topology_source(source)
    if not hasattr(module, attr):
        raise AttributeError(f"{source} has no attribute {attr!r}")
    # The checkpoint spout of stateful bolts, as at submit (the same task numbering).
    return with_checkpoints(as_definition(getattr(module, attr), name))


class ClusterLink(ZmqLink):
    """The ZeroMQ link, dropping tuples for tasks no worker runs (Storm drops them too)."""

    dropped = 0

    def send(self, worker: int, entries: list[tuple[Any, ...]]) -> None:
        if worker == UNASSIGNED:
            self.dropped += len(entries)
            return
        super().send(worker, entries)

    def blocked(self, worker: int) -> bool:
        return worker != UNASSIGNED and super().blocked(worker)


@dataclasses.dataclass(frozen=True)
class Boot:
    """What the supervisor tells a worker (a JSON file written before the worker starts)."""

    topology_id: str
    supervisor_id: str
    host: str
    port: int
    index: int
    code_dir: str
    name: str
    target: str
    topology_conf: Mapping[str, Any]
    assignment: Assignment
    status: str
    component_tasks: Mapping[str, tuple[int, int]]
    daemon_conf: Mapping[str, Any]
    heartbeat_file: str
    #: ``<logs>/workers-artifacts/<topology-id>/<port>``: worker.log and events.log go here.
    log_dir: str = ""
    #: The topology's CURVE keys (``CurveKeys.to_json()``) when its data sockets are secured.
    curve: Mapping[str, str] | None = None

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["assignment"] = json.loads(self.assignment.encode())
        d["component_tasks"] = {k: list(v) for k, v in self.component_tasks.items()}
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Boot:
        d = json.loads(text)
        d["assignment"] = Assignment.decode(json.dumps(d["assignment"]).encode())
        d["component_tasks"] = {k: (v[0], v[1]) for k, v in d["component_tasks"].items()}
        return cls(**d)


# -- the process ------------------------------------------------------------------------
class ClusterWorker:
    """One worker process's state: engine, link, and the threads around them."""

    def __init__(self, boot: Boot, store: CoordinationStore | None = None) -> None:
        self.boot = boot
        self.conf = K.merged(boot.daemon_conf)
        self.index = boot.index
        self.stop = threading.Event()
        self.exit_code = EXIT_OK
        self.started_at = time.time()
        self.commands: deque[tuple[str, Any]] = deque()
        self.errors: deque[ErrorReport] = deque(maxlen=200)
        self.engine: Engine | None = None
        self.link: ClusterLink | None = None
        self.executors: tuple[tuple[int, int], ...] = ()
        self.store = store if store is not None else zookeeper_store(self.conf)
        self.state = ClusterState(self.store, str(self.conf[K.STORM_ZOOKEEPER_ROOT]))
        self._wake = threading.Event()
        self._status = boot.status
        self._assignment = boot.assignment
        self._debug: Mapping[str, float] = {}
        self.events = EventRing(EVENTS_IN_HEARTBEAT)

    # -- startup ----------------------------------------------------------------
    def setup(self) -> None:
        boot = self.boot
        topology = load_topology(Path(boot.code_dir), boot.target, boot.name)
        conf = dict(boot.topology_conf)
        conf[C.TOPOLOGY_NAME] = boot.name
        base = make_plan(topology, conf)
        plan = plan_for_assignment(base, boot.assignment, boot.component_tasks)
        me = boot.assignment.worker_at_index(self.index)
        if me is None:
            raise AssignmentMismatchError(f"the assignment has no worker {self.index}")
        self.executors = tuple(sorted(me.executors))
        worker_tasks, endpoints = peers(boot.assignment, self.index)
        link = make_link(
            plan,
            self.index,
            worker_tasks,
            self._send_error,
            host=boot.host,
            port=boot.port,
            link_class=ClusterLink,
            curve=CurveKeys.from_json(boot.curve) if boot.curve else None,
        )
        assert isinstance(link, ClusterLink)
        self.link = link
        self.link.connect(endpoints)
        self.link.announce()
        self.engine = Engine(plan, self.index, remote=self.link, on_error=self.errors.append)
        self.link.attach(self.engine)
        self.engine.start(active=False)
        if self._status == ACTIVE:
            self.engine.activate()

    def _send_error(self, error: ValueError) -> None:
        if not report_on_emitting_task(self.engine, error):
            log.error("worker %s: %s", self.index, error)

    # -- the loop (main thread) -------------------------------------------------------
    def run(self) -> int:
        engine, link = self.engine, self.link
        assert engine is not None and link is not None
        poll = poll_with_commands(link.poll, self.commands, self._command)
        threads = [
            threading.Thread(target=self._coordinate, name="squall-coordination", daemon=True),
            threading.Thread(target=self._local_beat, name="squall-local-beat", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            engine.run(self.stop, idle_wait=link.idle_wait, poll=poll)
        except BaseException as e:
            log.error("worker %s: fatal: %s\n%s", self.index, e, traceback.format_exc())
            self._report_now(f"worker {self.index}: {type(e).__name__}: {e}")
            self.exit_code = EXIT_FATAL
        finally:
            self.stop.set()
            with contextlib.suppress(Exception):
                engine.shutdown()
        return self.exit_code

    def _command(self, command: tuple[str, Any]) -> None:
        op, arg = command
        engine, link = self.engine, self.link
        assert engine is not None and link is not None
        if op == "activate":
            engine.activate()
        elif op == "deactivate":
            engine.deactivate()
        elif op == "debug":
            apply_debug(engine, arg)
        elif op == "retarget":
            plan, worker_tasks, endpoints = arg
            engine.plan = plan
            link.retarget(worker_tasks, endpoints)

    # -- coordination (its own thread; never on the data path) -------------------------------
    def _coordinate(self) -> None:
        freq = float(self.conf[K.WORKER_HEARTBEAT_FREQUENCY_SECS])
        started = False
        while not self.stop.is_set():
            if not started:
                try:
                    self.store.start(timeout_secs=max(1.0, freq))
                    started = True
                except CoordinationError:
                    self.stop.wait(freq)
                    continue
            try:
                self._sync()
                self._heartbeat()
                self._flush_errors()
            except NoNodeError:
                log.info(
                    "worker %s: topology %s is gone; exiting", self.index, self.boot.topology_id
                )
                self.stop.set()
                break
            except CoordinationError as e:
                log.debug("worker %s: ZooKeeper: %s", self.index, e)
            except Exception:
                log.exception("worker %s: coordination pass failed", self.index)
            self._wake.wait(freq)
            self._wake.clear()
        with contextlib.suppress(Exception):
            self.store.stop()

    def _sync(self) -> None:
        tid = self.boot.topology_id
        base = self.state.storm_base(tid, watch=self._wake.set)
        rec = self.state.assignment(tid, watch=self._wake.set)
        if base is None or rec is None:
            raise NoNodeError(tid)
        self._follow_status(base[0])
        self._follow_assignment(rec[0])

    def _follow_status(self, base: StormBase) -> None:
        if dict(base.debug) != dict(self._debug):
            self._debug = dict(base.debug)
            self.commands.append(("debug", self._debug))
            log.info("worker %s: debug sampling %s", self.index, self._debug or "off")
        if base.status != self._status:
            self._status = base.status
            self.commands.append(("activate" if base.status == ACTIVE else "deactivate", None))
            log.info("worker %s: topology is %s", self.index, base.status)

    def _follow_assignment(self, new: Assignment) -> None:
        if new == self._assignment:
            return
        me = new.worker_at_index(self.index)
        if (
            me is None
            or me.node != self.boot.supervisor_id
            or me.port != self.boot.port
            or tuple(sorted(me.executors)) != self.executors
        ):
            log.info("worker %s: no longer assigned these executors here; exiting", self.index)
            self.stop.set()
            return
        assert self.engine is not None
        # Only the placement changes: the engine's plan (last one it took) has the rest.
        plan = plan_for_assignment(self.engine.plan, new)
        worker_tasks, endpoints = peers(new, self.index)
        self.commands.append(("retarget", (plan, worker_tasks, endpoints)))
        self._assignment = new
        log.info("worker %s: following the new assignment", self.index)

    def _stats(self) -> dict[str, Any]:
        engine = self.engine
        if engine is None:
            return {}
        try:
            stats = engine.call(lambda: engine.component_stats(False), timeout=1.0)
        except Exception:
            return {}
        return {name: _stats_dict(s) for name, s in stats.items()}

    def _executor_stats(self) -> tuple[list[Any], ...]:
        engine = self.engine
        if engine is None:
            return ()
        out = []
        for snap in engine.executor_snapshots():
            wire = snap.to_wire()
            wire[-1] = numeric_metrics(snap.metrics)
            out.append(wire)
        return tuple(out)

    def _heartbeat(self) -> None:
        now = time.time()
        hb = WorkerHeartbeat(
            topology_id=self.boot.topology_id,
            node=self.boot.supervisor_id,
            port=self.boot.port,
            index=self.index,
            pid=os.getpid(),
            time_secs=now,
            uptime_secs=now - self.started_at,
            executors=self.executors,
            stats=self._stats(),
            executor_stats=self._executor_stats(),
            events=self.events.recent(),
        )
        self.state.worker_heartbeat(hb)

    def _flush_errors(self) -> None:
        while self.errors:
            report = self.errors[0]
            self.state.report_error(
                self.boot.topology_id,
                ErrorInfo(
                    component=report.component,
                    task=report.task,
                    error=report.error[:4000],
                    time_secs=report.time,
                    host=self.boot.host,
                    port=self.boot.port,
                    traceback=report.traceback[-8000:],
                ),
            )
            self.errors.popleft()

    def _report_now(self, message: str) -> None:
        """A fatal error: try once to record it before exiting (ZooKeeper may be away)."""
        with contextlib.suppress(Exception):
            self.state.report_error(
                self.boot.topology_id,
                ErrorInfo(
                    SYSTEM_COMPONENT, -1, message, time.time(), self.boot.host, self.boot.port
                ),
            )

    def _local_beat(self) -> None:
        path = Path(self.boot.heartbeat_file)
        freq = float(self.conf[K.WORKER_HEARTBEAT_FREQUENCY_SECS])
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"pid": os.getpid(), "time": time.time()}))
                os.replace(tmp, path)
            self.stop.wait(freq)


def apply_debug(engine: Engine, debug: Mapping[str, float]) -> None:
    """Set the engine's debug sampling to ``debug`` (component, ``""`` = all -> percent).

    The whole topology's percentage first, then each component's over it.
    """
    engine.set_debug(None, float(debug.get("", 0.0)))
    for component, percent in sorted(debug.items()):
        if component and any(ex.component == component for ex in engine.executors):
            engine.set_debug(component, float(percent))


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The user metrics a heartbeat can carry: numbers, and flat maps of numbers.

    >>> numeric_metrics({"n": 3, "by": {"a": 1.5, "b": "x"}, "obj": object(), "ok": True})
    {'n': 3, 'by': {'a': 1.5}}
    """
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[str(name)] = value
        elif isinstance(value, Mapping):
            nums = {
                str(k): v
                for k, v in value.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            if nums:
                out[str(name)] = nums
    return out


class EventRing(logging.Handler):
    """The latest sampled tuples (logger ``squall.eventlog``), numbered, for the heartbeat."""

    def __init__(self, kept: int) -> None:
        super().__init__()
        self._events: deque[dict[str, Any]] = deque(maxlen=kept)
        self._seq = 0
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = json.loads(record.getMessage())
        except ValueError:
            return
        if isinstance(event, dict):
            with self._lock:
                self._seq += 1
                event["seq"] = self._seq
                self._events.append(event)

    def recent(self) -> tuple[dict[str, Any], ...]:
        with self._lock:
            return tuple(self._events)


def setup_logging(boot: Boot, events: EventRing) -> None:
    """Log to ``worker.log`` (rotated) in the boot's log folder, samples to ``events.log``.

    Without a log folder (tests, old supervisors) records go to standard error.
    """
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    sampled = logging.getLogger(EVENT_LOGGER)
    sampled.propagate = False
    sampled.addHandler(events)
    if not boot.log_dir:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        root.addHandler(handler)
        return
    folder = Path(boot.log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, logger in (("worker.log", root), ("events.log", sampled)):
        # Opened on the first record: no empty events.log for topologies never sampled.
        rotating = logging.handlers.RotatingFileHandler(
            folder / name, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, delay=True
        )
        rotating.setFormatter(fmt)
        logger.addHandler(rotating)


def _stats_dict(stats: Any) -> dict[str, Any]:
    out = {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
    out["emitted_by_stream"] = dict(stats.emitted_by_stream)
    out.pop("metrics", None)  # user metrics may be anything; heartbeats carry counters only
    return out


def main(argv: list[str] | None = None) -> int:
    """Run one cluster worker (the boot file is the only argument)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m squall.daemon.cluster_worker BOOT.json", file=sys.stderr)
        return EXIT_BAD_BOOT
    try:
        boot = Boot.from_json(Path(args[0]).read_text())
    except Exception as e:
        print(f"squall worker: cannot read the boot file {args[0]}: {e}", file=sys.stderr)
        return EXIT_BAD_BOOT
    worker = ClusterWorker(boot)
    setup_logging(boot, worker.events)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop.set())
    log.info(
        "worker %s of %s starting on %s:%s (pid %s)",
        boot.index,
        boot.topology_id,
        boot.host,
        boot.port,
        os.getpid(),
    )
    try:
        worker.setup()
    except Exception as e:
        log.error("worker %s failed to start: %s\n%s", boot.index, e, traceback.format_exc())
        worker.errors.append(
            ErrorReport(
                boot.name, SYSTEM_COMPONENT, -1, time.time(), f"{type(e).__name__}: {e}", "", 0
            )
        )
        with contextlib.suppress(Exception):
            worker.store.start(timeout_secs=2.0)
            worker._flush_errors()
            worker.store.stop()
        if worker.link is not None:
            worker.link.close()
        return EXIT_FATAL
    log.info("worker %s of %s running", boot.index, boot.topology_id)
    code = worker.run()
    if worker.link is not None:
        worker.link.close()
    log.info("worker %s of %s exits (%s)", boot.index, boot.topology_id, code)
    return code


if __name__ == "__main__":
    sys.exit(main())
