"""A throwaway redis-server for integration tests: loopback, a free port, a temp dir.

The server is started by the test (``redis_server()`` is a context manager) and
stopped by the pid it started. Without ``redis-server`` the test fails on CI
(``.ci/services/redis.sh`` installs it) and is skipped on a developer's machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from squall.state import RedisBackend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[RedisBackend]:
    """Start redis-server; yield a backend for it; stop it (SIGTERM, then SIGKILL, by pid)."""
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: run .ci/services/redis.sh")
        pytest.skip("redis-server is not installed (.ci/services/redis.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="squall-redis-") as folder:
        port = _free_port()
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        backend = RedisBackend("127.0.0.1", port, prefix="t:")
        try:
            deadline = time.monotonic() + 10
            client = backend.client()
            while True:
                try:
                    client.ping()
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on port {port}") from None
                    time.sleep(0.02)
            client.close()
            yield backend
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
