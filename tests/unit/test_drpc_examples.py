"""The DRPC examples answer correctly (LocalDRPC, simulated time), and the pieces
``squall run`` and ``squall drpc-client`` rely on behave.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import LocalCluster, TopologyBuilder
from squall.api.context import TopologyContext
from squall.cli.drpc import drpc_functions, local_endpoint
from squall.cli.loader import load_topology
from squall.cli.main import main
from squall.drpc import DRPCService, DRPCSpout, LocalDRPC, ReturnResults, registry

pytestmark = pytest.mark.timeout(20)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(simulated_time=True) as c:
        yield c


def answers(cluster: LocalCluster, drpc: LocalDRPC, function: str, *args: str) -> list[str]:
    futures = [drpc.execute_async(function, a) for a in args]
    cluster.run_until_idle()
    return [f.result(0) for f in futures]


def test_reach_counts_distinct_followers_of_everyone_who_tweeted_the_url(
    cluster: LocalCluster,
) -> None:
    module = load_topology(str(EXAMPLES / "drpc_reach.py")).module
    with LocalDRPC(clock=cluster.clock) as drpc:
        cluster.submit("reach", module.reach_builder().create_local_topology(drpc))
        urls = [*module.TWEETERS_DB, "unknown.example/x"]
        expected = [
            str(
                len(
                    {
                        f
                        for t in module.TWEETERS_DB.get(u, ())
                        for f in module.FOLLOWERS_DB.get(t, ())
                    }
                )
            )
            for u in urls
        ]
        assert expected[:3] == ["16", "14", "7"]  # Storm's ReachTopology answers
        assert answers(cluster, drpc, "reach", *urls * 5) == expected * 5


def test_the_exclamation_example_appends_three_bangs(cluster: LocalCluster) -> None:
    topo = load_topology(str(EXAMPLES / "drpc_exclamation.py")).obj
    with LocalDRPC(clock=cluster.clock) as drpc:
        cluster.submit("x", topo.local_definition(drpc))
        assert answers(cluster, drpc, "exclamation", "aaa", "") == ["aaa!!!", "!!!"]


def test_squall_run_finds_the_functions_a_topology_serves() -> None:
    reach = load_topology(str(EXAMPLES / "drpc_reach.py")).obj
    assert drpc_functions(reach) == ["reach"]
    with LocalDRPC() as drpc:
        b = TopologyBuilder()
        b.set_spout("local", DRPCSpout, function="local-only", drpc=drpc)
        b.set_spout("served", DRPCSpout, function="served")
        b.set_bolt("return", ReturnResults).shuffle_grouping("local").shuffle_grouping("served")
        # A spout bound to a LocalDRPC needs no HTTP server.
        assert drpc_functions(b.create_topology("t")) == ["served"]


def test_no_drpc_server_is_started_for_a_topology_without_drpc_spouts() -> None:
    topo = load_topology(str(EXAMPLES / "exclamation.py")).obj.definition()
    said: list[str] = []
    with local_endpoint(topo, {}, lambda *a: said.append(a[0])) as extra:
        assert extra == {}
    assert said == []


def test_configured_drpc_servers_are_used_instead_of_a_local_one() -> None:
    reach = load_topology(str(EXAMPLES / "drpc_reach.py")).obj
    said: list[str] = []
    conf = {"drpc.servers": ["10.1.1.1:3774"]}
    with local_endpoint(reach, conf, lambda *a: said.append(a[0])) as extra:
        assert extra == {}
    assert "via drpc.servers" in said[0]


def test_drpc_client_without_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drpc-client"]) == 2
    assert "give a FUNCTION" in capsys.readouterr().err


def test_bad_drpc_command_line_values_name_the_option() -> None:
    with pytest.raises(SystemExit) as info:
        main(["drpc", "--port", "99999"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["drpc-client", "--server", "no-port", "f"])


# -- which servers a DRPC spout task polls (Storm's rule) -------------------------------


def context(tasks: list[int], task: int) -> TopologyContext:
    return TopologyContext(
        topology_name="t",
        task_id=task,
        component_id="spout",
        task_to_component={t: "spout" for t in tasks},
        component_tasks={"spout": tuple(tasks)},
        sources={},
        targets={},
        output_fields={},
        stream_fields={},
    )


@pytest.fixture
def two_servers() -> Iterator[list[str]]:
    services = [DRPCService(), DRPCService()]
    addrs = [("10.9.0.1", 3774), ("10.9.0.2", 3774)]
    for (h, p), s in zip(addrs, services, strict=True):
        registry.register(h, p, s)
    yield [f"{h}:{p}" for h, p in addrs]
    for (h, p), s in zip(addrs, services, strict=True):
        registry.unregister(h, p, s)


def polled(spout: DRPCSpout) -> list[str]:
    return [f"{h}:{p}" for h, p in spout._infos]


def test_a_spout_with_fewer_tasks_than_servers_polls_every_server(two_servers: list[str]) -> None:
    spout = DRPCSpout("f")
    spout.initialize({"drpc.servers": two_servers}, context([1], 1))
    assert polled(spout) == two_servers


def test_with_as_many_tasks_as_servers_task_i_polls_server_i(two_servers: list[str]) -> None:
    got = []
    for task in (1, 2, 3):
        spout = DRPCSpout("f")
        spout.initialize({"drpc.servers": two_servers}, context([1, 2, 3], task))
        got.append(polled(spout))
    assert got == [[two_servers[0]], [two_servers[1]], [two_servers[0]]]


def test_a_spout_without_servers_says_what_to_configure() -> None:
    spout = DRPCSpout("f")
    with pytest.raises(ValueError, match=r"component 'spout' \(DRPCSpout for 'f'\).*drpc.servers"):
        spout.initialize({}, context([1], 1))


def test_a_spout_bound_to_a_localdrpc_elsewhere_explains_the_limit() -> None:
    spout = DRPCSpout("f", drpc="local-drpc-gone")
    with pytest.raises(RuntimeError, match=r"not running in this process.*topology\.workers = 1"):
        spout.initialize({}, context([1], 1))


def test_a_localdrpc_refuses_to_be_shipped_to_a_worker_process() -> None:
    import pickle

    with LocalDRPC() as drpc, pytest.raises(TypeError, match=r"drpc\.servers"):
        pickle.dumps(drpc)


def test_a_spout_needs_a_function_name() -> None:
    with pytest.raises(TypeError, match="function name"):
        DRPCSpout("")
    bad: Any = 12
    with pytest.raises(TypeError, match="LocalDRPC or its service_id"):
        DRPCSpout("f", drpc=bad)
