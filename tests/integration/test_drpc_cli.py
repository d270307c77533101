"""DRPC from the command line: ``squall run`` serves DRPC topologies over HTTP (in one
process and across worker processes), ``squall drpc`` as a daemon, ``squall drpc-client``.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
SQUALL = str(Path(sys.executable).parent / "squall")


def start(
    *args: str, pattern: str = r"http://127\.0\.0\.1:(\d+)", timeout: float = 30
) -> tuple[subprocess.Popen[str], int]:
    """Start ``squall ARGS`` and wait for a line matching ``pattern``; its group is a port."""
    proc = subprocess.Popen(
        [SQUALL, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            seen += line
            match = re.search(pattern, line)
            if match:
                return proc, int(match.group(1)) if match.groups() else 0
        if proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"squall {' '.join(args)} did not announce its port:\n{seen}\n{err}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.communicate()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, "drpc-client", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_squall_run_serves_the_exclamation_example_over_http(
    procs: list[subprocess.Popen[str]],
) -> None:
    proc, port = start("run", "examples/drpc_exclamation.py", "--plain", "-c", "drpc.http.port=0")
    procs.append(proc)
    assert get(port, "/drpc/exclamation/aaa") == (200, "aaa!!!")
    done = client("--port", str(port), "exclamation", "a", "b c")
    assert (done.returncode, done.stdout) == (0, "a!!!\nb c!!!\n")
    status, _, err = stop(proc)
    assert status == 130, err
    with pytest.raises(urllib.error.URLError):
        get(port, "/drpc/exclamation/late")


def test_squall_run_serves_reach_from_worker_processes(procs: list[subprocess.Popen[str]]) -> None:
    proc, port = start(
        "run", "examples/drpc_reach.py", "--workers", "2", "--plain", "-c", "drpc.http.port=0"
    )
    procs.append(proc)
    answers = {
        url: get(port, f"/drpc/reach/{url}")
        for url in ("foo.com/blog/1", "engineering.twitter.com/blog/5", "nobody/x")
    }
    assert answers == {
        "foo.com/blog/1": (200, "16"),
        "engineering.twitter.com/blog/5": (200, "14"),
        "nobody/x": (200, "0"),
    }
    status, _, err = stop(proc)
    assert status == 130, err


def test_a_drpc_daemon_serves_a_topology_started_separately(
    procs: list[subprocess.Popen[str]],
) -> None:
    daemon, port = start("drpc", "--port", "0")
    procs.append(daemon)
    topo, _ = start(
        "run",
        "examples/drpc_exclamation.py",
        "--workers",
        "2",
        "--plain",
        "-c",
        f"drpc.servers=127.0.0.1:{port}",
        pattern=r"^Running topology",
    )
    procs.append(topo)
    done = client("--server", f"127.0.0.1:{port}", "-f", "exclamation", "x")
    assert (done.returncode, done.stdout) == (0, "x!!!\n"), done.stderr
    status, out, err = stop(topo)
    assert status == 130, err
    status, out, err = stop(daemon, signal.SIGTERM)
    assert status == 143 and "DRPC server stopped" in out, err


def test_drpc_client_reports_a_timeout_and_exits_1(procs: list[subprocess.Popen[str]]) -> None:
    daemon, port = start("drpc", "-p", "0", "-c", "drpc.request.timeout.secs=0.2")
    procs.append(daemon)
    done = client("--port", str(port), "nobody", "x")
    assert done.returncode == 1
    assert "SERVER_TIMEOUT (HTTP 504)" in done.stderr and "to be fetched" in done.stderr


def test_drpc_client_without_a_function_is_a_usage_error() -> None:
    done = client()
    assert done.returncode == 2 and "give a FUNCTION" in done.stderr


def test_drpc_client_names_the_server_it_cannot_reach() -> None:
    port = free_port()
    done = client("--port", str(port), "--retries", "0", "f", "x")
    assert done.returncode == 1 and f"127.0.0.1:{port}" in done.stderr


def test_squall_run_names_a_busy_drpc_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [SQUALL, "run", "examples/drpc_exclamation.py", "-c", f"drpc.http.port={port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "drpc.http.port" in done.stderr and "Traceback" not in done.stderr


def test_the_drpc_daemon_names_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [SQUALL, "drpc", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
