"""The DRPC HTTP server on real sockets: Storm's paths and statuses, the invocation side,
concurrency, timeouts, shutdown and restart, bad requests, and tokens.

Topologies here run in this process (LocalCluster, real time) and reach the
server directly; tests/integration/test_drpc_cli.py covers worker processes.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from squall import Bolt, LocalCluster, TopologyBuilder
from squall.cli.loader import load_topology
from squall.drpc import (
    DRPCAuthorizationError,
    DRPCClient,
    DRPCConnectionError,
    DRPCError,
    DRPCErrorType,
    DRPCExecutionError,
    DRPCServer,
    DRPCSpout,
    ReturnResults,
)
from squall.drpc.invocations import HTTPInvocations

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes or 2 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(2)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def error_of(body: bytes) -> dict[str, Any]:
    parsed = json.loads(body)
    assert set(parsed) == {"error", "errorMessage"}
    return parsed  # type: ignore[no-any-return]


@pytest.fixture
def server() -> Iterator[DRPCServer]:
    with DRPCServer(port=0, timeout_secs=30) as s:
        yield s


def serve(cluster: LocalCluster, topology: Any, server: DRPCServer, **conf: Any) -> Any:
    return cluster.submit("t", topology, {"drpc.servers": [f"127.0.0.1:{server.port}"], **conf})


# -- Storm's DRPCServerTest: HTTP in front, invocations behind -------------------------


def test_a_get_is_answered_with_what_an_invocation_client_returns(server: DRPCServer) -> None:
    inv = HTTPInvocations("127.0.0.1", server.port)
    answer: list[Any] = []
    caller = threading.Thread(
        target=lambda: answer.append(request(server.port, "GET", "/drpc/testing/test"))
    )
    caller.start()
    (req,) = inv.fetch_requests("testing", 10, wait_ms=10_000)
    assert req.func_args == "test"
    inv.results([(req.request_id, "tested")])
    caller.join(10)
    status, body, headers = answer[0]
    assert (status, body) == (200, b"tested")
    assert headers["content-type"].startswith("text/plain")


def test_a_failed_request_gives_the_caller_400(server: DRPCServer) -> None:
    inv = HTTPInvocations("127.0.0.1", server.port)
    answer: list[Any] = []
    caller = threading.Thread(
        target=lambda: answer.append(request(server.port, "POST", "/drpc/testing", b"x"))
    )
    caller.start()
    (req,) = inv.fetch_requests("testing", 1, wait_ms=10_000)
    inv.fail_requests([req.request_id])
    caller.join(10)
    status, body, headers = answer[0]
    assert status == 400 and headers["content-type"] == "application/json"
    assert error_of(body) == {"error": "FAILED_REQUEST", "errorMessage": "Request failed"}


def test_the_three_call_forms_carry_args_from_path_body_or_nothing(server: DRPCServer) -> None:
    inv = HTTPInvocations("127.0.0.1", server.port)
    calls = [
        ("GET", "/drpc/echo/hello%20world/with/slashes", None),
        ("POST", "/drpc/echo", "a long body ünïcode".encode()),
        ("GET", "/drpc/echo", None),
    ]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(request, server.port, m, p, b) for m, p, b in calls]
        got: list[str] = []
        while len(got) < 3:
            for r in inv.fetch_requests("echo", 10, wait_ms=2000):
                got.append(r.func_args)
                inv.results([(r.request_id, "<" + r.func_args + ">")])
        answers = sorted(f.result()[1].decode() for f in futures)
    assert sorted(got) == ["", "a long body ünïcode", "hello world/with/slashes"]
    assert answers == ["<>", "<a long body ünïcode>", "<hello world/with/slashes>"]


def test_a_long_poll_returns_as_soon_as_a_request_arrives(server: DRPCServer) -> None:
    inv = HTTPInvocations("127.0.0.1", server.port)
    got: list[Any] = []
    poller = threading.Thread(target=lambda: got.extend(inv.fetch_requests("f", 5, 20_000)))
    poller.start()
    time.sleep(0.1)
    fut = server.service.execute_async("f", "wake")
    poller.join(10)
    assert not poller.is_alive(), "the long poll did not return when the request arrived"
    assert [r.func_args for r in got] == ["wake"]
    server.service.result(got[0].request_id, "ok")
    assert fut.result(1) == "ok"


# -- topologies behind the server ------------------------------------------------------


class ExclaimWithReturnInfo(Bolt):
    outputs = ["result", "return-info"]

    def process(self, tup: Any) -> None:
        self.emit([tup.values.args + "!!!", tup.values[1]])


def flow(function: str = "exclaim") -> Any:
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function=function)
    b.set_bolt("exclaim", ExclaimWithReturnInfo, 2).shuffle_grouping("spout")
    b.set_bolt("return", ReturnResults).shuffle_grouping("exclaim")
    return b.create_topology("flow")


def test_drpc_flow_over_http(server: DRPCServer) -> None:
    with LocalCluster() as cluster:
        serve(cluster, flow(), server)
        status, body, _ = request(server.port, "GET", "/drpc/exclaim/aaa")
        assert (status, body) == (200, b"aaa!!!")


def test_hundreds_of_concurrent_requests_each_get_their_own_answer() -> None:
    with DRPCServer(port=0, queue_size=1000) as server, LocalCluster() as cluster:
        serve(cluster, flow(), server)
        n = 300
        barrier = threading.Barrier(n)
        client = DRPCClient("127.0.0.1", server.port)

        def call(i: int) -> str:
            barrier.wait()
            return client.execute("exclaim", f"req-{i}")

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(call, range(n)))
        assert answers == [f"req-{i}!!!" for i in range(n)]
        assert server.metrics()["drpc:num-execute-http-requests"] == n


def test_the_reach_example_answers_over_http(server: DRPCServer) -> None:
    loaded = load_topology(str(EXAMPLES / "drpc_reach.py"))
    module = loaded.module
    with LocalCluster() as cluster:
        serve(cluster, loaded.obj, server)
        client = DRPCClient("127.0.0.1", server.port)
        for url, tweeters in module.TWEETERS_DB.items():
            expected = {f for t in tweeters for f in module.FOLLOWERS_DB.get(t, ())}
            assert client.execute("reach", url) == str(len(expected))
        assert client.execute("reach", "nobody.example/tweeted") == "0"
        status, body, _ = request(server.port, "GET", "/drpc/reach/foo.com/blog/1")
        assert (status, body) == (200, b"16")


def test_the_exclamation_example_answers_over_http(server: DRPCServer) -> None:
    loaded = load_topology(str(EXAMPLES / "drpc_exclamation.py"))
    with LocalCluster() as cluster:
        serve(cluster, loaded.obj, server)
        assert DRPCClient("127.0.0.1", server.port).execute("exclamation", "aaa") == "aaa!!!"


def test_a_request_whose_tuple_fails_gets_400() -> None:
    class Explode(Bolt):
        outputs = ["result", "return-info"]

        def process(self, tup: Any) -> None:
            raise RuntimeError("boom")

    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="explode")
    b.set_bolt("explode", Explode).shuffle_grouping("spout")
    b.set_bolt("return", ReturnResults).shuffle_grouping("explode")
    with DRPCServer(port=0) as server, LocalCluster() as cluster:
        serve(cluster, b, server)
        status, body, _ = request(server.port, "GET", "/drpc/explode/x")
        assert status == 400 and error_of(body)["error"] == "FAILED_REQUEST"
        with pytest.raises(DRPCExecutionError) as info:
            DRPCClient("127.0.0.1", server.port).execute("explode", "x")
        assert info.value.type is DRPCErrorType.FAILED_REQUEST


class Swallow(Bolt):
    """Never acks, never emits: a hung topology."""

    auto_ack = False
    outputs = ["result", "return-info"]


def test_a_hung_topology_gets_504_after_the_configured_timeout() -> None:
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="hung")
    b.set_bolt("swallow", Swallow).shuffle_grouping("spout")
    b.set_bolt("return", ReturnResults).shuffle_grouping("swallow")
    with DRPCServer(port=0, timeout_secs=0.3) as server, LocalCluster() as cluster:
        serve(cluster, b, server)
        started = time.monotonic()
        status, body, _ = request(server.port, "GET", "/drpc/hung/x")
        assert status == 504
        err = error_of(body)
        assert err["error"] == "SERVER_TIMEOUT" and "for a result" in err["errorMessage"]
        assert time.monotonic() - started < 10


def test_a_function_nobody_serves_times_out_cleanly() -> None:
    with DRPCServer(port=0, timeout_secs=0.2) as server:
        status, body, _ = request(server.port, "GET", "/drpc/nobody/x")
        assert status == 504
        assert "to be fetched by a topology" in error_of(body)["errorMessage"]
        assert server.service.pending() == 0 and server.service.queued("nobody") == 0


def test_several_servers_can_serve_one_function() -> None:
    with DRPCServer(port=0) as a, DRPCServer(port=0) as b, LocalCluster() as cluster:
        servers = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        cluster.submit("t", flow(), {"drpc.servers": servers})
        for s in (a, b):
            assert DRPCClient("127.0.0.1", s.port).execute("exclaim", str(s.port)) == (
                f"{s.port}!!!"
            )


def test_the_client_fails_over_to_a_server_that_answers(server: DRPCServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with LocalCluster() as cluster:
        serve(cluster, flow(), server)
        client = DRPCClient(
            servers=[("127.0.0.1", dead), ("127.0.0.1", server.port)], backoff_secs=0.01
        )
        for i in range(5):
            assert client.execute("exclaim", str(i)) == f"{i}!!!"


def test_the_client_gives_up_when_no_server_answers() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    client = DRPCClient("127.0.0.1", dead, retries=2, backoff_secs=0.01)
    with pytest.raises(DRPCConnectionError, match=f"127.0.0.1:{dead}"):
        client.execute("f", "x")


# -- shutdown and restart ----------------------------------------------------------------


class Gate(Bolt):
    """Holds every request until ``OPEN`` is set (checked on ticks)."""

    OPEN = threading.Event()
    auto_ack = False
    outputs = ["result", "return-info"]

    def initialize(self, conf: Any, context: Any) -> None:
        self.held: list[Any] = []

    def process(self, tup: Any) -> None:
        self.held.append(tup)
        self.process_tick(tup)

    def process_tick(self, tup: Any) -> None:
        if not Gate.OPEN.is_set():
            return
        for t in self.held:
            self.emit([t.values.args + "!", t.values[1]], anchors=[t])
            self.ack(t)
        self.held.clear()


def test_closing_the_server_answers_pending_requests_with_503() -> None:
    Gate.OPEN.clear()
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="gate")
    b.set_bolt("gate", Gate).shuffle_grouping("spout").add_configuration(
        "topology.tick.tuple.freq.secs", 0.05
    )
    b.set_bolt("return", ReturnResults).shuffle_grouping("gate")
    server = DRPCServer(port=0).start()
    with LocalCluster() as cluster:
        serve(cluster, b, server)
        with ThreadPoolExecutor(5) as pool:
            futures = [
                pool.submit(request, server.port, "GET", f"/drpc/gate/{i}") for i in range(5)
            ]
            deadline = time.monotonic() + 10
            while server.service.pending() < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.close()
            for f in futures:
                status, body, _ = f.result(10)
                assert status == 503
                assert error_of(body) == {
                    "error": "SERVER_SHUTDOWN",
                    "errorMessage": "Server Shutting Down",
                }
    with pytest.raises(OSError):
        request(server.port, "GET", "/drpc/gate/late")


def test_requests_pending_across_a_server_restart_get_answered_by_retrying_clients() -> None:
    Gate.OPEN.clear()
    b = TopologyBuilder()
    b.set_spout("spout", DRPCSpout, function="gate")
    b.set_bolt("gate", Gate).shuffle_grouping("spout").add_configuration(
        "topology.tick.tuple.freq.secs", 0.05
    )
    b.set_bolt("return", ReturnResults).shuffle_grouping("gate")
    first = DRPCServer(port=0).start()
    port = first.port
    with LocalCluster() as cluster:
        serve(cluster, b, first)
        client = DRPCClient("127.0.0.1", port, retries=30, backoff_secs=0.05, max_backoff_secs=0.2)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client.execute, "gate", str(i)) for i in range(8)]
            deadline = time.monotonic() + 10
            while first.service.pending() < 8 and time.monotonic() < deadline:
                time.sleep(0.01)
            first.close()  # pending calls get 503; the clients back off and retry
            second = DRPCServer(port=port).start()
            try:
                Gate.OPEN.set()  # the old requests finish too: their results are ignored
                assert [f.result(20) for f in futures] == [f"{i}!" for i in range(8)]
            finally:
                second.close()


# -- bad requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "needle"),
    [
        ("GET", "/", 404, "no such endpoint"),
        ("GET", "/drpc", 404, "no function name"),
        ("GET", "/drpc/", 404, "no function name"),
        ("GET", "/other/f/x", 404, "GET /drpc/<function>/<args>"),
        ("PUT", "/drpc/f/x", 405, "not allowed"),
        ("DELETE", "/drpc/f", 405, "not allowed"),
        ("POST", "/drpc/f/x", 404, "POST takes the args in the body"),
        ("GET", "/drpc-invocations/fetch", 405, "takes POST"),
        ("POST", "/drpc-invocations/nope", 404, "invocations are"),
    ],
)
def test_bad_paths_and_methods_get_clear_json_errors(
    server: DRPCServer, method: str, path: str, status: int, needle: str
) -> None:
    got, body, headers = request(server.port, method, path)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert needle in error_of(body)["errorMessage"]
    if status == 405:
        assert headers["allow"] == "GET, POST"


def test_an_oversized_body_gets_413_and_is_never_buffered() -> None:
    with DRPCServer(port=0, max_body_bytes=1000) as server:
        out = raw(
            server.port,
            b"POST /drpc/f HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 10,
        )
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 ")
        assert b"Connection: close" in head
        assert "drpc.http.max.body.bytes" in error_of(body)["errorMessage"]
        # A body at the limit is fine.
        client = DRPCClient("127.0.0.1", server.port)
        fut = ThreadPoolExecutor(1).submit(client.execute, "f", "y" * 1000)
        deadline = time.monotonic() + 5
        while server.service.queued("f") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        req = server.service.fetch_request("f")
        server.service.result(req.request_id, "ok")
        assert fut.result(5) == "ok"
        with pytest.raises(DRPCError) as info:
            client.execute("f", "y" * 1001)
        assert info.value.status == 413 and "1001 bytes" in info.value.message
        # A client still sending a large body reads the 413, not a connection reset.
        with pytest.raises(DRPCError) as info:
            client.execute("f", "y" * 8_000_000)
        assert info.value.status == 413 and "8000000 bytes" in info.value.message


def test_malformed_requests_get_400_and_the_connection_closes(server: DRPCServer) -> None:
    out = raw(server.port, b"NONSENSE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and b"malformed request line" in out
    out = raw(server.port, b"GET /drpc/f HTTP/2.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 505 ")
    out = raw(server.port, b"GET /drpc/f HTTP/1.1\r\nno colon here\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and b"malformed header" in out
    out = raw(server.port, b"POST /drpc/f HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and b"Content-Length" in out
    out = raw(server.port, b"POST /drpc/f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 ")
    out = raw(server.port, b"GET /drpc/f HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")


def test_a_body_that_is_not_utf8_gets_400(server: DRPCServer) -> None:
    status, body, _ = request(server.port, "POST", "/drpc/f", b"\xff\xfe")
    assert status == 400 and "UTF-8" in error_of(body)["errorMessage"]


def test_bad_invocation_bodies_get_400(server: DRPCServer) -> None:
    for payload in (b"not json", b"[1]", b'{"function": ""}', b'{"function": "f", "max": "x"}'):
        status, body, _ = request(server.port, "POST", "/drpc-invocations/fetch", payload)
        assert status == 400, payload
        assert "/drpc-invocations/fetch" in error_of(body)["errorMessage"]
    status, _, _ = request(server.port, "POST", "/drpc-invocations/result", b'{"results": [1]}')
    assert status == 400


def test_curl_style_expect_100_continue_is_honoured(server: DRPCServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(
            b"POST /drpc/f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"abc")
        deadline = time.monotonic() + 5
        while server.service.queued("f") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        req = server.service.fetch_request("f")
        assert req.func_args == "abc"
        server.service.result(req.request_id, "done")
        assert s.recv(1000).endswith(b"\r\n\r\ndone")


def test_keep_alive_serves_many_requests_on_one_connection(server: DRPCServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

    def call(i: int) -> bytes:
        conn.request("GET", f"/drpc/f/{i}")
        return conn.getresponse().read()

    with ThreadPoolExecutor(1) as pool:
        for i in range(3):
            fut = pool.submit(call, i)
            deadline = time.monotonic() + 5
            while server.service.queued("f") == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
            req = server.service.fetch_request("f")
            server.service.result(req.request_id, req.func_args)
            assert fut.result(5) == str(i).encode()
    assert conn.sock is not None  # the server kept the connection open throughout
    conn.close()


def test_a_port_in_use_is_named_in_the_error(server: DRPCServer) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}.*drpc.http.port"):
        DRPCServer(port=server.port).start()


# -- tokens ---------------------------------------------------------------------------


def test_a_token_protects_calls_and_invocations() -> None:
    with DRPCServer(port=0, token="s3cret") as server, LocalCluster() as cluster:
        status, body, _ = request(server.port, "GET", "/drpc/exclaim/x")
        assert status == 401
        assert error_of(body)["error"] == "401 Unauthorized"
        assert "no Authorization header" in error_of(body)["errorMessage"]
        wrong = {"Authorization": "Bearer nope"}
        status, body, _ = request(server.port, "GET", "/drpc/exclaim/x", headers=wrong)
        assert status == 401 and "does not match" in error_of(body)["errorMessage"]
        with pytest.raises(DRPCAuthorizationError):
            HTTPInvocations("127.0.0.1", server.port).fetch_requests("exclaim")
        with pytest.raises(DRPCAuthorizationError):
            DRPCClient("127.0.0.1", server.port).execute("exclaim", "x")
        assert server.service.pending() == 0  # refused before it was queued
        serve(cluster, flow(), server, **{"drpc.auth.token": "s3cret"})
        assert DRPCClient("127.0.0.1", server.port, token="s3cret").execute("exclaim", "x") == (
            "x!!!"
        )
        right = {"Authorization": "Bearer s3cret"}
        assert request(server.port, "GET", "/drpc/exclaim/y", headers=right)[:2] == (200, b"y!!!")


def test_a_separate_invocations_token_keeps_clients_out_of_the_invocation_side() -> None:
    with DRPCServer(port=0, token="client", invocations_token="topology") as server:
        with pytest.raises(DRPCAuthorizationError):
            HTTPInvocations("127.0.0.1", server.port, token="client").fetch_requests("f")
        assert HTTPInvocations("127.0.0.1", server.port, token="topology").fetch_requests("f") == []


def test_a_full_queue_answers_503_with_a_clear_message() -> None:
    with DRPCServer(port=0, queue_size=1) as server:
        pool = ThreadPoolExecutor(1)
        first = pool.submit(request, server.port, "GET", "/drpc/f/1")
        deadline = time.monotonic() + 5
        while server.service.queued("f") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, body, _ = request(server.port, "GET", "/drpc/f/2")
        assert status == 503
        err = error_of(body)
        assert err["error"] == "QUEUE_FULL" and "drpc.queue.size" in err["errorMessage"]
        req = server.service.fetch_request("f")
        server.service.result(req.request_id, "ok")
        assert first.result(5)[:2] == (200, b"ok")
