"""Trident spouts over files: exactly-once word counts through replays, while files grow."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from squall.state import MapState, MapStateFactory, MemoryBackend
from squall.testing import simulated_cluster
from squall.trident import Count, TridentTopology
from squall.trident.sources import FileOpaqueSpout, FileTransactionalSpout

pytestmark = pytest.mark.timeout(30)

_names = itertools.count()
LINES = [f"w{i % 7} w{i % 3} common" for i in range(60)]


class Flaky:
    def __init__(self, fail_on: set[int]) -> None:
        self.fail_on = fail_on
        self.calls = 0

    def __call__(self, line: str) -> list[str]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ValueError("injected")
        return line.split()


@pytest.mark.parametrize("spout_cls", [FileTransactionalSpout, FileOpaqueSpout])
def test_file_spouts_count_every_line_once_through_replays_and_growth(
    tmp_path: Path, spout_cls: Any
) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n".join(LINES[:20]) + "\n" + "w1 partial")  # an unfinished last line
    b.write_text("\n".join(LINES[30:45]) + "\n")
    backend = MemoryBackend(f"files{next(_names)}")
    t = TridentTopology(meta=MemoryBackend(f"meta{next(_names)}"))
    (
        t.new_stream("lines", spout_cls([str(a), str(b)], batch_size=4), parallelism=2)
        .each(["line"], Flaky({3, 11, 12, 40}), ["word"])
        .group_by(["word"])
        .persistent_aggregate(MapStateFactory(backend), Count(), ["count"], state_id="c")
    )
    with simulated_cluster() as cluster:
        cluster.submit(
            "files",
            t,
            {"topology.trident.batch.emit.interval.millis": 100, "topology.max.spout.pending": 3},
        )
        cluster.advance_time(3, step=0.1)  # 30 batch starts: more than the files hold
        # The files grow: the rest of a's partial line, and more lines.
        with a.open("a") as f:
            f.write(" more\n" + "\n".join(LINES[20:30]) + "\n")
        with b.open("a") as f:
            f.write("\n".join(LINES[45:60]) + "\n")
        cluster.advance_time(3, step=0.1)
    lines = [*LINES[:20], "w1 partial more", *LINES[20:60]]
    truth = Counter(w for line in lines for w in line.split())
    state = MapState(backend.connect(), "trident:files:c", "opaque").items()
    assert {k[0]: v for k, v in state.items()} == truth
