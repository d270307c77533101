"""Nimbus's decisions on the in-memory store, with fake clocks (no sockets, no sleeps)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from squall.cluster.memory import MemoryStore, MemoryZooKeeper
from squall.cluster.records import (
    ACTIVE,
    INACTIVE,
    KILLED,
    REBALANCING,
    SupervisorInfo,
    WorkerHeartbeat,
)
from squall.cluster.state import ClusterState
from squall.daemon.nimbus import Nimbus, NimbusError


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


CONF = {
    "nimbus.task.timeout.secs": 10,
    "nimbus.task.launch.secs": 20,
    "storm.zookeeper.root": "/squall",
}
# count: tasks 1-4 (2 executors); split: 5-6 (2); spout: 7 (1); __acker: 8-9 (2)
SHAPE: dict[str, Any] = {
    "component_tasks": {"count": [1, 4], "split": [5, 6], "spout": [7, 7], "__acker": [8, 9]},
    "component_executors": {"count": 2, "split": 2, "spout": 1, "__acker": 2},
}


class World:
    """A memory ZooKeeper, a nimbus on it, supervisors, and the clocks."""

    def __init__(self, tmp: Path) -> None:
        self.zk = MemoryZooKeeper()
        self.mono = Clock()
        self.wall = Clock(5000.0)
        self.tmp = tmp
        self.view = ClusterState(self.zk.client(), "/squall")
        self.view.setup()
        self.sup_state = ClusterState(self.zk.client(), "/squall")
        self.nimbus = self.new_nimbus("n1")

    def new_nimbus(self, name: str) -> Nimbus:
        n = Nimbus(
            CONF, self.zk.client(), local_dir=self.tmp / name, clock=self.mono, wall=self.wall
        )
        n.step()
        return n

    def supervisor(self, sid: str, ports: tuple[int, ...] = (6700, 6701)) -> None:
        self.sup_state.register_supervisor(SupervisorInfo(sid, f"host-{sid}", ports, 1.0))

    def submit(self, name: str = "wc", workers: int = 2, **extra: Any) -> str:
        data = b"package bytes"
        code = self.nimbus.upload(io.BytesIO(data), len(data))
        req = {
            "name": name,
            "target": "topo.py:T",
            "conf": {"topology.message.timeout.secs": 5},
            "num_workers": workers,
            **SHAPE,
            "code": code,
            **extra,
        }
        tid = self.nimbus.submit(req)
        self.nimbus.step()
        return tid

    def beat(self, tid: str) -> None:
        rec = self.view.assignment(tid)
        assert rec is not None
        for w in rec[0].workers:
            self.view.worker_heartbeat(
                WorkerHeartbeat(tid, w.node, w.port, w.index, 1, 0.0, 0.0, w.executors)
            )

    def assignment(self, tid: str) -> Any:
        rec = self.view.assignment(tid)
        return rec


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.supervisor("a")
    w.supervisor("b")
    return w


def test_a_submitted_topology_is_spread_over_the_supervisors(world: World) -> None:
    tid = world.submit(workers=2)
    a, version = world.assignment(tid)
    assert version == 0
    assert sorted((w.node, w.port) for w in a.workers) == [("a", 6700), ("b", 6700)]
    assert sorted(e for w in a.workers for e in w.executors) == [
        (1, 2),
        (3, 4),
        (5, 5),
        (6, 6),
        (7, 7),
        (8, 8),
        (9, 9),
    ]
    assert {w.host for w in a.workers} == {"host-a", "host-b"}


def test_a_worker_that_keeps_beating_stays_and_a_silent_one_moves(world: World) -> None:
    tid = world.submit(workers=2)
    a, _ = world.assignment(tid)
    moved = next(w for w in a.workers if w.node == "b")
    kept = next(w for w in a.workers if w.node == "a")
    for _ in range(4):  # 4 x 6 s = 24 s, well past the 10 s task timeout
        world.mono.t += 6
        world.view.worker_heartbeat(
            WorkerHeartbeat(tid, kept.node, kept.port, kept.index, 1, 0.0, 0.0, kept.executors)
        )
        world.nimbus.step()
    new, version = world.assignment(tid)
    assert version == 1
    assert new.worker_at(kept.slot) == kept, "the live worker is untouched"
    replacement = next(w for w in new.workers if w.index == moved.index)
    assert replacement.slot != moved.slot and replacement.executors == moved.executors


def test_time_spent_disconnected_from_zookeeper_is_not_held_against_workers(world: World) -> None:
    tid = world.submit()
    world.beat(tid)
    world.nimbus.step()
    store = world.nimbus.store
    assert isinstance(store, MemoryStore)
    store.suspend()
    world.mono.t += 60
    world.nimbus.step()
    assert not world.nimbus.leading
    store.resume()
    world.nimbus.step()
    assert world.nimbus.leading
    assert world.assignment(tid)[1] == 0, "nothing was reassigned"


def test_a_killed_topology_stops_at_once_and_is_removed_after_the_wait(world: World) -> None:
    tid = world.submit()
    world.beat(tid)
    world.nimbus.kill("wc", wait_secs=3)
    base, _ = world.view.storm_base(tid)
    assert base.status == KILLED
    world.nimbus.step()
    assert world.view.storm_base(tid) is not None
    world.wall.t += 4
    world.nimbus.step()
    assert world.view.storm_base(tid) is None
    assert world.view.assignment(tid) is None
    for sub in ("workerbeats", "errors"):
        assert world.view.store.children(f"/squall/{sub}") == []
    assert list((world.nimbus.code_dir).iterdir()) == []


def test_a_rebalance_waits_then_reschedules_with_the_new_shape(world: World) -> None:
    tid = world.submit(workers=2)
    world.nimbus.rebalance("wc", wait_secs=2, num_workers=3, executors={"count": 4})
    base, _ = world.view.storm_base(tid)
    assert (base.status, base.prev_status) == (REBALANCING, ACTIVE)
    world.wall.t += 3
    world.nimbus.step()
    base, _ = world.view.storm_base(tid)
    assert (base.status, base.num_workers, base.component_executors["count"]) == (ACTIVE, 3, 4)
    a, _ = world.assignment(tid)
    assert len(a.workers) == 3
    assert sorted(e for w in a.workers for e in w.executors)[:4] == [(1, 1), (2, 2), (3, 3), (4, 4)]


def test_activate_and_deactivate_flip_the_status(world: World) -> None:
    tid = world.submit(inactive=True)
    assert world.view.storm_base(tid)[0].status == INACTIVE
    world.nimbus.activate("wc")
    assert world.view.storm_base(tid)[0].status == ACTIVE
    world.nimbus.deactivate("wc")
    assert world.view.storm_base(tid)[0].status == INACTIVE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "a/b"}, "may not contain"),
        ({"name": ""}, "'name' must be"),
        ({"num_workers": 0}, "'num_workers' must be an integer > 0"),
        ({"conf": {"topology.workers": "two"}}, "'topology.workers' must be int"),
        ({"component_tasks": {"a": [1, 2], "b": [4, 4]}}, "without gaps"),
        ({"code": "f" * 64}, "no uploaded package"),
    ],
)
def test_a_bad_submission_is_refused_naming_the_field(
    world: World, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(NimbusError, match=message) as info:
        world.submit(**change)
    assert info.value.status in (400, 409)
    assert world.view.storm_bases() == {}


def test_a_second_topology_with_a_live_name_is_refused(world: World) -> None:
    world.submit("wc")
    with pytest.raises(NimbusError, match="already running") as info:
        world.submit("wc")
    assert info.value.status == 409


def test_rebalance_refuses_unknown_components_and_too_many_executors(world: World) -> None:
    world.submit()
    with pytest.raises(NimbusError, match="no component 'nope'"):
        world.nimbus.rebalance("wc", executors={"nope": 2})
    with pytest.raises(NimbusError, match="has 4 tasks"):
        world.nimbus.rebalance("wc", executors={"count": 5})
    with pytest.raises(NimbusError, match="not running"):
        world.nimbus.kill("other")


def test_a_standby_refuses_writes_and_names_the_leader(world: World) -> None:
    standby = world.new_nimbus("n2")
    assert world.nimbus.leading and not standby.leading
    with pytest.raises(NimbusError) as info:
        standby.kill("wc")
    assert info.value.status == 503
    assert info.value.extra["leader"] == f"{world.nimbus.host}:{world.nimbus.port}"


def test_the_standby_takes_over_and_keeps_the_assignments(world: World) -> None:
    tid = world.submit()
    world.beat(tid)
    standby = world.new_nimbus("n2")
    old = world.nimbus.store
    assert isinstance(old, MemoryStore)
    old.expire()
    world.nimbus.step()
    standby.step()
    assert standby.leading and not world.nimbus.leading
    for _ in range(3):
        world.mono.t += 3
        world.beat(tid)
        standby.step()
    assert world.assignment(tid)[1] == 0, "the new leader does not reshuffle"


def test_a_restarted_nimbus_does_not_reshuffle_live_workers(world: World) -> None:
    tid = world.submit()
    world.beat(tid)
    world.nimbus.store.stop()
    world.mono.t += 100  # down for a long time; the workers kept beating
    world.beat(tid)
    restarted = world.new_nimbus("n1")
    assert restarted.leading
    world.mono.t += 5
    world.beat(tid)
    restarted.step()
    assert world.assignment(tid)[1] == 0


def test_debug_sampling_is_kept_in_the_storm_base_per_component_and_for_the_whole_topology(
    world: World,
) -> None:
    tid = world.submit()
    world.nimbus.set_debug("wc", "split", True, 25)
    assert world.view.storm_base(tid)[0].debug == {"split": 25.0}
    # The whole topology: per-component settings give way, as in Storm.
    world.nimbus.set_debug("wc", None, True, 10)
    assert world.view.storm_base(tid)[0].debug == {"": 10.0}
    world.nimbus.set_debug("wc", None, False, 0)
    assert world.view.storm_base(tid)[0].debug == {}
    with pytest.raises(NimbusError, match="has no component 'nope'"):
        world.nimbus.set_debug("wc", "nope", True, 10)
    with pytest.raises(NimbusError, match=r"sampling percentage must be in \(0, 100\]"):
        world.nimbus.set_debug("wc", "split", True, 150)


def test_detail_stats_and_errors_come_from_the_workers_heartbeats_and_reports(
    world: World,
) -> None:
    description = {"name": "wc", "components": {}}
    tid = world.submit(definition=description)
    a, _ = world.assignment(tid)
    old = a.workers[0]
    for w in a.workers:
        world.view.worker_heartbeat(
            WorkerHeartbeat(
                tid, w.node, w.port, w.index, 4242, 0.0, 12.5, w.executors,
                executor_stats=(["count", "bolt", [1, 2], w.index, 12.5, [], [], 0, 0, 0,
                                 0.0, 0.0, 0, 0.0, 0, 0, 0, 0, {}],),
                events=({"seq": 1, "component": "count"},),
            )
        )  # fmt: skip
    # A heartbeat left behind by a worker of an older placement is not counted.
    world.view.worker_heartbeat(
        WorkerHeartbeat(tid, old.node, 6799, old.index, 1, 0.0, 0.0, old.executors,
                        executor_stats=(["stale"],))
    )  # fmt: skip
    detail = world.nimbus.detail("wc")
    assert (detail["id"], detail["status"], detail["definition"]) == (tid, ACTIVE, description)
    assert {w["pid"] for w in detail["workers"]} == {4242}
    assert detail["conf"] == {"topology.message.timeout.secs": 5}
    stats = world.nimbus.stats("wc")
    assert len(stats["executors"]) == 2 and ["stale"] not in stats["executors"]
    assert sorted(e["worker"] for e in stats["events"]) == [0, 1]

    from squall.cluster.records import ErrorInfo

    world.view.report_error(tid, ErrorInfo("count", 1, "ValueError: x", 7.0, "h", 6700, "Tb"))
    [err] = world.nimbus.errors("wc")["errors"]
    assert (err["component"], err["traceback"], err["port"]) == ("count", "Tb", 6700)
    with pytest.raises(NimbusError, match="'nope' is not running"):
        world.nimbus.detail("nope")
