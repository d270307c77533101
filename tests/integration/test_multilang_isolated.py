"""Squall components run out of process with ``isolated=True``: same results, same semantics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.multilang import topologies as MT

from squall import LocalCluster
from squall.runtime.stats import ErrorReport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SENTENCES = 200
NUMBERS = 40


@pytest.fixture
def real_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        yield c


@pytest.mark.parametrize(
    ("options", "workers"),
    [(True, 1), ({"serializer": "json"}, 1), (True, 2)],
    ids=["msgpack", "json", "msgpack-2-workers"],
)
def test_isolated_spout_and_bolt_give_the_in_process_counts(
    real_cluster: LocalCluster, options: Any, workers: int
) -> None:
    conf = {MT.SENTENCE_COUNT: SENTENCES, "topology.workers": workers}
    run = real_cluster.submit("iso", MT.isolated_wordcount(options, options), conf)
    real_cluster.wait_until(lambda: run.stats()["sentences"].acked == SENTENCES, timeout=40)
    stats = run.stats()
    assert MT.merged(stats["count"].metrics, "counts.") == MT.expected_word_counts(SENTENCES)
    assert stats["split"].errors == 0 and stats["sentences"].failed == 0


def _judge(cluster: LocalCluster, name: str, isolated: Any) -> tuple[Any, list[ErrorReport]]:
    errors: list[ErrorReport] = []
    run = cluster.submit(
        name, MT.judge(isolated), {MT.NUMBER_COUNT: NUMBERS}, on_error=errors.append
    )

    def done() -> bool:
        m = run.stats()["numbers"].metrics
        return len(m["acked"]) + len(m["failed"]) == NUMBERS

    cluster.wait_until(done, timeout=30)
    return run.stats(), errors


def test_errors_fails_and_values_behave_as_in_process(real_cluster: LocalCluster) -> None:
    inproc, in_errors = _judge(real_cluster, "judge-in", False)
    isolated, iso_errors = _judge(real_cluster, "judge-iso", True)
    for stats in (inproc, isolated):
        m = stats["numbers"].metrics
        assert sorted(m["failed"]) == [n for n in range(NUMBERS) if n % 2 or n % 10 == 0]
        assert sorted(m["acked"]) == [n for n in range(NUMBERS) if not n % 2 and n % 10]
    # Sets cross the process boundary intact.
    assert isolated["tags"].metrics["tags"] == inproc["tags"].metrics["tags"]
    assert isolated["tags"].metrics["tags"][2] == {"even", "n2"}
    # Raising reports an error per odd number (FailedError reports nothing), as in process.
    odd = NUMBERS // 2
    assert len(in_errors) == odd
    assert len(iso_errors) == odd
    assert all("ValueError: odd number" in e.error for e in iso_errors)
    assert all(e.component == "judge" for e in iso_errors)


def test_a_crashing_isolated_bolt_is_restarted_and_nothing_is_lost(
    real_cluster: LocalCluster, tmp_path: Path
) -> None:
    errors: list[ErrorReport] = []
    mark = tmp_path / "crashed"
    conf = {MT.SENTENCE_COUNT: SENTENCES, MT.CRASH_MARK: str(mark)}
    run = real_cluster.submit(
        "crash", MT.isolated_wordcount(True, False), conf, on_error=errors.append
    )
    real_cluster.wait_until(lambda: run.stats()["sentences"].acked == SENTENCES, timeout=40)
    assert mark.exists()
    crash = [e for e in errors if "SIGABRT" in e.error]
    assert crash and crash[0].component == "split"
    assert "isolated bolt 'split'" in crash[0].error
    # Replayed trees may count some words twice, never fewer.
    counts = MT.merged(run.stats()["count"].metrics, "counts.")
    expected = MT.expected_word_counts(SENTENCES)
    assert all(counts[w] >= n for w, n in expected.items())


def _routing(cluster: LocalCluster, name: str, isolated: Any) -> dict[str, list[Any]]:
    run = cluster.submit(name, MT.routing(isolated), {MT.NUMBER_COUNT: NUMBERS})
    cluster.wait_until(lambda: len(run.stats()["numbers"].metrics["acked"]) == NUMBERS, 30)
    st = run.stats()
    return {
        c: sorted(x for name, got in st[c].metrics.items() for x in got)
        for c in ("sink", "direct_sink")
    }


def test_task_ids_and_direct_emits_match_in_process(real_cluster: LocalCluster) -> None:
    inproc = _routing(real_cluster, "route-in", False)
    isolated = _routing(real_cluster, "route-iso", True)
    assert isolated == inproc
    # Every tuple reached exactly the task the router was told, and its direct copy
    # the task it chose.
    assert len(inproc["sink"]) == NUMBERS
    told = {n: went for n, went, _ in inproc["direct_sink"]}
    assert all(told[n] == (task,) for n, _, task in inproc["sink"])
