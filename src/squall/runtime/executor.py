"""Executors and the tasks they run: the per-tuple hot path.

One executor owns one or more tasks of one component and an inbox of batches.
The engine calls ``step`` when the executor is ready; a step consumes whole
batches up to a budget. Emits are staged per (route, destination task) and the
engine moves the staged batches to their destinations after the step, so a
batch crosses each boundary once, never a tuple at a time.

Acking follows Storm's algorithm (see ``acker.py``). One optimisation: acks made
by one executor during one step are XOR-combined per root before they are sent,
which is exact because XOR is associative and commutative.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from squall import speedups
from squall.api.component import Bolt, Component, Spout
from squall.api.context import TopologyContext
from squall.api.errors import EmitError, FailedError
from squall.api.ids import SYSTEM_COMPONENT, SYSTEM_TASK, TICK_STREAM
from squall.api.tuple import AckedTuple, Tuple, ValuesTuple, values_class
from squall.runtime.acker import AckerLedger
from squall.runtime.grouper import FieldsGrouper, Grouper
from squall.runtime.messages import (
    ACKER,
    DATA,
    OP_ACK,
    OP_INIT,
    OP_RESET,
    SPOUT_ACK,
    TICK,
)
from squall.runtime.rotating_map import RotatingMap
from squall.runtime.stats import ErrorReport, ExecutorStats

if TYPE_CHECKING:
    from squall.runtime.engine import Engine

log = logging.getLogger("squall.runtime")

_new_tuple = speedups.make_values
_run_unanchored = speedups.run_unanchored
_run_anchored = speedups.run_anchored
_perf = time.perf_counter


_TICK_CLASS = values_class(SYSTEM_COMPONENT, TICK_STREAM, ("rate_secs",), SYSTEM_TASK)


class Route(speedups.RouteBase):  # type: ignore[misc]
    """Everything one task needs to emit on one stream: built once, used per emit."""

    # With the C accelerator, cls/width/one/fcache/fidx/staging/emitted live in
    # RouteBase (C struct fields the fast emit reads); without it, in these slots.
    _C_FIELDS = (
        "acking",
        "cls",
        "emitted",
        "fcache",
        "fidx",
        "one",
        "rstaging",
        "sink",
        "staging",
        "width",
    )
    __slots__ = (
        "direct",
        "direct_targets",
        "fields",
        "groupers",
        "manys",
        "stream",
        "transferred",
        *(() if speedups.AVAILABLE else _C_FIELDS),
    )

    def __init__(
        self,
        component: str,
        stream: str,
        fields: Sequence[str],
        direct: bool,
        groupers: Sequence[Grouper],
        direct_targets: Mapping[int, bool],
        task: int,
        acking: bool = False,
    ) -> None:
        self.stream = stream
        self.fields = tuple(fields)
        self.width = len(self.fields)
        self.cls = values_class(component, stream, self.fields, task)
        self.direct = direct
        self.groupers = list(groupers)
        singles = [g for g in groupers if g.single]
        self.manys = [g for g in groupers if not g.single]
        # The common case, one single-target subscriber, gets a fast path (never on a
        # direct stream: validation leaves those without groupers, and so does this).
        # With acking on, only the C emitter takes it (it also stages the anchor ids).
        self.acking = acking
        one = singles[0] if len(singles) == 1 and not self.manys and not direct else None
        self.one: Grouper | None = one
        # A single-field fields grouping exposes its key -> task cache for inlining.
        self.fcache: dict[Any, int] | None = None
        self.fidx = 0
        if isinstance(self.one, FieldsGrouper) and self.one._one >= 0:
            self.fcache = self.one._cache
            self.fidx = self.one._one
        # Nobody subscribes (and nobody can, directly): emits are only counted.
        self.sink = not self.groupers and not direct
        # task -> True when that task subscribes with direct grouping, False otherwise.
        self.direct_targets = dict(direct_targets)
        self.staging: defaultdict[int, list[Any]] = defaultdict(list)
        self.rstaging: defaultdict[int, list[Any]] = defaultdict(list)
        self.emitted = 0
        self.transferred = 0

    def targets(self, values: Sequence[Any]) -> list[int]:
        out: list[int] = []
        for g in self.groupers:
            if g.single:
                out.append(g.choose(values))
            else:
                out.extend(g.choose_many(values))
        return out


class _TaskBase:
    """State shared by spout and bolt tasks: identity, routes and error reporting."""

    def __init__(
        self,
        executor: Executor,
        task: int,
        component: Component,
        context: TopologyContext,
        routes: dict[str, Route],
    ) -> None:
        self.executor = executor
        self.task = task
        self.component = component
        self.context = context
        self.name = context.component_id
        self.route_list: list[Route] = list(routes.values())
        self.routes: dict[str | None, Route] = {}
        self.routes.update(routes)
        if "default" in routes:
            self.routes[None] = routes["default"]
        self.acking = executor.engine.acking
        self.rand64: Callable[[int], int] = executor.engine.rng.getrandbits

    # -- errors ---------------------------------------------------------------
    def bad_stream(self, stream: str | None) -> EmitError:
        declared = ", ".join(sorted(k for k in self.routes if k is not None)) or "none"
        return EmitError(
            f"component {self.name!r} task {self.task}: emit to undeclared stream "
            f"{stream or 'default'!r} (declared: {declared})"
        )

    def bad_width(self, route: Route, tup: Any) -> EmitError:
        return EmitError(
            f"component {self.name!r} task {self.task}: stream {route.stream!r} declares "
            f"{route.width} field(s) {list(route.fields)} but the emitted tuple has "
            f"{_length(tup)}: {_short(tup)}"
        )

    def report_error(self, error: BaseException) -> None:
        self.executor.report_error(self.task, error)

    def report_metric(self, name: str, value: Any) -> None:
        self.executor.stats.metrics[name] = value

    def make_values(self, route: Route, tup: Any) -> ValuesTuple:
        if isinstance(tup, str | bytes) or not hasattr(tup, "__len__"):
            raise EmitError(
                f"component {self.name!r} task {self.task}: emit expects a list of values for "
                f"stream {route.stream!r}, got {type(tup).__name__} {_short(tup)}"
            )
        v: ValuesTuple = _new_tuple(route.cls, tup)
        if len(v) != route.width:
            raise self.bad_width(route, tup)
        return v

    def direct_check(self, route: Route, direct_task: int | None) -> int | None:
        """Validate a direct emit; returns the task to send to, or None to drop it."""
        if direct_task is None:
            raise EmitError(
                f"component {self.name!r} task {self.task}: stream {route.stream!r} is direct; "
                "emit on it with direct_task=..."
            )
        if not route.direct:
            raise EmitError(
                f"component {self.name!r} task {self.task}: direct emit to task {direct_task} on "
                f"stream {route.stream!r}, which is not declared direct"
            )
        subscribed = route.direct_targets.get(direct_task)
        if subscribed is None:
            return None  # Storm drops direct emits to tasks that do not subscribe.
        if not subscribed:
            raise EmitError(
                f"component {self.name!r} task {self.task}: direct emit to task {direct_task}, "
                f"which subscribes to stream {route.stream!r} with a regular grouping"
            )
        return direct_task

    def tasks_for(self, route: Route, v: ValuesTuple, direct_task: int | None) -> list[int]:
        """The tasks an emit of ``v`` on ``route`` goes to (a direct emit is checked)."""
        if direct_task is None and not route.direct:
            return route.targets(v)
        d = self.direct_check(route, direct_task)
        return [] if d is None else [d]


class BoltTask(_TaskBase):
    """One bolt task: runs ``process`` over batches, and is the bolt's collector."""

    component: Bolt

    def __init__(
        self,
        executor: Executor,
        task: int,
        component: Bolt,
        context: TopologyContext,
        routes: dict[str, Route],
    ) -> None:
        super().__init__(executor, task, component, context, routes)
        cls = type(component)
        self.auto_anchor = bool(getattr(cls, "auto_anchor", True))
        self.auto_ack = bool(getattr(cls, "auto_ack", True))
        self.auto_fail = bool(getattr(cls, "auto_fail", True))
        self._current: Tuple | None = None
        # The C emitter bound as component.emit, if any; it then holds the current tuple.
        self.emitter: Any = None
        self.pending_acks: dict[int, int] = executor.pending_acks
        self.pending_fails: list[int] = executor.pending_fails
        self.pending_resets: list[int] = executor.pending_resets

    @property
    def current(self) -> Tuple | None:
        """The tuple being processed: what emits are auto-anchored to."""
        em = self.emitter
        return em.current if em is not None else self._current

    @current.setter
    def current(self, t: Tuple | None) -> None:
        # One home for the current tuple: the C emitter's, when there is one.
        if self.emitter is not None:
            self.emitter.current = t
        else:
            self._current = t

    # -- collector API (attached to the component) ------------------------------
    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        anchors: Sequence[Tuple] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        route = self.routes.get(stream)
        if route is None:
            raise self.bad_stream(stream)
        if route.sink:
            if len(tup) != route.width:
                raise self.bad_width(route, tup)
            route.emitted += 1
            return [] if need_task_ids else None
        try:
            v: ValuesTuple = _new_tuple(route.cls, tup)
        except TypeError:
            v = self.make_values(route, tup)
        if len(v) != route.width:
            raise self.bad_width(route, tup)
        g = route.one
        if g is not None and direct_task is None and not route.acking:
            # Fast path: acking off, one single-target subscriber (see Route.one).
            fc = route.fcache
            t = fc.get(v[route.fidx]) if fc is not None else None
            if t is None:
                t = g.choose(v)
            route.staging[t].append(v)
            route.emitted += 1
            return [t] if need_task_ids else None
        tasks = self.tasks_for(route, v, direct_task)
        if not self.acking:
            staging = route.staging
            for t in tasks:
                staging[t].append(v)
            route.emitted += 1
            return tasks if need_task_ids else None
        return self._emit_anchored(route, v, tasks, anchors, need_task_ids)

    def _emit_anchored(
        self,
        route: Route,
        v: ValuesTuple,
        tasks: list[int],
        anchors: Sequence[Tuple] | None,
        need_task_ids: bool,
    ) -> list[int] | None:
        if anchors is None:
            cur = self.current
            anchors = (cur,) if (self.auto_anchor and cur is not None) else ()
        elif isinstance(anchors, Tuple):
            anchors = (anchors,)
        else:
            anchors = [a for a in anchors if isinstance(a, AckedTuple)]
        staging = route.staging
        rstaging = route.rstaging
        rand64 = self.rand64
        for t in tasks:
            roots: dict[int, int] | None = None
            if anchors:
                for a in anchors:
                    if not isinstance(a, AckedTuple):
                        continue
                    ar = a._roots
                    if ar:
                        if a._ack_val is None:
                            raise EmitError(
                                f"component {self.name!r} task {self.task}: emit anchored to a "
                                f"tuple that was already acked or failed ({a!r})"
                            )
                        # A fresh edge per anchor (Storm): one shared edge would cancel out
                        # when two anchors belong to the same tree, leaving the child untracked.
                        e = rand64(64)
                        a._ack_val ^= e
                        if roots is None:
                            roots = {}
                        for r in ar:
                            roots[r] = roots.get(r, 0) ^ e
            staging[t].append(v)
            rstaging[t].append(roots)
        route.emitted += 1
        return tasks if need_task_ids else None

    def ack(self, tup: Tuple) -> None:
        if not isinstance(tup, AckedTuple):
            # Acking off with auto_ack on: run_batch already counts every tuple once.
            if self.acking or not self.auto_ack:
                self.executor.stats.acked += 1
            return
        av = tup._ack_val
        if av is None:
            return  # already acked or failed: Storm would double-count; we ignore it
        tup._ack_val = None
        roots = tup._roots
        if roots:
            pa = self.pending_acks
            for r, v in roots.items():
                pa[r] = pa.get(r, 0) ^ v ^ av
        self.executor.stats.acked += 1

    def fail(self, tup: Tuple) -> None:
        if not isinstance(tup, AckedTuple):
            self.executor.stats.failed += 1
            return
        if tup._ack_val is None:
            return
        tup._ack_val = None
        roots = tup._roots
        if roots:
            self.pending_fails.extend(roots)
        self.executor.stats.failed += 1

    def reset_timeout(self, tup: Tuple) -> None:
        if not isinstance(tup, AckedTuple):
            return
        roots = tup._roots
        if roots and tup._ack_val is not None:
            self.pending_resets.extend(roots)

    # -- running ----------------------------------------------------------------
    def run_batch(self, vals: list[Any], roots: list[Any] | None) -> None:
        process = self.component.process
        if roots is None and not self.acking:
            # Acking is off, so nothing needs the current tuple for anchoring.
            failed = self.executor.stats.failed
            if _run_unanchored is not None:
                _run_unanchored(process, vals, self.on_error)
            else:
                for v in vals:
                    try:
                        process(v)
                    except Exception as e:
                        self.on_error(v, e)
            if self.auto_ack:
                # A tuple that failed (its process raised) is not also counted as acked.
                stats = self.executor.stats
                stats.acked += len(vals) - (stats.failed - failed)
        elif self.emitter is not None and _run_anchored is not None:
            if roots is None:
                roots = [None] * len(vals)
            acks = _run_anchored(
                self.emitter, process, vals, roots, self.on_error, self.pending_acks, self.auto_ack
            )
            self.executor.stats.acked += acks
        else:
            auto_ack = self.auto_ack
            ack = self.ack
            make = AckedTuple
            if roots is None:
                roots = [None] * len(vals)
            for v, r in zip(vals, roots, strict=True):
                t = make(v, r)
                self.current = t
                try:
                    process(t)
                except Exception as e:
                    self.on_error(t, e)
                    continue
                if auto_ack and t._ack_val is not None:
                    ack(t)
        self.current = None

    def run_tick(self, rate: Any) -> None:
        t = _TICK_CLASS.make((rate,))
        self.current = t
        try:
            self.component.process_tick(t)
        except Exception as e:
            self.on_error(t, e, tick=True)
        self.current = None

    def on_error(self, t: Tuple, e: Exception, tick: bool = False) -> None:
        if isinstance(e, FailedError):
            self.fail(t)
            return
        self.report_error(e)
        if not tick and self.auto_fail:
            self.fail(t)


class _PendingInfo:
    __slots__ = ("msg_id", "start", "stream")

    def __init__(self, msg_id: Any, start: float, stream: str) -> None:
        self.msg_id = msg_id
        self.start = start
        self.stream = stream


class SpoutTask(_TaskBase):
    """One spout task: calls ``next_tuple``, tracks pending trees, gets ack/fail back."""

    component: Spout

    def __init__(
        self,
        executor: Executor,
        task: int,
        component: Spout,
        context: TopologyContext,
        routes: dict[str, Route],
    ) -> None:
        super().__init__(executor, task, component, context, routes)
        self.pending: RotatingMap[int, _PendingInfo] = RotatingMap(2)
        self.emit_count = 0
        self.ack_out = executor.engine.ack_out
        self.ackers = executor.engine.acker_tasks
        self.n_ackers = len(self.ackers)

    def emit(
        self,
        tup: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        route = self.routes.get(stream)
        if route is None:
            raise self.bad_stream(stream)
        try:
            v: ValuesTuple = _new_tuple(route.cls, tup)
        except TypeError:
            v = self.make_values(route, tup)
        if len(v) != route.width:
            raise self.bad_width(route, tup)
        g = route.one
        if g is not None and tup_id is None and direct_task is None and not route.acking:
            # Fast path: an unreliable emit to one single-target subscriber.
            t = g.choose(v)
            route.staging[t].append(v)
            route.emitted += 1
            self.emit_count += 1
            return [t] if need_task_ids else None
        tasks = self.tasks_for(route, v, direct_task)
        staging = route.staging
        self.emit_count += 1
        route.emitted += 1
        if tup_id is None or not self.acking:
            if self.acking:
                rstaging = route.rstaging
                for t in tasks:
                    staging[t].append(v)
                    rstaging[t].append(None)
            else:
                for t in tasks:
                    staging[t].append(v)
            if tup_id is not None:
                # No ackers: Storm acks reliable emits at once, inside emit.
                self.executor.stats.acked += 1
                self.executor.call_spout(self, "ack", tup_id)
            return tasks if need_task_ids else None
        rand64 = self.rand64
        root = rand64(64)
        x = 0
        rstaging = route.rstaging
        for t in tasks:
            e = rand64(64)
            x ^= e
            staging[t].append(v)
            rstaging[t].append({root: e})
        self.pending.add_new(root, _PendingInfo(tup_id, self.executor.step_time, route.stream))
        self.ack_out[self.ackers[root % self.n_ackers]].append((OP_INIT, root, x, self.task))
        return tasks if need_task_ids else None

    def on_outcome(self, op: int, root: int) -> None:
        if op == OP_RESET:
            info = self.pending.get(root)
            if info is not None:
                self.pending.put(root, info)
            return
        info = self.pending.pop(root)
        if info is None:
            return  # already timed out: no double callback
        stats = self.executor.stats
        if op == OP_ACK:
            stats.acked += 1
            stats.complete_ms += (self.executor.step_time - info.start) * 1000.0
            stats.complete_n += 1
            self.executor.call_spout(self, "ack", info.msg_id)
        else:
            stats.failed += 1
            self.executor.call_spout(self, "fail", info.msg_id)

    def on_timeout_tick(self) -> None:
        for _root, info in self.pending.rotate():
            self.executor.stats.failed += 1
            self.executor.timeouts += 1
            self.executor.call_spout(self, "fail", info.msg_id)


class Executor:
    """Runs a group of tasks of one component; owns their inbox and stats."""

    kind = "bolt"

    def __init__(self, engine: Engine, component: str, tasks: Sequence[int], capacity: int) -> None:
        self.engine = engine
        self.component = component
        self.task_ids = tuple(tasks)
        self.inbox: deque[tuple[Any, ...]] = deque()
        self.queued = 0
        self.capacity = capacity
        # Upstream executors stop being run once this inbox holds run_limit tuples:
        # far below the hard capacity when possible, because short queues keep the
        # queued tuples in the CPU cache (measured ~30% faster, bench/README.md).
        # The hard capacity still bounds what arrives in one step and from peers.
        self.run_limit = capacity
        self.downstream: list[Executor] = []
        # Tasks in other workers that this executor's streams reach (set by the engine).
        self.remote_down: frozenset[int] = frozenset()
        # On a cycle of subscriptions: may run while blocked when nothing else can.
        self.cyclic = False
        self.stats = ExecutorStats(engine.clock.now())
        self.step_time = engine.clock.now()
        self.pending_acks: dict[int, int] = {}
        self.pending_fails: list[int] = []
        self.pending_resets: list[int] = []
        self.timeouts = 0
        self.errors_logged: deque[float] = deque()
        self.tasks: dict[int, Any] = {}
        # Components with work that arrives from outside the engine (a child process,
        # a socket): they implement squall_pending() -> bool and squall_drain() -> int,
        # both called on the loop thread. Filled in by the engine once tasks exist.
        self.background: list[Any] = []

    @property
    def id(self) -> tuple[int, int]:
        return (self.task_ids[0], self.task_ids[-1])

    def ready(self) -> bool:
        return bool(self.inbox) or self.background_pending()

    def background_pending(self) -> bool:
        return any(comp.squall_pending() for comp in self.background)

    def run_background(self, task_of: Mapping[int, Any]) -> int:
        """Let components drain what arrived from outside; errors are reported per task."""
        done = 0
        for task in task_of.values():
            comp = task.component
            if comp in self.background and comp.squall_pending():
                try:
                    done += int(comp.squall_drain())
                except Exception as e:
                    self.report_error(task.task, e)
        return done

    def blocked(self) -> bool:
        rd = self.remote_down
        if rd and self.engine.remote_blocked(rd):
            return True
        return any(d.queued >= d.run_limit for d in self.downstream)

    def step(self, budget: int) -> int:
        raise NotImplementedError

    def report_error(self, task: int, error: BaseException) -> None:
        eng = self.engine
        self.stats.errors += 1
        tb = "".join(traceback.format_exception(error))
        report = ErrorReport(
            topology=eng.topology_name,
            component=self.component,
            task=task,
            time=time.time(),
            error=f"{type(error).__name__}: {error}",
            traceback=tb,
            worker=eng.worker_index,
        )
        eng.record_error(report, self)

    def call_spout(self, task: SpoutTask, method: str, msg_id: Any) -> None:
        try:
            getattr(task.component, method)(msg_id)
        except Exception as e:
            self.report_error(task.task, e)


class BoltExecutor(Executor):
    kind = "bolt"

    def step(self, budget: int) -> int:
        inbox = self.inbox
        tasks = self.tasks
        stats = self.stats
        done = 0
        t0 = _perf()
        self.step_time = self.engine.clock.now()
        if self.background:
            done += self.run_background(tasks)
        while inbox and done < budget:
            entry = inbox.popleft()
            kind = entry[0]
            if kind == DATA:
                _, dest, comp, stream, _src, vals, roots = entry
                n = len(vals)
                self.queued -= n
                tasks[dest].run_batch(vals, roots)
                key = (comp, stream)
                ebs = stats.executed_by_stream
                ebs[key] = ebs.get(key, 0) + n
                stats.executed += n
                done += n
            elif kind == TICK:
                _, dest, rate = entry
                for tid in self.task_ids if dest == SYSTEM_TASK else (dest,):
                    tasks[tid].run_tick(rate)
                done += 1
        dt = _perf() - t0
        stats.busy_secs += dt
        stats.execute_ms += dt * 1000.0
        return done


class SpoutExecutor(Executor):
    kind = "spout"

    def __init__(
        self,
        engine: Engine,
        component: str,
        tasks: Sequence[int],
        capacity: int,
        max_pending: int | None,
    ) -> None:
        super().__init__(engine, component, tasks, capacity)
        self.max_pending = max_pending
        self.active = False
        self.idle = False

    def ready(self) -> bool:
        if self.inbox or self.background_pending():
            return True
        if self.idle:
            # Spout wait: skip one pass after an empty next_tuple, then poll again
            # (a spout fed from outside, e.g. a queue, must be polled again).
            self.idle = False
            return False
        return self.active and self.can_emit()

    def can_emit(self) -> bool:
        mp = self.max_pending
        if mp is None or not self.engine.acking:
            return True
        return any(len(t.pending) < mp for t in self.tasks.values())

    def step(self, budget: int) -> int:
        inbox = self.inbox
        tasks = self.tasks
        self.step_time = self.engine.clock.now()
        t0 = _perf()
        done = 0
        if self.background:
            done += self.run_background(tasks)
        while inbox:
            entry = inbox.popleft()
            kind = entry[0]
            if kind == SPOUT_ACK:
                task = tasks[entry[1]]
                for op, root in entry[2]:
                    task.on_outcome(op, root)
                done += len(entry[2])
            elif kind == TICK:
                dest = entry[1]
                for tid in self.task_ids if dest == SYSTEM_TASK else (dest,):
                    tasks[tid].on_timeout_tick()
                done += 1
        emitted = 0
        if self.active and not self.blocked():
            mp = self.max_pending if self.engine.acking else None
            for task in tasks.values():
                nt = task.component.next_tuple
                calls = 0
                while calls < budget:
                    if mp is not None and len(task.pending) >= mp:
                        break
                    before = task.emit_count
                    try:
                        nt()
                    except Exception as e:
                        self.report_error(task.task, e)
                        break
                    calls += 1
                    if task.emit_count == before:
                        break
                    emitted += task.emit_count - before
            # A spout that emitted nothing waits for the next pass (Storm's spout wait).
            self.idle = emitted == 0
        self.stats.busy_secs += _perf() - t0
        return done + emitted


class AckerExecutor(Executor):
    """The ``__acker`` component: a ledger per task, outcomes sent to spout tasks."""

    kind = "acker"

    def __init__(self, engine: Engine, component: str, tasks: Sequence[int], capacity: int) -> None:
        super().__init__(engine, component, tasks, capacity)
        self.ledgers = {t: AckerLedger(engine.clock.now) for t in tasks}

    def step(self, budget: int) -> int:
        inbox = self.inbox
        out = self.engine.spout_out
        done = 0
        self.step_time = self.engine.clock.now()
        while inbox and done < budget:
            entry = inbox.popleft()
            kind = entry[0]
            if kind == ACKER:
                ledger = self.ledgers[entry[1]]
                msgs = entry[2]
                self.queued -= len(msgs)
                ledger.apply(msgs, out)
                n = len(msgs)
                self.stats.executed += n
                done += n
            elif kind == TICK:
                for ledger in self.ledgers.values():
                    ledger.rotate()
                done += 1
        return done


def _length(tup: Any) -> str:
    try:
        return str(len(tup))
    except TypeError:
        return "no length"


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


__all__ = [
    "ACKER",
    "DATA",
    "SPOUT_ACK",
    "TICK",
    "AckerExecutor",
    "BoltExecutor",
    "BoltTask",
    "Executor",
    "Route",
    "SpoutExecutor",
    "SpoutTask",
]
