"""Storm's cluster state layout, records and nimbus election, on the in-memory store."""

from __future__ import annotations

import pytest

from squall.cluster.memory import MemoryZooKeeper
from squall.cluster.records import (
    Assignment,
    ErrorInfo,
    NimbusInfo,
    RecordError,
    StormBase,
    SupervisorInfo,
    WorkerAssignment,
    WorkerHeartbeat,
)
from squall.cluster.state import ERRORS_KEPT, ClusterState, LeaderElection, NotLeaderError
from squall.cluster.store import NoNodeError, SetData


def _state(zk: MemoryZooKeeper) -> ClusterState:
    s = ClusterState(zk.client(), "/squall")
    s.setup()
    return s


def _base(name: str = "wc") -> StormBase:
    return StormBase(
        name=name,
        status="ACTIVE",
        launch_time_secs=100.0,
        num_workers=2,
        component_tasks={"count": (1, 2), "split": (3, 4)},
        component_executors={"count": 2, "split": 1},
        num_tasks=4,
    )


def test_a_supervisor_is_listed_while_its_session_lives() -> None:
    zk = MemoryZooKeeper()
    sup, nimbus = _state(zk), _state(zk)
    sup.register_supervisor(SupervisorInfo("sup-a", "10.0.0.1", (6700, 6701), 1.0))
    assert nimbus.supervisors()["sup-a"].slots()[1].port == 6701
    sup.store.expire()  # type: ignore[attr-defined]
    assert nimbus.supervisors() == {}


def test_a_restarted_supervisor_replaces_the_node_of_its_old_session() -> None:
    zk = MemoryZooKeeper()
    old, new = _state(zk), _state(zk)
    old.register_supervisor(SupervisorInfo("sup-a", "h", (6700,), 1.0))
    new.register_supervisor(SupervisorInfo("sup-a", "h", (6700, 6701), 2.0))
    old.store.stop()  # the old session ends later: the new node must survive it
    assert new.supervisors()["sup-a"].ports == (6700, 6701)


def test_records_round_trip_through_json() -> None:
    base = _base()
    assert StormBase.decode(base.encode()) == base
    hb = WorkerHeartbeat("wc-1-1", "sup-a", 6700, 0, 42, 1.5, 0.5, ((1, 2),), {"x": 1})
    assert WorkerHeartbeat.decode(hb.encode()) == hb
    err = ErrorInfo("count", 3, "ValueError: boom", 9.0, "h", 6700)
    assert ErrorInfo.decode(err.encode()) == err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"workers": []}', "missing field 'topology_id'"),
        (b'{"topology_id": "t", "workers": [{"index": "0"}]}', "'index' has the wrong type"),
        (
            b'{"topology_id": "t", "workers": [{"index": 0, "node": "n", "host": "h",'
            b' "port": 1, "executors": [[3, 1]]}]}',
            "bad executor",
        ),
    ],
)
def test_a_malformed_assignment_names_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Assignment.decode(data)


def test_malformed_nodes_are_skipped_not_fatal() -> None:
    zk = MemoryZooKeeper()
    s = _state(zk)
    s.store.create("/squall/supervisors/junk", b"{")
    s.register_supervisor(SupervisorInfo("ok", "h", (1,), 1.0))
    assert list(s.supervisors()) == ["ok"]


def test_assignments_are_versioned() -> None:
    s = _state(MemoryZooKeeper())
    a = Assignment("wc-1-1", (WorkerAssignment(0, "sup-a", "h", 6700, ((1, 4),)),))
    s.store.create("/squall/assignments/wc-1-1", a.encode())
    s.store.set("/squall/assignments/wc-1-1", a.encode())
    got = s.assignment("wc-1-1")
    assert got is not None and got == (a, 1)
    assert s.assignment("other") is None


def test_heartbeats_fail_once_the_topology_is_gone() -> None:
    s = _state(MemoryZooKeeper())
    s.store.ensure_path("/squall/workerbeats/wc-1-1")
    hb = WorkerHeartbeat("wc-1-1", "sup-a", 6700, 0, 42, 1.0, 0.0, ((1, 2),))
    s.worker_heartbeat(hb)
    s.worker_heartbeat(hb)
    assert s.heartbeats("wc-1-1")["sup-a-6700"][1] == 1
    s.store.delete("/squall/workerbeats/wc-1-1", recursive=True)
    with pytest.raises(NoNodeError):
        s.worker_heartbeat(hb)
    assert s.heartbeats("wc-1-1") == {}


def test_only_the_last_errors_per_component_are_kept() -> None:
    s = _state(MemoryZooKeeper())
    s.store.ensure_path("/squall/errors/wc-1-1")
    for i in range(ERRORS_KEPT + 5):
        s.report_error("wc-1-1", ErrorInfo("count/x", 1, f"boom {i}", float(i)))
    errors = s.errors("wc-1-1")["count/x"]
    assert len(errors) == ERRORS_KEPT
    assert errors[-1].error == f"boom {ERRORS_KEPT + 4}"


def test_errors_of_a_removed_topology_are_refused() -> None:
    s = _state(MemoryZooKeeper())
    with pytest.raises(NoNodeError):
        s.report_error("gone-1-1", ErrorInfo("count", 1, "boom", 1.0))


def _elect(zk: MemoryZooKeeper, name: str) -> tuple[ClusterState, LeaderElection]:
    s = _state(zk)
    e = LeaderElection(s, NimbusInfo(name, "127.0.0.1", 6627))
    e.join()
    return s, e


def test_the_first_candidate_leads_and_the_next_takes_over_when_its_session_expires() -> None:
    zk = MemoryZooKeeper()
    sa, a = _elect(zk, "a")
    _sb, b = _elect(zk, "b")
    assert a.is_leader() and not b.is_leader()
    assert b.leader() == NimbusInfo("a", "127.0.0.1", 6627)
    sa.store.expire()  # type: ignore[attr-defined]
    assert b.is_leader() and not a.is_leader()
    a.join()  # joins again, behind b
    assert b.is_leader() and not a.is_leader()
    assert [info.id for _n, info in a.candidates()] == ["b", "a"]


def test_a_suspended_leader_stops_leading_and_resumes_if_its_session_survived() -> None:
    zk = MemoryZooKeeper()
    sa, a = _elect(zk, "a")
    _sb, b = _elect(zk, "b")
    sa.store.suspend()  # type: ignore[attr-defined]
    assert not a.is_leader()
    assert not b.is_leader()  # a's node still exists: nobody leads until it expires
    sa.store.resume()  # type: ignore[attr-defined]
    assert a.is_leader()


def test_a_fenced_write_fails_once_the_writer_lost_its_leadership() -> None:
    zk = MemoryZooKeeper()
    sa, a = _elect(zk, "a")
    sb, b = _elect(zk, "b")
    sa.store.create("/squall/assignments/t", b"v0")
    fence = a.fence()
    sa.commit_fenced(fence, [SetData("/squall/assignments/t", b"by a")])
    sa.store.expire()  # type: ignore[attr-defined]
    with pytest.raises(NotLeaderError):
        sa.commit_fenced(fence, [SetData("/squall/assignments/t", b"stale")])
    sb.commit_fenced(b.fence(), [SetData("/squall/assignments/t", b"by b")])
    assert sb.store.get("/squall/assignments/t") == (b"by b", 2)


def test_a_candidate_adopts_its_own_node_after_a_lost_reply() -> None:
    zk = MemoryZooKeeper()
    s, e = _elect(zk, "a")
    node = e.node
    e._session = None  # as if the create's reply had been lost
    e.join()
    assert e.node == node
    assert len(s.store.children("/squall/leader")) == 1


def test_a_restarted_nimbus_replaces_the_node_of_its_previous_life_at_once() -> None:
    zk = MemoryZooKeeper()
    _old_state, old = _elect(zk, "a")
    _s, restarted = _elect(zk, "a")  # same id, new session; the old one is not expired yet
    assert restarted.is_leader()
    assert old.node is not None and not old.is_leader()
