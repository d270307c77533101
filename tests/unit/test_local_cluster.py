"""LocalCluster's own promises, beyond what the topology tests cover."""

from __future__ import annotations

import pytest
from tests.topologies import WordCount  # type: ignore[import-not-found]

from squall import LocalCluster


def test_simulated_time_refuses_several_worker_processes_with_a_clear_error() -> None:
    cluster = LocalCluster(simulated_time=True)
    with cluster, pytest.raises(ValueError, match=r"simulated time runs in one process.*workers=2"):
        cluster.submit("wc", WordCount, {"topology.workers": 2})


def test_an_in_process_topology_has_no_worker_pids() -> None:
    with LocalCluster(simulated_time=True) as cluster:
        run = cluster.submit("wc", WordCount, {"test.sentences": 10})
        assert run.worker_pids == []


def test_a_field_named_id_is_read_as_the_field() -> None:
    from squall.api.tuple import values_class

    cls = values_class("drpc", "default", ("id", "result"), 3)
    v = cls.make([41, "ok"])
    assert v.values.id == 41 and v.values.result == "ok"


def test_a_field_named_like_a_tuple_attribute_is_read_by_index() -> None:
    from squall.api.tuple import values_class

    cls = values_class("where", "default", ("task", "key"), 7)
    v = cls.make([3, "k"])
    assert v.values.task == 7 and v.values[0] == 3 and v.values.key == "k"
