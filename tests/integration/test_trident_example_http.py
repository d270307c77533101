"""examples/trident_wordcount.py under ``squall run``, queried over DRPC's HTTP interface."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from tests.integration.test_drpc_cli import start, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def words(port: int, query: str) -> int:
    url = f"http://127.0.0.1:{port}/drpc/words/{urllib.request.quote(query)}"
    with urllib.request.urlopen(url, timeout=20) as resp:
        result = json.loads(resp.read().decode())
    assert isinstance(result, list) and len(result) == 1 and len(result[0]) == 1, result
    return int(result[0][0])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_tutorial_query_over_http_sees_the_counts_grow(workers: str) -> None:
    proc, port = start(
        "run",
        "examples/trident_wordcount.py",
        "--plain",
        "--workers",
        workers,
        "-c",
        "drpc.http.port=0",
        timeout=40,
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
        stop(proc)
