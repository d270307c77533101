"""DRPC latency and throughput: the exclamation function over HTTP, 1/16/128 concurrent clients.

Rows (each a server in a child process; the clients run in this process):

* ``http-baseline``: a bare asyncio HTTP server in a child process that answers
  ``POST /drpc/exclamation`` with ``args + "!!!"`` itself: the same sockets,
  HTTP parsing and client, and no topology. What HTTP alone costs here.
* ``squall-local``: ``squall run examples/drpc_exclamation.py`` (one process:
  the DRPC server's asyncio thread plus the engine; the spout and
  ``ReturnResults`` call the server directly).
* ``squall-2workers``: the same with ``--workers 2``: the DRPC server in the
  ``squall run`` process, the spout and ``ReturnResults`` in worker processes,
  reaching it over HTTP (long-poll fetch, batched results).
* ``squall-cluster``: a real cluster on loopback (ZooKeeper, nimbus, one
  supervisor with 2 slots: ``bench/cluster_wordcount.py``'s), a ``squall drpc``
  server process, and ``squall submit examples/drpc_exclamation.py`` with
  ``topology.workers=2`` and ``drpc.servers`` naming that server. Needs Debian's
  ``zookeeper`` package (skipped with a note when it is missing).

Each client is a keep-alive connection doing one request at a time (a fresh
argument each time, and the answer checked), driven by one asyncio loop in this
process. Per concurrency level: ``--warmup`` seconds, then ``--secs`` measured.
Printed: requests/s, p50/p99 latency, the ratio of p50 to the baseline's, and
the targets at 16 clients (p50 < 5 ms, p99 < 20 ms; PASS/FAIL, nothing asserted).

Run: ``.venv/bin/python bench/drpc.py`` (about 70 s), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "bench"
SQUALL = str(Path(sys.executable).parent / "squall")
FUNCTION = "exclamation"
TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0


class Result(NamedTuple):
    row: str
    clients: int
    requests: int
    secs: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.secs if self.secs else 0.0


# -- the baseline server -----------------------------------------------------------------


async def _baseline_handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            out = body + b"!!!"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n%s" % (len(out), out)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _baseline_main() -> None:
    server = await asyncio.start_server(_baseline_handle, "127.0.0.1", 0, backlog=1024)
    print(f"baseline on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


# -- clients -----------------------------------------------------------------------------


async def _client(port: int, until: float, record_from: float, lat: list[float], errs: list[int]):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    perf = time.perf_counter
    try:
        while True:
            now = perf()
            if now >= until:
                return
            args = b"w%d" % i
            i += 1
            writer.write(
                b"POST /drpc/%s HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n%s"
                % (FUNCTION.encode(), len(args), args)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            done = perf()
            ok = head.startswith(b"HTTP/1.1 200") and body == args + b"!!!"
            if now >= record_from:
                if ok:
                    lat.append(done - now)
                else:
                    errs.append(1)
    finally:
        writer.close()


async def _load(
    port: int, clients: int, warmup: float, secs: float
) -> tuple[list[float], int, float]:
    lat: list[float] = []
    errs: list[int] = []
    start = time.perf_counter()
    record_from = start + warmup
    until = record_from + secs
    await asyncio.gather(*(_client(port, until, record_from, lat, errs) for _ in range(clients)))
    return lat, len(errs), secs


def measure(row: str, port: int, clients: int, warmup: float, secs: float) -> Result:
    lat, errors, span = asyncio.run(_load(port, clients, warmup, secs))
    lat.sort()
    if not lat:
        return Result(row, clients, 0, span, float("nan"), float("nan"), errors)
    p50 = statistics.median(lat) * 1000.0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000.0
    return Result(row, clients, len(lat), span, p50, p99, errors)


# -- servers -----------------------------------------------------------------------------


def start_server(cmd: list[str], pattern: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            m = re.search(pattern, line)
            if m:
                return proc, int(m.group(1))
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{' '.join(cmd)} did not start")


def stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()


PROCESS_ROWS: dict[str, tuple[list[str], str]] = {
    "http-baseline": ([sys.executable, __file__, "--baseline-server"], r"127\.0\.0\.1:(\d+)"),
    "squall-local": (
        [SQUALL, "run", "examples/drpc_exclamation.py", "--plain", "-c", "drpc.http.port=0"],
        r"DRPC server on http://127\.0\.0\.1:(\d+)",
    ),
    "squall-2workers": (
        [
            SQUALL,
            "run",
            "examples/drpc_exclamation.py",
            "--plain",
            "--workers",
            "2",
            "-c",
            "drpc.http.port=0",
        ],
        r"DRPC server on http://127\.0\.0\.1:(\d+)",
    ),
}


@contextlib.contextmanager
def process_row(row: str) -> Iterator[int]:
    """A server process for ``row``; yields its port."""
    cmd, pattern = PROCESS_ROWS[row]
    proc, port = start_server(cmd, pattern)
    try:
        yield port
    finally:
        stop_server(proc)


@contextlib.contextmanager
def cluster_row() -> Iterator[int]:
    """The exclamation topology on a real cluster (2 workers), a ``squall drpc`` server."""
    sys.path.insert(0, str(HERE))
    import cluster_wordcount  # bench/cluster_wordcount.py: ZooKeeper, nimbus, a supervisor

    cluster = cluster_wordcount.BenchCluster()
    try:
        drpc, port = start_server(
            [SQUALL, "drpc", "--port", "0"], r"listening on http://127\.0\.0\.1:(\d+)"
        )
        try:
            cluster.squall(
                "submit",
                str(ROOT / "examples" / "drpc_exclamation.py"),
                "--name",
                "bench-drpc",
                "-c",
                "topology.workers=2",
                "-c",
                f"drpc.servers={json.dumps([f'127.0.0.1:{port}'])}",
            )
            _wait_answered(port, 60)
            yield port
        finally:
            stop_server(drpc)
    finally:
        cluster.stop()


def _wait_answered(port: int, timeout: float) -> None:
    """Until the topology answers (its workers start after the submit returns)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            url = f"http://127.0.0.1:{port}/drpc/{FUNCTION}/up"
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.read() == b"up!!!":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster did not answer {FUNCTION} within {timeout}s")
        time.sleep(0.2)


ROWS = [*PROCESS_ROWS, "squall-cluster"]


def serve(row: str) -> contextlib.AbstractContextManager[int]:
    return cluster_row() if row == "squall-cluster" else process_row(row)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--secs", type=float, default=4.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level")
    p.add_argument("--clients", type=int, action="append", help="concurrency levels")
    p.add_argument("--only", action="append", choices=sorted(ROWS), help="rows to run")
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.baseline_server:
        try:
            asyncio.run(_baseline_main())
        except KeyboardInterrupt:
            pass
        return 0
    if args.quick:
        args.secs, args.warmup = 1.0, 0.3
    levels = args.clients or [1, 16, 128]
    rows = args.only or list(ROWS)
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    results: list[Result] = []
    for row in rows:
        if row == "squall-cluster" and not Path("/usr/share/java/zookeeper.jar").is_file():
            print("  squall-cluster: skipped (needs Debian's zookeeper package)")
            continue
        with serve(row) as port:
            for clients in levels:
                results.append(measure(row, port, clients, args.warmup, args.secs))
                r = results[-1]
                print(
                    f"  {row:16s} {clients:4d} clients: {r.rate:8.0f} req/s  "
                    f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  errors {r.errors}",
                    flush=True,
                )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    base = {r.clients: r for r in results if r.row == "http-baseline"}
    print()
    print(
        f"{'row':16s} {'clients':>7s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'p50/base':>8s}"
    )
    for r in results:
        b = base.get(r.clients)
        ratio = f"{r.p50_ms / b.p50_ms:8.1f}" if b and b.p50_ms else "       -"
        print(f"{r.row:16s} {r.clients:7d} {r.rate:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {ratio}")
    print()
    for r in results:
        if r.row.startswith("squall") and r.clients == 16:
            ok = r.p50_ms < TARGET_P50_MS and r.p99_ms < TARGET_P99_MS and not r.errors
            print(
                f"target {r.row} at 16 clients: p50 < {TARGET_P50_MS:g} ms and p99 < "
                f"{TARGET_P99_MS:g} ms: {'PASS' if ok else 'FAIL'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
