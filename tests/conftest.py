"""Shared fixtures. Keep this small: helpers that only one test file needs live in that file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall import LocalCluster
from squall.testing import simulated_cluster

# Topologies that run in local worker processes live in tests/topologies.py; the
# workers import them as ``tests.topologies``, so the repository root must be on
# sys.path (workers inherit this process's sys.path).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# Modules under tests/ that are not test files (topologies, child programs) are
# imported by the tests; --doctest-modules must not collect them (two share the
# basename topologies.py, which pytest's rootdir-based import cannot tell apart).
collect_ignore_glob = ["topologies.py", "ui_topologies.py", "multilang/*.py", "*/topologies.py"]


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A LocalCluster on simulated time, shut down after the test."""
    with simulated_cluster() as c:
        yield c
