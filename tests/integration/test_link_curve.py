"""Worker links with CURVE keys, on loopback: peers with the topology's keys talk, nobody else.

Real ZeroMQ sockets and a real ZAP handler. A stranger's frames (no keys, or keys of
another topology) never reach the engine: the handshake fails before any frame is read.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import zmq
from tests.zmq_links import link

from squall.transport.zmq_link import CurveKeys, ZmqLink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def pump(lk: ZmqLink, secs: float) -> None:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        lk.idle_wait(0.01)
        lk.poll()


def test_workers_with_the_topologys_keys_exchange_tuples() -> None:
    keys = CurveKeys.generate()
    a, _ = link(0, curve=keys)
    b, got = link(1, curve=keys)
    try:
        a.connect({1: b.port})
        a.send(1, [(1, 2, [(0, 42, 7, 1)])])
        deadline = time.monotonic() + 10
        while not got.got:
            assert time.monotonic() < deadline, "the tuple never arrived"
            b.idle_wait(0.01)
            b.poll()
            a.poll()
        assert got.got == [(1, 2, [[0, 42, 7, 1]])]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("stranger", ["no keys", "another topology's keys"])
def test_a_peer_without_the_topologys_keys_delivers_nothing(stranger: str) -> None:
    keys = CurveKeys.generate()
    b, got = link(1, curve=keys)
    a, _ = link(0, curve=None if stranger == "no keys" else CurveKeys.generate())
    try:
        a.connect({1: b.port})
        a.send(1, [(1, 2, [(0, 42, 7, 1)])])
        for _ in range(50):
            a.poll()
            b.idle_wait(0.01)
            b.poll()
        assert got.got == []
        assert b.frames_received == 0 and b.bad_frames == 0, "nothing was even read"
    finally:
        a.close()
        b.close()


def test_a_client_that_knows_the_server_key_but_not_the_client_key_is_refused_by_zap() -> None:
    keys = CurveKeys.generate()
    b, got = link(1, curve=keys)
    ctx: zmq.Context[Any] = zmq.Context()
    stranger = CurveKeys.generate()
    push = ctx.socket(zmq.PUSH)
    push.curve_serverkey = keys.server_public
    push.curve_publickey = stranger.client_public
    push.curve_secretkey = stranger.client_secret
    push.setsockopt(zmq.LINGER, 0)
    try:
        push.connect(f"tcp://127.0.0.1:{b.port}")
        for _ in range(5):
            try:
                push.send(b"\xff" * 64, zmq.NOBLOCK)
            except zmq.Again:
                break
        assert b._admit is not None, "a link with keys runs a ZAP handler"
        deadline = time.monotonic() + 10
        while b._admit.refused == 0:
            assert time.monotonic() < deadline, "the ZAP handler was never asked"
            pump(b, 0.05)
        pump(b, 0.3)
        assert got.got == [] and b.frames_received == 0 and b.bad_frames == 0
    finally:
        push.close(0)
        ctx.term()
        b.close()


def test_keys_from_json_name_the_bad_field() -> None:
    data = CurveKeys.generate().to_json()
    data["client_secret"] = "short"
    with pytest.raises(ValueError, match="'client_secret' must be 40 Z85 characters"):
        CurveKeys.from_json(data)
