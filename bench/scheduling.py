"""Scheduling inside one worker: one cooperative loop against one thread per executor.

A standalone prototype (no Squall code) that runs word count's three stages,
spout -> split -> count (fields grouping on the word, running count per word,
``(word, count)`` built and dropped), with the same per-word user work in every
variant, and prints words/s. Only the scheduling and the handoffs differ:

* ``loop``: one thread; every executor has a ``deque`` inbox of batches; a pass
  runs each executor with input on up to ``--batch`` tuples and appends what it
  produced to the downstream inboxes (what ``squall.runtime.engine`` does).
  A spout is skipped while a downstream inbox holds more than ``--capacity`` tuples.
* ``loop-calls``: the same loop, but the bolts are the example's bolts, called once
  per tuple (``process(tup)`` -> ``self.emit([...])`` -> route and stage), over
  plain tuples read by index (``tup[0]``); ``loop-values``: the same with the
  example's exact code (``tup.values.word``) over a tuple subclass made per emit,
  as ``squall.api.tuple`` does. These two are not about
  scheduling: they price the per-tuple ``process``/``emit`` API shape, i.e. the
  best an engine with that API can do with this scheduling.
* ``threads-tuple``: one thread per executor, a bounded ``queue.Queue`` per
  executor, one ``put``/``get`` per tuple (Storm before batching).
* ``threads-batch``: one thread per executor, bounded ``queue.Queue`` of batches.
* ``threads-simple``: one thread per executor, ``queue.SimpleQueue`` (C, lock-free
  on the fast path, unbounded: no backpressure) of batches.

``--par`` executors per stage (default: 1 and 2, as examples/wordcount.py's par 2
gives six executors). The per-tuple variant runs on a fifth of the input (its rate
is per word, so it stays comparable) to keep the run short.

``per CPU-s`` is words per second of process CPU time (all threads): what the
work costs, whatever else runs on the machine; for the threaded variants it also
counts the cores burnt on GIL handoffs.

Run: ``.venv/bin/python bench/scheduling.py [--words N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from operator import itemgetter
from typing import Any

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]
WORDS_PER_CYCLE = sum(len(s.split()) for s in SENTENCES)
END = None  # end-of-stream marker sent downstream by each executor when it is done


class Spout:
    """Emits sentences ``k, k + par, ...`` below ``n``, ``batch`` per call."""

    def __init__(self, k: int, par: int, n: int, style: str = "inline") -> None:
        self.todo = iter(range(k, n, par))
        self.done = False
        self.cls: Any = _Sentence if style == "values" else tuple

    def next_batch(self, batch: int) -> list[tuple[str]]:
        out = []
        todo = self.todo
        for _ in range(batch):
            i = next(todo, None)
            if i is None:
                self.done = True
                break
            out.append(tuple.__new__(self.cls, (SENTENCES[i % 5],)))
        return out


class Split:
    """Splits sentences; routes each word to a count executor by a stable hash."""

    def __init__(self, ncount: int) -> None:
        self.ncount = ncount
        self.cache: dict[str, int] = {}

    def run(self, batch: list[tuple[str]], out: list[list[tuple[str]]]) -> None:
        cache = self.cache
        n = self.ncount
        for (sentence,) in batch:
            for word in sentence.split():
                t = cache.get(word)
                if t is None:
                    t = cache[word] = zlib.crc32(word.encode()) % n
                out[t].append((word,))


class Count:
    """Running count per word, as the count bolt does; the output is dropped."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seen = 0

    def run(self, batch: list[tuple[str]]) -> None:
        counts = self.counts
        out = None
        for (word,) in batch:
            counts[word] += 1
            out = (word, counts[word])
        self.seen += len(batch)
        del out


class _Values(tuple):  # type: ignore[type-arg]
    """Like squall.api.tuple's value classes: a tuple subclass with ``values`` and fields."""

    __slots__ = ()

    @property
    def values(self) -> _Values:
        return self


class _Sentence(_Values):
    __slots__ = ()
    sentence = property(itemgetter(0))


class _Word(_Values):
    __slots__ = ()
    word = property(itemgetter(0))


class SplitBolt:
    """The example's split bolt, per tuple: ``process`` calls ``emit([word])``."""

    def __init__(self, ncount: int) -> None:
        self.ncount = ncount
        self.cache: dict[str, int] = {}
        self.out: list[list[Any]] = []

    def emit(self, values: list[Any]) -> None:
        v = tuple.__new__(_Word, values)
        word = v[0]
        t = self.cache.get(word)
        if t is None:
            t = self.cache[word] = zlib.crc32(word.encode()) % self.ncount
        self.out[t].append(v)

    def process(self, tup: Any) -> None:
        for word in tup.values.sentence.split():
            self.emit([word])

    def run(self, batch: list[Any], out: list[list[Any]]) -> None:
        self.out = out
        process = self.process
        for v in batch:
            process(v)


class CountBolt:
    """The example's count bolt, per tuple: ``emit([word, count])`` to no subscriber."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seen = 0
        self.emitted = 0

    def emit(self, values: list[Any]) -> None:
        if len(values) != 2:
            raise ValueError("count emits two fields")
        self.emitted += 1

    def process(self, tup: Any) -> None:
        word = tup.values.word
        self.counts[word] += 1
        self.emit([word, self.counts[word]])

    def run(self, batch: list[Any]) -> None:
        process = self.process
        for v in batch:
            process(v)
        self.seen += len(batch)


class PlainSplitBolt(SplitBolt):
    """Per-tuple calls over plain tuples, fields by index: the price of the calls alone."""

    def emit(self, values: list[Any]) -> None:
        v = tuple(values)
        word = v[0]
        t = self.cache.get(word)
        if t is None:
            t = self.cache[word] = zlib.crc32(word.encode()) % self.ncount
        self.out[t].append(v)

    def process(self, tup: Any) -> None:
        for word in tup[0].split():
            self.emit([word])


class PlainCountBolt(CountBolt):
    def process(self, tup: Any) -> None:
        word = tup[0]
        self.counts[word] += 1
        self.emit([word, self.counts[word]])


# -- one cooperative loop -----------------------------------------------------------------
def run_loop(
    n: int, par: int, batch: int, capacity: int, style: str = "inline"
) -> tuple[float, int]:
    spouts = [Spout(k, par, n, style) for k in range(par)]
    splits: list[Any]
    counts: list[Any]
    if style == "inline":
        splits = [Split(par) for _ in range(par)]
        counts = [Count() for _ in range(par)]
    else:
        values = style == "values"
        splits = [SplitBolt(par) if values else PlainSplitBolt(par) for _ in range(par)]
        counts = [CountBolt() if values else PlainCountBolt() for _ in range(par)]
    split_in: list[deque[list[tuple[str]]]] = [deque() for _ in range(par)]
    count_in: list[deque[list[tuple[str]]]] = [deque() for _ in range(par)]
    queued_split = [0] * par
    queued_count = [0] * par
    rr = 0
    t0 = time.perf_counter()
    while True:
        work = 0
        for sp in spouts:
            if sp.done or max(queued_split) >= capacity:
                continue
            b = sp.next_batch(batch)
            if b:
                # Shuffle grouping to the split executors, one batch each round.
                rr = (rr + 1) % par
                split_in[rr].append(b)
                queued_split[rr] += len(b)
                work += len(b)
        for k, sp in enumerate(splits):
            inbox = split_in[k]
            if not inbox or max(queued_count) >= capacity:
                continue
            done = 0
            outs: list[list[tuple[str]]] = [[] for _ in range(par)]
            while inbox and done < batch:
                b = inbox.popleft()
                sp.run(b, outs)
                done += len(b)
            queued_split[k] -= done
            for t, o in enumerate(outs):
                if o:
                    count_in[t].append(o)
                    queued_count[t] += len(o)
            work += done
        for k, c in enumerate(counts):
            inbox = count_in[k]
            done = 0
            while inbox and done < batch:
                b = inbox.popleft()
                c.run(b)
                done += len(b)
            queued_count[k] -= done
            work += done
        if not work and all(sp.done for sp in spouts):
            break
    return time.perf_counter() - t0, sum(c.seen for c in counts)


# -- one thread per executor --------------------------------------------------------------
class _Inbox:
    """The handoff between threads: ``put``/``get`` of one item (a tuple or a batch)."""

    def __init__(self, kind: str, maxsize: int) -> None:
        self.q: Any = queue.SimpleQueue() if kind == "simple" else queue.Queue(maxsize)
        self.put: Callable[[Any], None] = self.q.put
        self.get: Callable[[], Any] = self.q.get


def run_threads(
    n: int, par: int, batch: int, capacity: int, kind: str, per_tuple: bool
) -> tuple[float, int]:
    # Bounded queues hold ``capacity`` tuples: that many items per tuple, fewer per batch.
    maxsize = capacity if per_tuple else max(1, capacity // batch)
    split_in = [_Inbox(kind, maxsize) for _ in range(par)]
    count_in = [_Inbox(kind, maxsize) for _ in range(par)]
    counts = [Count() for _ in range(par)]
    start = threading.Event()

    def send(q: _Inbox, items: list[tuple[str]]) -> None:
        # One put per tuple (Storm before batching), or one per batch.
        if per_tuple:
            put = q.put
            for tup in items:
                put(tup)
        else:
            q.put(items)

    def spout_main(k: int) -> None:
        sp = Spout(k, par, n)
        start.wait()
        rr = k
        while not sp.done:
            b = sp.next_batch(batch)
            if not b:
                break
            rr = (rr + 1) % par
            send(split_in[rr], b)
        for q in split_in:
            q.put(END)

    def split_main(k: int) -> None:
        sp = Split(par)
        get = split_in[k].get
        ends = 0
        while True:
            item = get()
            if item is END:
                ends += 1
                if ends == par:
                    break
                continue
            outs: list[list[tuple[str]]] = [[] for _ in range(par)]
            sp.run([item] if per_tuple else item, outs)
            for t, o in enumerate(outs):
                if o:
                    send(count_in[t], o)
        for q in count_in:
            q.put(END)

    def count_main(k: int) -> None:
        c = counts[k]
        get = count_in[k].get
        ends = 0
        while True:
            item = get()
            if item is END:
                ends += 1
                if ends == par:
                    break
                continue
            c.run([item] if per_tuple else item)

    threads = [
        threading.Thread(target=f, args=(k,), daemon=True)
        for f in (spout_main, split_main, count_main)
        for k in range(par)
    ]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sum(c.seen for c in counts)


VARIANTS: dict[str, Callable[[int, int, int, int], tuple[float, int]]] = {
    "loop": run_loop,
    "loop-calls": lambda n, p, b, c: run_loop(n, p, b, c, "calls"),
    "loop-values": lambda n, p, b, c: run_loop(n, p, b, c, "values"),
    "threads-tuple": lambda n, p, b, c: run_threads(n, p, b, c, "queue", True),
    "threads-batch": lambda n, p, b, c: run_threads(n, p, b, c, "queue", False),
    "threads-simple": lambda n, p, b, c: run_threads(n, p, b, c, "simple", False),
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--words", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--capacity", type=int, default=32768, help="inbox bound, in tuples")
    p.add_argument("--par", type=int, action="append", help="executors per stage (1 and 2)")
    args = p.parse_args(argv)
    pars = args.par or [1, 2]
    n = max(1, round(args.words / WORDS_PER_CYCLE)) * 5

    print(f"{n:,} sentences, batch {args.batch}, capacity {args.capacity}, median of {args.repeat}")
    print(
        f"{'variant':16s} {'par':>3s} {'words/s':>9s} {'vs loop':>8s} {'per CPU-s':>9s}"
        "  runs (M words/s)"
    )
    for par in pars:
        rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
        cpu_rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
        for _ in range(args.repeat):
            for name, fn in VARIANTS.items():
                size = n // 5 // 5 * 5 if name == "threads-tuple" else n
                words = size // 5 * WORDS_PER_CYCLE
                c0 = time.process_time()
                dt, seen = fn(size, par, args.batch, args.capacity)
                cpu = time.process_time() - c0
                if seen != words:
                    raise SystemExit(f"{name}: counted {seen} words, expected {words}")
                rates[name].append(words / dt)
                cpu_rates[name].append(words / cpu)
        loop = statistics.median(rates["loop"])
        for name, rs in rates.items():
            m = statistics.median(rs)
            c = statistics.median(cpu_rates[name])
            runs = " ".join(f"{r / 1e6:.2f}" for r in rs)
            print(f"{name:16s} {par:3d} {m / 1e6:8.2f}M {m / loop:7.2f}x {c / 1e6:8.2f}M  {runs}")


if __name__ == "__main__":
    main()
