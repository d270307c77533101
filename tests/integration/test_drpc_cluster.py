"""DRPC on a real cluster: ``squall drpc`` servers in their own processes, the DRPC
topologies submitted to nimbus and run by 2 worker processes on 2 supervisors, and
callers on plain HTTP.

One cluster and two DRPC servers (A and B) for the whole module. The exclamation
topology is submitted with ``drpc.servers`` listing both servers, the reach
topology with A only; each runs on 2 workers.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.chaos.harness import ROOT, Cluster, free_ports, running_cluster, squall_env, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: drpc.request.timeout.secs on both servers: short, so that the 504 test is quick.
REQUEST_TIMEOUT_SECS = 3
#: 200 callers at once may all be queued before the spout's first fetch (the default
#: queue, 128, would answer some of them 503 QUEUE_FULL: a client's cue to retry).
QUEUE_SIZE = 256
CALLERS = 200


class DRPCDaemon:
    """A ``squall drpc`` process this test started (signalled only by its pid)."""

    def __init__(self, name: str, port: int, log_dir: Path) -> None:
        self.name = name
        self.port = port
        self.log_file = log_dir / f"drpc-{name}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> DRPCDaemon:
        log = open(self.log_file, "a")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "squall.cli",
                "drpc",
                "--port",
                str(self.port),
                "-c",
                f"drpc.request.timeout.secs={REQUEST_TIMEOUT_SECS}",
                "-c",
                f"drpc.queue.size={QUEUE_SIZE}",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            env=squall_env(),
            cwd=str(ROOT),
            start_new_session=True,
        )
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if re.search(rf"listening on http://127\.0\.0\.1:{self.port}\b", line):
                    return self
            if self.proc.poll() is not None:
                break
        self.kill()
        raise AssertionError(f"squall drpc {self.name} did not start:\n{self.log()}")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait; the exit status and what it printed."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@dataclass
class Deployment:
    cluster: Cluster
    a: DRPCDaemon
    b: DRPCDaemon


def call(port: int, function: str, args: str, timeout: float = 30.0) -> tuple[int, str]:
    """``GET /drpc/<function>/<args>``: (HTTP status, body)."""
    url = f"http://127.0.0.1:{port}/drpc/{function}/{quote(args, safe='/')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def answers(port: int, function: str, args: str, expected: str) -> bool:
    """True once ``function(args)`` is answered with ``expected`` (for ``wait_until``)."""
    try:
        return call(port, function, args, timeout=REQUEST_TIMEOUT_SECS + 5) == (200, expected)
    except OSError:
        return False


def submit(cluster: Cluster, target: str, name: str, servers: list[int]) -> None:
    listed = json.dumps([f"127.0.0.1:{p}" for p in servers])
    out = cluster.squall(
        "submit", target, "--name", name, "-c", "topology.workers=2", "-c", f"drpc.servers={listed}"
    ).stdout
    assert f"Submitted topology {name!r}" in out and "2 workers" in out, out


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    failed_before = request.session.testsfailed
    with running_cluster(supervisors=2, slots=2) as cluster:
        port_a, port_b = free_ports(2)
        a = DRPCDaemon("a", port_a, cluster.base)
        b = DRPCDaemon("b", port_b, cluster.base)
        try:
            a.start()
            b.start()
            submit(cluster, "examples/drpc_exclamation.py", "exclamation", [port_a, port_b])
            submit(cluster, "examples/drpc_reach.py", "reach", [port_a])
            placed = cluster.assignment("exclamation")
            assert len({w.node for w in placed.workers}) == 2, "2 workers, 2 supervisors"
            wait_until(lambda: answers(port_a, "exclamation", "up", "up!!!"), 60, "exclamation")
            wait_until(lambda: answers(port_a, "reach", "foo.com/blog/1", "16"), 60, "reach")
            yield Deployment(cluster, a, b)
        finally:
            if request.session.testsfailed != failed_before:
                sys.stderr.write(f"==== drpc a ====\n{a.log()}\n==== drpc b ====\n{b.log()}\n")
                sys.stderr.write(cluster.logs())
            a.kill()
            b.kill()


def test_the_cluster_answers_exclamation_and_reach_exactly(deployment: Deployment) -> None:
    port = deployment.a.port
    assert call(port, "exclamation", "hello") == (200, "hello!!!")
    assert call(port, "exclamation", "a/b c é?&") == (200, "a/b c é?&!!!")
    assert call(port, "exclamation", "") == (200, "!!!")
    # Storm's reach example: distinct followers of everyone who tweeted the URL.
    assert call(port, "reach", "foo.com/blog/1") == (200, "16")
    assert call(port, "reach", "engineering.twitter.com/blog/5") == (200, "14")
    assert call(port, "reach", "tech.backtype.com/blog/123") == (200, "7")
    assert call(port, "reach", "nobody.example/never-tweeted") == (200, "0")


def test_200_concurrent_callers_each_get_their_own_answer(deployment: Deployment) -> None:
    port = deployment.a.port
    start = threading.Barrier(CALLERS)

    def one(i: int) -> tuple[int, str]:
        start.wait(30)
        function, args = ("reach", "foo.com/blog/1") if i % 10 == 0 else ("exclamation", f"c{i}")
        return call(port, function, args)

    with ThreadPoolExecutor(CALLERS) as pool:
        got = list(pool.map(one, range(CALLERS)))
    expected = [(200, "16") if i % 10 == 0 else (200, f"c{i}!!!") for i in range(CALLERS)]
    wrong = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    assert not wrong, f"{len(wrong)} of {CALLERS} callers got a wrong answer, e.g. {wrong[:3]}"


def test_a_function_nobody_serves_times_out_with_504(deployment: Deployment) -> None:
    began = time.monotonic()
    status, body = call(deployment.a.port, "nobody-serves-this", "x")
    took = time.monotonic() - began
    assert status == 504
    error = json.loads(body)
    assert error["error"] == "SERVER_TIMEOUT"
    assert "'nobody-serves-this'" in error["errorMessage"]
    assert "to be fetched by a topology" in error["errorMessage"]
    assert REQUEST_TIMEOUT_SECS - 0.2 <= took < REQUEST_TIMEOUT_SECS + 5, took


def test_requests_sent_to_either_of_two_servers_are_answered(deployment: Deployment) -> None:
    ports = [deployment.a.port, deployment.b.port]

    def one(i: int) -> tuple[int, str]:
        return call(ports[i % 2], "exclamation", f"via-{i}")

    with ThreadPoolExecutor(20) as pool:
        got = list(pool.map(one, range(40)))
    assert got == [(200, f"via-{i}!!!") for i in range(40)]


def test_a_restarted_drpc_server_is_served_again_without_restarting_the_topology(
    deployment: Deployment,
) -> None:
    cluster, a, b = deployment.cluster, deployment.a, deployment.b
    workers = cluster.live_worker_pids()
    assert len(workers) == 4

    # A request waiting at A when it stops gets 503, not silence.
    pending: list[tuple[int, str]] = []
    waiter = threading.Thread(
        target=lambda: pending.append(call(a.port, "nobody-serves-this", "x")), daemon=True
    )
    waiter.start()
    time.sleep(0.3)
    status, out = a.stop()
    assert status == 128 + signal.SIGTERM, out
    waiter.join(10)
    assert pending and pending[0][0] == 503, pending
    assert json.loads(pending[0][1])["error"] == "SERVER_SHUTDOWN"

    # While A is down, B keeps serving exclamation.
    with pytest.raises(OSError):
        call(a.port, "exclamation", "down")
    assert call(b.port, "exclamation", "meanwhile") == (200, "meanwhile!!!")

    a.start()
    restarted = time.monotonic()
    wait_until(lambda: answers(a.port, "exclamation", "again", "again!!!"), 30, "exclamation on A")
    wait_until(lambda: answers(a.port, "reach", "foo.com/blog/1", "16"), 30, "reach on A")
    reconnect_secs = time.monotonic() - restarted
    # The spouts reconnect within their backoff (capped at 1 s); generous on a loaded box.
    assert reconnect_secs < 15, reconnect_secs

    with ThreadPoolExecutor(32) as pool:
        got = list(pool.map(lambda i: call(a.port, "exclamation", f"after-{i}"), range(64)))
    assert got == [(200, f"after-{i}!!!") for i in range(64)]
    assert cluster.live_worker_pids() == workers, "no worker was restarted"
