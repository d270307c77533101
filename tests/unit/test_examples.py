"""Each example topology runs and produces the right results (simulated time, in process).

A capture bolt is added to each example (by subclassing its Topology) so the
tests read what the last bolt emitted, through the public API only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, Grouping, LocalCluster, Topology
from squall.cli.loader import load_topology

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).parents[2] / "examples"


class Capture(Bolt):
    """Appends every tuple it receives to ``sink`` (in-process runs only)."""

    def __init__(self, sink: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.sink = sink

    def process(self, tup: Any) -> None:
        self.sink.append(tuple(tup.values))


def example(name: str) -> tuple[type[Topology], Any]:
    loaded = load_topology(str(EXAMPLES / f"{name}.py"))
    return loaded.obj, loaded.module


def captured(topology: type[Topology], source: str, sink: list[tuple[Any, ...]]) -> type[Topology]:
    """``topology`` plus a bolt that captures everything ``source`` emits."""

    class Captured(topology):  # type: ignore[valid-type,misc]
        capture = Capture.spec(inputs={getattr(topology, source): Grouping.GLOBAL}, sink=sink)

    return Captured


def run_then_drain(topology: type[Topology], passes: int) -> dict[str, Any]:
    """Run ``passes`` engine passes, deactivate, finish in-flight tuples; return the stats."""
    # Small batches keep the run short: each pass emits at most 32 tuples per spout task.
    with LocalCluster(simulated_time=True) as cluster:
        run = cluster.submit("example", topology, {"squall.executor.batch.size": 32})
        assert run.engine is not None
        for _ in range(passes):
            run.engine.run_once()
        run.deactivate()
        run.run_until_idle()
        assert run.errors == []
        return dict(run.stats())


def test_wordcount_counts_every_word_once_on_a_single_task() -> None:
    wordcount, module = example("wordcount")
    sink: list[tuple[Any, ...]] = []
    stats = run_then_drain(captured(wordcount, "count", sink), passes=20)
    assert stats["sentences"].emitted > 0
    seen: defaultdict[str, list[int]] = defaultdict(list)
    for word, count in sink:
        seen[word].append(count)
    vocabulary = {w for s in module.SENTENCES for w in s.split()}
    assert set(seen) == vocabulary
    for word, counts in seen.items():
        # Fields grouping sends a word to one task, whose running count goes 1, 2, 3...
        assert sorted(counts) == list(range(1, len(counts) + 1)), word
    assert sum(len(c) for c in seen.values()) == stats["split"].emitted


def test_exclamation_adds_three_marks_in_each_of_two_bolts() -> None:
    exclamation, module = example("exclamation")
    sink: list[tuple[Any, ...]] = []
    stats = run_then_drain(captured(exclamation, "exclaim2", sink), passes=10)
    assert len(sink) == stats["word"].emitted > 0
    assert {w for (w,) in sink} == {w + "!!!!!!" for w in module.WORDS}


def test_reliable_wordcount_replays_failed_sentences_and_counts_exactly() -> None:
    topology, module = example("reliable_wordcount")
    sink: list[tuple[Any, ...]] = []
    with LocalCluster(simulated_time=True) as cluster:
        run = cluster.submit("reliable", captured(topology, "count", sink))
        cluster.run_until_idle()
        stats = run.stats()
        assert run.errors == [], "FailedError fails tuples without reporting errors"
    total = module.ROUNDS * len(module.SENTENCES)
    assert stats["sentences"].acked == total
    assert stats["sentences"].failed > 0, "some sentences failed and were replayed"
    assert stats["count"].failed == stats["sentences"].failed
    final: dict[str, int] = {}
    for word, count in sink:
        final[word] = max(final.get(word, 0), count)
    expected = Counter(w for i in range(total) for w in module.sentence(i).split())
    assert final == dict(expected)


def test_reliable_wordcount_reads_the_number_of_rounds_from_config() -> None:
    topology, module = example("reliable_wordcount")
    with LocalCluster(simulated_time=True) as cluster:
        run = cluster.submit("reliable", topology, {"reliable_wordcount.rounds": 3})
        cluster.run_until_idle()
        assert run.stats()["sentences"].acked == 3 * len(module.SENTENCES)


def test_the_readme_example_counts_words(tmp_path: Path) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("## Example", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme_wc.py"
    path.write_text(code)
    loaded = load_topology(str(path))
    sink: list[tuple[Any, ...]] = []
    stats = run_then_drain(captured(loaded.obj, "count", sink), passes=5)
    final: dict[str, int] = {}
    for word, count in sink:
        final[word] = max(final.get(word, 0), count)
    sentences = stats["sentences"].emitted
    assert sentences > 0
    assert final["the"] == 2 * sentences and final["fox"] == sentences
