"""Shared fixtures. Keep this small: helpers that only one test file needs live in that file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from squall import LocalCluster
from squall.testing import simulated_cluster


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A LocalCluster on simulated time, shut down after the test."""
    with simulated_cluster() as c:
        yield c
