"""Batches between worker processes over ZeroMQ, with Storm 2.x style backpressure.

Each worker binds one PULL socket on 127.0.0.1 (a random port) and connects one
PUSH socket to every peer's PULL socket. A data message carries one encoded
batch (see ``squall.serialization.batch``): the engine hands the link
everything a loop pass produced for one worker, and the link sends it as one
frame. Sends never block the engine loop.

Two mechanisms keep memory bounded when a receiver cannot keep up:

* **Backpressure status** (STORM-2306). After delivering what arrived, and
  every ``topology.backpressure.check.millis``, a worker asks its engine which
  local tasks have an inbox at or over capacity; when that set changes it tells
  every peer (``["bp", worker, [task, ...]]``). Senders keep the union of those
  sets, and the engine does not run an executor whose streams reach one of
  those tasks (``any_blocked``): the upstream stops pulling input or calling
  ``next_tuple`` until the receiver announces relief.
* **A send window.** A receiver only sees its inboxes fill when its loop reads
  the socket, which a long bolt step can delay; meanwhile bytes would pile up in
  socket buffers. So each sender allows at most ``window`` tuples (and acks) to
  a peer beyond what that peer has confirmed reading (``["credit", worker,
  total]``, sent every quarter window); past that, the peer's tasks count as
  blocked. Likewise while a peer's socket is full (``hwm`` messages): the frames
  wait in a per-peer backlog.

A worker restarted in place (cluster mode) says ``["hello", worker, 0]`` to
every peer first; both sides then forget the window state they had about it.

Wire format: single-part ZeroMQ messages (one send per batch), starting with a
2-byte big-endian header:

* data: the sender's worker index, then the encoded batch;
* control: ``0xFFFF``, then ``msgpack([kind, sender, payload])``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgpack
import zmq

log = logging.getLogger("squall.transport")

DEFAULT_WINDOW: Final = 16384
"""Default send window, in tuples (and acks) per peer (config ``squall.transport.window``)."""
WINDOW_KEY: Final = "squall.transport.window"

# Messages read per poll() at most, so a flood from peers cannot starve the executors.
_MAX_MESSAGES_PER_POLL = 256
# Slack over the frame limit for the receiver's hard cap (zmq drops bigger messages
# before allocating them and disconnects the sender).
_FRAME_SLACK = 4096
_HEADER = struct.Struct("!H")
_CONTROL = 0xFFFF
_CONTROL_HEADER = _HEADER.pack(_CONTROL)
_DATA = 0  # the first element of every inbox entry is its kind; DATA is 0


class FrameEncoder(Protocol):
    """Batches -> frames (``squall.serialization.BatchEncoder``; this layer cannot import it)."""

    max_frame_bytes: int

    def encode(
        self,
        entries: Sequence[tuple[Any, ...]],
        on_error: Callable[[ValueError], None] | None = None,
    ) -> list[bytes]: ...


class FrameDecoder(Protocol):
    """Frame -> batch; raises ``ValueError`` on a bad frame (``BatchDecoder``)."""

    def decode(self, frame: bytes | memoryview | bytearray) -> list[tuple[Any, ...]]: ...


class LinkedEngine(Protocol):
    """What the link needs from the engine of its worker."""

    def deliver(self, entries: Sequence[tuple[Any, ...]]) -> None: ...

    def backpressured_tasks(self) -> list[int]: ...


def _count(entries: Sequence[tuple[Any, ...]]) -> int:
    """Tuples (or ack messages) in a batch: what the send window counts."""
    return sum(len(e[5]) if e[0] == _DATA else len(e[2]) for e in entries)


@dataclass(frozen=True)
class CurveKeys:
    """One topology's CURVE keys (Z85 text): its workers' data sockets are encrypted and
    admit only each other.

    Every worker's PULL socket is a CURVE server with the server pair; every PUSH
    socket connects with the client pair; a ZAP handler in each worker admits
    only the client public key. Whoever has no keys (a port scanner, a worker of
    another topology) is refused during the handshake, before any frame is read.

    >>> keys = CurveKeys.generate()
    >>> CurveKeys.from_json(keys.to_json()) == keys
    True
    >>> len(keys.server_public)
    40
    """

    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def generate(cls) -> CurveKeys:
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        return cls(server_public, server_secret, client_public, client_secret)

    def to_json(self) -> dict[str, str]:
        return {k: v.decode("ascii") for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CurveKeys:
        """Raises ValueError naming the key that is missing or malformed."""
        values = {}
        for f in dataclasses.fields(cls):
            v = data.get(f.name)
            if not isinstance(v, str) or len(v) != 40:
                raise ValueError(f"CURVE keys: {f.name!r} must be 40 Z85 characters")
            values[f.name] = v.encode("ascii")
        return cls(**values)


class _Admit:
    """A ZAP handler for one context that admits only one CURVE client key."""

    def __init__(self, ctx: zmq.Context[Any], client_public: bytes, worker: int) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        self.client_public = client_public
        self.worker = worker
        self.refused = 0
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("squall.transport.zap"))
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key == self.client_public
        if not ok:
            self.refused += 1
            if self.refused <= 10 or self.refused % 1000 == 0:
                log.warning(
                    "worker %s: refused a connection without this topology's keys (%d so far)",
                    self.worker,
                    self.refused,
                )
        return ok

    def stop(self) -> None:
        self._auth.stop()


class ZmqLink:
    """One worker's ends of the ZeroMQ mesh: implements the engine's ``RemoteLink``.

    Use from one thread only (the engine's loop thread), after :meth:`connect` and
    :meth:`attach`.

    Args:
        worker: this worker's index.
        encoder: encodes outgoing batches.
        decoder: decodes incoming batches for this topology.
        worker_tasks: worker index -> its task ids (to block a peer's tasks while
            the window to it is full or its socket is).
        context: the ZeroMQ context to use (a new one, owned by the link, if None).
        host: the interface to bind (loopback unless told otherwise).
        port: the port to bind (a cluster worker binds its slot's port); 0 picks a free one.
        backpressure_check_secs: how often to re-check local inboxes for relief.
        hwm: per-peer socket high-water mark, in messages.
        window: tuples sent to a peer beyond what it confirmed reading, at most.
        on_send_error: receives batches' encoding errors (a tuple that cannot be
            encoded or is too large); the offending tuples are dropped. Errors
            are raised when None.

    >>> from squall.serialization import BatchEncoder, BatchDecoder
    >>> a = ZmqLink(0, BatchEncoder(), BatchDecoder({}), worker_tasks={0: [1], 1: [2]})
    >>> b = ZmqLink(1, BatchEncoder(), BatchDecoder({}), worker_tasks={0: [1], 1: [2]})
    >>> a.connect({1: b.port}); b.connect({0: a.port})
    >>> class Sink:
    ...     got = []
    ...     def deliver(self, entries): self.got.extend(entries)
    ...     def backpressured_tasks(self): return []
    >>> a.attach(Sink()); b.attach(Sink())
    >>> a.send(1, [(1, 2, [(0, 42, 7, 1)])])
    >>> b.idle_wait(1.0); b.poll()
    1
    >>> Sink.got
    [(1, 2, [[0, 42, 7, 1]])]
    >>> a.close(); b.close()
    """

    def __init__(
        self,
        worker: int,
        encoder: FrameEncoder,
        decoder: FrameDecoder,
        *,
        worker_tasks: Mapping[int, Iterable[int]],
        context: zmq.Context[Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        backpressure_check_secs: float = 0.05,
        hwm: int = 1000,
        window: int = DEFAULT_WINDOW,
        on_send_error: Callable[[ValueError], None] | None = None,
        curve: CurveKeys | None = None,
    ) -> None:
        if window <= 0:
            raise ValueError(f"{WINDOW_KEY} must be > 0, got {window}")
        if not 0 <= worker < _CONTROL:
            raise ValueError(f"worker index {worker} out of range")
        self.worker = worker
        self._header = _HEADER.pack(worker)
        self._encoder = encoder
        self._decoder = decoder
        self._worker_tasks = {w: frozenset(ts) for w, ts in worker_tasks.items()}
        self._own_context = context is None
        self._ctx: zmq.Context[Any] = context if context is not None else zmq.Context()
        self._check_secs = float(backpressure_check_secs)
        self._hwm = int(hwm)
        self._window = int(window)
        self._credit_every = max(1, self._window // 4)
        self._on_send_error = on_send_error
        self._curve = curve
        # Before the socket binds: the ZAP handler must be there for the first handshake.
        self._admit = _Admit(self._ctx, curve.client_public, worker) if curve else None
        self._pull = self._ctx.socket(zmq.PULL)
        if curve is not None:
            self._pull.curve_secretkey = curve.server_secret
            self._pull.curve_publickey = curve.server_public
            self._pull.curve_server = True
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.setsockopt(zmq.RCVHWM, self._hwm)
        self._pull.setsockopt(zmq.MAXMSGSIZE, encoder.max_frame_bytes + _FRAME_SLACK)
        if port:
            self._pull.bind(f"tcp://{host}:{int(port)}")
            self.port: int = int(port)
        else:
            self.port = self._pull.bind_to_random_port(f"tcp://{host}")
        self._host = host
        self._endpoints: dict[int, str] = {}
        self._poller = zmq.Poller()
        self._poller.register(self._pull, zmq.POLLIN)
        # A self-pipe in the same poll: wake() (any thread) ends an idle wait at once.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller.register(self._wake_r, zmq.POLLIN)
        # Held while writing to or closing the pipe: a closed fd number may be reused.
        self._wake_lock = threading.Lock()
        self._push: dict[int, zmq.Socket[Any]] = {}
        # Per peer: messages its socket did not accept yet, in order.
        self._backlog: dict[int, deque[bytes]] = {}
        # Send window, per peer: tuples sent, and tuples the peer confirmed reading.
        self._sent: dict[int, int] = {}
        self._confirmed: dict[int, int] = {}
        self._window_full: set[int] = set()
        # Receive side, per peer: tuples read, and what we last confirmed.
        self._received: dict[int, int] = {}
        self._credited: dict[int, int] = {}
        self._remote_bp: dict[int, frozenset[int]] = {}
        self._blocked: frozenset[int] = frozenset()
        self._engine: LinkedEngine | None = None
        self._announced: frozenset[int] = frozenset()
        self._next_check = 0.0
        self._closed = False
        # Counters, for stats and tests.
        self.frames_sent = 0
        self.frames_received = 0
        self.control_sent = 0
        self.bad_frames = 0

    # -- setup ----------------------------------------------------------------
    def connect(self, ports: Mapping[int, int | str]) -> None:
        """Connect a PUSH socket to every other worker: a port on this host, or ``host:port``."""
        for w, target in ports.items():
            if w == self.worker or w in self._push:
                continue
            endpoint = target if isinstance(target, str) else f"{self._host}:{int(target)}"
            sock = self._ctx.socket(zmq.PUSH)
            if self._curve is not None:
                sock.curve_serverkey = self._curve.server_public
                sock.curve_publickey = self._curve.client_public
                sock.curve_secretkey = self._curve.client_secret
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, self._hwm)
            sock.connect(f"tcp://{endpoint}")
            self._push[w] = sock
            self._endpoints[w] = endpoint
            self._sent[w] = 0
            self._confirmed[w] = 0

    def retarget(
        self, worker_tasks: Mapping[int, Iterable[int]], endpoints: Mapping[int, str]
    ) -> None:
        """Follow a new placement (cluster mode): peers that left or moved are dropped
        (with what was queued for them), new ones connected.

        ``endpoints`` maps every other worker to ``host:port``.
        """
        self._worker_tasks = {w: frozenset(ts) for w, ts in worker_tasks.items()}
        for w in list(self._push):
            if endpoints.get(w) != self._endpoints.get(w):
                self._push.pop(w).close(0)
                self._endpoints.pop(w, None)
                self._forget(w)
        self.connect({w: e for w, e in endpoints.items() if w not in self._push})
        self._update_blocked()

    def announce(self) -> None:
        """Tell every peer this worker (re)started, so both sides restart their windows.

        A worker restarted in place (same index and port) starts counting from
        zero; without this its peers would wait forever for credit the dead
        process owed them.
        """
        for w in self._push:
            self._send_control(w, ["hello", self.worker, 0])

    def _forget(self, w: int) -> None:
        # Window, backlog and backpressure state about peer ``w``, both directions.
        self._sent[w] = 0
        self._confirmed[w] = 0
        self._window_full.discard(w)
        self._backlog.pop(w, None)
        self._remote_bp.pop(w, None)
        self._received.pop(w, None)
        self._credited.pop(w, None)

    def attach(self, engine: LinkedEngine) -> None:
        """Deliver what arrives to ``engine`` and watch its inboxes for backpressure."""
        self._engine = engine

    # -- RemoteLink -----------------------------------------------------------
    def send(self, worker: int, entries: list[tuple[Any, ...]]) -> None:
        """Encode ``entries`` and queue them to ``worker`` without blocking."""
        sock = self._push.get(worker)
        if sock is None:
            raise KeyError(f"worker {self.worker} has no connection to worker {worker}")
        frames = self._encoder.encode(entries, self._on_send_error)
        if not frames:
            return
        sent = self._sent[worker] + _count(entries)
        self._sent[worker] = sent
        changed = False
        if sent - self._confirmed[worker] >= self._window and worker not in self._window_full:
            self._window_full.add(worker)
            changed = True
        # The header is prepended by copying: a memcpy is cheaper than a second
        # ZeroMQ frame (a call and a queue operation on each side).
        header = self._header
        backlog = self._backlog.get(worker)
        if backlog is not None:
            backlog.extend(header + f for f in frames)  # keep order behind what waits
        else:
            for i, frame in enumerate(frames):
                msg = header + frame
                try:
                    sock.send(msg, zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    self._backlog[worker] = deque(header + f for f in frames[i:])
                    changed = True
                    break
                self.frames_sent += 1
        if changed:
            self._update_blocked()

    def blocked(self, worker: int) -> bool:
        """True while sending to ``worker`` must pause (any reason)."""
        return (
            worker in self._backlog
            or worker in self._window_full
            or bool(self._remote_bp.get(worker))
        )

    def any_blocked(self, tasks: frozenset[int]) -> bool:
        """True if any of ``tasks`` (in other workers) must not be sent to now."""
        b = self._blocked
        return bool(b) and not b.isdisjoint(tasks)

    # -- the engine's poll and idle_wait hooks ----------------------------------
    def poll(self) -> int:
        """Deliver what arrived (up to a cap per call); return how many entries."""
        if self._backlog:
            self._flush_backlog()
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_secs
            self._check_backpressure()
        pull = self._pull
        engine = self._engine
        received = self._received
        delivered = 0
        for _ in range(_MAX_MESSAGES_PER_POLL):
            if not int(pull.get(zmq.EVENTS)) & zmq.POLLIN:
                break
            msg = pull.recv(zmq.NOBLOCK, copy=False)
            buf = msg.buffer
            if msg.more or len(buf) < 2:  # peers send single-part messages only
                self.bad_frames += 1
                while msg.more:
                    msg = pull.recv(zmq.NOBLOCK, copy=False)
                log.error("worker %s: dropped a malformed message from a peer", self.worker)
                continue
            (sender,) = _HEADER.unpack_from(buf)
            if sender == _CONTROL:
                self._on_control(bytes(buf[2:]))
                continue
            self.frames_received += 1
            try:
                entries = self._decoder.decode(buf[2:])
            except ValueError as e:  # the serialization layer's errors are ValueErrors
                self.bad_frames += 1
                log.error("worker %s: dropped a frame from a peer: %s", self.worker, e)
                continue
            if engine is None:
                raise RuntimeError("ZmqLink.poll() before attach(engine)")
            engine.deliver(entries)
            delivered += len(entries)
            received[sender] = received.get(sender, 0) + _count(entries)
        if delivered:
            # Announce at once when a delivery fills an inbox (Storm does on a failed
            # put); the periodic check above is what announces relief.
            self._check_backpressure()
            credited = self._credited
            every = self._credit_every
            for sender, total in received.items():
                if total - credited.get(sender, 0) >= every and sender in self._push:
                    credited[sender] = total
                    self._send_control(sender, ["credit", self.worker, total])
        return delivered

    def idle_wait(self, secs: float) -> None:
        """Block until a message arrives, :meth:`wake` is called, or ``secs`` pass."""
        ms = secs * 1000.0
        if ms >= 1.0:
            ready = self._poller.poll(int(ms))
        else:
            ready = self._poller.poll(0)
            if not ready:
                time.sleep(secs)
        if ready:
            self._drain_wake()

    def wake(self) -> None:
        """End an idle wait now (safe from any thread: it writes a byte to a pipe)."""
        with self._wake_lock:
            if self._closed:
                return
            try:
                os.write(self._wake_w, b"w")
            except OSError:
                pass  # the pipe is full: a wake-up is pending already

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except OSError:
            pass  # empty (BlockingIOError), or closed

    # -- control ----------------------------------------------------------------
    def _check_backpressure(self) -> None:
        if self._engine is None or not self._push:
            return
        over = frozenset(self._engine.backpressured_tasks())
        if over == self._announced:
            return
        self._announced = over
        msg = ["bp", self.worker, sorted(over)]
        for w in self._push:
            self._send_control(w, msg)
        # The credit we owe each peer goes out with it, so relief is never held up
        # by a window that is full of tuples we have already read.
        for sender, total in self._received.items():
            if total != self._credited.get(sender, 0) and sender in self._push:
                self._credited[sender] = total
                self._send_control(sender, ["credit", self.worker, total])

    def _send_control(self, worker: int, msg: list[Any]) -> None:
        data = _CONTROL_HEADER + msgpack.packb(msg)
        backlog = self._backlog.get(worker)
        if backlog is not None:
            backlog.append(data)
            return
        try:
            self._push[worker].send(data, zmq.NOBLOCK)
            self.control_sent += 1
        except zmq.Again:
            self._backlog[worker] = deque([data])
            self._update_blocked()

    def _on_control(self, data: bytes) -> None:
        try:
            kind, worker, payload = msgpack.unpackb(data)
            worker = int(worker)
            if kind == "bp":
                over = frozenset(int(t) for t in payload)
                if over:
                    self._remote_bp[worker] = over
                else:
                    self._remote_bp.pop(worker, None)
            elif kind == "credit":
                self._confirmed[worker] = int(payload)
                if self._sent[worker] - int(payload) < self._window:
                    self._window_full.discard(worker)
            elif kind == "hello":
                # The peer restarted: what it owed us died with it; it counts from zero.
                # (Frames still queued to it stay queued: they go to the new process.)
                backlog = self._backlog.get(worker)
                self._forget(worker)
                if backlog is not None:
                    self._backlog[worker] = backlog
            else:
                raise ValueError(f"unknown control message {kind!r}")
        except Exception as e:  # a malformed message must not take the worker down
            self.bad_frames += 1
            log.error("worker %s: dropped a malformed control message: %s", self.worker, e)
            return
        self._update_blocked()

    def _flush_backlog(self) -> None:
        drained = []
        for w, backlog in self._backlog.items():
            sock = self._push[w]
            try:
                while backlog:
                    sock.send(backlog[0], zmq.NOBLOCK, copy=False)
                    backlog.popleft()
                    self.frames_sent += 1
            except zmq.Again:
                continue
            drained.append(w)
        if drained:
            for w in drained:
                del self._backlog[w]
            self._update_blocked()

    def _update_blocked(self) -> None:
        blocked: set[int] = set()
        for tasks in self._remote_bp.values():
            blocked |= tasks
        for w in (*self._backlog, *self._window_full):
            blocked |= self._worker_tasks.get(w, frozenset())
        self._blocked = frozenset(blocked)

    # -- teardown ---------------------------------------------------------------
    def close(self) -> None:
        """Close the sockets (pending frames are dropped) and the context if owned."""
        if self._closed:
            return
        self._closed = True
        for sock in self._push.values():
            sock.close(0)
        self._pull.close(0)
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._admit is not None:
            self._admit.stop()
        if self._own_context:
            self._ctx.term()
