"""State on a real redis-server: map state replays, key-value checkpoints, Redis Streams."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tests.redis_server import redis_server

from squall import Bolt, TopologyBuilder
from squall.spouts import RedisStreamSpout
from squall.state import KeyValueState, MapState, RedisBackend
from squall.testing import simulated_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

_names = itertools.count()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisBackend]:
    with redis_server() as backend:
        yield backend


def add(n: int) -> Any:
    return lambda old: (old or 0) + n


@pytest.mark.parametrize("kind", ["opaque", "transactional"])
def test_replayed_batches_on_redis_leave_the_state_of_one_clean_run(
    redis: RedisBackend, kind: str
) -> None:
    state = MapState(redis.connect(), f"m{next(_names)}", kind)
    final = {1: {"a": 1, "b": 2}, 2: {"a": 3}, 3: {"b": 4, "c": 5}}
    for txid, batch in final.items():
        for attempt in range(3):
            # Failed attempts write part of the batch (opaque: with other values).
            partial = dict(list(batch.items())[: attempt + 1]) if attempt < 2 else batch
            values = (
                partial
                if kind == "transactional" or attempt == 2
                else {k: v * 10 for k, v in partial.items()}
            )
            state.begin_commit(txid)
            state.multi_update([(k,) for k in values], [add(v) for v in values.values()])
            state.commit(txid)
    assert state.items() == {("a",): 4, ("b",): 6, ("c",): 5}
    # The stored forms are Storm's: [value, txid] or [curr, prev, txid], as JSON.
    raw = redis.client().hget(f"{redis.prefix}{state.table}", '["c"]')
    assert raw == ("[5, 3]" if kind == "transactional" else "[5, null, 3]")


def test_a_prepared_key_value_checkpoint_survives_a_new_connection(redis: RedisBackend) -> None:
    table = f"kv{next(_names)}"
    state = KeyValueState(redis.connect(), table)
    state.put("dog", 3)
    state.prepare_commit(7)
    other = KeyValueState(redis.connect(), table)
    assert other.get("dog") is None
    other.commit(7)
    assert KeyValueState(redis.connect(), table).get("dog") == 3


SEEN: list[str] = []


class FailFirstTime(Bolt):
    """Fails each sentence the first time it sees it; records the rest."""

    auto_ack = False
    failed: set[str] = set()

    def process(self, tup: Any) -> None:
        s = tup.values.sentence
        if s not in FailFirstTime.failed:
            FailFirstTime.failed.add(s)
            self.fail(tup)
            return
        SEEN.append(s)
        self.ack(tup)


def test_the_stream_spout_acks_with_xack_and_redelivers_failed_entries(
    redis: RedisBackend,
) -> None:
    stream = f"s{next(_names)}"
    client = redis.client()
    for i in range(50):
        client.xadd(stream, {"sentence": f"s{i}", "other": "x"})
    b = TopologyBuilder()
    b.set_spout(
        "src", RedisStreamSpout, outputs=["sentence"], redis=redis, stream=stream, group="g"
    )
    b.set_bolt("check", FailFirstTime).shuffle_grouping("src")
    with simulated_cluster() as cluster:
        cluster.submit("streams", b)
        for _ in range(5):
            cluster.run_until_idle()
        cluster.kill("streams")  # closing the spout flushes its pending XACKs
    assert sorted(SEEN) == sorted(f"s{i}" for i in range(50))
    assert client.xpending(stream, "g")["pending"] == 0


class Hold(Bolt):
    """Never acks."""

    auto_ack = False

    def process(self, tup: Any) -> None:
        pass


def test_entries_delivered_but_never_acked_are_read_again_after_a_restart(
    redis: RedisBackend,
) -> None:
    stream = f"s{next(_names)}"
    client = redis.client()
    for i in range(10):
        client.xadd(stream, {"sentence": f"s{i}"})

    def topology(bolt: type[Bolt]) -> TopologyBuilder:
        b = TopologyBuilder()
        b.set_spout(
            "src", RedisStreamSpout, outputs=["sentence"], redis=redis, stream=stream, group="g"
        )
        b.set_bolt("b", bolt).shuffle_grouping("src")
        return b

    with simulated_cluster() as cluster:
        cluster.submit("hold", topology(Hold))
        cluster.run_until_idle()
        cluster.kill("hold")
        assert client.xpending(stream, "g")["pending"] == 10
        SEEN.clear()
        FailFirstTime.failed = {f"s{i}" for i in range(10)}
        cluster.submit("hold", topology(FailFirstTime))
        for _ in range(3):
            cluster.run_until_idle()
        cluster.kill("hold")
    assert sorted(SEEN) == sorted(f"s{i}" for i in range(10))
    assert client.xpending(stream, "g")["pending"] == 0


def test_a_stateful_word_count_on_redis_restarts_from_its_checkpoint(redis: RedisBackend) -> None:
    from tests.trident_topologies import stateful_word_count

    stream = f"s{next(_names)}"
    client = redis.client()
    sentences = [f"a b c{i % 3}" for i in range(30)]
    for s in sentences[:15]:
        client.xadd(stream, {"sentence": s})
    conf = {"topology.state.provider": redis, "topology.state.checkpoint.interval.ms": 500}
    with simulated_cluster() as cluster:
        cluster.submit("swc", stateful_word_count(redis, stream), conf)
        cluster.advance_time(2, step=0.5)
        cluster.kill("swc")
        for s in sentences[15:]:
            client.xadd(stream, {"sentence": s})
        cluster.submit("swc", stateful_word_count(redis, stream), conf)
        cluster.advance_time(2, step=0.5)
        cluster.kill("swc")
    counts: Counter[str] = Counter()
    for key in client.keys(f"{redis.prefix}state:swc:count:*"):
        if key.endswith((":prepare", ":meta")):
            continue
        for k, v in client.hgetall(key).items():
            counts[k.strip('"')] += int(v)
    assert counts == Counter(w for s in sentences for w in s.split())
