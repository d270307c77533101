"""Exactly-once under kill -9: Trident word count over a Redis stream, workers killed repeatedly.

Local mode with 2 worker processes. Each round starts the topology, lets it
work for a moment, ``kill -9``s one of its workers (a pid this test started),
stops the rest, and starts it again: the coordinator continues after the last
txid it committed, transactional batches are replayed identically, and the
opaque state skips or redoes each batch by txid. At the end every word's count
in Redis equals the truth exactly. The same chaos against a stateful bolt
(at-least-once) may only overcount, never undercount.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.redis_server import redis_server
from tests.trident_topologies import stateful_word_count, trident_word_count

from squall import LocalCluster
from squall.state import MapState, RedisBackend

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

VOCABULARY = [f"w{i}" for i in range(40)]


@pytest.fixture
def redis() -> Iterator[RedisBackend]:
    with redis_server() as backend:
        yield backend


def load(redis: RedisBackend, stream: str, n: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    client = redis.client()
    truth: Counter[str] = Counter()
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        words = rng.choices(VOCABULARY, k=rng.randint(3, 8))
        truth.update(words)
        pipe.xadd(stream, {"sentence": " ".join(words)})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    client.close()
    return truth


def died(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` is gone or a zombie (the kill took), False if it lives on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False


def chaos(
    cluster: LocalCluster,
    name: str,
    topology: Any,
    conf: dict[str, Any],
    rounds: int,
    rng: random.Random,
    progress: Any,
) -> int:
    """Start, wait, kill -9 one worker, stop the rest; ``rounds`` times. Returns how many
    of the kills took (the victim was seen dead)."""
    kills = 0
    for _ in range(rounds):
        run = cluster.submit(name, topology, conf)
        time.sleep(rng.uniform(0.5, 2.0))
        pids = run.worker_pids
        victim = rng.choice(pids)
        os.kill(victim, signal.SIGKILL)  # a worker process this test started
        kills += died(victim)
        cluster.kill(name)
        print(f"killed worker pid {victim}; progress {progress()}")
    return kills


@pytest.mark.parametrize("opaque", [False, True], ids=["transactional", "opaque"])
def test_trident_counts_in_redis_equal_the_truth_after_repeated_kill_9(
    redis: RedisBackend, opaque: bool
) -> None:
    truth = load(redis, "sentences", 6000, seed=1)
    total = sum(truth.values())
    topology = trident_word_count(redis, "sentences", opaque=opaque, batch_size=10)
    conf = {
        "topology.workers": 2,
        "topology.max.spout.pending": 3,
        "topology.trident.batch.emit.interval.millis": 10,
        "topology.message.timeout.secs": 5,
    }
    state = MapState(redis.connect(), "trident:twc:counts", "opaque")

    def counted() -> int:
        return sum(state.items().values())

    started = time.monotonic()
    with LocalCluster() as cluster:
        kills = chaos(cluster, "twc", topology, conf, 5, random.Random(7), counted)
        cluster.submit("twc", topology, conf)
        deadline = time.monotonic() + 90
        while counted() < total and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # anything more (it must not come) would show now
        cluster.kill("twc")
    counts = {k[0]: v for k, v in state.items().items()}
    lives = redis.connect().get_many("trident-coord:sentences", ["lives"])[0]
    print(
        f"trident exactly-once ({'opaque' if opaque else 'transactional'} spout): "
        f"{kills} kill -9, {lives} coordinator lives, "
        f"{total} words, {time.monotonic() - started:.1f}s"
    )
    assert counts == truth
    assert kills == 5


def test_a_stateful_bolt_never_undercounts_after_repeated_kill_9(redis: RedisBackend) -> None:
    truth = load(redis, "sentences", 3000, seed=2)
    topology = stateful_word_count(redis, "sentences")
    conf = {
        "topology.workers": 2,
        "topology.max.spout.pending": 500,
        "topology.message.timeout.secs": 5,
        "topology.state.provider": redis,
        "topology.state.checkpoint.interval.ms": 200,
    }
    client = redis.client()

    def counts() -> Counter[str]:
        out: Counter[str] = Counter()
        for key in client.keys(f"{redis.prefix}state:swc:count:*"):
            if not key.endswith((":prepare", ":meta")):
                for k, v in client.hgetall(key).items():
                    out[k.strip('"')] += int(v)
        return out

    def pending() -> int:
        return int(client.xpending("sentences", "wc")["pending"])

    with LocalCluster() as cluster:
        kills = chaos(
            cluster, "swc", topology, conf, 4, random.Random(8), lambda: sum(counts().values())
        )
        cluster.submit("swc", topology, conf)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            info = client.xinfo_groups("sentences")[0]
            if (
                info["pending"] == 0
                and info["last-delivered-id"]
                == client.xinfo_stream("sentences")["last-generated-id"]
            ):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # the last checkpoint
        cluster.kill("swc")
    got = counts()
    short = {w: truth[w] - got[w] for w in truth if got[w] < truth[w]}
    excess = sum(got.values()) - sum(truth.values())
    print(f"stateful at-least-once: {kills} kill -9, {sum(truth.values())} words, excess {excess}")
    assert short == {}
    assert pending() == 0
