"""The engine of one worker: its executors, the routing table, timers and the run loop.

Scheduling is a single cooperative loop (decided by measurement, see
``bench/README.md``): each pass runs every ready executor on up to one budget of
tuples, then moves what it emitted to the destination inboxes. Bounded inboxes
give backpressure: an executor whose downstream inbox is full is not run, so it
stops consuming (bolts) or stops calling ``next_tuple`` (spouts). If every
executor with input is blocked (possible only in a cycle), the loop runs them
anyway so a cyclic topology cannot deadlock.

Tuples for tasks in other workers are handed to a ``RemoteLink`` as whole
batches; the engine never touches sockets itself.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from squall import config as C
from squall import speedups
from squall.api.component import Bolt, Component, Spout
from squall.api.context import TopologyContext
from squall.api.grouping import DIRECT, GroupingSpec
from squall.api.ids import ACK_ACK_STREAM, ACKER_COMPONENT, SYSTEM_COMPONENT, SYSTEM_TASK
from squall.api.topology import GlobalStreamId
from squall.runtime.clock import Clock, RealClock
from squall.runtime.executor import (
    AckerExecutor,
    BoltExecutor,
    BoltTask,
    Executor,
    Route,
    SpoutExecutor,
    SpoutTask,
)
from squall.runtime.grouper import make_grouper
from squall.runtime.messages import ACKER, DATA, OP_ACK, OP_FAIL, OP_RESET, SPOUT_ACK, TICK
from squall.runtime.plan import TopologyPlan, component_conf
from squall.runtime.stats import ComponentStats, ErrorReport, ExecutorSnapshot

log = logging.getLogger("squall.runtime")


class RemoteLink(Protocol):
    """Where batches for tasks in other workers go (implemented by the transport layer)."""

    def send(self, worker: int, entries: list[tuple[Any, ...]]) -> None: ...

    def blocked(self, worker: int) -> bool: ...

    def any_blocked(self, tasks: frozenset[int]) -> bool:
        """True if any of ``tasks`` (in other workers) is under backpressure."""
        ...


class Engine:
    """Runs the executors assigned to one worker."""

    def __init__(
        self,
        plan: TopologyPlan,
        worker_index: int = 0,
        *,
        clock: Clock | None = None,
        remote: RemoteLink | None = None,
        on_error: Callable[[ErrorReport], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.plan = plan
        self.conf = plan.conf
        self.topology = plan.topology
        self.topology_name = str(self.conf.get(C.TOPOLOGY_NAME) or plan.topology.name)
        self.worker_index = worker_index
        self.clock: Clock = clock or RealClock()
        self.remote = remote
        self.on_error = on_error
        self.rng = random.Random(seed)
        self.acker_tasks = plan.acker_tasks
        self.acking = len(self.acker_tasks) > 0
        self.budget = int(self.conf[C.SQUALL_EXECUTOR_BATCH_SIZE])
        self.errors: deque[ErrorReport] = deque(maxlen=100)
        self.error_count = 0
        self.ack_out: defaultdict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        self.spout_out: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        self.remote_out: defaultdict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self.executors: list[Executor] = []
        self.task_exec: dict[int, Executor] = {}
        self.timers: list[list[Any]] = []  # [next_time, interval, executor, rate]
        self.started = False
        self.active = False
        # Work that other threads ask the loop thread to do (activate, stats, ...).
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._loop_thread: int | None = None
        self._stop = threading.Event()
        # Set by wake(): the idle wait returns at once (input arrived from another thread).
        self._woken = threading.Event()
        self._remote_wake: Callable[[], None] | None = getattr(remote, "wake", None)
        self._build()

    # -- construction ---------------------------------------------------------
    def _build(self) -> None:
        plan = self.plan
        topo = plan.topology
        mine = plan.executors_of(self.worker_index)
        local_tasks = frozenset(t for e in mine for t in e.tasks)
        stream_fields = {
            c.name: {s: st.fields for s, st in c.outputs.items()} for c in topo.components.values()
        }
        # stream -> subscriber component -> grouping, per component
        targets: dict[str, dict[str, dict[str, GroupingSpec]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for c in topo.components.values():
            for sid, g in c.inputs:
                targets[sid.component][sid.stream][c.name] = g
        for e in mine:
            cconf = component_conf(self.conf, self._component_config(e.component))
            capacity = int(cconf[C.TOPOLOGY_EXECUTOR_RECEIVE_BUFFER_SIZE])
            if e.component == ACKER_COMPONENT:
                ex: Executor = AckerExecutor(self, e.component, e.tasks, capacity)
            elif topo.components[e.component].kind == "spout":
                mp = cconf.get(C.TOPOLOGY_MAX_SPOUT_PENDING)
                ex = SpoutExecutor(self, e.component, e.tasks, capacity, mp)
            else:
                ex = BoltExecutor(self, e.component, e.tasks, capacity)
            self.executors.append(ex)
            for t in e.tasks:
                self.task_exec[t] = ex
        for ex in self.executors:
            if isinstance(ex, AckerExecutor):
                continue
            cdef = topo.components[ex.component]
            comp_targets = targets.get(ex.component, {})
            for task in ex.task_ids:
                context = TopologyContext(
                    topology_name=self.topology_name,
                    task_id=task,
                    component_id=ex.component,
                    task_to_component=plan.task_to_component,
                    component_tasks=plan.component_tasks,
                    sources={sid: g for sid, g in cdef.inputs},
                    targets={s: dict(v) for s, v in comp_targets.items()},
                    output_fields={s: st.fields for s, st in cdef.outputs.items()},
                    stream_fields=stream_fields,
                    worker_index=self.worker_index,
                    now=self.clock.now,
                    wake=self.wake,
                )
                routes: dict[str, Route] = {}
                for sname, st in cdef.outputs.items():
                    groupers = []
                    direct_targets: dict[int, bool] = {}
                    for sub, g in comp_targets.get(sname, {}).items():
                        sub_tasks = plan.component_tasks[sub]
                        for tt in sub_tasks:
                            direct_targets[tt] = g.kind == DIRECT
                        gr = make_grouper(
                            g,
                            sub_tasks,
                            st.fields,
                            rng=self.rng,
                            local_tasks=local_tasks,
                            source_task=task,
                            owner=f"{ex.component}:{sname} -> {sub}",
                            context=context,
                            stream_id=GlobalStreamId(ex.component, sname),
                        )
                        if gr is not None:
                            groupers.append(gr)
                    routes[sname] = Route(
                        ex.component,
                        sname,
                        st.fields,
                        st.direct,
                        groupers,
                        direct_targets,
                        task,
                        self.acking,
                    )
                instance = cdef.make()
                if isinstance(ex, SpoutExecutor):
                    if not isinstance(instance, Spout):
                        raise TypeError(f"component {ex.component!r} is declared a spout")
                    ex.tasks[task] = SpoutTask(ex, task, instance, context, routes)
                else:
                    if not isinstance(instance, Bolt):
                        raise TypeError(f"component {ex.component!r} is declared a bolt")
                    ex.tasks[task] = BoltTask(ex, task, instance, context, routes)
        soft = int(self.conf.get(C.SQUALL_EXECUTOR_RUN_LIMIT) or 0)
        for ex in self.executors:
            if soft > 0:
                ex.run_limit = min(ex.capacity, soft)
        for ex in self.executors:
            ex.background = [
                t.component
                for t in ex.tasks.values()
                if callable(getattr(t.component, "squall_drain", None))
                and callable(getattr(t.component, "squall_pending", None))
            ]
        # Downstream executors (local, excluding self) drive backpressure; so do
        # downstream tasks in other workers, through the remote link's status.
        cyclic = _cyclic_components(targets)
        for ex in self.executors:
            down: set[int] = set()
            remote_down: set[int] = set()
            if isinstance(ex, AckerExecutor):
                continue
            for sname_targets in targets.get(ex.component, {}).values():
                for sub in sname_targets:
                    for tt in plan.component_tasks[sub]:
                        other = self.task_exec.get(tt)
                        if other is None:
                            remote_down.add(tt)
                        elif other is not ex:
                            down.add(id(other))
            ex.downstream = [o for o in self.executors if id(o) in down]
            ex.remote_down = frozenset(remote_down)
            ex.cyclic = ex.component in cyclic
        self._setup_timers()

    def _component_config(self, component: str) -> Mapping[str, Any]:
        c = self.topology.components.get(component)
        return c.config if c is not None else {}

    def _setup_timers(self) -> None:
        now = self.clock.now()
        timeout = self.conf[C.TOPOLOGY_MESSAGE_TIMEOUT_SECS]
        timeouts_on = bool(self.conf[C.TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS])
        for ex in self.executors:
            cconf = component_conf(self.conf, self._component_config(ex.component))
            if isinstance(ex, SpoutExecutor | AckerExecutor):
                # Spouts and ackers tick at the message timeout (Storm's addAcker).
                if self.acking and timeouts_on:
                    self.timers.append([now + timeout, float(timeout), ex, timeout])
            else:
                freq = cconf.get(C.TOPOLOGY_TICK_TUPLE_FREQ_SECS)
                if freq:
                    self.timers.append([now + freq, float(freq), ex, freq])

    # -- lifecycle ------------------------------------------------------------
    def start(self, active: bool = True) -> None:
        """Create and initialize every task, then activate spouts if ``active``."""
        ready: list[tuple[Executor, BoltTask | SpoutTask]] = []
        for ex in self.executors:
            for task in ex.tasks.values():
                self._attach(task)
                try:
                    task.component.initialize(self.conf_for(ex.component), task.context)
                except Exception as e:
                    ex.report_error(task.task, e)
                    # Undo what started (a shell component's child, a connection...).
                    for done_ex, done in reversed(ready):
                        _call(done_ex, done, "close" if isinstance(done, SpoutTask) else "cleanup")
                    raise RuntimeError(
                        f"component {ex.component!r} task {task.task}: initialize failed: "
                        f"{type(e).__name__}: {e}"
                    ) from e
                ready.append((ex, task))
        self.started = True
        if active:
            self.activate()

    def conf_for(self, component: str) -> dict[str, Any]:
        return component_conf(self.conf, self._component_config(component))

    def _attach(self, task: BoltTask | SpoutTask) -> None:
        comp: Component = task.component
        comp.conf = self.conf_for(task.name)
        comp.context = task.context
        comp.logger = logging.getLogger(f"squall.{self.topology_name}.{task.name}.{task.task}")
        comp._collector = task
        debug = bool(comp.conf.get(C.TOPOLOGY_DEBUG))
        emit: Callable[..., Any] = task.emit
        if debug:
            emit = _debug_emit(task, comp.logger)
        elif speedups.Emitter is not None and isinstance(task, BoltTask):
            # C fast path for the common emit, falling back to task.emit for the rest.
            emit = speedups.Emitter(
                task.routes, task.emit, self.rng.getrandbits(64), task.auto_anchor
            )
            task.emitter = emit
        # Bind the collector's methods straight onto the instance unless the class
        # overrides them (ReliableSpout's emit does): one call less per tuple.
        base = Spout if isinstance(comp, Spout) else Bolt
        if getattr(type(comp), "emit", None) is base.emit:
            setattr(comp, "emit", emit)
        if isinstance(task, BoltTask):
            if getattr(type(comp), "ack", None) is Bolt.ack:
                setattr(comp, "ack", task.ack)
            if getattr(type(comp), "fail", None) is Bolt.fail:
                setattr(comp, "fail", task.fail)

    def activate(self) -> None:
        self.active = True
        for ex in self.executors:
            if isinstance(ex, SpoutExecutor) and not ex.active:
                ex.active = True
                ex.idle = False
                for task in ex.tasks.values():
                    _call(ex, task, "activate")

    def deactivate(self) -> None:
        self.active = False
        for ex in self.executors:
            if isinstance(ex, SpoutExecutor) and ex.active:
                ex.active = False
                for task in ex.tasks.values():
                    _call(ex, task, "deactivate")

    def shutdown(self) -> None:
        """Deactivate spouts, then close spouts and clean up bolts."""
        self.deactivate()
        for ex in self.executors:
            for task in ex.tasks.values():
                _call(ex, task, "close" if isinstance(task, SpoutTask) else "cleanup")
        self.started = False

    # -- the loop -------------------------------------------------------------
    def run_once(self) -> int:
        """One pass: fire due timers, run every ready executor once, deliver its output."""
        work = self._fire_timers()
        blocked_with_input: list[Executor] = []
        budget = self.budget
        for ex in self.executors:
            if not ex.ready():
                continue
            if ex.blocked() and not (isinstance(ex, SpoutExecutor) and ex.inbox):
                blocked_with_input.append(ex)
                continue
            work += ex.step(budget)
            self._flush(ex)
        if work == 0 and blocked_with_input:
            # Only a cycle can block every executor that has input: run them anyway.
            # (Executors off every cycle stay blocked: with other workers, what blocks
            # them may be a slow bolt elsewhere, and running them would grow its inbox.)
            for ex in blocked_with_input:
                if ex.inbox and ex.cyclic:
                    work += ex.step(budget)
                    self._flush(ex)
        self._flush_remote()
        return work

    def _fire_timers(self) -> int:
        if not self.timers:
            return 0
        now = self.clock.now()
        fired = 0
        for timer in self.timers:
            if now >= timer[0]:
                ex = timer[2]
                ex.inbox.append((TICK, SYSTEM_TASK, timer[3]))
                # After a stall, skip missed ticks instead of sending a burst.
                timer[0] += timer[1]
                if timer[0] <= now:
                    timer[0] = now + timer[1]
                fired += 1
        return fired

    def next_timer_in(self) -> float | None:
        if not self.timers:
            return None
        soonest: float = min(t[0] for t in self.timers)
        return max(0.0, soonest - self.clock.now())

    def _post(self, dest: int, entry: tuple[Any, ...], n: int) -> None:
        """Append ``entry`` to task ``dest``'s inbox (``n`` more queued), or queue it for
        the worker that runs ``dest``."""
        target = self.task_exec.get(dest)
        if target is not None:
            target.inbox.append(entry)
            target.queued += n
        else:
            self.remote_out[self.plan.task_to_worker[dest]].append(entry)

    def _flush(self, ex: Executor) -> None:
        post = self._post
        comp = ex.component
        for task in ex.tasks.values():
            src = task.task
            for route in task.route_list:
                staging = route.staging
                if not staging:
                    continue
                rstaging = route.rstaging
                stream = route.stream
                moved = 0
                for dest, vals in staging.items():
                    roots = rstaging.pop(dest, None) if rstaging else None
                    size = len(vals)
                    post(dest, (DATA, dest, comp, stream, src, vals, roots), size)
                    moved += size
                route.transferred += moved
                staging.clear()
        # Acks combined over the step, then fails and resets.
        pa = ex.pending_acks
        if pa or ex.pending_fails or ex.pending_resets:
            ackers = self.acker_tasks
            n = len(ackers)
            out = self.ack_out
            for root, val in pa.items():
                if val:
                    out[ackers[root % n]].append((OP_ACK, root, val, 0))
            pa.clear()
            for root in ex.pending_fails:
                out[ackers[root % n]].append((OP_FAIL, root, 0, 0))
            ex.pending_fails.clear()
            for root in ex.pending_resets:
                out[ackers[root % n]].append((OP_RESET, root, 0, 0))
            ex.pending_resets.clear()
        if self.ack_out:
            for dest, msgs in self.ack_out.items():
                post(dest, (ACKER, dest, msgs), len(msgs))
            self.ack_out.clear()
        if self.spout_out:
            # Not counted as queued (as in deliver): queued counts tuples and ack messages.
            for dest, outcomes in self.spout_out.items():
                post(dest, (SPOUT_ACK, dest, outcomes), 0)
            self.spout_out.clear()

    def _flush_remote(self) -> None:
        if not self.remote_out:
            return
        if self.remote is None:
            raise RuntimeError(
                "tuples addressed to another worker, but this engine has no transport"
            )
        for worker, entries in self.remote_out.items():
            self.remote.send(worker, entries)
        self.remote_out.clear()

    def deliver(self, entries: Sequence[tuple[Any, ...]]) -> None:
        """Accept entries that arrived from another worker (already decoded)."""
        task_exec = self.task_exec
        for entry in entries:
            target = task_exec.get(entry[1])
            if target is None:
                log.warning("dropping a batch for task %s, which is not in this worker", entry[1])
                continue
            kind = entry[0]
            target.inbox.append(entry)
            if kind == DATA:
                target.queued += len(entry[5])
            elif kind == ACKER:
                target.queued += len(entry[2])

    def remote_blocked(self, tasks: frozenset[int]) -> bool:
        """True if the remote link reports any of ``tasks`` under backpressure."""
        remote = self.remote
        return remote is not None and remote.any_blocked(tasks)

    def backpressured_tasks(self) -> list[int]:
        """Local tasks whose executor inbox is at or over capacity."""
        return [t for t, ex in self.task_exec.items() if ex.queued >= ex.capacity]

    def pending_work(self) -> bool:
        """True while any inbox holds something (used to wait for quiescence)."""
        return any(ex.inbox for ex in self.executors) or bool(self.remote_out)

    def run(
        self,
        stop: threading.Event | None = None,
        idle_wait: Callable[[float], None] | None = None,
        poll: Callable[[], int] | None = None,
    ) -> None:
        """Run until ``stop`` is set, on the calling thread.

        ``poll()`` is called every pass (a transport delivers what arrived and returns
        how many entries it delivered); ``idle_wait(secs)`` is called when a pass found
        nothing to do, and may return early when input arrives. Idle passes back off
        up to 1 ms (Storm's progressive wait strategy).
        """
        stop = stop or self._stop
        wait = idle_wait or self._idle_wait
        self._loop_thread = threading.get_ident()
        try:
            self._run(stop, wait, poll)
        finally:
            self._loop_thread = None
            self._drain_calls()

    def _run(
        self,
        stop: threading.Event,
        wait: Callable[[float], None],
        poll: Callable[[], int] | None,
    ) -> None:
        idle = 0
        while not stop.is_set():
            if self._calls:
                self._drain_calls()
            work = poll() if poll is not None else 0
            work += self.run_once()
            if work:
                idle = 0
                continue
            idle += 1
            if idle < 10:
                continue
            delay = 0.0001 if idle < 100 else 0.001
            nxt = self.next_timer_in()
            if nxt is not None:
                delay = min(delay, nxt)
            wait(delay)

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """End the loop's idle wait now. Safe from any thread.

        A component fed from outside the loop (a DRPC spout whose requests a
        background thread fetches, say) calls it (as ``context.wake()``) after
        queueing input, so the input is picked up at once rather than after the
        idle back-off (up to 1 ms).
        """
        self._woken.set()
        if self._remote_wake is not None:
            self._remote_wake()

    def _idle_wait(self, secs: float) -> None:
        """The idle wait without a transport: sleep ``secs``, or until :meth:`wake`."""
        if self._woken.wait(secs):
            self._woken.clear()

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn`` on the loop thread between passes and return its result.

        Called from the loop thread itself, or when no loop is running, it runs at once.
        """
        if self._loop_thread is None or self._loop_thread == threading.get_ident():
            return fn()
        fut: Future[Any] = Future()
        self._calls.append((fn, fut))
        self.wake()
        return fut.result(timeout)

    def _drain_calls(self) -> None:
        while self._calls:
            fn, fut = self._calls.popleft()
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

    # -- errors and stats -----------------------------------------------------
    def record_error(self, report: ErrorReport, ex: Executor) -> None:
        self.errors.append(report)
        self.error_count += 1
        throttle = float(self.conf[C.TOPOLOGY_ERROR_THROTTLE_INTERVAL_SECS])
        limit = int(self.conf[C.TOPOLOGY_MAX_ERROR_REPORT_PER_INTERVAL])
        now = time.monotonic()
        recent = ex.errors_logged
        while recent and now - recent[0] > throttle:
            recent.popleft()
        if len(recent) < limit:
            recent.append(now)
            log.error("%s\n%s", report.headline(), report.traceback.rstrip())
        if self.on_error is not None:
            self.on_error(report)

    def component_stats(self, include_system: bool = False) -> dict[str, ComponentStats]:
        """Totals per component over this worker's executors."""
        by: dict[str, list[Executor]] = defaultdict(list)
        for ex in self.executors:
            if ex.component == ACKER_COMPONENT and not include_system:
                continue
            by[ex.component].append(ex)
        now = self.clock.now()
        out: dict[str, ComponentStats] = {}
        for comp, exs in by.items():
            emitted_by: dict[str, int] = defaultdict(int)
            transferred = 0
            for ex in exs:
                for task in ex.tasks.values():
                    for r in task.route_list:
                        emitted_by[r.stream] += r.emitted
                        transferred += r.transferred
            executed = sum(ex.stats.executed for ex in exs)
            exec_ms = sum(ex.stats.execute_ms for ex in exs)
            complete_n = sum(ex.stats.complete_n for ex in exs)
            complete_ms = sum(ex.stats.complete_ms for ex in exs)
            # Capacity here is the busy fraction since the executor started (Storm's
            # is over the last 10 minutes; windowed figures come from sampling these
            # cumulative counters, see squall.ui). Busy time is wall time, so it means
            # nothing on a simulated clock.
            capacity = 0.0
            for ex in exs:
                up = now - ex.stats.started
                if up > 0 and not self.clock.simulated:
                    capacity = max(capacity, ex.stats.busy_secs / up)
            metrics: dict[str, Any] = {}
            for ex in exs:
                metrics.update(ex.stats.metrics)
            kind = exs[0].kind
            # Squall times process() per batch, so execute and process latency are one figure.
            latency_ms = exec_ms / executed if executed else 0.0
            out[comp] = ComponentStats(
                component=comp,
                kind=kind,
                executors=len(exs),
                tasks=sum(len(ex.task_ids) for ex in exs),
                emitted=sum(emitted_by.values()),
                transferred=transferred,
                executed=executed,
                acked=sum(ex.stats.acked for ex in exs),
                failed=sum(ex.stats.failed for ex in exs),
                errors=sum(ex.stats.errors for ex in exs),
                execute_latency_ms=latency_ms,
                process_latency_ms=latency_ms,
                complete_latency_ms=complete_ms / complete_n if complete_n else 0.0,
                capacity=min(capacity, 1.0),
                emitted_by_stream=dict(emitted_by),
                metrics=metrics,
            )
        return out

    def executor_snapshots(self) -> list[ExecutorSnapshot]:
        """Every executor's cumulative counters, for monitoring (the UI, metrics).

        Safe to call from any thread without stopping the loop: it only reads
        counters (a snapshot may be a pass behind in places, never torn inside
        one number), and copies the dicts the loop thread may grow.
        """
        now = self.clock.now()
        out: list[ExecutorSnapshot] = []
        for ex in self.executors:
            outputs = [
                (task.task, r.stream, r.emitted, r.transferred)
                for task in list(ex.tasks.values())
                for r in task.route_list
            ]
            st = ex.stats
            pending = 0
            if isinstance(ex, SpoutExecutor):
                pending = sum(len(t.pending) for t in list(ex.tasks.values()))
            inputs = [(c, s, n) for (c, s), n in list(st.executed_by_stream.items())]
            if isinstance(ex, AckerExecutor) and st.executed:
                # The acker counts its messages, not their streams (init, ack, fail).
                inputs.append((SYSTEM_COMPONENT, ACK_ACK_STREAM, st.executed))
            out.append(
                ExecutorSnapshot(
                    component=ex.component,
                    kind=ex.kind,
                    tasks=ex.task_ids,
                    worker=self.worker_index,
                    uptime_secs=max(0.0, now - st.started),
                    outputs=tuple(outputs),
                    inputs=tuple(inputs),
                    acked=st.acked,
                    failed=st.failed,
                    errors=st.errors,
                    execute_ms=st.execute_ms,
                    complete_ms=st.complete_ms,
                    complete_n=st.complete_n,
                    busy_secs=st.busy_secs,
                    queued=max(0, ex.queued),
                    queue_capacity=ex.capacity,
                    pending=pending,
                    timeouts=ex.timeouts,
                    metrics=dict(st.metrics),
                )
            )
        return out

    def set_debug(self, component: str | None, percent: float) -> None:
        """Sample ``percent`` % of emitted tuples to the ``squall.eventlog`` logger.

        Storm's debug toggle (``/topology/:id/debug/enable/:pct``): ``component``
        None means every component; ``percent`` 0 turns sampling off. Run on the
        loop thread (``engine.call``): it rebinds the tasks' emit functions.
        """
        if percent > 0:
            logging.getLogger(EVENT_LOGGER).setLevel(logging.INFO)
        for ex in self.executors:
            if isinstance(ex, AckerExecutor) or component not in (None, ex.component):
                continue
            for task in ex.tasks.values():
                _sample_emits(self.topology_name, task, percent)


def _cyclic_components(targets: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> set[str]:
    """Components that can reach themselves through subscriptions (on some cycle)."""
    succ = {
        c: {sub for subs in by_stream.values() for sub in subs} for c, by_stream in targets.items()
    }
    out: set[str] = set()
    for start in succ:
        seen: set[str] = set()
        todo = list(succ[start])
        while todo:
            c = todo.pop()
            if c == start:
                out.add(start)
                break
            if c not in seen:
                seen.add(c)
                todo.extend(succ.get(c, ()))
    return out


def _call(ex: Executor, task: BoltTask | SpoutTask, method: str) -> None:
    try:
        getattr(task.component, method)()
    except Exception as e:
        ex.report_error(task.task, e)


def _debug_emit(task: BoltTask | SpoutTask, logger: logging.Logger) -> Callable[..., Any]:
    inner = task.emit

    def emit(tup: Any, *args: Any, **kwargs: Any) -> Any:
        result = inner(tup, *args, **kwargs)
        logger.info("Emitting: %s %s %s", task.name, kwargs.get("stream") or "default", list(tup))
        return result

    return emit


#: Sampled tuples (debug sampling) are logged here, one JSON object per record.
EVENT_LOGGER = "squall.eventlog"


def _sample_emits(topology: str, task: BoltTask | SpoutTask, percent: float) -> None:
    """Wrap (or unwrap, when ``percent`` is 0) the task's emit with a sampler."""
    comp = task.component
    # Rebind whichever emit the component calls: the one bound on the instance by
    # _attach, or (when its class overrides emit) the collector's.
    owner: Any = comp if "emit" in vars(comp) else task
    base = getattr(task, "_squall_unsampled_emit", None)
    if base is None:
        base = owner.emit
        task._squall_unsampled_emit = base  # type: ignore[union-attr]
    if percent <= 0:
        if owner is task:
            vars(task).pop("emit", None)
        else:
            owner.emit = base
        del task._squall_unsampled_emit  # type: ignore[union-attr]
        return
    logger = logging.getLogger(EVENT_LOGGER)
    rate = min(percent, 100.0) / 100.0
    draw = random.Random().random
    name, task_id = task.name, task.task
    inner: Callable[..., Any] = base
    # Positional order: spouts emit(tup, tup_id, stream), bolts emit(tup, stream, anchors).
    stream_at = 1 if isinstance(task, SpoutTask) else 0

    def emit(tup: Any, *args: Any, **kwargs: Any) -> Any:
        result = inner(tup, *args, **kwargs)
        if draw() < rate:
            stream = kwargs.get("stream") or (args[stream_at] if len(args) > stream_at else None)
            msg_id = kwargs.get("tup_id") or (args[0] if stream_at and args else None)
            logger.info(
                "%s",
                json.dumps(
                    {
                        "ts": time.time(),
                        "topology": topology,
                        "component": name,
                        "task": task_id,
                        "stream": stream or "default",
                        "msgId": None if msg_id is None else repr(msg_id),
                        "values": [_short_repr(v) for v in tup],
                    }
                ),
            )
        return result

    owner.emit = emit


def _short_repr(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) or len(value) <= limit else value[:limit] + "..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
