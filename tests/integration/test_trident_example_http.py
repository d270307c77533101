"""examples/trident_wordcount.py under ``squall run``, queried over DRPC's HTTP interface."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
SQUALL = str(Path(sys.executable).parent / "squall")


def start(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Start ``squall run ARGS`` and wait for its DRPC server's port."""
    proc = subprocess.Popen(
        [SQUALL, "run", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 40
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            seen += line
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if match:
                return proc, int(match.group(1))
        if proc.poll() is not None:
            break
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    raise AssertionError(f"squall run did not announce its DRPC port:\n{seen}\n{err}")


def words(port: int, query: str) -> int:
    url = f"http://127.0.0.1:{port}/drpc/words/{urllib.request.quote(query)}"
    with urllib.request.urlopen(url, timeout=20) as resp:
        result = json.loads(resp.read().decode())
    assert isinstance(result, list) and len(result) == 1 and len(result[0]) == 1, result
    return int(result[0][0])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_tutorial_query_over_http_sees_the_counts_grow(workers: str) -> None:
    proc, port = start(
        "examples/trident_wordcount.py", "--plain", "--workers", workers, "-c", "drpc.http.port=0"
    )
    try:
        assert words(port, "xyz") == 0
        first = words(port, "the")
        deadline = time.monotonic() + 30
        while words(port, "the") <= first and time.monotonic() < deadline:
            time.sleep(0.3)
        later = words(port, "the")
        assert later > first
        # "the" is in 2 of the 4 sentences, twice each; "man" once in one of them.
        assert words(port, "man the") >= later
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        proc.communicate(timeout=30)
