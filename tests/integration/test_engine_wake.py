"""Waking the engine from another thread: input handed over from outside is seen at once.

Real threads and a real ZeroMQ link on loopback; the waits are long on purpose (10 s
or more), so a test only finishes in time if the wake-up ended the wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import pytest

from squall import Bolt, Spout, Topology
from squall.api.topology import as_definition
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan
from squall.serialization import BatchDecoder, BatchEncoder
from squall.transport.zmq_link import ZmqLink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

INBOX: deque[str] = deque()
SEEN: list[str] = []


class Outside(Spout):
    """Emits what another thread put in INBOX (as a DRPC fetcher does)."""

    outputs = ["x"]

    def initialize(self, conf: Any, context: Any) -> None:
        OUTSIDE_WAKE.append(context.wake)

    def next_tuple(self) -> None:
        if INBOX:
            self.emit([INBOX.popleft()])


class Record(Bolt):
    def process(self, tup: Any) -> None:
        SEEN.append(tup.values.x)


OUTSIDE_WAKE: list[Any] = []


class T(Topology):
    outside = Outside.spec()
    record = Record.spec(inputs=[outside])


def engine(remote: Any = None) -> Engine:
    plan = make_plan(as_definition(T, "wake"), {"topology.acker.executors": 0})
    return Engine(plan, 0, remote=remote)


def test_an_idle_wait_ends_when_the_engine_is_woken_from_another_thread() -> None:
    e = engine()
    threading.Timer(0.2, e.wake).start()
    started = time.monotonic()
    e._idle_wait(30.0)
    assert time.monotonic() - started < 15.0, "the wake-up did not end the wait"
    # A wake-up that came while the loop was busy is not lost: the next wait returns.
    e.wake()
    started = time.monotonic()
    e._idle_wait(30.0)
    assert time.monotonic() - started < 15.0, "a wake-up before the wait was lost"


def test_a_spout_fed_from_another_thread_emits_after_context_wake() -> None:
    INBOX.clear()
    SEEN.clear()
    OUTSIDE_WAKE.clear()
    e = engine()
    e.start()
    stop = threading.Event()
    loop = threading.Thread(target=e.run, args=(stop,), daemon=True)
    loop.start()
    try:
        for word in ("a", "b", "c"):
            INBOX.append(word)
            OUTSIDE_WAKE[0]()
            deadline = time.monotonic() + 10
            while word not in SEEN:
                assert time.monotonic() < deadline, f"{word!r} never arrived"
                time.sleep(0.001)
        assert SEEN == ["a", "b", "c"]
    finally:
        stop.set()
        loop.join(5)
        e.shutdown()


def test_the_zeromq_links_idle_wait_ends_on_wake_and_after_close_wake_is_harmless() -> None:
    lk = ZmqLink(0, BatchEncoder(), BatchDecoder({}), worker_tasks={0: [1]})
    try:
        threading.Timer(0.2, lk.wake).start()
        started = time.monotonic()
        lk.idle_wait(30.0)
        assert time.monotonic() - started < 15.0, "the wake-up did not end the poll"
        for _ in range(10_000):  # a full pipe only means a wake-up is pending
            lk.wake()
        started = time.monotonic()
        lk.idle_wait(30.0)
        assert time.monotonic() - started < 15.0, "the pending wake-ups did not end the poll"
        lk.idle_wait(0.01)  # drained: this one waits its 10 ms and returns
    finally:
        lk.close()
    lk.wake()  # closed: does nothing (its pipe's fds may belong to someone else now)


def test_an_engine_with_a_link_wakes_the_links_wait_too() -> None:
    lk = ZmqLink(0, BatchEncoder(), BatchDecoder({}), worker_tasks={0: [1, 2]})
    try:
        e = engine(remote=lk)
        threading.Timer(0.2, e.wake).start()
        started = time.monotonic()
        lk.idle_wait(30.0)
        assert time.monotonic() - started < 15.0
    finally:
        lk.close()
