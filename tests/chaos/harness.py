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

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
    ) -> None:
        self.dir = directory
        self.host = host
        self.port = port or (free_port(host) if netns is None else 2181)
        self.netns = netns
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

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (in its network namespace, if any) and wait for ``imok``."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        log = open(self.dir / "zk.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [*prefix, *self.command()],
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
        if self.netns:
            probe = (
                f"import socket;s=socket.create_connection(({self.host!r},{self.port}),"
                "timeout=0.5);s.sendall(b'ruok');print(s.recv(4).decode(),end='')"
            )
            proc = subprocess.run(
                ["ip", "netns", "exec", self.netns, sys.executable, "-c", probe],
                capture_output=True,
                text=True,
                timeout=10,
            )
            return proc.stdout
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
    # Several supervisors share this host: each logviewer on a free port.
    "logviewer.port": 0,
}

LEDGER_TOPOLOGY = str(ROOT / "tests" / "chaos" / "ledger_project" / "ledger_wordcount.py")


class _DaemonCluster:
    """What :class:`Cluster` and :class:`NetCluster` share: ledgers, pid files, logs, teardown."""

    zk: ZooKeeperServer
    supervisors: list[Daemon]
    ledgers: Path

    def nimbus_daemons(self) -> list[Daemon]:
        raise NotImplementedError

    def squall(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    def start(self) -> Any:
        raise NotImplementedError

    def ledger(self, name: str) -> Path:
        """The folder where topology ``name``'s ledgers go."""
        folder = self.ledgers / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _submit_ledger(
        self, name: str, sentences: int, workers: int, extra: tuple[str, ...], conf: dict[str, Any]
    ) -> subprocess.CompletedProcess[str]:
        settings = {
            "topology.workers": workers,
            "ledger.dir": str(self.ledger(name)),
            "ledger.sentences": sentences,
            "topology.max.spout.pending": 500,
            "topology.message.timeout.secs": 4,
            **conf,
        }
        args = ["submit", LEDGER_TOPOLOGY, "--name", name, *extra]
        for k, v in settings.items():
            args += ["-c", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        return self.squall(*args)

    def worker_pids(self) -> dict[tuple[int, int], int]:
        """(supervisor number, port) -> pid, from the supervisors' pid files."""
        from squall.daemon.supervisor import worker_pids

        return {
            (k, port): pid
            for k, d in enumerate(self.supervisors)
            for port, pid in worker_pids(d.dir).items()
        }

    def logs(self) -> str:
        parts = []
        for d in (*self.nimbus_daemons(), *self.supervisors):
            parts.append(f"==== {d.kind} {d.dir.name} ====\n{d.log()[-6000:]}")
            for f in sorted((d.dir / "supervisor" / "logs").rglob("worker.log*")):
                parts.append(f"==== {f} ====\n{f.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for d in (*self.supervisors, *self.nimbus_daemons()):
            d.kill(signal.SIGTERM)
        # Workers outlive supervisors by design: stop the ones ours started, by pid.
        for pid in self.worker_pids().values():
            if is_worker(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.zk.stop()


@contextlib.contextmanager
def _running(cluster: _DaemonCluster, base: Path) -> Iterator[Any]:
    """Start ``cluster``; print its logs if the test fails; stop it and remove ``base``."""
    try:
        cluster.start()
        yield cluster
    except BaseException:
        sys.stderr.write(cluster.logs())
        raise
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


class Cluster(_DaemonCluster):
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

    def nimbus_daemons(self) -> list[Daemon]:
        return self.nimbi

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
            token = self.common.get("nimbus.auth.token")
            return NimbusClient(self.common["nimbus.seeds"], token, timeout_secs=2).leader()
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
    def submit_ledger(
        self,
        name: str = "ledger",
        sentences: int = 2000,
        workers: int = 2,
        *extra: str,
        conf: dict[str, Any] | None = None,
    ) -> str:
        return self._submit_ledger(name, sentences, workers, extra, conf or {}).stdout

    # -- teardown ------------------------------------------------------------------------------
    def stop(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            with contextlib.suppress(Exception):
                state.store.stop()
        super().stop()


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
    with _running(Cluster(base, **kwargs), base) as cluster:
        yield cluster


# -- network namespaces: one "host" per daemon ----------------------------------------------
class Netns:
    """Hosts as network namespaces on one bridge (10.213.0.k/24), made and removed by the test.

    Only addresses inside these namespaces are used; nothing is configured in the
    root namespace. :meth:`partition` downs a host's switch port; :meth:`heal` brings it back.
    """

    def __init__(self, hosts: list[str]) -> None:
        self.prefix = f"sq{os.getpid() % 100000}"
        self.switch = f"{self.prefix}-sw"
        self.hosts = {h: f"{self.prefix}-{h}" for h in hosts}
        self.address = {h: f"10.213.0.{k + 1}" for k, h in enumerate(hosts)}
        self._port = {h: f"p{k + 1}" for k, h in enumerate(hosts)}

    @staticmethod
    def available() -> str | None:
        """None if namespaces can be made here, else why not."""
        if shutil.which("ip") is None:
            return "the ip command (iproute2) is missing"
        if os.geteuid() != 0:
            return "making network namespaces needs root"
        return None

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def up(self) -> Netns:
        self._ip("netns", "add", self.switch)
        self._ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        self._ip("-n", self.switch, "link", "set", "br0", "up")
        for k, (h, ns) in enumerate(self.hosts.items()):
            self._ip("netns", "add", ns)
            veth = f"{self.prefix}v{k + 1}"
            port = self._port[h]
            self._ip(
                "link",
                "add",
                veth,
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                self.switch,
            )
            self._ip("-n", ns, "link", "set", veth, "name", "eth0")
            self._ip("-n", ns, "addr", "add", f"{self.address[h]}/24", "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", self.switch, "link", "set", port, "master", "br0")
            self._ip("-n", self.switch, "link", "set", port, "up")
        return self

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host]]

    def partition(self, host: str) -> None:
        self._ip("-n", self.switch, "link", "set", self._port[host], "down")

    def heal(self, host: str) -> None:
        self._ip("-n", self.switch, "link", "set", self._port[host], "up")

    def down(self) -> None:
        for ns in (*self.hosts.values(), self.switch):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


class NetCluster(_DaemonCluster):
    """ZooKeeper, nimbus and two supervisors, each on its own "host" (network namespace).

    The test talks to the cluster from a fifth host, ``client``; ledgers and pid
    files are on the shared filesystem.
    """

    HOSTS = ["zk", "nimbus", "sup1", "sup2", "client"]

    def __init__(self, base: Path, conf: dict[str, Any] | None = None) -> None:
        require_zookeeper()
        self.base = base
        self.net = Netns(self.HOSTS)
        a = self.net.address
        self.zk = ZooKeeperServer(base / "zk", host=a["zk"], port=2181, netns=self.net.hosts["zk"])
        self.common: dict[str, Any] = {
            **FAST_CONF,
            "storm.zookeeper.servers": [a["zk"]],
            "storm.zookeeper.port": 2181,
            "nimbus.seeds": [f"{a['nimbus']}:6627"],
            "nimbus.thrift.port": 6627,
            **(conf or {}),
        }
        self.nimbus = Daemon(
            "nimbus",
            {**self.common, "nimbus.host": a["nimbus"], "storm.local.dir": str(base / "nimbus")},
            base / "nimbus",
            prefix=self.net.exec_prefix("nimbus"),
        )
        self.supervisors = [
            Daemon(
                "supervisor",
                {
                    **self.common,
                    "storm.local.hostname": a[h],
                    "storm.local.dir": str(base / h),
                    "supervisor.slots.ports": [6700, 6701],
                },
                base / h,
                prefix=self.net.exec_prefix(h),
            )
            for h in ("sup1", "sup2")
        ]
        self.client_conf = base / "client.json"
        self.client_conf.write_text(json.dumps(self.common))
        self.ledgers = base / "ledger"

    def nimbus_daemons(self) -> list[Daemon]:
        return [self.nimbus]

    def start(self) -> NetCluster:
        self.net.up()
        self.zk.start()
        self.nimbus.start()
        for d in self.supervisors:
            d.start()
        wait_until(
            lambda: len(self.cluster_info().get("supervisors", [])) == 2,
            60,
            "both supervisors registered",
            interval=0.3,
        )
        return self

    def client_python(self, code: str) -> Any:
        """Run ``code`` in the client host; it prints JSON, which is returned."""
        proc = subprocess.run(
            [*self.net.exec_prefix("client"), sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=squall_env(),
            timeout=30,
            cwd=str(ROOT),
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        return json.loads(proc.stdout)

    def cluster_info(self) -> Any:
        try:
            return self.client_python(
                "import json;from squall.daemon.nimbus_client import NimbusClient;"
                f"print(json.dumps(NimbusClient([{self.common['nimbus.seeds'][0]!r}],"
                "timeout_secs=2).cluster()))"
            )
        except RuntimeError:
            return {}

    def topologies(self) -> Any:
        return self.client_python(
            "import json;from squall.daemon.nimbus_client import NimbusClient;"
            f"print(json.dumps(NimbusClient([{self.common['nimbus.seeds'][0]!r}],"
            "timeout_secs=2).topologies()))"
        )

    def squall(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [
                *self.net.exec_prefix("client"),
                sys.executable,
                "-m",
                "squall.cli",
                *args,
                "--conf",
                str(self.client_conf),
            ],
            capture_output=True,
            text=True,
            env=squall_env(),
            timeout=60,
            cwd=str(ROOT),
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"squall {' '.join(args)}: {proc.stderr}")
        return proc

    def submit_ledger(self, name: str, sentences: int, workers: int, **conf: Any) -> None:
        self._submit_ledger(name, sentences, workers, (), conf)

    def stop(self) -> None:
        super().stop()
        self.net.down()


@contextlib.contextmanager
def netns_cluster(**kwargs: Any) -> Iterator[NetCluster]:
    """A started :class:`NetCluster`; fails on CI and skips elsewhere without namespaces."""
    why = Netns.available()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the multi-host test {why}")
        pytest.skip(f"the multi-host test {why}")
    base = Path(tempfile.mkdtemp(prefix="squall-netns-"))
    with _running(NetCluster(base, **kwargs), base) as cluster:
        yield cluster
