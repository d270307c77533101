"""A spout and a bolt in Node.js, written in the tests against the protocol, run in a topology."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, Grouping, LocalCluster, ShellBolt, ShellSpout, Topology

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CHILDREN = Path(__file__).resolve().parents[1] / "multilang"
NODE = shutil.which("node")
SENTENCES = 200


class Count(Bolt):
    def initialize(self, conf: Any, context: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.report_metric("counts", self.counts)

    def process(self, tup: Any) -> None:
        self.counts[tup.values.word] += 1


class NodeWords(Topology):
    sentences = ShellSpout.spec(
        command=[NODE or "node", "node_components.js", "spout"],
        cwd=str(CHILDREN),
        outputs=["sentence"],
    )
    shout = ShellBolt.spec(
        command=[NODE or "node", "node_components.js", "bolt"],
        cwd=str(CHILDREN),
        inputs=[sentences],
        outputs=["word"],
        par=2,
    )
    count = Count.spec(inputs={shout: Grouping.fields("word")})


@pytest.fixture
def real_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        yield c


# CI has node; only a developer's machine without it may skip.
@pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="node is not installed")
def test_node_spout_and_bolt_give_exact_counts_and_every_tuple_is_acked(
    real_cluster: LocalCluster,
) -> None:
    run = real_cluster.submit("node", NodeWords, {"test.sentences": SENTENCES})
    real_cluster.wait_until(lambda: run.stats()["sentences"].acked == SENTENCES, timeout=30)
    stats = run.stats()
    assert stats["count"].metrics["counts"] == Counter(
        {"SENTENCE": SENTENCES, **{str(i): 1 for i in range(SENTENCES)}}
    )
    assert stats["sentences"].failed == 0
    assert stats["shout"].errors == 0 and stats["sentences"].errors == 0
    # The spout child counted acks with a Storm count metric (null params = +1).
    real_cluster.wait_until(
        lambda: run.stats()["sentences"].metrics.get("acked") == SENTENCES, timeout=10
    )
