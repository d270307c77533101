"""The UI daemon over real HTTP on 127.0.0.1: Storm's REST API, /metrics, the logviewer.

A real-time local cluster runs tests.ui_topologies.NumbersTopology with known
traffic (50 numbers; multiples of 10 fail in ``double``), and every request
goes through a real socket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests import ui_topologies as U
from tests.ui_http import Http, rows

from squall import LocalCluster
from squall.ui import LocalSource, UIServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Http, str, Path]]:
    """50 numbers, all processed; the UI samples every 0.2 s."""
    log_dir = tmp_path_factory.mktemp("logs")
    with (
        LocalCluster() as cluster,
        UIServer(LocalSource(cluster), port=0, log_dir=log_dir, sample_secs=0.2) as ui,
    ):
        cluster.submit("numbers", U.NumbersTopology, {U.COUNT: 50})
        http = Http(ui.url)
        [t] = http.get("/api/v1/topology/summary")["topologies"]

        def finished() -> bool:
            [spout] = http.get(f"/api/v1/topology/{t['id']}")["spouts"]
            return bool(spout["acked"] + spout["failed"] == 50)

        wait_for(finished, "all 50 numbers to be acked or failed")
        yield http, t["id"], log_dir


def test_topology_page_shows_the_known_traffic(done: tuple[Http, str, Path]) -> None:
    http, tid, _ = done
    doc = http.get(f"/api/v1/topology/{tid}?window=600")
    assert (doc["name"], doc["status"], doc["window"], doc["windowHint"]) == (
        "numbers",
        "ACTIVE",
        "600",
        "10m 0s",
    )
    [spout] = doc["spouts"]
    assert (spout["emitted"], spout["acked"], spout["failed"]) == (50, 45, 5)
    bolts = rows(doc["bolts"], "boltId")
    # 45 doubled numbers, 25 odd ones.
    assert (bolts["double"]["executed"], bolts["double"]["emitted"]) == (50, 70)
    assert bolts["double"]["lastError"].startswith("ValueError: no multiples of ten please")
    assert bolts["sink"]["executed"] == 70
    stats = rows(doc["topologyStats"], "window")
    assert stats["600"]["acked"] == stats[":all-time"]["acked"] == 45


def test_component_pages_show_executors_streams_and_errors(done: tuple[Http, str, Path]) -> None:
    http, tid, _ = done
    double = http.get(f"/api/v1/topology/{tid}/component/double?sys=0")
    assert (double["componentType"], double["executors"]) == ("bolt", 2)
    assert sum(e["executed"] for e in double["executorStats"]) == 50
    assert len(double["componentErrors"]) == 5
    assert all("Traceback" in e["traceback"] for e in double["componentErrors"])
    outputs = {o["stream"]: o["emitted"] for o in double["outputStats"]}
    assert outputs == {"default": 45, "odd": 25}
    sink = http.get(f"/api/v1/topology/{tid}/component/sink")
    assert sink["executorStats"][0]["metrics"]["seen"] == 70


def test_cluster_nimbus_supervisor_and_metrics_endpoints_answer(
    done: tuple[Http, str, Path],
) -> None:
    http, tid, _ = done
    assert http.get("/api/v1/cluster/summary")["topologies"] == 1
    assert http.get("/api/v1/nimbus/summary")["nimbuses"][0]["status"] == "Leader"
    assert http.get("/api/v1/supervisor/summary")["supervisors"][0]["slotsUsed"] == 1
    assert http.get("/api/v1/cluster/configuration") == {}
    metrics = http.get(f"/api/v1/topology/{tid}/metrics?window=:all-time")
    assert rows(metrics["spouts"], "id")["numbers"]["emitted"] == [
        {"stream_id": "default", "value": 50}
    ]
    viz = http.get(f"/api/v1/topology/{tid}/visualization")
    assert set(viz) == {"numbers", "double", "sink"}
    assert http.get(f"/api/v1/topology-workers/{tid}")["hostPortList"][0]["port"] == 6700


def test_jsonp_wraps_the_document_in_the_callback(done: tuple[Http, str, Path]) -> None:
    http, _, _ = done
    status, headers, body = http.raw("/api/v1/cluster/summary?callback=show")
    assert status == 200
    assert headers["Content-Type"].startswith("application/javascript")
    text = body.decode()
    assert text.startswith("show(") and text.endswith(");")
    assert json.loads(text[5:-2])["topologies"] == 1


def test_errors_are_storms_json_with_a_status(done: tuple[Http, str, Path]) -> None:
    http, tid, _ = done
    status, _, body = http.raw("/api/v1/topology/nope")
    assert status == 404
    err = json.loads(body)
    assert err["error"] == "404 Not Found"
    assert "no topology with id or name 'nope'" in err["errorMessage"]
    status, _, body = http.raw(f"/api/v1/topology/{tid}?window=3600")
    assert (status, json.loads(body)["error"]) == (400, "400 Bad Request")
    status, _, _ = http.raw(f"/api/v1/topology/{tid}/activate")  # GET on a POST endpoint
    assert status == 405


def test_prometheus_output_parses_and_carries_counts_and_user_metrics(
    done: tuple[Http, str, Path],
) -> None:
    http, _, _ = done
    status, headers, body = http.raw("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    emitted: dict[tuple[str, str], float] = {}
    for s in families["squall_emitted"].samples:  # one sample per task: add them up
        key = (s.labels["component"], s.labels["stream"])
        emitted[key] = emitted.get(key, 0) + s.value
    assert emitted[("numbers", "default")] == 50
    assert emitted[("double", "odd")] == 25
    acked = sum(
        s.value for s in families["squall_acked"].samples if s.labels["component"] == "numbers"
    )
    assert acked == 45
    executed = {
        (s.labels["component"], s.labels["source_stream"]): s.value
        for s in families["squall_executed"].samples
    }
    assert executed[("sink", "odd")] == 25
    user = {
        (s.labels["name"], s.labels.get("key")): s.value
        for s in families["squall_user_metric"].samples
    }
    assert user[("seen", None)] == 70
    latency = families["squall_execute_latency_seconds"]
    assert {s.name for s in latency.samples} == {
        "squall_execute_latency_seconds_sum",
        "squall_execute_latency_seconds_count",
    }
    for name in ("squall_queue_depth", "squall_backpressure", "squall_worker_restarts"):
        assert name in families


def test_worker_logs_are_written_per_topology_and_worker_and_tailed(
    done: tuple[Http, str, Path],
) -> None:
    http, tid, log_dir = done
    worker_log = log_dir / "workers-artifacts" / tid / "6700" / "worker.log"
    wait_for(worker_log.exists, "the worker log file")
    listed = http.get(f"/api/v1/logs?topology={tid}")["files"]
    assert f"{tid}/6700/worker.log" in [f["file"] for f in listed]
    status, headers, body = http.raw(f"/api/v1/log?file={tid}/6700/worker.log")
    assert status == 200
    text = body.decode()
    assert "first tuple arrived" in text
    assert "ValueError: no multiples of ten please" in text
    assert int(headers["X-Log-Size"]) >= len(body)
    status, _, _ = http.raw("/api/v1/log?file=../../../../etc/passwd")
    assert status == 404


def test_actions_change_the_topologys_state() -> None:
    with (
        LocalCluster() as cluster,
        UIServer(LocalSource(cluster), port=0, capture_logs=False, sample_secs=0.1) as ui,
    ):
        cluster.submit("endless", U.NumbersTopology, {U.RATE: 500})
        http = Http(ui.url)
        tid = http.get("/api/v1/topology/summary")["topologies"][0]["id"]

        def emitted() -> int:
            return int(http.get(f"/api/v1/topology/{tid}")["spouts"][0]["emitted"])

        wait_for(lambda: emitted() > 20, "the spout to emit")
        resp = http.post(f"/api/v1/topology/{tid}/deactivate")
        assert resp == {"topologyOperation": "deactivate", "topologyId": tid, "status": "success"}
        assert http.get(f"/api/v1/topology/{tid}")["status"] == "INACTIVE"
        time.sleep(0.3)
        stopped_at = emitted()
        time.sleep(0.5)
        assert emitted() == stopped_at

        http.post(f"/api/v1/topology/{tid}/activate")
        assert http.get(f"/api/v1/topology/{tid}")["status"] == "ACTIVE"
        wait_for(lambda: emitted() > stopped_at + 20, "the spout to emit again")

        assert http.post(f"/api/v1/topology/{tid}/rebalance/1")["topologyOperation"] == "rebalance"
        assert http.get(f"/api/v1/topology/{tid}")["status"] == "REBALANCING"
        wait_for(
            lambda: http.get(f"/api/v1/topology/{tid}")["status"] == "ACTIVE", "rebalance to end"
        )

        status, _, _ = http.raw(
            f"/api/v1/topology/{tid}/kill/0", "POST", {"Origin": "http://evil.example"}
        )
        assert status == 403
        assert http.post(f"/api/v1/topology/{tid}/kill/0")["topologyOperation"] == "kill"
        assert http.get("/api/v1/topology/summary")["topologies"] == []
        assert cluster.topologies == {}


def test_worker_processes_report_their_executors_through_the_parent(tmp_path: Path) -> None:
    with (
        LocalCluster() as cluster,
        UIServer(LocalSource(cluster), port=0, log_dir=tmp_path, sample_secs=0.2) as ui,
    ):
        cluster.submit("two", U.NumbersTopology, {U.COUNT: 40, "topology.workers": 2})
        http = Http(ui.url)
        tid = http.get("/api/v1/topology/summary")["topologies"][0]["id"]

        def acked_or_failed() -> int:
            s = http.get(f"/api/v1/topology/{tid}")["spouts"][0]
            return int(s["acked"] + s["failed"])

        wait_for(lambda: acked_or_failed() == 40, "40 numbers across two workers")
        doc = http.get(f"/api/v1/topology/{tid}")
        assert doc["workersTotal"] == 2
        assert sorted(w["port"] for w in doc["workers"]) == [6700, 6701]
        assert all(w["pid"] for w in doc["workers"])
        double = http.get(f"/api/v1/topology/{tid}/component/double")
        assert sorted(e["port"] for e in double["executorStats"]) == [6700, 6701]

        def executed() -> int:
            d = http.get(f"/api/v1/topology/{tid}/component/double")
            return sum(int(e["executed"]) for e in d["executorStats"])

        # The spout's and the bolts' counters come from different workers at different times.
        wait_for(lambda: executed() == 40, "double's executors to report 40 executed")
        assert executed() == 40
        # Worker 1's records reach its own log file through the parent.
        log1 = tmp_path / "workers-artifacts" / tid / "6701" / "worker.log"
        wait_for(log1.exists, "worker 1's log file")


def test_debug_sampling_over_http_shows_sampled_tuples_and_writes_events_log(
    tmp_path: Path,
) -> None:
    with (
        LocalCluster() as cluster,
        UIServer(LocalSource(cluster), port=0, log_dir=tmp_path, sample_secs=0.2) as ui,
    ):
        cluster.submit("sampled", U.NumbersTopology, {U.RATE: 200})
        http = Http(ui.url)
        tid = http.get("/api/v1/topology/summary")["topologies"][0]["id"]
        resp = http.post(f"/api/v1/topology/{tid}/component/double/debug/enable/50")
        assert resp["topologyOperation"] == "debug/enable"
        comp = http.get(f"/api/v1/topology/{tid}/component/double")
        assert (comp["debug"], comp["samplingPct"]) == (True, 50.0)

        def sampled() -> list[dict[str, Any]]:
            return list(
                http.get(f"/api/v1/topology/{tid}/events?component=double&limit=2000")["events"]
            )

        wait_for(lambda: len(sampled()) >= 10, "sampled tuples")
        event = sampled()[-1]
        assert event["component"] == "double" and event["stream"] in ("default", "odd")
        assert http.get(f"/api/v1/topology/{tid}/events?component=sink")["events"] == []
        events_log = tmp_path / "workers-artifacts" / tid / "6700" / "events.log"
        wait_for(events_log.exists, "events.log")
        assert '"component": "double"' in events_log.read_text()
        http.post(f"/api/v1/topology/{tid}/component/double/debug/disable/0")
        time.sleep(0.3)
        before = len(sampled())
        time.sleep(0.5)
        assert len(sampled()) == before
