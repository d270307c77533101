"""The cluster UI's pure parts: nimbus's answers turned into what the UI shows."""

from __future__ import annotations

from typing import Any

from squall.api import Bolt, Grouping, Spout, Topology
from squall.api.description import from_description
from squall.cli.cluster import prepare_submission
from squall.daemon.cluster_worker import EventRing, apply_debug
from squall.daemon.nimbus_client import NimbusClient
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan
from squall.ui.cluster_source import ClusterSource, topology_info


class Words(Spout):
    outputs = ["word"]


class Count(Bolt):
    outputs = ["word", "n"]


class WordCount(Topology):
    words = Words.spec()
    count = Count.spec(inputs={words: Grouping.fields("word")}, par=2)


def test_the_submitted_description_rebuilds_the_components_the_ui_draws() -> None:
    request, _package = prepare_submission(
        "tests/chaos/ledger_project/ledger_wordcount.py", "l", {}
    )
    d = from_description(request["definition"])
    assert set(d.components) == set(request["component_tasks"]) - {"__acker"}
    assert {c.kind for c in d.spouts()} == {"spout"}
    count = d.components["count"]
    [(stream, grouping)] = count.inputs
    assert (stream.component, grouping.kind, grouping.fields) == ("split", "fields", ("word",))


def test_a_topology_submitted_without_a_description_still_lists_its_components() -> None:
    detail: dict[str, Any] = {
        "id": "old-1-1", "name": "old", "status": "INACTIVE",
        "component_tasks": {"a": [1, 2], "__acker": [3, 3]}, "workers": [],
    }  # fmt: skip
    info = topology_info(detail)
    assert set(info.definition.components) == {"a"}
    assert (info.status, info.num_workers, info.debug.enabled) == ("INACTIVE", 0, False)


class FakeNimbus(NimbusClient):
    """Answers from memory (the HTTP side is tested against a real nimbus)."""

    def __init__(self) -> None:
        super().__init__(["127.0.0.1:1"])
        self.events: list[dict[str, Any]] = []

    def detail(self, name: str) -> dict[str, Any]:
        return {"id": "wc-1-1", "name": "wc", "status": "ACTIVE",
                "component_tasks": {"a": [1, 1]}, "workers": []}  # fmt: skip

    def stats(self, name: str) -> dict[str, Any]:
        return {"executors": [], "events": list(self.events)}


def test_sampled_tuples_resent_in_later_heartbeats_are_shown_once_in_order() -> None:
    client = FakeNimbus()
    source = ClusterSource(client)
    client.events = [
        {"seq": 1, "worker": 0, "port": 6700, "ts": 1.0, "component": "a"},
        {"seq": 1, "worker": 1, "port": 6701, "ts": 1.5, "component": "b"},
    ]
    assert [e["ts"] for e in source.events("wc", None, 10)] == [1.0, 1.5]
    client.events = [
        {"seq": 1, "worker": 0, "port": 6700, "ts": 1.0, "component": "a"},
        {"seq": 2, "worker": 0, "port": 6700, "ts": 2.0, "component": "a"},
    ]
    source._cache.clear()
    assert [e["ts"] for e in source.events("wc", None, 10)] == [1.0, 1.5, 2.0]
    assert [e["ts"] for e in source.events("wc", "b", 10)] == [1.5]


def test_a_worker_applies_the_topology_and_component_debug_settings(caplog: Any) -> None:
    plan = make_plan(WordCount.definition("wc"), {"topology.acker.executors": 0})
    engine = Engine(plan, 0)
    ring = EventRing(5)
    import logging

    logger = logging.getLogger("squall.eventlog")
    logger.addHandler(ring)
    try:
        engine.start()
        apply_debug(engine, {"count": 100.0})
        count_task = next(t for ex in engine.executors if ex.component == "count"
                          for t in ex.tasks.values())  # fmt: skip
        count_task.component.emit(["w", 1])
        words_task = next(t for ex in engine.executors if ex.component == "words"
                          for t in ex.tasks.values())  # fmt: skip
        words_task.component.emit(["w"])
        assert [e["component"] for e in ring.recent()] == ["count"]
        apply_debug(engine, {})
        count_task.component.emit(["w", 2])
        assert [e["seq"] for e in ring.recent()] == [1]
    finally:
        logger.removeHandler(ring)
        engine.shutdown()
