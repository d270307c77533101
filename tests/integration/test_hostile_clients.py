"""Every HTTP port Squall opens, against hostile clients (reliability plan T7).

Nimbus's API, a DRPC server, the UI and a supervisor's logviewer run in this
process on 127.0.0.1, with tokens where they take one. Each gets: a request that
claims a 2 GiB body, a Content-Length that is not a number, 4 KiB of random bytes,
and 100 clients that open a connection and stall in the middle of a request.
Each must answer the first three with an error (or close) without reading or
allocating the claimed body, and keep answering a legitimate client while the
stalled ones hang on. Memory is watched on this process (every server is in it).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.chaos.harness import free_port

from squall import LocalCluster
from squall.cluster.memory import MemoryZooKeeper
from squall.daemon.logviewer import LogViewer
from squall.daemon.nimbus import Nimbus, NimbusServer
from squall.drpc import DRPCServer
from squall.drpc.invocations import FETCH_PATH as FETCH
from squall.ui import LocalSource, UIServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "t0ken"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"
STALLED = 100


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    legit: bytes  # a request the server must answer 200
    post: str  # a path that takes POST


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Port]]:
    tmp = tmp_path_factory.mktemp("hostile")
    stops: list[Callable[[], None]] = []
    try:
        n_port = free_port()
        nimbus = Nimbus(
            {"nimbus.thrift.port": n_port, "nimbus.auth.token": TOKEN},
            MemoryZooKeeper().client(),
            local_dir=tmp / "nimbus",
        )
        nimbus.step()
        n_server = NimbusServer("127.0.0.1", n_port, nimbus)
        threading.Thread(target=n_server.serve_forever, daemon=True).start()
        stops.append(lambda: (n_server.shutdown(), n_server.server_close()))

        drpc = DRPCServer(port=0, token=TOKEN).start()
        stops.append(drpc.close)

        cluster = LocalCluster()
        ui = UIServer(LocalSource(cluster), port=0, capture_logs=False).start()
        stops.append(cluster.shutdown)
        stops.append(ui.stop)

        (tmp / "logs" / "workers-artifacts" / "t-1-1" / "6700").mkdir(parents=True)
        (tmp / "logs" / "workers-artifacts" / "t-1-1" / "6700" / "worker.log").write_text("ok\n")
        viewer = LogViewer(tmp / "logs", "127.0.0.1", 0, TOKEN).start()
        stops.append(viewer.stop)

        def get(path: str, auth: bool) -> bytes:
            return f"GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH if auth else ''}\r\n".encode()

        yield [
            Port("nimbus", n_port, get("/api/v1/nimbus", True), "/api/v1/topologies"),
            Port("drpc", drpc.port, post_json(FETCH, b'{"function": "f", "max": 1}'), "/drpc/f"),
            Port("ui", ui.port, get("/api/v1/cluster/summary", False), "/api/v1/topology/x/kill/0"),
            Port("logviewer", viewer.port, get("/api/v1/logs", True), "/api/v1/logs"),
        ]
    finally:
        for stop in reversed(stops):
            stop()


def post_json(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data``; return the reply (head and body), or what came before the server
    closed the connection (b"" if it closed without a word)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(body) >= length:
                    return out
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk


def status_of(reply: bytes) -> int:
    if reply.startswith(b"<!DOCTYPE") and b"Error code: " in reply:
        # http.server answers a request line it cannot parse as HTTP/0.9: no status line.
        return int(reply.split(b"Error code: ", 1)[1][:3])
    assert reply.startswith(b"HTTP/1."), reply[:200]
    return int(reply.split(b" ", 2)[1])


def test_a_two_gigabyte_body_is_refused_from_its_header_alone(ports: list[Port]) -> None:
    before = rss_mib()
    for p in ports:
        head = (
            f"POST {p.post} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 2147483648\r\n\r\n"
        ).encode()
        started = time.monotonic()
        reply = exchange(p.port, head + b"x" * 100)
        assert time.monotonic() - started < 5, p.name
        # 413 where POST is served; the logviewer serves no POST at all (501).
        assert status_of(reply) in (413, 501), (p.name, reply[:200])
    assert rss_mib() - before < 50, "a claimed body was allocated"


def test_a_content_length_that_is_not_a_number_gets_400(ports: list[Port]) -> None:
    for p in ports:
        if p.name == "logviewer":
            continue  # GET only: it never reads a body
        head = f"POST {p.post} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: lots\r\n\r\n"
        assert status_of(exchange(p.port, head.encode())) in (400, 411), p.name


def test_random_bytes_get_an_error_or_a_closed_connection(ports: list[Port]) -> None:
    for p in ports:
        started = time.monotonic()
        reply = exchange(p.port, os.urandom(4096) + b"\r\n\r\n")
        assert time.monotonic() - started < 5, f"{p.name} sat on garbage"
        assert reply == b"" or status_of(reply) >= 400, (p.name, reply[:200])
        assert status_of(exchange(p.port, p.legit)) == 200, f"{p.name} stopped answering"


def test_stalled_clients_do_not_keep_a_legit_client_waiting(ports: list[Port]) -> None:
    before = rss_mib()
    stalled: list[socket.socket] = []
    try:
        for p in ports:
            for _ in range(STALLED):
                s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
                s.sendall(b"GET /api/v1/nim")  # and then nothing more
                stalled.append(s)
        time.sleep(0.5)
        # (With socketserver's default listen backlog of 5, this took 14 s per server:
        # the kernel dropped the legit client's SYN until the backlog drained.)
        for p in ports:
            started = time.monotonic()
            assert status_of(exchange(p.port, p.legit)) == 200, p.name
            assert time.monotonic() - started < 5, f"{p.name} kept the legit client waiting"
        assert rss_mib() - before < 60, f"{len(stalled)} stalled connections cost too much"
    finally:
        for s in stalled:
            s.close()


def test_requests_without_the_token_are_refused_where_one_is_set(ports: list[Port]) -> None:
    for p in ports:
        if p.name == "ui":
            continue  # the UI binds 127.0.0.1 and has no token (see docs/ui.md)
        plain = p.legit.replace(AUTH.encode(), b"")
        assert status_of(exchange(p.port, plain)) == 401, p.name
        wrong = p.legit.replace(TOKEN.encode(), b"wrong")
        assert status_of(exchange(p.port, wrong)) == 401, p.name
