"""Nimbus's HTTP/JSON API on loopback (cluster state in memory): auth, caps, leader redirects."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.chaos.harness import free_port

from squall.cluster.memory import MemoryZooKeeper
from squall.cluster.state import ClusterState
from squall.daemon.nimbus import Nimbus, NimbusServer
from squall.daemon.nimbus_client import NimbusClient, NimbusClientError, NimbusUnavailableError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TOKEN = "s3cret-token"
REQUEST: dict[str, Any] = {
    "name": "wc",
    "target": "topo.py:T",
    "conf": {},
    "num_workers": 1,
    "component_tasks": {"spout": [1, 1]},
    "component_executors": {"spout": 1},
}


class Running:
    def __init__(self, zk: MemoryZooKeeper, tmp: Path, name: str, token: str | None) -> None:
        port = free_port()
        conf = {"nimbus.thrift.port": port, "nimbus.max.upload.bytes": 1000}
        if token:
            conf["nimbus.auth.token"] = token
        self.nimbus = Nimbus(conf, zk.client(), local_dir=tmp / name)
        self.nimbus.step()
        self.server = NimbusServer("127.0.0.1", port, self.nimbus)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.address = f"127.0.0.1:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def zk() -> MemoryZooKeeper:
    return MemoryZooKeeper()


@pytest.fixture
def nimbus(zk: MemoryZooKeeper, tmp_path: Path) -> Iterator[Running]:
    n = Running(zk, tmp_path, "n1", TOKEN)
    yield n
    n.close()


def raw(address: str, method: str, path: str, body: bytes = b"", headers: Any = None) -> Any:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data or b"null")


def test_requests_without_the_right_token_are_refused_and_change_nothing(
    nimbus: Running, zk: MemoryZooKeeper
) -> None:
    body = json.dumps(REQUEST).encode()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, reply = raw(nimbus.address, "POST", "/api/v1/topologies", body, headers)
        assert status == 401 and reply == {"error": "missing or wrong token"}
        status, _ = raw(nimbus.address, "POST", "/api/v1/uploads", b"x" * 10, headers)
        assert status == 401
    assert ClusterState(zk.client()).storm_bases() == {}
    assert list(nimbus.nimbus.upload_dir.iterdir()) == []
    with pytest.raises(NimbusClientError, match="refused the token"):
        NimbusClient([nimbus.address], "wrong").topologies()
    assert NimbusClient([nimbus.address], TOKEN).topologies() == []


def test_an_oversized_upload_is_refused_from_its_header_alone(nimbus: Running) -> None:
    host, _, port = nimbus.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Length: 2147483648\r\n\r\n"
        )
        # Headers and body may arrive in separate segments: read until the server closes
        # or the body is complete.
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":", 1)[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length:")
                ),
                None,
            )
            if sep and length is not None and len(body) >= length:
                break
        reply = data.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "at most 1000" in reply


def test_garbage_on_the_port_does_not_take_nimbus_down(nimbus: Running) -> None:
    host, _, port = nimbus.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(bytes(range(256)) * 16 + b"\r\n\r\n")
        s.recv(4096)
    status, _ = raw(
        nimbus.address, "GET", "/api/v1/nimbus", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200


def test_a_client_sent_to_a_standby_reaches_the_leader(
    nimbus: Running, zk: MemoryZooKeeper, tmp_path: Path
) -> None:
    standby = Running(zk, tmp_path, "n2", TOKEN)
    try:
        client = NimbusClient([standby.address], TOKEN)
        assert client.leader() == nimbus.address
        code = client.upload(b"package")
        tid = client.submit({**REQUEST, "code": code})
        assert [t["id"] for t in client.topologies()] == [tid]
        # The standby copies the code so that it can take over.
        standby.nimbus.fetch_code = lambda info, t: NimbusClient([info.address], TOKEN).code(
            info.address, t
        )
        standby.nimbus.step()
        assert (standby.nimbus.code_dir / f"{tid}.tar.gz").read_bytes() == b"package"
    finally:
        standby.close()


def test_with_no_nimbus_listening_the_client_says_so_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(NimbusUnavailableError, match="no leader nimbus"):
        NimbusClient([f"127.0.0.1:{free_port()}"], timeout_secs=2).topologies()
    assert time.monotonic() - started < 5


def test_bad_requests_get_clear_errors(nimbus: Running) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, reply = raw(nimbus.address, "POST", "/api/v1/topologies", b"{not json", auth)
    assert status == 400 and "not JSON" in reply["error"]
    status, reply = raw(nimbus.address, "GET", "/api/v1/nothing", headers=auth)
    assert status == 404
    status, reply = raw(nimbus.address, "GET", "/api/v1/topologies/x-1-1/code", headers=auth)
    assert status == 404 and "no code" in reply["error"]
