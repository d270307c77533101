"""The coordination store's contract, checked on the in-memory store.

``tests/integration/test_cluster_zookeeper.py`` runs the same contract against a
real ZooKeeper, so the in-memory store cannot drift from ZooKeeper's semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from squall.cluster.memory import MemoryZooKeeper
from squall.cluster.store import (
    BadVersionError,
    Check,
    ConnectionState,
    CoordinationStore,
    CoordinationUnavailableError,
    Create,
    Delete,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    SetData,
)

Sessions = Callable[[], CoordinationStore]


class StoreContract:
    """Tests every store must pass; subclasses provide ``sessions`` and ``expire``."""

    @pytest.fixture
    def sessions(self) -> Iterator[Sessions]:
        raise NotImplementedError

    @pytest.fixture
    def expire(self) -> Callable[[CoordinationStore], None]:
        raise NotImplementedError

    def test_a_created_node_reads_back_with_version_zero(self, sessions: Sessions) -> None:
        s = sessions()
        s.create("/t/a", b"hello", makepath=True)
        assert s.get("/t/a") == (b"hello", 0)
        assert s.exists("/t/a") == 0
        assert s.exists("/t/missing") is None

    def test_creating_an_existing_node_fails(self, sessions: Sessions) -> None:
        s = sessions()
        s.create("/t/a", makepath=True)
        with pytest.raises(NodeExistsError):
            s.create("/t/a")

    def test_creating_under_a_missing_parent_fails_without_makepath(
        self, sessions: Sessions
    ) -> None:
        s = sessions()
        with pytest.raises(NoNodeError):
            s.create("/nowhere/child")

    def test_a_write_with_the_wrong_version_is_refused(self, sessions: Sessions) -> None:
        s = sessions()
        s.create("/t/a", b"1", makepath=True)
        assert s.set("/t/a", b"2", version=0) == 1
        with pytest.raises(BadVersionError):
            s.set("/t/a", b"3", version=0)
        assert s.get("/t/a") == (b"2", 1)

    def test_children_are_listed_sorted(self, sessions: Sessions) -> None:
        s = sessions()
        for name in ("b", "a", "c"):
            s.create(f"/t/{name}", makepath=True)
        assert s.children("/t") == ["a", "b", "c"]

    def test_sequential_nodes_get_increasing_suffixes(self, sessions: Sessions) -> None:
        s = sessions()
        s.ensure_path("/t")
        first = s.create("/t/n_", sequence=True)
        second = s.create("/t/n_", sequence=True)
        assert first.startswith("/t/n_") and second.startswith("/t/n_")
        assert int(second.rpartition("_")[2]) > int(first.rpartition("_")[2])

    def test_delete_refuses_a_node_with_children_unless_recursive(self, sessions: Sessions) -> None:
        s = sessions()
        s.create("/t/a/b", makepath=True)
        with pytest.raises(NotEmptyError):
            s.delete("/t/a")
        s.delete("/t/a", recursive=True)
        assert s.exists("/t/a") is None
        s.delete("/t/a")  # a missing node is fine

    def test_ephemeral_nodes_vanish_with_their_session(self, sessions: Sessions) -> None:
        owner, other = sessions(), sessions()
        owner.create("/t/e", b"x", ephemeral=True, makepath=True)
        assert other.exists("/t/e") == 0
        owner.stop()
        assert other.exists("/t/e") is None

    def test_an_expired_session_loses_its_ephemerals_and_gets_a_new_id(
        self, sessions: Sessions, expire: Callable[[CoordinationStore], None]
    ) -> None:
        owner, other = sessions(), sessions()
        owner.create("/t/e", ephemeral=True, makepath=True)
        before = owner.session_id
        states: list[ConnectionState] = []
        owner.add_listener(states.append)
        expire(owner)
        assert other.exists("/t/e") is None
        assert ConnectionState.LOST in states
        assert owner.state is ConnectionState.CONNECTED
        assert owner.session_id is not None and owner.session_id != before

    def test_a_data_watch_fires_once_on_change(self, sessions: Sessions) -> None:
        import threading

        a, b = sessions(), sessions()
        a.create("/t/w", b"1", makepath=True)
        fired = threading.Event()
        count = []

        def on_change() -> None:
            count.append(1)
            fired.set()

        b.get("/t/w", watch=on_change)
        a.set("/t/w", b"2")
        assert fired.wait(5)
        a.set("/t/w", b"3")
        b.get("/t/w")  # a round trip: a second firing would have arrived by now
        assert len(count) == 1

    def test_a_child_watch_fires_when_a_child_is_added(self, sessions: Sessions) -> None:
        import threading

        a, b = sessions(), sessions()
        a.ensure_path("/t/kids")
        fired = threading.Event()
        b.children("/t/kids", watch=fired.set)
        a.create("/t/kids/one")
        assert fired.wait(5)

    def test_the_same_watch_set_again_and_again_fires_once(self, sessions: Sessions) -> None:
        import threading

        a, b = sessions(), sessions()
        a.ensure_path("/t/kids")
        calls: list[int] = []
        fired = threading.Event()

        def wake() -> None:
            calls.append(1)
            fired.set()

        for _ in range(50):  # a daemon re-reading every pass with its wake-up callback
            b.children("/t/kids", watch=wake)
        a.create("/t/kids/one")
        assert fired.wait(5)
        b.children("/t/kids")  # a round trip: more firings would have arrived by now
        assert calls == [1]

    def test_a_failed_watched_read_does_not_block_later_watches(self, sessions: Sessions) -> None:
        import threading

        a, b = sessions(), sessions()
        fired = threading.Event()
        with pytest.raises(NoNodeError):
            b.get("/t/later", watch=fired.set)
        a.create("/t/later", b"1", makepath=True)
        b.get("/t/later", watch=fired.set)
        a.set("/t/later", b"2")
        assert fired.wait(5)

    def test_a_commit_applies_all_operations_or_none(self, sessions: Sessions) -> None:
        s = sessions()
        s.create("/t/a", b"1", makepath=True)
        s.commit([Check("/t/a", 0), SetData("/t/a", b"2", 0), Create("/t/b", b"x")])
        assert s.get("/t/a") == (b"2", 1)
        assert s.get("/t/b") == (b"x", 0)
        with pytest.raises(BadVersionError):
            s.commit([Create("/t/c"), Check("/t/a", 0)])
        assert s.exists("/t/c") is None
        with pytest.raises(NoNodeError):
            s.commit([Check("/t/gone"), Delete("/t/b")])
        assert s.exists("/t/b") == 0


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def sessions(self) -> Iterator[Sessions]:
        zk = MemoryZooKeeper()
        yield zk.client

    @pytest.fixture
    def expire(self) -> Callable[[CoordinationStore], None]:
        def do(store: CoordinationStore) -> None:
            store.expire()  # type: ignore[attr-defined]

        return do


def test_a_suspended_session_refuses_calls_at_once_and_keeps_its_ephemerals() -> None:
    zk = MemoryZooKeeper()
    a, b = zk.client(), zk.client()
    a.create("/t/e", ephemeral=True, makepath=True)
    a.suspend()
    with pytest.raises(CoordinationUnavailableError):
        a.get("/t/e")
    assert a.session_id is None
    assert b.exists("/t/e") == 0
    a.resume()
    assert a.get("/t/e") == (b"", 0)


def test_pending_watches_fire_when_the_session_changes_state() -> None:
    zk = MemoryZooKeeper()
    a = zk.client()
    a.create("/t/w", makepath=True)
    fired: list[str] = []
    a.get("/t/w", watch=lambda: fired.append("w"))
    a.suspend()
    assert fired == ["w"]


def test_node_data_is_capped_like_zookeepers() -> None:
    s = MemoryZooKeeper().client()
    with pytest.raises(ValueError, match="byte limit"):
        s.create("/big", b"x" * (1 << 20))


def test_bad_paths_are_refused_with_the_path_named() -> None:
    s = MemoryZooKeeper().client()
    with pytest.raises(ValueError, match="'relative/path'"):
        s.create("relative/path")
    with pytest.raises(ValueError, match="invalid component"):
        s.get("/a//b")
