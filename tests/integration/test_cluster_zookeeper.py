"""The coordination store on a real ZooKeeper (Debian's package, started by the test)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from tests.chaos.harness import (
    SESSION_TIMEOUT_MS,
    ZooKeeperServer,
    expire_session,
    wait_until,
    zookeeper_server,
)
from tests.unit.test_cluster_store import Sessions, StoreContract

from squall.cluster.records import NimbusInfo
from squall.cluster.state import ClusterState, LeaderElection, NotLeaderError
from squall.cluster.store import CoordinationStore, NotAuthorizedError, SetData
from squall.cluster.zookeeper import ZooKeeperStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def zk() -> Iterator[ZooKeeperServer]:
    with zookeeper_server() as server:
        yield server


def _store(zk: ZooKeeperServer, chroot: str = "", **kwargs: object) -> ZooKeeperStore:
    store = ZooKeeperStore(
        zk.hosts + chroot, session_timeout_secs=SESSION_TIMEOUT_MS / 1000, **kwargs
    )
    store.start(10)
    return store


class TestZooKeeperStore(StoreContract):
    @pytest.fixture
    def sessions(self, zk: ZooKeeperServer) -> Iterator[Sessions]:
        # Each test gets its own chroot, so tests cannot see each other's nodes.
        chroot = f"/contract-{uuid.uuid4().hex[:8]}"
        setup = _store(zk)
        setup.ensure_path(chroot)
        setup.stop()
        made: list[ZooKeeperStore] = []

        def new() -> CoordinationStore:
            s = _store(zk, chroot)
            made.append(s)
            return s

        yield new
        for s in made:
            s.stop()

    @pytest.fixture
    def expire(self, zk: ZooKeeperServer) -> Callable[[CoordinationStore], None]:
        def do(store: CoordinationStore) -> None:
            assert isinstance(store, ZooKeeperStore)
            before = store.session_id
            expire_session(zk.hosts, store._client.client_id)
            wait_until(
                lambda: store.session_id not in (None, before),
                10,
                "a new session after expiry",
            )

        return do


def test_a_digest_acl_keeps_other_clients_out(zk: ZooKeeperServer) -> None:
    root = f"/acl-{uuid.uuid4().hex[:8]}"
    owner = _store(zk, auth="squall:s3cret")
    intruder = _store(zk)
    wrong = _store(zk, auth="squall:guess")
    try:
        owner.create(f"{root}/assignments/t", b"mine", makepath=True)
        for client in (intruder, wrong):
            with pytest.raises(NotAuthorizedError):
                client.get(f"{root}/assignments/t")
            with pytest.raises(NotAuthorizedError):
                client.set(f"{root}/assignments/t", b"theirs")
        assert owner.get(f"{root}/assignments/t")[0] == b"mine"
    finally:
        for s in (owner, intruder, wrong):
            s.stop()


def test_an_expired_leader_is_fenced_and_the_standby_takes_over(zk: ZooKeeperServer) -> None:
    root = f"/fence-{uuid.uuid4().hex[:8]}"
    s1, s2 = _store(zk), _store(zk)
    try:
        a_state, b_state = ClusterState(s1, root), ClusterState(s2, root)
        a_state.setup()
        s1.create(f"{root}/assignments/t", b"v0")
        a = LeaderElection(a_state, NimbusInfo("a", "127.0.0.1", 1))
        b = LeaderElection(b_state, NimbusInfo("b", "127.0.0.1", 2))
        a.join()
        b.join()
        assert a.is_leader() and not b.is_leader()
        old_fence = a.fence()
        a_state.commit_fenced(old_fence, [SetData(f"{root}/assignments/t", b"by a")])
        expire_session(zk.hosts, s1._client.client_id)
        wait_until(b.is_leader, 10, "the standby to lead")
        wait_until(lambda: s1.session_id is not None, 10, "the old leader's new session")
        # The old leader, back with a stale view of its leadership, cannot write any more.
        with pytest.raises(NotLeaderError):
            a_state.commit_fenced(old_fence, [SetData(f"{root}/assignments/t", b"stale")])
        b_state.commit_fenced(b.fence(), [SetData(f"{root}/assignments/t", b"by b")])
        assert s2.get(f"{root}/assignments/t")[0] == b"by b"
        # After re-joining in its new session, the old leader stands behind the new one.
        a.join()
        assert not a.is_leader() and b.is_leader()
    finally:
        s1.stop()
        s2.stop()
