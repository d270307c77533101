"""Multilang throughput: tuples/s through a shell bolt (one emit + one ack per tuple).

Rows, all measured in this run on the same machine:

* ``pystorm over a plain pipe``: the baseline. A minimal driver writes tuples to
  an unmodified pystorm echo bolt as fast as the pipe takes them (a writer
  thread) and reads its emits and acks back; no topology, no engine.
* ``pystorm under Squall``: the same pystorm bolt as a ``ShellBolt`` in a
  topology: a native spout -> the shell bolt -> a native counting bolt.
* ``Squall isolated bolt``: a Squall ``Bolt`` class run with ``isolated=True``
  (Squall's adapter, msgpack with negotiated batches), same topology.
* ``Squall in process``: the same Squall bolt without isolation, for scale.

Acking is off in the topologies (the child still acks every tuple), so the rows
measure the multilang path, not the acker. Rows run in turn, ``--repeat``
rounds; each reports its median and best. Prints ratios against the pystorm
msgpack pipe figure, PASS/FAIL against the targets, and the CPU time per tuple
of the measuring process (host: the driver or the whole Squall topology,
including its spout and sink) and of its children (the component), which
varies less than wall time on a shared machine.

Usage: python bench/multilang.py [--tuples 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[1]
CHILDREN = ROOT / "tests" / "multilang"
sys.path.insert(0, str(ROOT))

from squall import Bolt, LocalCluster, ShellBolt, Spout, Topology  # noqa: E402

N_KEY = "bench.tuples"
# The spout starts emitting when this is set (after the children's handshakes).
START = threading.Event()


# -- baseline: pystorm over a plain pipe ---------------------------------------------------
def pystorm_pipe(n: int, serializer: str) -> float:
    """Seconds for ``n`` tuples through a pystorm echo bolt driven over a bare pipe."""
    cmd = [
        sys.executable,
        "-m",
        "squall.multilang.run",
        "pystorm_components:EchoBolt",
        "-s",
        serializer,
    ]
    proc = subprocess.Popen(
        cmd, cwd=CHILDREN, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
    )
    assert proc.stdin is not None and proc.stdout is not None
    if serializer == "json":

        def enc(m: Any) -> bytes:
            return json.dumps(m).encode() + b"\nend\n"

    else:
        packer = msgpack.Packer()

        def enc(m: Any) -> bytes:
            return packer.pack(m)  # type: ignore[no-any-return]

    pid_dir = tempfile.mkdtemp()
    ctx = {
        "taskid": 2,
        "componentid": "echo",
        "task->component": {"1": "spout", "2": "echo"},
        "source->stream->fields": {"spout": {"default": ["n"]}},
    }
    proc.stdin.write(enc({"conf": {"topology.name": "bench"}, "pidDir": pid_dir, "context": ctx}))
    reader = _Reader(proc.stdout.fileno(), serializer)
    reader.next()  # pid
    reader.next()  # pystorm's "logging enabled" log

    def write() -> None:
        batch = []
        for i in range(n):
            batch.append(
                enc({"id": str(i), "comp": "spout", "stream": "default", "task": 1, "tuple": [i]})
            )
            if len(batch) == 256:
                proc.stdin.write(b"".join(batch))  # type: ignore[union-attr]
                batch.clear()
        if batch:
            proc.stdin.write(b"".join(batch))  # type: ignore[union-attr]

    t0 = time.perf_counter()
    w = threading.Thread(target=write)
    w.start()
    acks = 0
    while acks < n:
        msg = reader.next()
        if msg.get("command") == "ack":
            acks += 1
    dt = time.perf_counter() - t0
    w.join()
    proc.stdin.close()
    proc.wait()
    return dt


class _Reader:
    def __init__(self, fd: int, serializer: str) -> None:
        self.fd = fd
        self.json = serializer == "json"
        self.buf = b""
        self.queue: list[Any] = []
        self.unpacker = msgpack.Unpacker(raw=False)

    def next(self) -> Any:
        while not self.queue:
            data = os.read(self.fd, 1 << 16)
            if not data:
                raise EOFError
            if self.json:
                self.buf += data
                *frames, self.buf = self.buf.split(b"\nend\n")
                self.queue.extend(json.loads(f) for f in frames if f.strip())
            else:
                self.unpacker.feed(data)
                self.queue.extend(self.unpacker)
        return self.queue.pop(0)


# -- topologies ----------------------------------------------------------------------------
class Numbers(Spout):
    outputs = ["n"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.left = int(conf[N_KEY])
        self.i = 0

    def next_tuple(self) -> None:
        if self.i < self.left and START.is_set():
            for _ in range(min(256, self.left - self.i)):
                self.emit([self.i])
                self.i += 1


class Echo(Bolt):
    outputs = ["n"]

    def process(self, tup: Any) -> None:
        self.emit(tup.values)


class Counter(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        self.n = [0]
        self.report_metric("count", self.n)

    def process(self, tup: Any) -> None:
        self.n[0] += 1


def _topology(kind: str) -> type[Topology]:
    numbers = Numbers.spec()
    if kind.startswith("pystorm"):
        ser = kind.split("-")[1]
        echo = ShellBolt.spec(
            command=[sys.executable, "-m", "squall.multilang.run", "pystorm_components:EchoBolt"],
            args=["-s", ser],
            serializer=ser,
            cwd=str(CHILDREN),
            inputs=[numbers],
            outputs=["n"],
        )
    else:
        echo = Echo.spec(inputs=[numbers], isolated=kind == "isolated")
    count = Counter.spec(inputs=[echo])
    return type("Bench", (Topology,), {"numbers": numbers, "echo": echo, "count": count})


def squall_run(n: int, kind: str) -> float:
    conf = {
        N_KEY: n,
        "topology.acker.executors": 0,
        "topology.shellbolt.max.pending": 2000,
        "topology.executor.receive.buffer.size": 4096,
    }
    START.clear()
    with LocalCluster() as cluster:
        run = cluster.submit(f"bench-{kind}", _topology(kind), conf)
        # Let the child start and answer the handshake (not part of the throughput).
        time.sleep(0.5)
        t0 = time.perf_counter()
        START.set()
        cluster.wait_until(
            lambda: run.stats()["count"].metrics["count"][0] >= n, timeout=300, interval=0.005
        )
        return time.perf_counter() - t0


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tuples", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.tuples
    print(f"multilang: {n} tuples per run, {args.repeat} rounds; load {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, Any, tuple[Any, ...]]] = [
        ("pystorm over a plain pipe, json", pystorm_pipe, (n, "json")),
        ("pystorm over a plain pipe, msgpack", pystorm_pipe, (n, "msgpack")),
        ("pystorm under Squall (ShellBolt), json", squall_run, (n, "pystorm-json")),
        ("pystorm under Squall (ShellBolt), msgpack", squall_run, (n, "pystorm-msgpack")),
        ("Squall isolated bolt (adapter, msgpack batches)", squall_run, (n, "isolated")),
        ("Squall bolt in process (reference)", squall_run, (n, "inprocess")),
    ]
    # Rounds go over every row in turn, so a change in the machine's load (it is
    # shared) hits every row alike; each row reports its median and best run.
    rates: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in rows}
    for _ in range(args.repeat):
        for name, fn, fargs in rows:
            me0, kids0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            rates[name].append(n / fn(*fargs))
            me1, kids1 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            cpu[name].append(((me1 - me0) / n * 1e6, (kids1 - kids0) / n * 1e6))
    med = {name: statistics.median(r) for name, r in rates.items()}
    base = med["pystorm over a plain pipe, msgpack"]
    print(f"  {'row':<50} {'median':>9} {'best':>9}  vs pipe   CPU us/tuple: host child")
    for name, r in rates.items():
        host = statistics.median(c[0] for c in cpu[name])
        child = statistics.median(c[1] for c in cpu[name])
        print(
            f"  {name:<50} {med[name]:>9,.0f} {max(r):>9,.0f}  {med[name] / base:5.2f}x"
            f"  {host:6.1f} {child:6.1f}"
        )
    checks = [
        (
            "Squall adapter >= 2x pystorm msgpack over a pipe",
            med["Squall isolated bolt (adapter, msgpack batches)"] >= 2 * base,
        ),
        (
            "pystorm json under Squall >= over a plain pipe",
            med["pystorm under Squall (ShellBolt), json"] >= med["pystorm over a plain pipe, json"],
        ),
        (
            "pystorm msgpack under Squall >= over a plain pipe",
            med["pystorm under Squall (ShellBolt), msgpack"] >= base,
        ),
    ]
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
