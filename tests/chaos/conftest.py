"""Chaos tests: real faults (kill -9, ZooKeeper down, partitions) on a real cluster.

Tests marked ``chaos`` are long; they run only when asked for (``pytest -m chaos
tests/chaos``). The rest of this folder is the short CI subset.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "chaos" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long chaos run: pytest -m chaos tests/chaos")
    for item in items:
        if item.get_closest_marker("chaos") is not None:
            item.add_marker(skip)
