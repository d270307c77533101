"""The host side of Storm's multilang protocol, byte for byte (storm-spec.md §2.8).

A child written straight against the protocol records every frame the host
sends; the test compares them with the transcript Storm's own worker would write.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, Grouping, LocalCluster, ShellBolt, Spout, Topology

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

CHILDREN = Path(__file__).resolve().parents[1] / "multilang"
RECEIVED: list[tuple[int, str]] = []


class OneSentence(Spout):
    outputs = ["sentence"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.sent = False

    def next_tuple(self) -> None:
        if not self.sent:
            self.sent = True
            self.emit(["a b"])


class Sink(Bolt):
    def process(self, tup: Any) -> None:
        RECEIVED.append((self.context.task_id, tup.values.word))


class Transcript(Topology):
    spout = OneSentence.spec()
    split = ShellBolt.spec(
        command=[sys.executable],
        script="scripted_child.py",
        args=["split"],
        cwd=str(CHILDREN),
        inputs=[spout],
        outputs=["word"],
    )
    sink = Sink.spec(inputs={split: Grouping.fields("word")}, par=2)


@pytest.fixture
def real_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        yield c


def _frames(path: Path) -> list[bytes]:
    data = path.read_bytes() if path.exists() else b""
    return [f + b"\nend\n" for f in data.split(b"\nend\n") if f]


def test_the_host_writes_storms_handshake_tuples_task_ids_and_heartbeats_byte_for_byte(
    real_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "received.txt"
    monkeypatch.setenv("RECORD", str(record))
    RECEIVED.clear()
    conf = {"topology.acker.executors": 0, "topology.subprocess.timeout.secs": 3}
    real_cluster.submit("transcript", Transcript, conf)
    deadline = time.monotonic() + 15
    while len(_frames(record)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    frames = _frames(record)
    assert len(frames) >= 5, frames

    # Tasks in Storm's numbering: sorted component ids, no ackers.
    sink_of = {word: task for task, word in RECEIVED}
    assert sorted(RECEIVED) == sorted([(sink_of["a"], "a"), (sink_of["b"], "b")])

    handshake = frames[0]
    assert handshake.startswith(b'{"pidDir":"') and handshake.endswith(b"}\nend\n")
    hs = json.loads(handshake[: -len(b"\nend\n")])
    assert list(hs) == ["pidDir", "conf", "context"]
    # The shell's own temporary folder (gone again once the shell has closed).
    assert Path(hs["pidDir"]).name.startswith("squall-pids-split-")
    assert Path(hs["pidDir"]).is_dir() or not Path(hs["pidDir"]).exists()
    assert hs["conf"]["topology.name"] == "transcript"
    assert hs["conf"]["topology.subprocess.timeout.secs"] == 3
    assert hs["context"] == {
        "task->component": {"1": "sink", "2": "sink", "3": "split", "4": "spout"},
        "taskid": 3,
        "componentid": "split",
        "streams": ["default"],
        "stream->outputfields": {"default": ["word"]},
        "stream->target->grouping": {"default": {"sink": {"type": "FIELDS", "fields": ["word"]}}},
        "source->stream->grouping": {"spout": {"default": {"type": "SHUFFLE"}}},
        "source->stream->fields": {"spout": {"default": ["sentence"]}},
    }
    assert frames[1:5] == [
        b'{"id":"1","comp":"spout","stream":"default","task":4,"tuple":["a b"]}\nend\n',
        f"[{sink_of['a']}]\nend\n".encode(),
        f"[{sink_of['b']}]\nend\n".encode(),
        b'{"id":"2","comp":null,"stream":"__heartbeat","task":-1,"tuple":[]}\nend\n',
    ]
