"""The acker's XOR ledger and the rotating map behind every timeout.

Property tests build random tuple trees (and DAGs: a tuple may be anchored to
several earlier tuples), derive the messages Storm's collectors would send, and
feed them to the ledger in random orders, acks before the init included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall import Bolt, TopologyBuilder
from squall.runtime.acker import ACK, FAIL, RESET, AckerLedger
from squall.runtime.rotating_map import RotatingMap
from squall.testing import FeederSpout, advance_until, simulated_cluster

pytestmark = pytest.mark.timeout(60)

ROOT = 0x5EED
SPOUT_TASK = 7


@dataclass(frozen=True)
class Msg:
    kind: str  # "init" | "ack" | "fail"
    val: int = 0


@st.composite
def trees(draw: st.DrawFn) -> tuple[Msg, list[Msg]]:
    """A random tuple DAG as (the spout's init message, one ack message per tuple).

    Tuple 0..n-1; a tuple is either a spout delivery (one edge from the spout) or
    a bolt emit anchored to 1-3 earlier tuples (one fresh edge per anchor, as in
    Storm). Edge ids are random 64-bit values, as in the runtime.
    """
    n = draw(st.integers(min_value=0, max_value=25))
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    init_val = 0
    own = [0] * n  # XOR of the edges into each tuple (its anchor-map value)
    children = [0] * n  # XOR of the edges out of each tuple (added to its ack)
    for i in range(n):
        from_spout = i == 0 or draw(st.booleans())
        if from_spout:
            e = rng.getrandbits(64)
            init_val ^= e
            own[i] ^= e
        else:
            parents = draw(
                st.lists(st.integers(0, i - 1), min_size=1, max_size=3)
            )  # duplicates allowed: anchoring the same tuple twice
            for p in parents:
                e = rng.getrandbits(64)
                children[p] ^= e
                own[i] ^= e
    acks = [Msg("ack", own[i] ^ children[i]) for i in range(n)]
    return Msg("init", init_val), acks


def apply(ledger: AckerLedger, msg: Msg) -> tuple[int, str, int, float] | None:
    if msg.kind == "init":
        return ledger.init(ROOT, msg.val, SPOUT_TASK)
    if msg.kind == "ack":
        return ledger.ack(ROOT, msg.val)
    return ledger.fail(ROOT)


@settings(max_examples=150, deadline=None)
@given(tree=trees(), order=st.randoms(use_true_random=False), data=st.data())
def test_tree_completes_exactly_when_its_last_edge_is_acked(
    tree: tuple[Msg, list[Msg]], order: random.Random, data: st.DataObject
) -> None:
    init, acks = tree
    # Drop some acks: then the tree must never complete.
    keep = data.draw(st.lists(st.booleans(), min_size=len(acks), max_size=len(acks)))
    sent = [a for a, k in zip(acks, keep, strict=True) if k]
    msgs = [init, *sent]
    order.shuffle(msgs)
    ledger = AckerLedger(now=lambda: 0.0)
    outcomes = [apply(ledger, m) for m in msgs]
    if len(sent) == len(acks):
        assert outcomes[:-1] == [None] * (len(msgs) - 1)
        assert outcomes[-1] == (SPOUT_TASK, ACK, ROOT, 0.0)
        assert len(ledger) == 0
    else:
        assert outcomes == [None] * len(msgs)


@settings(max_examples=150, deadline=None)
@given(tree=trees(), order=st.randoms(use_true_random=False), data=st.data())
def test_a_fail_fails_the_root_once_and_nothing_follows(
    tree: tuple[Msg, list[Msg]], order: random.Random, data: st.DataObject
) -> None:
    init, acks = tree
    msgs = [init, *acks]
    order.shuffle(msgs)
    at = data.draw(st.integers(0, len(msgs)))
    msgs.insert(at, Msg("fail"))
    ledger = AckerLedger(now=lambda: 0.0)
    outcomes = [(i, o) for i, m in enumerate(msgs) if (o := apply(ledger, m)) is not None]
    assert len(outcomes) == 1
    where, (task, kind, root, _delta) = outcomes[0]
    assert (task, root) == (SPOUT_TASK, ROOT)
    init_at = msgs.index(init)
    if kind == ACK:
        # Only a tree that was complete before the fail was seen can be acked.
        assert where < at or (where == init_at and init_at > at and where == len(msgs) - 1)
    else:
        assert kind == FAIL
        assert where == max(at, init_at)


def test_ack_before_init_is_remembered() -> None:
    ledger = AckerLedger(now=lambda: 0.0)
    assert ledger.ack(1, 0b1010) is None
    assert ledger.init(1, 0b1010, spout_task=3) == (3, ACK, 1, 0.0)


def test_empty_tree_is_acked_at_init() -> None:
    ledger = AckerLedger(now=lambda: 0.0)
    assert ledger.init(1, 0, spout_task=3) == (3, ACK, 1, 0.0)


def test_reset_timeout_reports_reset_and_keeps_the_tree() -> None:
    ledger = AckerLedger(now=lambda: 0.0)
    ledger.init(1, 5, spout_task=2)
    assert ledger.reset_timeout(1) == (2, RESET, 1, 0.0)
    assert len(ledger) == 1
    assert ledger.ack(1, 5) == (2, ACK, 1, 0.0)


def test_reset_timeout_moves_the_tree_to_the_newest_bucket() -> None:
    ledger = AckerLedger(now=lambda: 0.0, buckets=3)
    ledger.init(1, 5, spout_task=2)
    ledger.rotate()
    ledger.rotate()
    ledger.reset_timeout(1)
    ledger.rotate()
    ledger.rotate()
    assert len(ledger) == 1
    assert ledger.rotate() == 1


def test_acker_entries_expire_silently_after_three_rotations() -> None:
    ledger = AckerLedger(now=lambda: 0.0)
    ledger.init(1, 5, spout_task=2)
    assert ledger.rotate() == 0
    assert ledger.rotate() == 0
    assert ledger.rotate() == 1
    assert len(ledger) == 0


def test_outcome_reports_the_time_since_the_tree_was_first_seen() -> None:
    now = [10.0]
    ledger = AckerLedger(now=lambda: now[0])
    ledger.init(1, 5, spout_task=2)
    now[0] = 10.25
    assert ledger.ack(1, 5) == (2, ACK, 1, 250.0)


# -- the rotating map -------------------------------------------------------------


def test_rotating_map_put_moves_a_key_to_the_newest_bucket() -> None:
    m: RotatingMap[str, int] = RotatingMap(2)
    m.put("a", 1)
    assert m.rotate() == []
    m.put("a", 2)
    assert m.rotate() == []
    assert m.rotate() == [("a", 2)]
    assert len(m) == 0


def test_rotating_map_get_pop_and_contains() -> None:
    m: RotatingMap[str, int] = RotatingMap(3)
    m.put("a", 1)
    m.rotate()
    assert "a" in m and m.get("a") == 1 and len(m) == 1
    assert m.pop("a") == 1
    assert m.pop("a") is None and m.get("a") is None and "a" not in m


def test_rotating_map_needs_two_buckets() -> None:
    with pytest.raises(ValueError, match="at least 2 buckets"):
        RotatingMap(1)


@settings(max_examples=100, deadline=None)
@given(
    buckets=st.integers(2, 5),
    ops=st.lists(st.one_of(st.just("rotate"), st.integers(0, 5)), max_size=60),
)
def test_rotating_map_expires_a_key_after_buckets_minus_one_to_buckets_rotations(
    buckets: int, ops: list[object]
) -> None:
    m: RotatingMap[int, int] = RotatingMap(buckets)
    age: dict[int, int] = {}  # key -> rotations since its last put
    for op in ops:
        if op == "rotate":
            expired = {k for k, _ in m.rotate()}
            for k in list(age):
                age[k] += 1
            assert expired == {k for k, a in age.items() if a == buckets}
            for k in expired:
                del age[k]
        else:
            assert isinstance(op, int)
            m.put(op, op)
            age[op] = 0
        assert len(m) == len(age)


# -- timeouts in a running topology --------------------------------------------------


class Hold(Bolt):
    auto_ack = False

    def process(self, tup: object) -> None:
        pass


@settings(max_examples=25, deadline=None)
@given(offset_quarters=st.integers(0, 3 * 16))
def test_an_unacked_tuple_times_out_between_t_and_2t_after_its_emit(offset_quarters: int) -> None:
    timeout = 4
    feeder = FeederSpout(["n"])
    b = TopologyBuilder()
    b.set_spout("feed", feeder)
    b.set_bolt("hold", Hold).shuffle_grouping("feed")
    with simulated_cluster() as cluster:
        cluster.submit("t", b, {"topology.message.timeout.secs": timeout})
        cluster.advance_time(offset_quarters / 4, step=0.25)
        emitted_at = cluster.clock.now()
        feeder.feed([1], msg_id="x")
        cluster.run_until_idle()
        assert feeder.tracker.failed == []
        waited = advance_until(cluster, lambda: feeder.tracker.is_failed("x"), step=0.25)
    assert timeout <= waited <= 2 * timeout
    assert cluster.clock.now() - emitted_at == waited
