"""Trident word count against the plain (at-least-once, acked) word count, in one run.

Every row counts the same words: ``--sentences`` sentences cycling over the five
of ``bench/wordcount.py`` (6.4 words per sentence), split into words and counted
per word.

Rows:

* ``plain-ack``: bench/wordcount.py's ``squall-ack`` row (spout -> split ->
  count, par 2 each, acking on, max spout pending 1000), one engine driven by
  ``Engine.run_once`` on this thread; the clock stops when every tree is acked.
* ``trident-memory``: the Trident tutorial's word count (a transactional spout
  over the same sentences -> ``each(split)`` -> ``group_by(word)`` ->
  ``persistent_aggregate(Count)`` into an opaque map state in memory, par 2),
  driven the same way; the clock stops when the last batch has *committed*.
* ``trident-redis``: the same with the state (and the coordinator's metadata) in
  a redis-server this script starts on a free loopback port (skipped when
  ``redis-server`` is missing).

Batch latency is each batch's time from its start to its commit, p50/p99 over
the run. Batches of ``--batch`` sentences, ``topology.max.spout.pending`` =
``--pending`` batches in flight, no emit interval. Each row runs ``--repeat``
times, interleaved; the median is printed with the ratio to ``plain-ack`` and
the target check (Trident >= 0.5x plain with acking; PASS/FAIL, nothing asserted).

Run: ``.venv/bin/python bench/trident.py`` (about a minute), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wordcount as plain

from squall.state import Backend, MapStateFactory, MemoryBackend, RedisBackend
from squall.trident import Count, TransactionalSpout, TridentTopology

SENTENCES = plain.SENTENCES
_names = itertools.count()


class Timing(NamedTuple):
    secs: float
    words: int
    batch_p50_ms: float = 0.0
    batch_p99_ms: float = 0.0


class CycleSpout(TransactionalSpout):
    """Sentences ``0 .. total-1`` (cycling over the five), ``batch`` per batch."""

    fields = ("sentence",)

    def __init__(self, total: int, batch: int) -> None:
        self.total = total
        self.batch = batch

    def is_ready(self, txid: int) -> bool:
        return (txid - 1) * self.batch < self.total

    def new_batch(self, partition: str, last_meta: Any) -> Any:
        start = 0 if last_meta is None else int(last_meta[1])
        return [start, min(self.total, start + self.batch)]

    def read_batch(self, partition: str, meta: Any) -> Iterable[Sequence[Any]]:
        return [(SENTENCES[i % 5],) for i in range(int(meta[0]), int(meta[1]))]


def split(sentence: str) -> list[str]:
    return sentence.split()


def trident_topology(n: int, batch: int, backend: Backend) -> TridentTopology:
    t = TridentTopology(meta=backend)
    (
        t.new_stream(f"sentences{next(_names)}", CycleSpout(n, batch), parallelism=2)
        .each(["sentence"], split, ["word"])
        .group_by(["word"])
        .persistent_aggregate(MapStateFactory(backend), Count(), ["count"], state_id="counts")
        .parallelism_hint(2)
    )
    return t


def run_trident(n: int, batch: int, pending: int, backend: Backend) -> Timing:
    from squall.api.topology import as_definition
    from squall.runtime.engine import Engine
    from squall.runtime.plan import make_plan

    conf = {
        "topology.max.spout.pending": pending,
        "topology.trident.batch.emit.interval.millis": 0,
        "topology.acker.executors": 1,
        "topology.name": "trident-bench",
    }
    d = as_definition(trident_topology(n, batch, backend), "trident-bench").with_config(conf)
    engine = Engine(make_plan(d, conf))
    engine.start()
    coord = next(
        t.component
        for ex in engine.executors
        if ex.component.startswith("$mastercoord")
        for t in ex.tasks.values()
    )
    batches = -(-n // batch)
    run_once = engine.run_once
    t0 = time.perf_counter()
    while coord.committed < batches:
        run_once()
    dt = time.perf_counter() - t0
    engine.shutdown()
    lat = sorted(coord.batch_latencies_ms)
    p50 = statistics.median(lat) if lat else 0.0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0
    return Timing(dt, plain.word_count(n), p50, p99)


def run_plain(n: int) -> Timing:
    t = plain.run_squall_engine(n, True)
    return Timing(t.wall, t.words)


@contextmanager
def redis_server() -> Iterator[RedisBackend | None]:
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        try:
            backend = RedisBackend("127.0.0.1", port, prefix="bench:")
            client = backend.client()
            for _ in range(500):
                try:
                    client.ping()
                    break
                except Exception:
                    time.sleep(0.01)
            client.close()
            yield backend
        finally:
            proc.terminate()
            proc.wait(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=150_000)
    ap.add_argument("--batch", type=int, default=2000, help="sentences per batch")
    ap.add_argument("--pending", type=int, default=3, help="batches in flight")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.sentences, args.repeat = 20_000, 1
    n = args.sentences
    results: dict[str, list[Timing]] = {"plain-ack": [], "trident-memory": [], "trident-redis": []}
    with redis_server() as redis:
        for _ in range(args.repeat):
            results["plain-ack"].append(run_plain(n))
            mem = MemoryBackend(f"bench{next(_names)}")
            results["trident-memory"].append(run_trident(n, args.batch, args.pending, mem))
            if redis is not None:
                # A fresh key prefix per run: the state and metadata start empty.
                fresh = RedisBackend(redis.host, redis.port, prefix=f"bench{next(_names)}:")
                results["trident-redis"].append(run_trident(n, args.batch, args.pending, fresh))
    print(
        f"{n:,} sentences ({plain.word_count(n):,} words), batches of {args.batch}, "
        f"{args.pending} in flight, median of {args.repeat}; python {sys.version.split()[0]}"
    )
    print(f"{'row':16} {'words/s':>12} {'x plain':>8} {'batch p50 ms':>13} {'p99 ms':>9}")
    base = None
    for row, timings in results.items():
        if not timings:
            print(f"{row:16} {'skipped (no redis-server)':>12}")
            continue
        rates = sorted(t.words / t.secs for t in timings)
        rate = statistics.median(rates)
        if base is None:
            base = rate
        mid = timings[[t.words / t.secs for t in timings].index(rates[len(rates) // 2])]
        lat = f"{mid.batch_p50_ms:13.1f} {mid.batch_p99_ms:9.1f}" if mid.batch_p50_ms else ""
        ratio = rate / base
        verdict = ""
        if row.startswith("trident"):
            verdict = "  PASS" if ratio >= 0.5 else "  FAIL"
            verdict += " (target >= 0.5x plain-ack)"
        print(f"{row:16} {rate:12,.0f} {ratio:8.2f} {lat}{verdict}")


if __name__ == "__main__":
    main()
