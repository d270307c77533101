"""Word count on a real cluster: 2 workers over ZeroMQ on this machine, in one run with
the single-process figures and bytewax.

A ZooKeeper (Debian's package), a nimbus and one supervisor with two slots are
started on loopback; ``bench/cluster_project/bench_wordcount.py`` (the topology of
``bench/wordcount.py``: par 2 everywhere, fields grouping on the word) is
submitted inactive with ``topology.workers: 2``; once both workers run, the
clock starts at the activate request and stops when every word is counted (and,
with acking, every sentence acked), as the tasks' progress files say.

Rows (``--secs`` x 1M words each, ``--repeat`` runs, medians):

* ``squall-1p-noack`` / ``squall-1p-ack``: one Engine on this thread
  (``bench/wordcount.py``'s rows);
* ``local-2w-noack``: local mode with 2 worker processes (``bench/wordcount.py``'s
  ``squall-2workers``: the same engine and link, no daemons);
* ``cluster-2w-noack`` / ``cluster-2w-ack``: the cluster, 2 worker processes;
* ``bytewax-1`` / ``bytewax-2p``: bytewax 0.21.1, 1 worker, and 2 processes.

Targets printed (PASS/FAIL, nothing asserted): 2 cluster workers faster than 1
process on 2 cores; acking costs no more in the cluster than in one process
(``cluster ack/noack >= 1p ack/noack``).

Run: ``.venv/bin/python bench/cluster_wordcount.py`` (about 2 minutes),
``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import wordcount as wc  # noqa: E402 - bench/wordcount.py, for its rows and helpers

from squall.daemon.nimbus_client import NimbusClient  # noqa: E402

TOPOLOGY = HERE / "cluster_project" / "bench_wordcount.py"
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class BenchCluster:
    """ZooKeeper + nimbus + one supervisor with 2 slots, all on loopback."""

    def __init__(self) -> None:
        if not ZOOKEEPER_JAR.is_file():
            raise SystemExit(f"{ZOOKEEPER_JAR} missing: bash .ci/services/zookeeper.sh")
        self.dir = Path(tempfile.mkdtemp(prefix="squall-bench-"))
        zk_port, nimbus_port, *slots = _free_ports(4)
        self.procs: list[subprocess.Popen[bytes]] = []
        (self.dir / "zk").mkdir()
        cfg = self.dir / "zk" / "zoo.cfg"
        cfg.write_text(
            f"tickTime=500\ndataDir={self.dir / 'zk'}\nclientPort={zk_port}\n"
            "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
            "4lw.commands.whitelist=ruok\n"
        )
        self._spawn(
            [
                "java",
                "-Xmx128m",
                "-cp",
                str(ZOOKEEPER_JAR),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                str(cfg),
            ],
            "zk",
        )
        self.conf = {
            "storm.zookeeper.servers": ["127.0.0.1"],
            "storm.zookeeper.port": zk_port,
            "storm.zookeeper.session.timeout": 6000,
            "nimbus.seeds": [f"127.0.0.1:{nimbus_port}"],
            "nimbus.thrift.port": nimbus_port,
            "nimbus.monitor.freq.secs": 1,
            "supervisor.monitor.frequency.secs": 0.5,
            "supervisor.slots.ports": slots,
            "worker.heartbeat.frequency.secs": 1,
        }
        self.conf_file = self.dir / "cluster.json"
        self.conf_file.write_text(json.dumps(self.conf))
        self._wait_zk(zk_port)
        for kind in ("nimbus", "supervisor"):
            conf = {**self.conf, "storm.local.dir": str(self.dir / kind)}
            f = self.dir / f"{kind}.json"
            f.write_text(json.dumps(conf))
            self._spawn([sys.executable, "-m", "squall.cli", kind, "--conf", str(f)], kind)
        self._wait(lambda: self.squall("list", check=False).returncode == 0, 30, "nimbus")
        self.client = NimbusClient(self.conf["nimbus.seeds"])

    def _spawn(self, cmd: list[str], name: str) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.procs.append(
            subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        )
        log.close()

    def _wait_zk(self, port: int) -> None:
        def ok() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"ruok")
                    return s.recv(4) == b"imok"
            except OSError:
                return False

        self._wait(ok, 30, "ZooKeeper")

    @staticmethod
    def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout}s")
            time.sleep(0.05)

    def squall(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.run(
            [sys.executable, "-m", "squall.cli", *args, "--conf", str(self.conf_file)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"squall {' '.join(args)}: {proc.stderr}")
        return proc

    def run(self, n: int, acking: bool, name: str) -> wc.Timing:
        out = self.dir / name
        out.mkdir()
        conf = {
            "topology.workers": 2,
            "topology.acker.executors": 2 if acking else 0,
            "bench.sentences": n,
            "bench.reliable": acking,
            "bench.out": str(out),
        }
        if acking:
            conf["topology.max.spout.pending"] = wc.MAX_SPOUT_PENDING
        args = ["submit", str(TOPOLOGY), "--name", name, "--inactive"]
        for k, v in conf.items():
            args += ["-c", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        self.squall(*args)

        def total(prefix: str) -> int:
            s = 0
            for f in out.glob(f"{prefix}-*"):
                if f.suffix != ".tmp":
                    try:
                        s += int(f.read_text() or 0)
                    except (OSError, ValueError):
                        pass
            return s

        # Both workers up: 2 spout + 2 count tasks have written their first progress.
        self._wait(
            lambda: len([f for f in out.iterdir() if f.suffix != ".tmp"]) == 4, 60, "the workers"
        )
        words = wc.word_count(n)
        t0 = time.perf_counter()
        self.client.activate(name)
        while total("count") < words or (acking and total("spout") < n):
            time.sleep(0.005)
        dt = time.perf_counter() - t0
        counted = total("count")
        self.squall("kill", name, "-w", "0")
        return wc.Timing(dt, counted)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        # Workers outlive supervisors by design: stop the ones ours started, by pid.
        for f in (self.dir / "supervisor" / "supervisor" / "workers").glob("*.pid"):
            try:
                os.kill(int(f.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--secs", type=float, default=1.0, help="input size: SECS x 1M words")
    p.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    p.add_argument("--quick", action="store_true", help="smoke run: --secs 0.1 --repeat 1")
    p.add_argument("--no-bytewax", action="store_true", help="skip the bytewax rows")
    args = p.parse_args(argv)
    if args.quick:
        args.secs, args.repeat = 0.1, 1
    n = wc.sentences_for(int(args.secs * 1e6))
    cluster = BenchCluster()
    counter = [0]

    def cluster_row(acking: bool) -> Callable[[int], wc.Timing]:
        def run(k: int) -> wc.Timing:
            counter[0] += 1
            return cluster.run(k, acking, f"bench{counter[0]}")

        return run

    rows: dict[str, tuple[str, Callable[[int], wc.Timing]]] = {
        "squall-1p-noack": (
            "squall, 1 process, acking off",
            lambda k: wc.run_squall_engine(k, False),
        ),
        "squall-1p-ack": ("squall, 1 process, acking on", lambda k: wc.run_squall_engine(k, True)),
        "local-2w-noack": (
            "squall local mode, 2 worker processes, acking off",
            wc.run_squall_workers,
        ),
        "cluster-2w-noack": ("squall cluster, 2 workers, acking off", cluster_row(False)),
        "cluster-2w-ack": ("squall cluster, 2 workers, acking on", cluster_row(True)),
    }
    if not args.no_bytewax:
        rows["bytewax-1"] = ("bytewax 0.21.1, 1 worker", wc.run_bytewax_1)
        rows["bytewax-2p"] = ("bytewax, 2 processes (-p 2)", wc.run_bytewax_procs)
    results: dict[str, list[float]] = {k: [] for k in rows}
    print(f"machine: {wc.machine()}; load {wc._loadavg()}")
    print(f"input: {n} sentences, {wc.word_count(n)} words; {args.repeat} runs per row")
    try:
        for _ in range(args.repeat):
            for key, (_label, fn) in rows.items():
                t = fn(n)
                results[key].append(t.words / t.wall)
    finally:
        cluster.stop()
    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["squall-1p-noack"]
    print(f"\n{'row':<52} {'words/s':>9} {'vs 1p-noack':>12} {'range':>16}")
    for key, (label, _fn) in rows.items():
        lo, hi = min(results[key]), max(results[key])
        print(
            f"{label:<52} {wc.fmt_rate(med[key]):>9} {wc.fmt_ratio(med[key], base):>12} "
            f"{wc.fmt_rate(lo) + '-' + wc.fmt_rate(hi):>16}"
        )
    speedup = med["cluster-2w-noack"] / med["squall-1p-noack"]
    ack_1p = med["squall-1p-ack"] / med["squall-1p-noack"]
    ack_cl = med["cluster-2w-ack"] / med["cluster-2w-noack"]
    print(f"\nload after: {wc._loadavg()}")
    print(
        f"target: 2 cluster workers faster than 1 process: {speedup:.2f}x "
        f"{'PASS' if speedup > 1 else 'FAIL'}"
    )
    print(
        f"target: acking overhead no worse than in one process: cluster keeps {ack_cl:.2f} "
        f"of its speed with acking, 1 process {ack_1p:.2f} {'PASS' if ack_cl >= ack_1p else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
