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
