"""Word count throughput: Squall against a bare Python loop and bytewax, in one run.

Every row counts the same words: ``--secs`` x 1M words made of the five
sentences of ``examples/wordcount.py`` (6.4 words per sentence), split into
words and given a running count per word (the count bolt's ``[word, count]``).

Rows:

* ``bare``: a plain loop, ``str.split`` + ``Counter``, building ``(word, count)``.
* ``bytewax-1``: bytewax 0.21, ``flat_map`` split -> ``key_on`` -> ``stateful_map``
  running count -> a sink that drops, ``run_main`` in this process.
* ``bytewax-2w``: the same flow with 2 worker threads in one process (``-w 2``),
  ``bytewax-2p`` with 2 processes (``-p 2``, ``cluster_main`` over localhost).
  Both run as child processes. Every bytewax row is timed from the first sentence
  read to the end, so interpreter start and connection setup are excluded.
* ``squall-noack``/``squall-ack``: the examples/wordcount.py topology (par 2
  everywhere) with a spout that stops after its share of the sentences, driven by
  calling ``Engine.run_once`` in a loop on this thread (no thread handoffs, no
  idle waits). With acking the spout emits with ``tup_id`` and the clock stops when
  every tree is acked.
* ``squall-local``: the same topology through ``LocalCluster`` (engine on its own
  thread, stats polled every 10 ms), acking off.
* ``squall-2workers``: ``topology.workers: 2`` through ``LocalCluster`` (two worker
  processes), acking off; timed from ``activate`` to the last word counted.

Each row runs ``--repeat`` times, interleaved, and the median is printed with the
ratios and the target checks (PASS/FAIL; nothing is asserted). Rows that run on
this thread also print words per CPU second of the thread, which holds up
when other processes load the machine and wall time does not.

Run: ``.venv/bin/python bench/wordcount.py`` (about a minute),
``--quick`` for a smoke run, ``--only squall-noack`` to profile one row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from squall import Bolt, Grouping, Spout, Topology

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]
WORDS_PER_CYCLE = sum(len(s.split()) for s in SENTENCES)  # 32 words per 5 sentences

# Our own topology config keys (Storm allows user keys in the topology config).
SENTENCES_KEY = "bench.sentences"
RELIABLE_KEY = "bench.reliable"

# Acking row: max spout pending per spout task. Measured 256..20000; see README.md.
MAX_SPOUT_PENDING = 1000
# bytewax TestingSource batch size: its default of 1 is ~5x slower; 100..1000 is its best.
BYTEWAX_BATCH = 1000

HERE = os.path.dirname(os.path.abspath(__file__))


class Timing(NamedTuple):
    """One run of one row: wall seconds, words counted, and CPU seconds of this thread.

    ``cpu`` is set for rows that run entirely on the calling thread; on a loaded
    machine words per CPU second stays near the unloaded figure when wall time does not.
    """

    wall: float
    words: int
    cpu: float | None = None


def sentences_for(words: int) -> int:
    """Number of sentences holding ``words`` words (rounded to whole 5-sentence cycles)."""
    return max(1, round(words / WORDS_PER_CYCLE)) * len(SENTENCES)


def sentence_list(n: int) -> list[str]:
    return [SENTENCES[i % len(SENTENCES)] for i in range(n)]


def word_count(n: int) -> int:
    """Words in the first ``n`` sentences."""
    whole, rest = divmod(n, len(SENTENCES))
    return whole * WORDS_PER_CYCLE + sum(len(s.split()) for s in SENTENCES[:rest])


# -- bare loop ------------------------------------------------------------------------------
def run_bare(n: int) -> Timing:
    """The count bolt's work with nothing around it: split, Counter, (word, count)."""
    data = sentence_list(n)
    c0 = time.thread_time()
    t0 = time.perf_counter()
    counts: Counter[str] = Counter()
    words = 0
    out = None
    for s in data:
        for w in s.split():
            counts[w] += 1
            out = (w, counts[w])
            words += 1
    dt = time.perf_counter() - t0
    cpu = time.thread_time() - c0
    assert out is not None
    return Timing(dt, words, cpu)


# -- bytewax --------------------------------------------------------------------------------
_BYTEWAX_SEEN = [0]
_FIRST_READ: list[float | None] = [None]
_FIRST_CPU = [0.0]


def _timed(items: list[str]) -> Iterator[str]:
    """Yields ``items``, noting when the first one is read: the clock starts there.

    Process startup and ``cluster_main``'s connection setup (up to a second, with
    retries) happen before it, so they are not measured.
    """
    _FIRST_READ[0] = time.time()
    _FIRST_CPU[0] = time.thread_time()
    yield from items


def bytewax_flow(n: int) -> Any:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import TestingSource

    class _Drop(StatelessSinkPartition[Any]):
        def write_batch(self, items: list[Any]) -> None:
            _BYTEWAX_SEEN[0] += len(items)

    class DropSink(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Drop:
            return _Drop()

    def running_count(state: int | None, _word: str) -> tuple[int, int]:
        c = (state or 0) + 1
        return c, c

    flow = Dataflow("wordcount")
    source = TestingSource(_timed(sentence_list(n)), batch_size=BYTEWAX_BATCH)
    s = op.input("sentences", flow, source)
    words = op.flat_map("split", s, str.split)
    keyed = op.key_on("key", words, lambda w: w)
    counted = op.stateful_map("count", keyed, running_count)
    op.output("drop", counted, DropSink())
    return flow


def run_bytewax_1(n: int) -> Timing:
    from bytewax.testing import run_main

    flow = bytewax_flow(n)
    _BYTEWAX_SEEN[0] = 0
    run_main(flow)  # type: ignore[no-untyped-call]  # runs the worker on this thread
    t1 = time.time()
    cpu = time.thread_time() - _FIRST_CPU[0]
    assert _FIRST_READ[0] is not None
    return Timing(t1 - _FIRST_READ[0], _BYTEWAX_SEEN[0], cpu)


def bytewax_child(args: argparse.Namespace) -> None:
    """Child mode: run one bytewax process and print its timings as JSON."""
    flow = bytewax_flow(args.sentences)
    t0 = time.time()
    if args.addresses:
        from bytewax.testing import cluster_main

        cluster_main(flow, args.addresses.split(";"), args.proc_id)  # type: ignore[no-untyped-call]
    else:
        from bytewax.run import cli_main

        cli_main(flow, workers_per_process=args.workers)  # type: ignore[no-untyped-call]
    t1 = time.time()
    out = {"t0": t0, "first": _FIRST_READ[0], "t1": t1, "seen": _BYTEWAX_SEEN[0]}
    print(json.dumps(out), flush=True)


def _child_cmd(n: int) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--child", "bytewax", "--sentences", str(n)]


def _collect(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"bytewax child exited {p.returncode}: {stderr.strip()[-500:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def run_bytewax_threads(n: int, workers: int = 2) -> Timing:
    cmd = [*_child_cmd(n), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (r,) = _collect([proc])
    return Timing(r["t1"] - r["first"], r["seen"])


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_bytewax_procs(n: int, procs: int = 2) -> Timing:
    return _bytewax_procs(n, procs)


def _bytewax_procs(n: int, procs: int) -> Timing:
    addresses = ";".join(f"127.0.0.1:{p}" for p in _free_ports(procs))
    children = [
        subprocess.Popen(
            [*_child_cmd(n), "--addresses", addresses, "--proc-id", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(procs)
    ]
    rs = _collect(children)
    # From the first sentence read (one process reads them all) to the last process done.
    first = min(r["first"] for r in rs if r["first"] is not None)
    return Timing(max(r["t1"] for r in rs) - first, sum(r["seen"] for r in rs))


# -- squall ---------------------------------------------------------------------------------
class SentenceSpout(Spout):
    """Emits sentences ``k, k + ntasks, ...`` below ``bench.sentences``, then nothing."""

    outputs = ["sentence"]

    def initialize(self, conf: Any, context: Any) -> None:
        ntasks = len(context.get_component_tasks(context.component_id))
        self.todo = iter(range(context.task_index, int(conf[SENTENCES_KEY]), ntasks))
        self.reliable = bool(conf[RELIABLE_KEY])

    def next_tuple(self) -> None:
        i = next(self.todo, None)
        if i is None:
            return
        if self.reliable:
            self.emit([SENTENCES[i % 5]], tup_id=i)
        else:
            self.emit([SENTENCES[i % 5]])


class SplitBolt(Bolt):
    """As in examples/wordcount.py."""

    outputs = ["word"]

    def process(self, tup: Any) -> None:
        for word in tup.values.sentence.split():
            self.emit([word])


class CountBolt(Bolt):
    """As in examples/wordcount.py."""

    outputs = ["word", "count"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: Counter[str] = Counter()

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts[word] += 1
        self.emit([word, self.counts[word]])


class WordCount(Topology):
    """examples/wordcount.py's shape: par 2 everywhere, fields grouping on ``word``."""

    sentences = SentenceSpout.spec(par=2)
    split = SplitBolt.spec(inputs=[sentences], par=2)
    count = CountBolt.spec(inputs={split: Grouping.fields("word")}, par=2)


def _conf(n: int, acking: bool, workers: int = 1) -> dict[str, Any]:
    conf: dict[str, Any] = {
        SENTENCES_KEY: n,
        RELIABLE_KEY: acking,
        "topology.workers": workers,
        "topology.acker.executors": 1 if acking else 0,
    }
    if acking:
        conf["topology.max.spout.pending"] = MAX_SPOUT_PENDING
    return conf


def run_squall_engine(n: int, acking: bool) -> Timing:
    """Drive one Engine on this thread: ``run_once`` until every word is counted (and acked)."""
    from squall.api.topology import as_definition
    from squall.runtime.engine import Engine
    from squall.runtime.plan import make_plan

    conf = _conf(n, acking)
    d = as_definition(WordCount, "wordcount").with_config(conf)
    engine = Engine(make_plan(d, conf))
    engine.start()
    counts = [ex for ex in engine.executors if ex.component == "count"]
    spouts = [ex for ex in engine.executors if ex.component == "sentences"]
    words = word_count(n)
    run_once = engine.run_once
    c0 = time.thread_time()
    t0 = time.perf_counter()
    while True:
        run_once()
        if sum(ex.stats.executed for ex in counts) >= words and (
            not acking or sum(ex.stats.acked for ex in spouts) >= n
        ):
            break
    dt = time.perf_counter() - t0
    cpu = time.thread_time() - c0
    counted = sum(ex.stats.executed for ex in counts)
    engine.shutdown()
    return Timing(dt, counted, cpu)


def _run_local_cluster(n: int, workers: int) -> Timing:
    from squall import LocalCluster

    words = word_count(n)
    with LocalCluster() as cluster:
        run = cluster.submit("wordcount", WordCount, _conf(n, False, workers), active=False)
        run.stats()  # returns once every worker is up and answering
        t0 = time.perf_counter()
        run.activate()
        counted = 0
        while counted < words:
            time.sleep(0.01)
            counted = run.stats()["count"].executed
        dt = time.perf_counter() - t0
    return Timing(dt, counted)


def run_squall_local(n: int) -> Timing:
    return _run_local_cluster(n, 1)


def run_squall_workers(n: int) -> Timing:
    return _run_local_cluster(n, 2)


# -- the table ------------------------------------------------------------------------------
ROWS: dict[str, tuple[str, Callable[[int], Timing]]] = {
    "bare": ("bare Python loop (split + Counter)", run_bare),
    "bytewax-1": ("bytewax 0.21.1, 1 worker", run_bytewax_1),
    "bytewax-2w": ("bytewax, 2 workers (-w 2, threads)", run_bytewax_threads),
    "bytewax-2p": ("bytewax, 2 processes (-p 2)", run_bytewax_procs),
    "squall-noack": ("squall, 1 process, acking off", lambda n: run_squall_engine(n, False)),
    "squall-ack": (
        f"squall, 1 process, acking on (pending {MAX_SPOUT_PENDING})",
        lambda n: run_squall_engine(n, True),
    ),
    "squall-local": ("squall, LocalCluster thread, acking off", run_squall_local),
    "squall-2workers": ("squall, 2 worker processes, acking off", run_squall_workers),
}


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}"


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def fmt_rate(r: float | None) -> str:
    return "n/a" if r is None else f"{r / 1e6:.2f}M"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--secs", type=float, default=1.0, help="input size: SECS x 1M words")
    p.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    p.add_argument("--quick", action="store_true", help="smoke run: --secs 0.1 --repeat 1")
    p.add_argument("--only", action="append", choices=sorted(ROWS), help="run only these rows")
    p.add_argument("--json", help="also write the medians to this file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--sentences", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--addresses", help=argparse.SUPPRESS)
    p.add_argument("--proc-id", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child == "bytewax":
        bytewax_child(args)
        return
    if args.quick:
        args.secs, args.repeat = 0.1, 1

    n = sentences_for(int(args.secs * 1_000_000))
    words = word_count(n)
    names = args.only or list(ROWS)
    print(f"machine: {machine()}")
    print(f"input:   {n:,} sentences, {words:,} words; median of {args.repeat} run(s)")
    print(f"load average before the run: {_loadavg()}")

    rates: dict[str, list[float]] = {k: [] for k in names}
    cpu_rates: dict[str, list[float]] = {k: [] for k in names}
    errors: dict[str, str] = {}
    for _ in range(args.repeat):
        for key in names:
            if key in errors:
                continue
            try:
                t = ROWS[key][1](n)
            except Exception as e:  # a row that cannot run says why and the rest go on
                errors[key] = f"{type(e).__name__}: {e}".splitlines()[0][:120]
                continue
            if t.words != words:
                errors[key] = f"counted {t.words:,} words, expected {words:,}"
                continue
            rates[key].append(words / t.wall)
            if t.cpu:
                cpu_rates[key].append(words / t.cpu)

    print(f"load average after the run: {_loadavg()} (other processes skew the figures)\n")
    med = {k: statistics.median(v) if v else None for k, v in rates.items()}
    cpu = {k: statistics.median(v) if v else None for k, v in cpu_rates.items()}
    bare, bw1 = med.get("bare"), med.get("bytewax-1")
    print(
        f"{'row':44s} {'words/s':>8s} {'vs bare':>8s} {'vs bytewax-1':>12s} "
        f"{'per CPU-s':>9s}  runs (M words/s)"
    )
    for key in names:
        label = ROWS[key][0]
        runs = " ".join(f"{r / 1e6:.2f}" for r in rates[key])
        note = f"  n/a: {errors[key]}" if key in errors and med[key] is None else ""
        print(
            f"{label:44s} {fmt_rate(med[key]):>8s} {fmt_ratio(med[key], bare):>8s} "
            f"{fmt_ratio(med[key], bw1):>12s} {fmt_rate(cpu[key]) if cpu[key] else '-':>9s}  "
            f"{runs}{note}"
        )

    def check(name: str, a: str, b: str, factor: float) -> None:
        va, vb = med.get(a), med.get(b)
        if va is None or vb is None:
            print(f"  n/a   {name}")
            return
        ok = va >= factor * vb if factor != 1.0 else va > vb
        ca, cb = cpu.get(a), cpu.get(b)
        by_cpu = f" (per CPU second: {ca / cb:.2f}x)" if ca and cb else ""
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {va / vb:.2f}x{by_cpu}")

    print("\ntargets (on the wall-clock medians):")
    check("squall acking off >= 2x bytewax 1 worker", "squall-noack", "bytewax-1", 2.0)
    check("squall acking off >= 0.25x bare loop", "squall-noack", "bare", 0.25)
    check("squall acking on >= 0.5x squall acking off", "squall-ack", "squall-noack", 0.5)
    check("squall 2 workers > 1 process (LocalCluster)", "squall-2workers", "squall-local", 1.0)
    check("squall 2 workers > 1 process (engine loop)", "squall-2workers", "squall-noack", 1.0)
    check("(bytewax 2 processes > bytewax 1 worker)", "bytewax-2p", "bytewax-1", 1.0)
    if args.json:
        with open(args.json, "w") as f:
            out = {"machine": machine(), "words": words, "median": med, "cpu_median": cpu}
            json.dump({**out, "runs": rates, "cpu_runs": cpu_rates}, f)


if __name__ == "__main__":
    main()
