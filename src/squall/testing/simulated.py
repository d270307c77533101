"""Simulated time for tests: timeouts and ticks without sleeping.

On ``LocalCluster(simulated_time=True)`` topologies run in this process and
only inside ``advance_time``/``run_until_idle`` calls, so a test decides
exactly when time passes (Storm's ``withSimulatedTime``/``advanceClusterTime``):

* ``cluster.run_until_idle()`` runs until no tuple is in flight (the topology
  is quiescent, Storm's ``trackedWait``) without moving the clock;
* ``cluster.advance_time(secs, step=1.0)`` moves the clock ``step`` at a time,
  running to idle after each step, so timers fire in order;
* :func:`advance_until` moves the clock until a condition holds.

Simulated time suits spouts that run dry (a :class:`~squall.testing.FeederSpout`,
fixed tuples): a topology whose spout never stops emitting is never idle.

>>> from squall import Bolt, TopologyBuilder
>>> from squall.testing import FeederSpout
>>> class NeverAcks(Bolt):
...     auto_ack = False
...     def process(self, tup):
...         pass
>>> feeder = FeederSpout(["n"])
>>> b = TopologyBuilder()
>>> _ = b.set_spout("feed", feeder)
>>> _ = b.set_bolt("hold", NeverAcks).shuffle_grouping("feed")
>>> with simulated_cluster() as cluster:
...     _ = cluster.submit("t", b, {"topology.message.timeout.secs": 10})
...     _ = feeder.feed([1], msg_id="x")
...     advance_until(cluster, lambda: feeder.tracker.is_failed("x"))
20.0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from squall.daemon.local_cluster import LocalCluster, LocalTopology


def simulated_cluster(daemon_conf: Mapping[str, Any] | None = None) -> LocalCluster:
    """A :class:`~squall.LocalCluster` on simulated time (use it with ``with``).

    Args:
        daemon_conf: config applied under every submitted topology's own.
    """
    return LocalCluster(simulated_time=True, daemon_conf=daemon_conf)


def advance_until(
    cluster: LocalCluster,
    predicate: Callable[[], bool],
    max_secs: float = 600.0,
    step: float = 1.0,
) -> float:
    """Move simulated time ``step`` at a time until ``predicate()`` holds.

    The topologies run to idle before the first check and after every step.

    Returns:
        How many simulated seconds passed.

    Raises:
        TimeoutError: ``predicate()`` was still false after ``max_secs``.
    """
    if not cluster.clock.simulated:
        raise RuntimeError("advance_until needs a simulated-time cluster (simulated_cluster())")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    cluster.run_until_idle()
    passed = 0.0
    while not predicate():
        if passed >= max_secs:
            raise TimeoutError(f"condition still false after {max_secs:g} simulated seconds")
        cluster.advance_time(step, step)
        passed += step
    return passed


def wait_until_quiescent(
    cluster: LocalCluster, timeout_secs: float = 10.0, interval_secs: float = 0.01
) -> None:
    """Return once no tuple is in flight in any in-process topology of ``cluster``.

    On simulated time this is ``cluster.run_until_idle()``. On real time it polls
    each topology's engine (on its loop thread, ``interval_secs`` apart) until
    three polls in a row see no queued work and no new emits or executions, so
    at least two engine passes saw nothing to do and every idle spout was polled
    again (a spout that keeps emitting never quiesces).

    Raises:
        TimeoutError: still busy after ``timeout_secs`` (real time only).
    """
    if cluster.clock.simulated:
        cluster.run_until_idle()
        return
    deadline = time.monotonic() + timeout_secs
    for run in list(cluster.topologies.values()):
        last = _activity(run)
        stable = 0
        while True:
            time.sleep(interval_secs)
            now = _activity(run)
            # Each poll runs between two engine passes, so consecutive polls have at
            # least one pass between them; an idle spout sits out one pass.
            stable = stable + 1 if now == last and not now[2] else 0
            if stable >= 2:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"topology {run.name!r} still busy after {timeout_secs:g}s "
                    "(a spout that never stops emitting?)"
                )
            last = now


def _activity(run: LocalTopology) -> tuple[int, int, bool]:
    """(tuples emitted, tuples executed, work queued) for an in-process topology."""
    eng = run.engine
    if eng is None:
        raise RuntimeError(
            f"topology {run.name!r} runs in worker processes; wait_until_quiescent "
            "needs an in-process topology (topology.workers = 1)"
        )

    def snapshot() -> tuple[int, int, bool]:
        emitted = sum(
            r.emitted for ex in eng.executors for t in ex.tasks.values() for r in t.route_list
        )
        executed = sum(ex.stats.executed for ex in eng.executors)
        return (emitted, executed, eng.pending_work())

    result: tuple[int, int, bool] = eng.call(snapshot)
    return result
