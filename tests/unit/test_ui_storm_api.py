"""Storm UI's REST documents, field by field, against a topology with known traffic.

Simulated time throughout: the test feeds the spout, moves the clock and
samples the counters itself, so every number below is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from tests.ui_topologies import Double, Sink

from squall import Grouping, LocalCluster, Topology
from squall.testing import FeederSpout, simulated_cluster
from squall.ui.logs import EventLog
from squall.ui.source import LocalSource
from squall.ui.storm_api import ApiError, StormApi, float_str, pretty_uptime, window_hint

# Keys Storm's UI sends (storm-spec.md section 1.16, UIHelpers.java); ours may add more.
CLUSTER_KEYS = {
    "stormVersion", "stormVersionInfo", "user", "supervisors", "topologies", "slotsTotal",
    "slotsUsed", "slotsFree", "executorsTotal", "tasksTotal", "totalMem", "totalCpu", "availMem",
    "availCpu", "fragmentedMem", "fragmentedCpu", "memAssignedPercentUtil",
    "cpuAssignedPercentUtil", "schedulerDisplayResource", "bugtracker-url", "central-log-url",
    "availGenerics", "totalGenerics",
}  # fmt: skip
SUMMARY_KEYS = {
    "id", "encodedId", "owner", "name", "status", "uptime", "uptimeSeconds", "tasksTotal",
    "workersTotal", "executorsTotal", "replicationCount", "schedulerInfo", "requestedMemOnHeap",
    "requestedMemOffHeap", "requestedTotalMem", "requestedCpu", "assignedMemOnHeap",
    "assignedMemOffHeap", "assignedTotalMem", "assignedCpu", "topologyVersion", "stormVersion",
}  # fmt: skip
TOPOLOGY_KEYS = SUMMARY_KEYS | {
    "msgTimeout", "window", "windowHint", "debug", "samplingPct", "configuration",
    "schedulerDisplayResource", "user", "topologyStats", "workers", "spouts", "bolts",
}  # fmt: skip
TOPOLOGY_STATS_KEYS = {
    "window", "windowPretty", "emitted", "transferred", "completeLatency", "acked", "failed",
}  # fmt: skip
ERROR_KEYS = {
    "lastError", "errorHost", "errorPort", "errorTime", "errorLapsedSecs", "errorWorkerLogLink",
}  # fmt: skip
SPOUT_KEYS = {
    "spoutId", "encodedSpoutId", "executors", "tasks", "emitted", "transferred", "acked",
    "failed", "completeLatency", "requestedMemOnHeap", "requestedMemOffHeap", "requestedCpu",
} | ERROR_KEYS  # fmt: skip
BOLT_KEYS = {
    "boltId", "encodedBoltId", "executors", "tasks", "emitted", "transferred", "acked", "failed",
    "executed", "executeLatency", "processLatency", "capacity",
} | ERROR_KEYS  # fmt: skip
WORKER_KEYS = {
    "supervisorId", "host", "port", "topologyId", "topologyName", "executorsTotal",
    "assignedMemOnHeap", "assignedMemOffHeap", "assignedCpu", "componentNumTasks", "uptime",
    "uptimeSeconds", "workerLogLink",
}  # fmt: skip
COMPONENT_KEYS = {
    "user", "id", "encodedId", "name", "executors", "tasks", "topologyId", "topologyStatus",
    "encodedTopologyId", "window", "windowHint", "componentType", "debug", "samplingPct",
    "eventLogLink", "profilingAndDebuggingCapable", "profileActionEnabled", "profilerActive",
    "componentErrors",
}  # fmt: skip
COMPONENT_ERROR_KEYS = {
    "errorTime", "errorHost", "errorPort", "error", "errorLapsedSecs", "errorWorkerLogLink",
}  # fmt: skip
BOLT_WINDOW_KEYS = {
    "window", "windowPretty", "emitted", "transferred", "acked", "failed", "executed",
    "executeLatency", "processLatency", "capacity",
}  # fmt: skip
SPOUT_WINDOW_KEYS = {
    "window", "windowPretty", "emitted", "transferred", "acked", "failed", "completeLatency",
}  # fmt: skip
INPUT_KEYS = {
    "component", "encodedComponentId", "stream", "executeLatency", "processLatency", "executed",
    "acked", "failed",
}  # fmt: skip
EXECUTOR_KEYS = {
    "id", "encodedId", "host", "port", "uptime", "uptimeSeconds", "emitted", "transferred",
    "acked", "failed", "workerLogLink",
}  # fmt: skip


def numbers_topology(feeder: FeederSpout) -> Any:
    class Numbers(Topology):
        numbers = feeder.spec()
        double = Double.spec(inputs={numbers: Grouping.fields("n")}, par=2)
        sink = Sink.spec(inputs={double: Grouping.SHUFFLE, double["odd"]: Grouping.SHUFFLE})

    return Numbers


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with simulated_cluster() as c:
        yield c


@pytest.fixture
def feeder() -> FeederSpout:
    return FeederSpout(["n"])


@pytest.fixture
def api(cluster: LocalCluster, feeder: FeederSpout) -> StormApi:
    cluster.submit("numbers", numbers_topology(feeder))
    # Sampling only when the test says so: a huge interval means "never stale".
    return StormApi(LocalSource(cluster, owner="alice"), sample_secs=1e9)


WINDOWS = ["600", "10800", "86400", ":all-time"]  # Storm's stat windows, in its order


def assert_fields(doc: dict[str, Any], expected: set[str]) -> None:
    missing = expected - doc.keys()
    assert not missing, f"missing Storm fields: {sorted(missing)}"


def feed(cluster: LocalCluster, feeder: FeederSpout, numbers: range) -> None:
    for n in numbers:
        feeder.feed([n], msg_id=n)
    cluster.run_until_idle()


def tid(api: StormApi) -> str:
    return str(api.topology_summary()["topologies"][0]["id"])


def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


def test_storm_formats_latencies_as_three_decimals_and_uptimes_prettily() -> None:
    assert float_str(2.0) == "2.000"
    assert float_str(None) == "0"
    assert pretty_uptime(0) == ""
    assert pretty_uptime(3661) == "1h 1m 1s"
    assert [window_hint(w) for w in ("600", "10800", "86400", ":all-time")] == [
        "10m 0s",
        "3h 0m 0s",
        "1d 0h 0m 0s",
        "All time",
    ]


def test_cluster_nimbus_and_supervisor_summaries_have_storms_fields(api: StormApi) -> None:
    cluster = api.cluster_summary()
    assert_fields(cluster, CLUSTER_KEYS)
    assert (cluster["topologies"], cluster["supervisors"]) == (1, 1)
    # __acker, numbers, double x2, sink
    assert (cluster["executorsTotal"], cluster["tasksTotal"]) == (5, 5)
    assert cluster["slotsUsed"] == 1
    assert cluster["slotsFree"] == cluster["slotsTotal"] - cluster["slotsUsed"]
    nimbus = api.nimbus_summary()["nimbuses"][0]
    assert_fields(
        nimbus,
        {
            "host",
            "port",
            "status",
            "nimbusUpTime",
            "nimbusUpTimeSeconds",
            "nimbusLogLink",
            "version",
        },
    )
    assert nimbus["status"] == "Leader"
    sup = api.supervisor_summary()
    assert_fields(sup, {"supervisors", "schedulerDisplayResource"})
    assert_fields(
        sup["supervisors"][0],
        {
            "id",
            "host",
            "uptime",
            "uptimeSeconds",
            "slotsTotal",
            "slotsUsed",
            "slotsFree",
            "totalMem",
            "totalCpu",
            "usedMem",
            "usedCpu",
            "availMem",
            "availCpu",
            "version",
            "blacklisted",
        },
    )


def test_topology_summary_lists_the_topology_with_a_storm_style_id(api: StormApi) -> None:
    [t] = api.topology_summary()["topologies"]
    assert_fields(t, SUMMARY_KEYS)
    assert t["name"] == "numbers"
    assert t["id"].startswith("numbers-1-")
    assert (t["status"], t["owner"], t["workersTotal"]) == ("ACTIVE", "alice", 1)


def test_topology_page_counts_known_traffic_field_by_field(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    feed(cluster, feeder, range(1, 21))
    cluster.advance_time(5)
    doc = api.topology(tid(api))
    assert_fields(doc, TOPOLOGY_KEYS)
    assert (doc["window"], doc["windowHint"], doc["msgTimeout"]) == (":all-time", "All time", 30)
    assert doc["configuration"]["topology.name"] == "numbers"
    stats = by(doc["topologyStats"], "window")
    assert list(stats) == WINDOWS
    for row in stats.values():
        assert_fields(row, TOPOLOGY_STATS_KEYS)
        # 20 from the spout, 18 + 10 from double (10 and 20 raise; the 10 odd numbers pass).
    everything = stats[":all-time"]
    assert (everything["emitted"], everything["transferred"]) == (48, 48)
    assert (everything["acked"], everything["failed"]) == (18, 2)
    assert isinstance(everything["completeLatency"], str)

    [spout] = doc["spouts"]
    assert_fields(spout, SPOUT_KEYS)
    assert (spout["spoutId"], spout["emitted"], spout["acked"], spout["failed"]) == (
        "numbers", 20, 18, 2,
    )  # fmt: skip
    bolts = by(doc["bolts"], "boltId")
    assert list(bolts) == ["double", "sink"]
    for b in bolts.values():
        assert_fields(b, BOLT_KEYS)
    double, sink = bolts["double"], bolts["sink"]
    assert (double["executors"], double["tasks"], double["executed"]) == (2, 2, 20)
    assert (double["emitted"], double["acked"], double["failed"]) == (28, 18, 2)
    assert double["lastError"] == "ValueError: no multiples of ten please: 20"
    assert double["errorPort"] == 6700
    for key in ("executeLatency", "processLatency", "capacity"):
        assert isinstance(double[key], str) and len(double[key].split(".")[1]) == 3
    assert (sink["executed"], sink["acked"], sink["emitted"], sink["lastError"]) == (28, 28, 0, "")
    [worker] = doc["workers"]
    assert_fields(worker, WORKER_KEYS)
    assert worker["componentNumTasks"] == {"__acker": 1, "double": 2, "numbers": 1, "sink": 1}
    assert worker["workerLogLink"].endswith(f"{doc['id']}/6700/worker.log")


def test_sys_includes_the_acker(api: StormApi, cluster: LocalCluster, feeder: FeederSpout) -> None:
    feed(cluster, feeder, range(1, 4))
    assert "__acker" not in by(api.topology(tid(api))["bolts"], "boltId")
    acker = by(api.topology(tid(api), include_sys=True)["bolts"], "boltId")["__acker"]
    assert acker["executed"] > 0


def test_windows_count_only_their_last_seconds(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    t = tid(api)
    feed(cluster, feeder, range(1, 21))
    api.sample()
    for _ in range(70):  # 700 simulated seconds, sampled every 10
        cluster.advance_time(10)
        api.sample()
    feed(cluster, feeder, range(21, 26))
    api.sample()
    doc = api.topology(t, window="600")
    stats = by(doc["topologyStats"], "window")
    assert (stats["600"]["acked"], stats["600"]["failed"]) == (5, 0)
    assert (stats["10800"]["acked"], stats[":all-time"]["acked"]) == (23, 23)
    assert stats[":all-time"]["failed"] == 2
    assert doc["window"] == "600"
    bolts = by(doc["bolts"], "boltId")
    assert bolts["double"]["executed"] == 5  # the selected window's numbers
    assert by(api.topology(t)["bolts"], "boltId")["double"]["executed"] == 25
    comp = api.component(t, "numbers", window="600")
    windows = by(comp["spoutSummary"], "window")
    assert (windows["600"]["emitted"], windows[":all-time"]["emitted"]) == (5, 25)
    assert doc["uptimeSeconds"] == 700


def test_bolt_component_page_has_inputs_outputs_executors_and_errors(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    feed(cluster, feeder, range(1, 21))
    doc = api.component(tid(api), "double")
    assert_fields(doc, COMPONENT_KEYS)
    assert (doc["componentType"], doc["executors"], doc["tasks"], doc["name"]) == (
        "bolt", 2, 2, "numbers",
    )  # fmt: skip
    assert [row["window"] for row in doc["boltStats"]] == WINDOWS
    for row in doc["boltStats"]:
        assert_fields(row, BOLT_WINDOW_KEYS)
    [inp] = doc["inputStats"]
    assert_fields(inp, INPUT_KEYS)
    assert (inp["component"], inp["stream"], inp["executed"]) == ("numbers", "default", 20)
    assert (inp["acked"], inp["failed"]) == (18, 2)
    outs = by(doc["outputStats"], "stream")
    assert {s: (o["emitted"], o["transferred"]) for s, o in outs.items()} == {
        "default": (18, 18),
        "odd": (10, 10),
    }
    execs = by(doc["executorStats"], "id")
    assert list(execs) == ["[2-2]", "[3-3]"]  # task ids: __acker 1, double 2-3, numbers 4
    for e in execs.values():
        assert_fields(
            e, EXECUTOR_KEYS | {"capacity", "executeLatency", "executed", "processLatency"}
        )
    assert sum(e["executed"] for e in execs.values()) == 20
    errors = doc["componentErrors"]
    assert [e["error"] for e in errors] == [
        "ValueError: no multiples of ten please: 20",
        "ValueError: no multiples of ten please: 10",
    ]
    for e in errors:
        assert_fields(e, COMPONENT_ERROR_KEYS)
        assert "Traceback (most recent call last)" in e["traceback"]


def test_a_bolt_with_two_inputs_lists_each_stream(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    feed(cluster, feeder, range(1, 21))
    doc = api.component(tid(api), "sink")
    inputs = {(i["component"], i["stream"]): i["executed"] for i in doc["inputStats"]}
    assert inputs == {("double", "default"): 18, ("double", "odd"): 10}
    [executor] = doc["executorStats"]
    assert executor["metrics"]["seen"] == 28


def test_spout_component_page_has_output_streams_and_executors(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    feed(cluster, feeder, range(1, 21))
    doc = api.component(tid(api), "numbers")
    assert doc["componentType"] == "spout"
    assert [row["window"] for row in doc["spoutSummary"]] == WINDOWS
    for row in doc["spoutSummary"]:
        assert_fields(row, SPOUT_WINDOW_KEYS)
    [out] = doc["outputStats"]
    assert_fields(out, {"stream", "emitted", "transferred", "completeLatency", "acked", "failed"})
    assert (out["stream"], out["emitted"], out["acked"], out["failed"]) == ("default", 20, 18, 2)
    [ex] = doc["executorStats"]
    assert_fields(ex, EXECUTOR_KEYS | {"completeLatency"})
    assert (ex["id"], ex["emitted"], ex["acked"]) == ("[4-4]", 20, 18)


def test_metrics_endpoint_breaks_counts_down_by_stream(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    feed(cluster, feeder, range(1, 21))
    doc = api.topology_metrics(tid(api))
    assert (doc["window"], doc["window-hint"]) == (":all-time", "All time")
    [spout] = doc["spouts"]
    assert spout["id"] == "numbers"
    assert spout["emitted"] == [{"stream_id": "default", "value": 20}]
    assert spout["acked"] == [{"stream_id": "default", "value": 18}]
    assert spout["failed"] == [{"stream_id": "default", "value": 2}]
    assert isinstance(spout["complete_ms_avg"][0]["value"], str)
    double = by(doc["bolts"], "id")["double"]
    assert double["emitted"] == [
        {"stream_id": "default", "value": 18},
        {"stream_id": "odd", "value": 10},
    ]
    assert double["executed"] == [{"component_id": "numbers", "stream_id": "default", "value": 20}]
    assert double["acked"] == [{"component_id": "numbers", "stream_id": "default", "value": 18}]
    assert double["failed"] == [{"component_id": "numbers", "stream_id": "default", "value": 2}]
    for key in ("process_ms_avg", "executed_ms_avg"):
        assert isinstance(double[key][0]["value"], str)


def test_visualization_has_storms_keys_and_live_edge_rates(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    t = tid(api)
    api.sample()
    cluster.advance_time(1)
    feed(cluster, feeder, range(1, 11))
    cluster.advance_time(1)
    api.sample()
    viz = api.visualization(t)
    assert set(viz) == {"numbers", "double", "sink"}
    double = viz["double"]
    assert_fields(double, {":type", ":capacity", ":latency", ":transferred", ":link", ":inputs"})
    [edge] = double[":inputs"]
    assert (edge[":component"], edge[":stream"], edge[":grouping"]) == (
        "numbers", "default", "fields",
    )  # fmt: skip
    assert edge[":rate"] == pytest.approx(10 / 2)
    assert viz["numbers"][":type"] == "spout"


def test_unknown_topology_component_or_window_is_a_clear_error(api: StormApi) -> None:
    with pytest.raises(ApiError, match="no topology with id or name 'nope'") as e:
        api.topology("nope")
    assert e.value.status == 404
    with pytest.raises(ApiError, match="has no component 'nope'"):
        api.component(tid(api), "nope")
    with pytest.raises(ApiError, match="window must be one of"):
        api.topology(tid(api), window="3600")
    with pytest.raises(ApiError, match="wait time must be a number"):
        api.kill(tid(api), "soon")


def test_deactivate_stops_the_spout_and_activate_resumes_it(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    t = tid(api)
    assert api.deactivate(t) == {
        "topologyOperation": "deactivate",
        "topologyId": t,
        "status": "success",
    }
    assert api.topology(t)["status"] == "INACTIVE"
    feed(cluster, feeder, range(1, 6))
    api.sample()
    assert by(api.topology(t)["spouts"], "spoutId")["numbers"]["emitted"] == 0
    assert api.activate(t)["topologyOperation"] == "activate"
    cluster.run_until_idle()
    api.sample()
    doc = api.topology(t)
    assert (doc["status"], by(doc["spouts"], "spoutId")["numbers"]["emitted"]) == ("ACTIVE", 5)


def test_rebalance_without_wait_leaves_the_topology_active(api: StormApi) -> None:
    t = tid(api)
    assert api.rebalance(t, "0")["topologyOperation"] == "rebalance"
    assert api.topology(t)["status"] == "ACTIVE"


def test_kill_removes_the_topology(api: StormApi, cluster: LocalCluster) -> None:
    t = tid(api)
    assert api.kill(t, "0")["topologyOperation"] == "kill"
    assert cluster.topologies == {}
    assert api.topology_summary()["topologies"] == []


def test_debug_sampling_logs_emitted_tuples_per_component(
    api: StormApi, cluster: LocalCluster, feeder: FeederSpout
) -> None:
    events = EventLog()
    logger = logging.getLogger("squall.eventlog")
    logger.addHandler(events)
    try:
        t = tid(api)
        resp = api.debug(t, "enable", "100", component="double")
        assert resp["topologyOperation"] == "debug/enable"
        doc = api.component(t, "double")
        assert (doc["debug"], doc["samplingPct"]) == (True, 100.0)
        assert api.topology(t)["debug"] is False  # only the component's
        feed(cluster, feeder, range(1, 4))
        sampled = events.events("numbers", "double")
        assert sorted((e["values"], e["stream"]) for e in sampled) == [
            ([1], "odd"),
            ([2], "default"),
            ([3], "odd"),
            ([4], "default"),
            ([6], "default"),
        ]
        assert events.events("numbers", "numbers") == []
        api.debug(t, "disable", "0", component="double")
        feed(cluster, feeder, range(4, 6))
        assert len(events.events("numbers", "double")) == 5
        with pytest.raises(ApiError, match="between 0 and 100"):
            api.debug(t, "enable", "150")
    finally:
        logger.removeHandler(events)
