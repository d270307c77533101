"""Real ZooKeeper servers and squall daemons for the cluster tests (integration and chaos).

Everything here starts processes on 127.0.0.1 (or in network namespaces the
test creates) and signals only the processes it started, by pid.

A test that needs ZooKeeper fails on CI (``CI`` set) when the Debian package is
missing, and skips on a developer's machine (``make test`` installs it with
``.ci/services/zookeeper.sh``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_SIMPLE = Path("/usr/share/java/slf4j-simple.jar")
ROOT = Path(__file__).resolve().parents[2]

#: ZooKeeper tick for tests: sessions may last 2..20 ticks (0.4..4 s).
TICK_MS = 200
#: Session timeout the test daemons ask for.
SESSION_TIMEOUT_MS = 3000


def require_zookeeper() -> None:
    """Fail on CI, skip elsewhere, when ZooKeeper or Java is missing."""
    missing = []
    if not ZOOKEEPER_JAR.is_file():
        missing.append(f"{ZOOKEEPER_JAR} (Debian package 'zookeeper')")
    if shutil.which("java") is None:
        missing.append("java")
    if missing:
        msg = "needs " + " and ".join(missing) + "; run: bash .ci/services/zookeeper.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free right now (held together, so no duplicates)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except Exception as e:  # the condition may read files that are being written
            last_error = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


class ZooKeeperServer:
    """A standalone ZooKeeper from Debian's package on one loopback port, with its own data."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.dir = directory
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "zoo.cfg").write_text(
            "\n".join(
                [
                    f"tickTime={TICK_MS}",
                    f"dataDir={self.dir / 'data'}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={self.host}",
                    "maxClientCnxns=0",
                    # Jetty's AdminServer would take :8080 (Storm UI's port).
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,srvr,stat,mntr,cons",
                    "",
                ]
            )
        )

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        cp = str(ZOOKEEPER_JAR)
        if SLF4J_SIMPLE.is_file():
            cp += f":{SLF4J_SIMPLE}"
        return [
            "java",
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-cp",
            cp,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(self.dir / "zoo.cfg"),
        ]

    def start(self, prefix: list[str] | None = None, timeout: float = 30.0) -> None:
        """Start the server (``prefix``: e.g. ``ip netns exec NS``) and wait for ``imok``."""
        log = open(self.dir / "zk.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [*(prefix or []), *self.command()],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while self.ruok() != "imok":
            if self.proc.poll() is not None:
                tail = (self.dir / "zk.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ZooKeeper not ready on {self.hosts} after {timeout}s")
            time.sleep(0.05)

    def ruok(self) -> str:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.sendall(b"ruok")
                return s.recv(4).decode()
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill(self) -> None:
        """SIGKILL (data stays; :meth:`start` again resumes on it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def zookeeper_server(**kwargs: Any) -> Iterator[ZooKeeperServer]:
    """A started ZooKeeper in a temp dir, stopped afterwards."""
    require_zookeeper()
    d = Path(tempfile.mkdtemp(prefix="squall-zk-"))
    server = ZooKeeperServer(d, **kwargs)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(d, ignore_errors=True)


def expire_session(hosts: str, client_id: tuple[int, bytes]) -> None:
    """Make ZooKeeper expire a kazoo session: open the same session elsewhere and close it."""
    from kazoo.client import KazooClient

    other = KazooClient(hosts=hosts, client_id=client_id)
    other.start(timeout=10)
    other.stop()
    other.close()


# -- daemons ----------------------------------------------------------------------------
def squall_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    env.pop("SQUALL_NO_SPEEDUPS", None)
    return env


def squall(
    *args: str, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``squall ARGS...`` and return the finished process (output captured)."""
    proc = subprocess.run(
        [sys.executable, "-m", "squall.cli", *args],
        capture_output=True,
        text=True,
        env=squall_env(),
        timeout=timeout,
        cwd=str(ROOT),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"squall {' '.join(args)} exited with {proc.returncode}:\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


class Daemon:
    """One squall daemon process started by a test (``squall nimbus|supervisor ...``)."""

    def __init__(
        self, kind: str, conf: dict[str, Any], directory: Path, prefix: list[str] | None = None
    ) -> None:
        self.kind = kind
        self.conf = conf
        self.dir = directory
        self.prefix = prefix or []
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_file = self.dir / f"{kind}.json"
        self.conf_file.write_text(json.dumps(conf, indent=1))
        self.log_file = self.dir / f"{kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "squall.cli",
                self.kind,
                "--conf",
                str(self.conf_file),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=squall_env(),
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


# -- a whole cluster ---------------------------------------------------------------------
#: Timings for tests: everything detected within a few seconds.
FAST_CONF: dict[str, Any] = {
    "storm.zookeeper.session.timeout": SESSION_TIMEOUT_MS,
    "nimbus.monitor.freq.secs": 0.5,
    "nimbus.task.timeout.secs": 6,
    "nimbus.task.launch.secs": 30,
    "supervisor.monitor.frequency.secs": 0.5,
    "supervisor.heartbeat.frequency.secs": 1,
    "supervisor.worker.timeout.secs": 6,
    "supervisor.worker.start.timeout.secs": 30,
    "supervisor.worker.shutdown.sleep.secs": 1,
    "worker.heartbeat.frequency.secs": 0.5,
}

LEDGER_TOPOLOGY = str(ROOT / "tests" / "chaos" / "ledger_project" / "ledger_wordcount.py")


class Cluster:
    """ZooKeeper + nimbus(es) + supervisors on loopback, each a process this object started."""

    def __init__(
        self,
        base: Path,
        supervisors: int = 2,
        slots: int = 2,
        nimbuses: int = 1,
        conf: dict[str, Any] | None = None,
    ) -> None:
        require_zookeeper()
        self.base = base
        self.zk = ZooKeeperServer(base / "zk")
        ports = free_ports(nimbuses + supervisors * slots)
        self.nimbus_ports = ports[:nimbuses]
        self.slot_ports = [
            ports[nimbuses + k * slots : nimbuses + (k + 1) * slots] for k in range(supervisors)
        ]
        self.common: dict[str, Any] = {
            **FAST_CONF,
            "storm.zookeeper.servers": [self.zk.host],
            "storm.zookeeper.port": self.zk.port,
            "storm.zookeeper.root": "/squall",
            "nimbus.seeds": [f"127.0.0.1:{p}" for p in self.nimbus_ports],
            **(conf or {}),
        }
        self.nimbi = [
            Daemon(
                "nimbus",
                {
                    **self.common,
                    "nimbus.thrift.port": p,
                    "storm.local.dir": str(base / f"nimbus{k}"),
                },
                base / f"nimbus{k}",
            )
            for k, p in enumerate(self.nimbus_ports)
        ]
        self.supervisors = [
            Daemon(
                "supervisor",
                {
                    **self.common,
                    "storm.local.dir": str(base / f"sup{k}"),
                    "supervisor.slots.ports": ports_,
                },
                base / f"sup{k}",
            )
            for k, ports_ in enumerate(self.slot_ports)
        ]
        self.client_conf = base / "client.json"
        self.client_conf.write_text(json.dumps(self.common))
        self.ledgers = base / "ledger"

    def start(self) -> Cluster:
        self.zk.start()
        for d in (*self.nimbi, *self.supervisors):
            d.start()
        wait_until(self.leader_address, 30, "a leader nimbus")
        wait_until(
            lambda: len(self.state().supervisors()) == len(self.supervisors),
            30,
            "every supervisor to register",
        )
        return self

    # -- looking at it -------------------------------------------------------------------
    def squall(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return squall(*args, "--conf", str(self.client_conf), check=check)

    def _kazoo(self) -> Any:
        from squall.cluster.state import ClusterState
        from squall.cluster.zookeeper import ZooKeeperStore

        if getattr(self, "_state", None) is None:
            store = ZooKeeperStore(self.zk.hosts, session_timeout_secs=10)
            store.start(10)
            self._state = ClusterState(store, "/squall")
        return self._state

    def state(self) -> Any:
        """A ClusterState on this cluster's ZooKeeper (the test's own session)."""
        return self._kazoo()

    def leader_address(self) -> str | None:
        from squall.daemon.nimbus_client import NimbusClient, NimbusClientError

        try:
            return NimbusClient(self.common["nimbus.seeds"], timeout_secs=2).leader()
        except NimbusClientError:
            return None

    def topology_id(self, name: str) -> str | None:
        for tid, (base, _v) in self.state().storm_bases().items():
            if base.name == name:
                return str(tid)
        return None

    def assignment(self, name: str) -> Any:
        tid = self.topology_id(name)
        rec = self.state().assignment(tid) if tid else None
        return rec[0] if rec else None

    def worker_pids(self) -> dict[tuple[int, int], int]:
        """(supervisor number, port) -> pid, from the supervisors' pid files."""
        out = {}
        for k, d in enumerate(self.supervisors):
            for f in (d.dir / "supervisor" / "workers").glob("*.pid"):
                with contextlib.suppress(OSError, ValueError):
                    out[(k, int(f.stem))] = int(f.read_text().strip())
        return out

    def live_worker_pids(self) -> dict[tuple[int, int], int]:
        return {k: pid for k, pid in self.worker_pids().items() if is_worker(pid)}

    def running_workers(self, name: str) -> int:
        """Workers of ``name`` that run and beat (a worker heartbeat newer than 3 s)."""
        tid = self.topology_id(name)
        if tid is None:
            return 0
        now = time.time()
        return sum(1 for hb, _v in self.state().heartbeats(tid).values() if now - hb.time_secs < 3)

    # -- the ledger topology ---------------------------------------------------------------------
    def ledger(self, name: str) -> Path:
        """The folder where topology ``name``'s ledgers go."""
        folder = self.ledgers / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def submit_ledger(
        self,
        name: str = "ledger",
        sentences: int = 2000,
        workers: int = 2,
        *extra: str,
        conf: dict[str, Any] | None = None,
    ) -> str:
        settings = {
            "topology.workers": workers,
            "ledger.dir": str(self.ledger(name)),
            "ledger.sentences": sentences,
            "topology.max.spout.pending": 500,
            "topology.message.timeout.secs": 4,
            **(conf or {}),
        }
        args = ["submit", LEDGER_TOPOLOGY, "--name", name, *extra]
        for k, v in settings.items():
            args += ["-c", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        return self.squall(*args).stdout

    # -- teardown ------------------------------------------------------------------------------
    def logs(self) -> str:
        parts = []
        for d in (*self.nimbi, *self.supervisors):
            parts.append(f"==== {d.kind} {d.dir.name} ====\n{d.log()[-6000:]}")
            for f in sorted((d.dir / "supervisor" / "logs").glob("*.log")):
                parts.append(f"==== {f} ====\n{f.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            with contextlib.suppress(Exception):
                state.store.stop()
        for d in (*self.supervisors, *self.nimbi):
            d.kill(signal.SIGTERM)
        # Workers outlive supervisors by design: stop the ones ours started, by pid.
        for pid in self.worker_pids().values():
            if is_worker(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.zk.stop()


def is_worker(pid: int) -> bool:
    """True if ``pid`` is a live squall cluster worker (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except OSError:
        return False
    return state != b"Z" and b"squall.daemon.cluster_worker" in cmd


@contextlib.contextmanager
def running_cluster(**kwargs: Any) -> Iterator[Cluster]:
    """A started :class:`Cluster` in a temp dir; its logs are printed if the test fails."""
    require_zookeeper()
    base = Path(tempfile.mkdtemp(prefix="squall-cluster-"))
    cluster = Cluster(base, **kwargs)
    try:
        cluster.start()
        yield cluster
    except BaseException:
        sys.stderr.write(cluster.logs())
        raise
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
