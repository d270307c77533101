"""Unmodified pystorm components (Bolt, Spout, BatchingBolt, ReliableSpout) run under Squall.

They are wired with Squall-native components in one topology and must give
exact results with both serializers, in one process and across worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.multilang import topologies as MT

from squall import LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SENTENCES = 300
NUMBERS = 100


@pytest.fixture
def real_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        yield c


@pytest.mark.parametrize(
    ("serializer", "workers"), [("json", 1), ("msgpack", 1), ("json", 2), ("msgpack", 2)]
)
def test_pystorm_components_with_native_ones_give_exact_counts(
    real_cluster: LocalCluster, serializer: str, workers: int
) -> None:
    conf = {
        "topology.workers": workers,
        MT.SENTENCE_COUNT: SENTENCES,
        MT.NUMBER_COUNT: NUMBERS,
        "topology.message.timeout.secs": 20,
    }
    run = real_cluster.submit(
        f"pystorm-{serializer}-{workers}", MT.pystorm_topology(serializer), conf
    )

    def done() -> bool:
        st = run.stats()
        return st["sentences"].acked == SENTENCES and st["numbers"].acked == NUMBERS

    real_cluster.wait_until(done, timeout=45, interval=0.05)
    stats = run.stats()
    expected = MT.expected_word_counts(SENTENCES)
    assert MT.merged(stats["count"].metrics, "counts.") == expected
    assert MT.merged(stats["batch_totals"].metrics, "batch.") == expected
    numbers = [n for name, seen in stats["number_sink"].metrics.items() for n in seen]
    assert sorted(numbers) == list(range(NUMBERS))
    assert stats["sentences"].failed == 0
    assert stats["split"].errors == 0 and stats["batch"].errors == 0
