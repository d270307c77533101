"""The ZeroMQ link's cluster-mode additions, on loopback: restarted peers and moved peers."""

from __future__ import annotations

from typing import Any

import pytest
from tests.zmq_links import TASKS, Sink
from tests.zmq_links import link as zmq_link

from squall.transport.zmq_link import ZmqLink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def link(index: int, port: int = 0) -> tuple[ZmqLink, Sink]:
    return zmq_link(index, port=port, window=4)


def pump(*links: ZmqLink, until: Any, rounds: int = 200) -> None:
    for _ in range(rounds):
        for lk in links:
            lk.idle_wait(0.01)
            lk.poll()
        if until():
            return
    raise AssertionError("condition not reached")


def batch(n: int) -> list[tuple[Any, ...]]:
    return [(1, 2, [(0, i, 7, 1) for i in range(n)])]


def test_a_peer_restarted_on_its_port_is_sent_to_again_after_its_hello() -> None:
    a, _ = link(0)
    b, b_sink = link(1)
    port = b.port
    a.connect({1: f"127.0.0.1:{port}"})
    b.connect({0: f"127.0.0.1:{a.port}"})
    a.send(1, batch(4))  # the whole window, never confirmed: b dies before reading it
    assert a.blocked(1)
    b.close()
    b2, b2_sink = link(1, port=port)
    try:
        b2.connect({0: f"127.0.0.1:{a.port}"})
        b2.announce()
        pump(a, b2, until=lambda: not a.blocked(1))
        a.send(1, batch(2))
        pump(a, b2, until=lambda: sum(len(e[2]) for e in b2_sink.got) >= 2)
    finally:
        a.close()
        b2.close()
    assert b_sink.got == []


def test_a_peer_that_moved_is_reached_at_its_new_address() -> None:
    a, _ = link(0)
    old, old_sink = link(1)
    new, new_sink = link(1)
    try:
        a.connect({1: f"127.0.0.1:{old.port}"})
        a.send(1, batch(1))
        pump(a, old, until=lambda: bool(old_sink.got))
        a.retarget(TASKS, {1: f"127.0.0.1:{new.port}"})
        a.send(1, batch(1))
        pump(a, new, until=lambda: bool(new_sink.got))
        assert len(old_sink.got) == 1
    finally:
        for lk in (a, old, new):
            lk.close()


def test_a_slot_port_is_bound_as_given() -> None:
    from tests.chaos.harness import free_port

    port = free_port()
    lk, sink = link(1, port=port)
    a, _ = link(0)
    try:
        assert lk.port == port
        # Reachable there: a peer that only knows the port delivers to it.
        a.connect({1: f"127.0.0.1:{port}"})
        a.send(1, batch(1))
        pump(a, lk, until=lambda: bool(sink.got))
    finally:
        lk.close()
        a.close()
