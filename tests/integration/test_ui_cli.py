"""``squall ui``, ``squall run --ui`` and ``squall monitor``: real processes, real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import ui_topologies as U

from squall import LocalCluster
from squall.cli.main import main
from squall.ui import LocalSource, UIServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def post(url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as r:
        return json.load(r)


def read_url(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The UI's address, from the 'Squall UI at http://...' line the command prints."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("Squall UI at "):
            return line.split()[3].rstrip("/")
    raise AssertionError("the command never printed its UI address")


def squall(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "squall.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.fixture
def running() -> Iterator[str]:
    with (
        LocalCluster() as cluster,
        UIServer(LocalSource(cluster), port=0, capture_logs=False, sample_secs=0.1) as ui,
    ):
        cluster.submit("numbers", U.NumbersTopology, {U.RATE: 1000})
        yield ui.url


def test_monitor_prints_storms_columns_and_the_throughput(
    running: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["monitor", "numbers", "-c", "double", "-i", "0.4", "-n", "2", "--url", running])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "topology", "component", "parallelism", "stream", "time-diff", "ms", "emitted",
        "throughput", "(Kt/s)",
    ]  # fmt: skip
    assert len(lines) == 3
    for line in lines[1:]:
        topology, component, par, stream, diff_ms, count, kts = line.split()
        assert (topology, component, par, stream) == ("numbers", "double", "2", "default")
        assert int(diff_ms) >= 300  # the interval, plus however long the requests took
        assert int(count) > 0 and float(kts) > 0


def test_monitor_names_a_missing_topology_or_component(
    running: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", "nope", "-i", "0.1", "-n", "1", "--url", running]) == 1
    assert "no topology with id or name 'nope'" in capsys.readouterr().err
    assert main(["monitor", "numbers", "-c", "nah", "-n", "1", "--url", running]) == 1
    assert "has no component 'nah' (it has: numbers, double, sink)" in capsys.readouterr().err


def test_ui_without_topologies_serves_a_cluster_and_says_when_nimbus_does_not_answer(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:  # a port nobody listens on: no nimbus there
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]
    proc = squall(
        "ui", "--nimbus", f"127.0.0.1:{nobody}", "--port", "0", "--log-dir", str(tmp_path)
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "for a cluster whose nimbus does not answer yet" in banner
        assert f"127.0.0.1:{nobody}: connection refused" in banner
        url = banner.split()[3].rstrip("/")
        assert "To run topologies here instead: squall ui FILE" in proc.stdout.readline()
        # The UI serves anyway (Storm's does too): the API says what is wrong, with a 503.
        try:
            get(f"{url}/api/v1/cluster/summary")
            raise AssertionError("expected HTTP 503")
        except urllib.error.HTTPError as e:
            assert e.code == 503
            assert "no leader nimbus" in json.load(e)["errorMessage"]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_with_ui_stops_when_the_topology_is_killed_from_the_ui(tmp_path: Path) -> None:
    proc = squall(
        "run", "tests/ui_topologies.py", "--ui", "--ui-port", "0", "--plain",
        "--log-dir", str(tmp_path), "-c", f"{U.RATE}=200",
    )  # fmt: skip
    try:
        url = read_url(proc)  # printed before the topology starts: wait for it
        deadline = time.monotonic() + 20
        while not (tops := get(f"{url}/api/v1/topology/summary")["topologies"]):
            assert time.monotonic() < deadline, "the topology never showed up in the UI"
            time.sleep(0.05)
        [t] = tops
        assert t["name"] == "NumbersTopology"
        while get(f"{url}/api/v1/topology/{t['id']}")["spouts"][0]["acked"] < 20:
            assert time.monotonic() < deadline, "the topology never got going"
            time.sleep(0.05)
        assert post(f"{url}/api/v1/topology/{t['id']}/kill/0")["status"] == "success"
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped: killed from the UI" in out
    assert proc.returncode == 3  # the run ended; user code raised errors (10, 20, ...)
    assert list(tmp_path.glob(f"workers-artifacts/{t['id']}/6700/worker.log"))


def test_ui_command_serves_local_topologies_until_terminated(tmp_path: Path) -> None:
    proc = squall("ui", "tests/ui_topologies.py", "--port", "0", "--log-dir", str(tmp_path))
    try:
        url = read_url(proc)  # printed once the topologies run
        summary = get(f"{url}/api/v1/cluster/summary")
        assert (summary["topologies"], summary["mode"]) == (1, "local")
        os.kill(proc.pid, signal.SIGTERM)  # stops as cleanly as Ctrl-C
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
