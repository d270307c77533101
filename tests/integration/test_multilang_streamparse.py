"""``squall run`` on a streamparse project: its Python components run as multilang children."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from squall import Grouping, ShellBolt, ShellSpout

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PROJECT = Path(__file__).resolve().parents[1] / "multilang" / "sparse_project"
SQUALL = str(Path(sys.executable).parent / "squall")
WORDS = 200


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    out.mkdir()
    cmd = [
        SQUALL,
        "run",
        str(PROJECT / "topologies" / "wordcount.py"),
        "--duration",
        "3",
        "--plain",
        "-c",
        f"test.words={WORDS}",
        "-c",
        f"test.out={out}",
        *extra,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=50, env=env)


def _counts(tmp_path: Path) -> Counter[str]:
    total: Counter[str] = Counter()
    for f in (tmp_path / "out").glob("*.json"):
        total.update(json.loads(f.read_text()))
    return total


@pytest.mark.parametrize("workers", ["1", "2"])
def test_squall_run_runs_a_streamparse_topology_with_exact_counts(
    tmp_path: Path, workers: str
) -> None:
    pytest.importorskip("streamparse")
    done = _run(tmp_path, "--workers", workers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _counts(tmp_path) == Counter(
        {w: WORDS // 4 for w in ("dog", "cat", "zebra", "elephant")}
    )
    assert "count_bolt" in done.stdout and "word_spout" in done.stdout


def test_a_streamparse_topology_becomes_shell_components_running_the_launcher() -> None:
    pytest.importorskip("streamparse")
    import streamparse

    from squall.multilang.streamparse_compat import from_streamparse, is_streamparse_topology

    class SpWords(streamparse.Spout):
        outputs = ["word"]

    class SpCount(streamparse.Bolt):
        outputs = [streamparse.Stream(["word", "count"]), streamparse.Stream(["w"], "other")]

    class WordCount(streamparse.Topology):
        config = {"topology.multilang.serializer": "msgpack", "x": 1}
        words = SpWords.spec()
        count = SpCount.spec(inputs={words: streamparse.Grouping.fields("word")}, par=2)

    assert is_streamparse_topology(WordCount) and not is_streamparse_topology(SpWords)
    d = from_streamparse(WordCount)
    words, count = d.components["words"], d.components["count"]
    assert words.cls is ShellSpout and count.cls is ShellBolt and count.par == 2
    assert count.kwargs["command"] == [
        sys.executable,
        "-m",
        "squall.multilang.run",
        f"{__name__}.SpCount",
        "-s",
        "msgpack",
    ]
    assert count.kwargs["serializer"] == "msgpack"
    assert dict(count.inputs) == {
        next(iter(dict(count.inputs))): Grouping.fields("word"),
    }
    assert str(count.inputs[0][0]) == "words:default"
    assert sorted(count.outputs) == ["default", "other"]
    assert d.config["x"] == 1
