"""``squall ui`` against a real cluster: Storm's REST API, /metrics, logs, debug and actions.

ZooKeeper, one nimbus and two supervisors run on loopback (tests/chaos/harness.py);
``squall submit`` sends ``ui_project/ui_numbers.py`` with 2 workers, emitting 100
numbers a second, multiples of ten failing in ``double``. A real ``squall ui``
process (started like an operator would: ``squall ui --conf cluster.json``) asks
nimbus for everything, and every request goes through real sockets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.chaos.harness import Cluster, free_port, running_cluster, squall_env, wait_until
from tests.ui_http import Http, rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PROJECT = Path(__file__).resolve().parent / "ui_project" / "ui_numbers.py"


class Setup:
    def __init__(self, cluster: Cluster, http: Http, tid: str) -> None:
        self.cluster = cluster
        self.http = http
        self.tid = tid

    def topology(self, query: str = "") -> dict[str, Any]:
        doc: dict[str, Any] = self.http.get(f"/api/v1/topology/{self.tid}{query}")
        return doc

    def emitted(self) -> int:
        return int(self.topology()["spouts"][0]["emitted"])


def wait(cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    return wait_until(cond, timeout, what, interval=0.2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    # Each supervisor keeps its workers' logs in its own folder and serves them with its
    # logviewer: the UI reads them there, as it would on separate machines.
    with running_cluster(supervisors=2, slots=2) as cluster:
        out = cluster.squall(
            "submit",
            str(PROJECT),
            "--name",
            "numbers",
            "-c",
            "topology.workers=2",
            "-c",
            "ui.rate=100",
            "-c",
            "topology.message.timeout.secs=5",
            "-c",
            "drpc.auth.token=s3cret",
        ).stdout
        assert "Submitted topology 'numbers'" in out
        port = free_port()
        ui = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "squall.cli",
                "ui",
                "--conf",
                str(cluster.client_conf),
                "--port",
                str(port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=squall_env(),
            text=True,
        )
        try:
            assert ui.stdout is not None
            banner = ui.stdout.readline()
            assert f"Squall UI at http://127.0.0.1:{port}/ for the cluster led by" in banner
            http = Http(f"http://127.0.0.1:{port}")

            def running() -> str | None:
                tops = http.get("/api/v1/topology/summary")["topologies"]
                if tops and tops[0]["workersTotal"] == 2:
                    return str(tops[0]["id"])
                return None

            tid = wait(running, "the topology on 2 workers in the UI")
            s = Setup(cluster, http, tid)
            wait(lambda: s.emitted() > 50, "numbers flowing")
            yield s
        finally:
            os.kill(ui.pid, signal.SIGTERM)
            try:
                ui.wait(15)
            except subprocess.TimeoutExpired:
                ui.kill()
                ui.wait()


def test_cluster_nimbus_and_supervisor_summaries_describe_the_real_daemons(setup: Setup) -> None:
    http = setup.http
    summary = http.get("/api/v1/cluster/summary")
    assert (summary["supervisors"], summary["slotsTotal"], summary["slotsUsed"]) == (2, 4, 2)
    # numbers 1, double 2, sink 1, and an acker per worker.
    assert (summary["topologies"], summary["executorsTotal"]) == (1, 6)
    [nimbus] = http.get("/api/v1/nimbus/summary")["nimbuses"]
    assert nimbus["status"] == "Leader"
    assert nimbus["port"] == setup.cluster.nimbus_ports[0]
    assert nimbus["nimbusUpTimeSeconds"] > 0
    sups = http.get("/api/v1/supervisor/summary")["supervisors"]
    assert sorted(s["slotsTotal"] for s in sups) == [2, 2]
    assert sum(s["slotsUsed"] for s in sups) == 2
    assert {s["host"] for s in sups} == {"127.0.0.1"}


def test_topology_page_shows_live_counters_errors_and_the_graph_from_the_workers(
    setup: Setup,
) -> None:
    doc = setup.topology("?window=600")
    assert (doc["name"], doc["status"], doc["workersTotal"], doc["tasksTotal"]) == (
        "numbers",
        "ACTIVE",
        2,
        6,
    )
    assert sorted(w["port"] for w in doc["workers"]) == sorted(
        w.port for w in setup.cluster.assignment("numbers").workers
    )
    first = setup.emitted()
    wait(lambda: setup.emitted() >= first + 50, "the spout's count to move")
    bolts = rows(doc["bolts"], "boltId")
    assert set(bolts) == {"double", "sink"}

    def error_shown() -> bool:
        d = rows(setup.topology()["bolts"], "boltId")["double"]
        return bool(d["lastError"].startswith("ValueError: no multiples of ten please"))

    wait(error_shown, "double's last error")
    d = rows(setup.topology()["bolts"], "boltId")["double"]
    link = parse_qs(urlsplit(d["errorWorkerLogLink"]).query)
    assert link["file"] == [f"{setup.tid}/{d['errorPort']}/worker.log"]
    assert link["node"][0].startswith("supervisor-")
    viz = setup.http.get(f"/api/v1/topology/{setup.tid}/visualization")
    assert set(viz) == {"numbers", "double", "sink"}
    groupings = {i[":stream"]: i[":grouping"] for i in viz["sink"][":inputs"]}
    assert groupings == {"default": "shuffle", "odd": "shuffle"}
    conf = doc["configuration"]
    assert conf["topology.workers"] == 2
    assert conf["drpc.auth.token"] == "<hidden>", "secrets in the config are not shown"


def test_component_page_has_an_executor_per_worker_task_and_the_tracebacks(setup: Setup) -> None:
    double = setup.http.get(f"/api/v1/topology/{setup.tid}/component/double")
    assert (double["componentType"], double["executors"]) == ("bolt", 2)
    assert len(double["executorStats"]) == 2
    assert all(e["executed"] > 0 for e in double["executorStats"])
    assert double["componentErrors"], "errors reported by the workers reach the UI"
    assert all("Traceback" in e["traceback"] for e in double["componentErrors"])
    outputs = {o["stream"] for o in double["outputStats"]}
    assert outputs == {"default", "odd"}

    def sink_metrics() -> dict[str, Any]:
        sink = setup.http.get(f"/api/v1/topology/{setup.tid}/component/sink")
        return dict(sink["executorStats"][0]["metrics"])

    # User metrics arrive with the worker's next heartbeat after the first report.
    metrics = wait(lambda: "seen" in (m := sink_metrics()) and m, "the sink's user metric")
    assert metrics["seen"] > 0


def test_get_errors_prints_each_components_latest_error_as_storm_does(setup: Setup) -> None:
    out = json.loads(setup.cluster.squall("get-errors", "numbers").stdout)
    assert out["Topology Name"] == "numbers"
    assert set(out["Comp-Errors"]) == {"double"}
    assert out["Comp-Errors"]["double"].startswith("ValueError: no multiples of ten please")
    missing = setup.cluster.squall("get-errors", "nope", check=False)
    assert missing.returncode == 1
    assert "topology 'nope' is not running" in missing.stderr


def test_prometheus_metrics_carry_the_cluster_counters(setup: Setup) -> None:
    status, _, body = setup.http.raw("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    emitted = sum(
        s.value
        for s in families["squall_emitted"].samples
        if s.labels["component"] == "numbers" and s.labels["topology"] == "numbers"
    )
    assert emitted > 0
    acked = sum(
        s.value for s in families["squall_acked"].samples if s.labels["component"] == "numbers"
    )
    assert acked > 0


def test_worker_logs_come_from_each_supervisors_logviewer_in_storms_layout(setup: Setup) -> None:
    workers = setup.cluster.assignment("numbers").workers
    listed = setup.http.get(f"/api/v1/logs?topology={setup.tid}")["files"]
    found = {(f["node"], f["file"]) for f in listed}
    for w in workers:
        assert (w.node, f"{setup.tid}/{w.port}/worker.log") in found
        assert (w.node, f"{setup.tid}/{w.port}/worker.log.err") in found
    # The link in the topology document opens that worker's own log, wherever it runs.
    for row in setup.topology()["workers"]:
        query = parse_qs(urlsplit(row["workerLogLink"]).query)
        assert query["node"] == [row["supervisorId"]]
        assert query["file"] == [f"{setup.tid}/{row['port']}/worker.log"]
        status, headers, body = setup.http.raw(
            f"/api/v1/log?file={quote(query['file'][0])}&node={quote(query['node'][0])}"
        )
        assert status == 200, body
        assert f"starting on 127.0.0.1:{row['port']} (pid {row['pid']})".encode() in body
        assert int(headers["X-Log-Size"]) >= len(body)
    node = workers[0].node
    status, _, body = setup.http.raw(f"/api/v1/log?file={setup.tid}/1/worker.log&node={node}")
    assert status == 404, body
    status, _, _ = setup.http.raw(f"/api/v1/log?file=../../etc/passwd&node={node}")
    assert status == 404


def test_debug_sampling_reaches_the_ui_through_the_worker_heartbeats(setup: Setup) -> None:
    http, tid = setup.http, setup.tid
    resp = http.post(f"/api/v1/topology/{tid}/component/double/debug/enable/100")
    assert resp["topologyOperation"] == "debug/enable"
    comp = http.get(f"/api/v1/topology/{tid}/component/double")
    assert (comp["debug"], comp["samplingPct"]) == (True, 100.0)

    def sampled() -> list[dict[str, Any]]:
        return list(http.get(f"/api/v1/topology/{tid}/events?component=double&limit=500")["events"])

    wait(lambda: len(sampled()) >= 20, "sampled tuples from the workers")
    event = sampled()[-1]
    assert event["component"] == "double" and event["stream"] in ("default", "odd")
    assert http.get(f"/api/v1/topology/{tid}/events?component=sink")["events"] == []
    http.post(f"/api/v1/topology/{tid}/component/double/debug/disable/0")
    assert http.get(f"/api/v1/topology/{tid}/component/double")["debug"] is False


def test_actions_deactivate_activate_and_kill_the_topology_on_the_cluster(setup: Setup) -> None:
    http, tid = setup.http, setup.tid
    assert http.post(f"/api/v1/topology/{tid}/deactivate")["status"] == "success"
    assert setup.topology()["status"] == "INACTIVE"
    # Workers follow within a heartbeat; their counters reach the UI within another.
    time.sleep(2.5)
    stopped_at = setup.emitted()
    time.sleep(2.0)
    assert setup.emitted() == stopped_at

    http.post(f"/api/v1/topology/{tid}/activate")
    assert setup.topology()["status"] == "ACTIVE"
    wait(lambda: setup.emitted() > stopped_at + 50, "the spout to emit again")

    status, _, body = http.raw(f"/api/v1/topology/{tid}/rebalance/-1", "POST")
    assert status == 400, body

    assert http.post(f"/api/v1/topology/{tid}/kill/0")["topologyOperation"] == "kill"
    wait(
        lambda: http.get("/api/v1/topology/summary")["topologies"] == [],
        "the topology to be removed",
    )
    status, _, body = http.raw(f"/api/v1/topology/{tid}")
    assert status == 404, body
