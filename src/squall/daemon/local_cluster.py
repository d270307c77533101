"""Local mode: run topologies on this machine, in this process or in local worker processes.

>>> from squall import Spout, Bolt, Topology, LocalCluster
>>> class Nums(Spout):
...     outputs = ["n"]
...     def initialize(self, conf, ctx):
...         self.n = 0
...     def next_tuple(self):
...         if self.n < 5:
...             self.n += 1
...             self.emit([self.n], tup_id=self.n)
>>> class Total(Bolt):
...     total = 0
...     def process(self, tup):
...         Total.total += tup.values.n
>>> class T(Topology):
...     nums = Nums.spec()
...     total = Total.spec(inputs=[nums])
>>> with LocalCluster() as cluster:
...     run = cluster.submit("sum", T)
...     cluster.wait_until(lambda: run.stats()["nums"].acked == 5, timeout=10)
>>> Total.total
15
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from squall import config as C
from squall.api.topology import TopologyDef, as_definition
from squall.api.validation import validate
from squall.runtime.clock import Clock, RealClock, SimulatedClock
from squall.runtime.engine import Engine
from squall.runtime.plan import TopologyPlan, make_plan
from squall.runtime.stats import ComponentStats, ErrorReport, ExecutorSnapshot
from squall.state.stateful import with_checkpoints

log = logging.getLogger("squall.local")


class LocalTopology:
    """A topology running in local mode: one engine in this process, or worker processes."""

    def __init__(
        self,
        name: str,
        plan: TopologyPlan,
        clock: Clock,
        on_error: Callable[[ErrorReport], None] | None = None,
    ) -> None:
        self.name = name
        self.plan = plan
        self.clock = clock
        self.started_at = time.time()
        self.errors: list[ErrorReport] = []
        self._on_error = on_error
        self._workers: Any = None
        self.engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.active = False

    def _record(self, report: ErrorReport) -> None:
        self.errors.append(report)
        if len(self.errors) > 1000:
            del self.errors[:500]
        if self._on_error is not None:
            self._on_error(report)

    def start(self, active: bool = True) -> None:
        self.active = active
        if self.plan.num_workers > 1:
            if self.clock.simulated:
                raise ValueError(
                    f"topology {self.name!r}: simulated time runs in one process; "
                    f"topology.workers={self.plan.num_workers} needs real time "
                    "(use LocalCluster() without simulated_time, or topology.workers=1)"
                )
            from squall.daemon.local_workers import LocalWorkers

            self._workers = LocalWorkers(self.name, self.plan, on_error=self._record)
            self._workers.start(active=active)
            return
        self.engine = Engine(self.plan, 0, clock=self.clock, on_error=self._record)
        self.engine.start(active=active)
        if not self.clock.simulated:
            self._thread = threading.Thread(
                target=self.engine.run, args=(self._stop,), name=f"squall-{self.name}", daemon=True
            )
            self._thread.start()

    @property
    def worker_pids(self) -> list[int]:
        """Pids of this topology's worker processes (empty when it runs in-process)."""
        if self._workers is None:
            return []
        return list(self._workers.pids)

    @property
    def simulated(self) -> bool:
        return self.clock.simulated

    def run_until_idle(self, max_passes: int = 100_000) -> int:
        """Simulated time only: run passes until nothing is left to do."""
        eng = self._require_engine()
        total = 0
        quiet = 0
        for _ in range(max_passes):
            work = eng.run_once()
            total += work
            # Two quiet passes in a row: an idle spout skips one pass, then is polled again.
            quiet = quiet + 1 if work == 0 and not eng.pending_work() else 0
            if quiet >= 2:
                break
        return total

    def _require_engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("this operation needs the in-process engine (topology.workers = 1)")
        return self.engine

    def stats(self, include_system: bool = False) -> dict[str, ComponentStats]:
        if self._workers is not None:
            return self._workers.stats(include_system)  # type: ignore[no-any-return]
        eng = self._require_engine()
        return eng.call(lambda: eng.component_stats(include_system))  # type: ignore[no-any-return]

    def snapshots(self) -> list[ExecutorSnapshot]:
        """Every executor's cumulative counters (read without pausing the engine)."""
        if self._workers is not None:
            return self._workers.snapshots()  # type: ignore[no-any-return]
        return self._require_engine().executor_snapshots()

    def set_debug(self, component: str | None, percent: float) -> None:
        """Sample ``percent`` % of emitted tuples to ``squall.eventlog`` (0 stops)."""
        if self._workers is not None:
            self._workers.set_debug(component, percent)
        else:
            eng = self._require_engine()
            eng.call(lambda: eng.set_debug(component, percent))

    def activate(self) -> None:
        if self._workers is not None:
            self._workers.activate()
        else:
            eng = self._require_engine()
            eng.call(eng.activate)
        self.active = True

    def deactivate(self) -> None:
        if self._workers is not None:
            self._workers.deactivate()
        else:
            eng = self._require_engine()
            eng.call(eng.deactivate)
        self.active = False

    def stop(self) -> None:
        if self._workers is not None:
            self._workers.stop()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.engine is not None:
            self.engine.shutdown()


class LocalCluster:
    """Storm's LocalCluster: submit, kill, activate, and (optionally) simulated time.

    Args:
        simulated_time: drive time by hand with :meth:`advance_time`; topologies then
            run only inside ``advance_time``/``run_until_idle`` calls, deterministically.
        daemon_conf: config applied under every submitted topology's own config.
    """

    def __init__(
        self, simulated_time: bool = False, daemon_conf: Mapping[str, Any] | None = None
    ) -> None:
        self.clock: Clock = SimulatedClock() if simulated_time else RealClock()
        self.daemon_conf = dict(daemon_conf or {})
        self.topologies: dict[str, LocalTopology] = {}

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def submit(
        self,
        name: str,
        topology: Any,
        conf: Mapping[str, Any] | None = None,
        *,
        active: bool = True,
        on_error: Callable[[ErrorReport], None] | None = None,
    ) -> LocalTopology:
        """Validate and start ``topology`` (a Topology class, builder or def) as ``name``."""
        if name in self.topologies:
            raise ValueError(f"a topology named {name!r} is already running")
        d: TopologyDef = as_definition(topology, name)
        merged = {**self.daemon_conf, **dict(conf or {}), C.TOPOLOGY_NAME: name}
        # Stateful bolts get Storm's hidden checkpoint spout (squall.state.stateful).
        d = with_checkpoints(d.with_config(merged))
        validate(d)
        plan = make_plan(d, merged)
        if plan.num_workers > 1:
            from squall.daemon.shipping import check_shippable

            check_shippable(d)
        run = LocalTopology(name, plan, self.clock, on_error)
        run.start(active=active)
        self.topologies[name] = run
        return run

    def get(self, name: str) -> LocalTopology:
        try:
            return self.topologies[name]
        except KeyError:
            raise KeyError(f"no topology named {name!r} is running") from None

    def kill(self, name: str, wait_secs: float = 0) -> None:
        """Deactivate, wait ``wait_secs`` (so in-flight tuples finish), then stop."""
        run = self.get(name)
        if wait_secs:
            run.deactivate()
            if run.simulated:
                self.advance_time(wait_secs)
            else:
                time.sleep(wait_secs)
        run.stop()
        del self.topologies[name]

    def activate(self, name: str) -> None:
        self.get(name).activate()

    def deactivate(self, name: str) -> None:
        self.get(name).deactivate()

    def advance_time(self, secs: float, step: float = 1.0) -> None:
        """Simulated time: move the clock ``secs`` forward in ``step``s, running to idle each."""
        if not isinstance(self.clock, SimulatedClock):
            raise RuntimeError("advance_time needs LocalCluster(simulated_time=True)")
        self.run_until_idle()
        remaining = secs
        while remaining > 1e-12:
            d = min(step, remaining)
            self.clock.advance(d)
            remaining -= d
            self.run_until_idle()

    def run_until_idle(self) -> None:
        for run in self.topologies.values():
            if run.simulated:
                run.run_until_idle()

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.01
    ) -> None:
        """Wait (real time) or run (simulated time) until ``predicate()`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            if isinstance(self.clock, SimulatedClock):
                self.run_until_idle()
            if predicate():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(0 if isinstance(self.clock, SimulatedClock) else interval)

    def shutdown(self) -> None:
        for name in list(self.topologies):
            try:
                self.topologies[name].stop()
            finally:
                del self.topologies[name]
