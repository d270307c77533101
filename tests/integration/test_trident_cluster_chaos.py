"""The issue's proof on a real cluster: Trident word count over a Redis stream, kill -9 of workers.

ZooKeeper + nimbus + 2 supervisors on loopback (tests/chaos/harness.py), a
redis-server this test starts, and the Trident word count submitted with
``squall submit``. While it runs, a worker (a pid its supervisor recorded) is
killed with SIGKILL every few seconds and its supervisor starts it again. At the
end every word's count in Redis equals the true count exactly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.chaos.harness import Cluster, running_cluster, wait_until
from tests.chaos.test_cluster_faults import kill_worker
from tests.integration.test_trident_redis_exactly_once import load
from tests.redis_server import redis_server

from squall.state import MapState, RedisBackend

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOPOLOGY = '''\
"""Trident word count over the Redis stream "sentences" (written by the test)."""

from squall.state import MapStateFactory, RedisBackend
from squall.trident import Count, TridentTopology
from squall.trident.sources import RedisStreamTransactionalSpout

REDIS = RedisBackend("127.0.0.1", {port}, prefix="{prefix}")


def split(sentence):
    return sentence.split()


def build():
    t = TridentTopology(exactly_once=True, meta=REDIS)
    spout = RedisStreamTransactionalSpout(REDIS, ["sentences"], ["sentence"], batch_size=10)
    (
        t.new_stream("sentences", spout)
        .each(["sentence"], split, ["word"])
        .group_by(["word"])
        .persistent_aggregate(
            MapStateFactory(REDIS, kind="opaque", table="counts"), Count(), ["count"]
        )
        .parallelism_hint(2)
    )
    return t.build("trident-chaos")


wordcount = build()
'''


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster(supervisors=2, slots=2) as c:
        yield c


@pytest.fixture
def redis() -> Iterator[RedisBackend]:
    with redis_server() as backend:
        yield backend


def submit(
    cluster: Cluster,
    source: Path,
    template: str,
    redis: RedisBackend,
    name: str,
    conf: dict[str, Any],
) -> None:
    """Write ``template`` (for this redis) into its own project folder and ``squall submit`` it."""
    source.parent.mkdir()
    source.write_text(template.format(port=redis.port, prefix=redis.prefix))
    args = ["submit", str(source), "--name", name]
    for k, v in conf.items():
        args += ["-c", f"{k}={v}"]
    cluster.squall(*args)


def test_trident_counts_are_exact_with_workers_killed_on_a_cluster(
    cluster: Cluster, redis: RedisBackend, tmp_path: Path
) -> None:
    truth = load(redis, "sentences", 10000, seed=3)
    total = sum(truth.values())
    conf = {
        "topology.workers": 2,
        "topology.max.spout.pending": 3,
        "topology.trident.batch.emit.interval.millis": 10,
        "topology.message.timeout.secs": 5,
    }
    submit(
        cluster, tmp_path / "trident_project" / "trident_chaos.py", TOPOLOGY, redis, "tchaos", conf
    )
    wait_until(lambda: cluster.running_workers("tchaos") == 2, 60, "2 running workers")
    state = MapState(redis.connect(), "counts", "opaque")

    def counted() -> int:
        return sum(state.items().values())

    rng = random.Random(3)
    kills, restart_secs = 0, []
    started = time.monotonic()
    while counted() < total * 0.8 and kills < 8:
        time.sleep(rng.uniform(1.0, 2.5))
        _slot, _pid, secs = kill_worker(cluster, rng.randrange(4))
        kills += 1
        restart_secs.append(secs)
        print(f"kill -9 #{kills}: {counted()} of {total} words counted")
    wait_until(lambda: counted() >= total, 180, "every word counted")
    time.sleep(1.0)  # anything beyond the truth (it must not come) would show now
    counts = {k[0]: v for k, v in state.items().items()}
    print(
        f"cluster trident exactly-once: {kills} kill -9, restart p50 "
        f"{sorted(restart_secs)[len(restart_secs) // 2]:.1f}s, {total} words, "
        f"{time.monotonic() - started:.1f}s"
    )
    assert kills >= 3
    assert counts == truth
    cluster.squall("kill", "tchaos", "-w", "0")


STATEFUL = '''\
"""A stateful word count over the Redis stream "sentences" (at-least-once)."""

from squall import Bolt, TopologyBuilder
from squall.spouts import RedisStreamSpout
from squall.state import RedisBackend, StatefulBolt

REDIS = RedisBackend("127.0.0.1", {port}, prefix="{prefix}")


class Split(Bolt):
    outputs = ["word"]

    def process(self, tup):
        for word in tup.values.sentence.split():
            self.emit([word])


class Counter(StatefulBolt):
    outputs = ["word", "count"]

    def init_state(self, state):
        self.counts = state

    def process(self, tup):
        word = tup.values.word
        self.counts.put(word, self.counts.get(word, 0) + 1)


builder = TopologyBuilder()
builder.set_spout(
    "sentences", RedisStreamSpout, outputs=["sentence"], redis=REDIS, stream="sentences",
    group="wc", claim_idle_ms=2000,
)
builder.set_bolt("split", Split, 2).shuffle_grouping("sentences")
builder.set_bolt("count", Counter, 2).fields_grouping("split", ["word"])
'''


def test_a_stateful_bolt_never_undercounts_with_workers_killed_on_a_cluster(
    cluster: Cluster, redis: RedisBackend, tmp_path: Path
) -> None:
    truth = load(redis, "sentences", 4000, seed=4)
    conf = {
        "topology.workers": 2,
        "topology.max.spout.pending": 200,
        "topology.message.timeout.secs": 5,
        "topology.state.provider": f"redis://127.0.0.1:{redis.port}",
        "topology.state.checkpoint.interval.ms": 300,
    }
    submit(
        cluster,
        tmp_path / "stateful_project" / "stateful_chaos.py",
        STATEFUL,
        redis,
        "schaos",
        conf,
    )
    wait_until(lambda: cluster.running_workers("schaos") == 2, 60, "2 running workers")
    client = redis.client()

    def counts() -> dict[str, int]:
        out: dict[str, int] = {}
        for key in client.keys("squall:state:*:count:*"):
            if not key.endswith((":prepare", ":meta")):
                for k, v in client.hgetall(key).items():
                    out[k.strip('"')] = out.get(k.strip('"'), 0) + int(v)
        return out

    def done() -> bool:
        group = client.xinfo_groups("sentences")[0]
        last = client.xinfo_stream("sentences")["last-generated-id"]
        return bool(group["pending"] == 0 and group["last-delivered-id"] == last)

    rng = random.Random(4)
    kills = 0
    while not done() and kills < 6:
        time.sleep(rng.uniform(1.0, 2.5))
        kill_worker(cluster, rng.randrange(4))
        kills += 1
    wait_until(done, 120, "every entry acked")
    assert kills >= 1, "the run ended before any worker was killed"
    time.sleep(1.0)  # the last checkpoint
    got = counts()
    short = {w: truth[w] - got.get(w, 0) for w in truth if got.get(w, 0) < truth[w]}
    excess = sum(got.values()) - sum(truth.values())
    print(f"cluster stateful at-least-once: {kills} kill -9, excess {excess} words")
    assert short == {}
    cluster.squall("kill", "schaos", "-w", "0")
