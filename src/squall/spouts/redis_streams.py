"""``RedisStreamSpout``: a Redis stream as an at-least-once source (consumer groups).

>>> from squall.state import RedisBackend
>>> spec = RedisStreamSpout.spec(
...     outputs=["sentence"], redis=RedisBackend(port=6379), stream="sentences", group="wc"
... )

Each task is one consumer (``<component>-<task index>``) of the consumer group
``group`` (created at the start of the stream if missing). Entries are read with
``XREADGROUP`` in chunks and emitted one tuple per entry, with the entry id as
message id and the entry's fields named in ``outputs`` as values (a missing field
is ``None``). An acked tuple is ``XACK``ed; a failed one is emitted again. After
a restart a consumer first re-reads the entries it had been given but never
acked (its pending list), so nothing is lost when a worker dies; entries left
idle for ``claim_idle_ms`` by another consumer (one that went away) are claimed.
``next_tuple`` never blocks: when the stream has nothing new, it returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from squall.api.component import Spout
from squall.api.context import TopologyContext
from squall.state.backend import RedisBackend


class RedisStreamSpout(Spout):
    """Emits the entries of a Redis stream; acks with ``XACK`` (see the module docstring).

    Args:
        redis: the server.
        stream: the stream key.
        group: the consumer group.
        read_count: entries fetched per ``XREADGROUP``.
        claim_idle_ms: claim other consumers' entries pending longer than this (0: never).
    """

    def __init__(
        self,
        redis: RedisBackend,
        stream: str,
        group: str,
        read_count: int = 256,
        claim_idle_ms: int = 60_000,
    ) -> None:
        super().__init__()
        if not isinstance(redis, RedisBackend):
            raise TypeError(f"RedisStreamSpout(redis=...) takes a RedisBackend, got {redis!r}")
        self.redis = redis
        self.stream = stream
        self.group = group
        self.read_count = read_count
        self.claim_idle_ms = claim_idle_ms
        self.fields: tuple[str, ...] = ()
        self.consumer = ""
        self._r: Any = None
        self._buffer: deque[tuple[str, dict[str, str]]] = deque()
        self._inflight: dict[str, dict[str, str]] = {}
        self._retry: deque[str] = deque()
        self._acks: list[str] = []
        self.ack_batch = 64
        self._backlog = True  # re-read our own pending entries first
        self.acked = 0
        self.replayed = 0

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        import redis as redis_py

        self.fields = tuple(context.output_fields.get("default", ()))
        if not self.fields:
            raise ValueError(
                f"component {context.component_id!r}: RedisStreamSpout needs outputs=[...] "
                "naming the stream fields to emit"
            )
        self.consumer = f"{context.component_id}-{context.task_index}"
        self._r = self.redis.client()
        try:
            self._r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis_py.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def _fill(self) -> None:
        r = self._r
        if self._backlog:
            # Entries given to this consumer before a restart and never acked.
            got = r.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.read_count)
            entries = got[0][1] if got else []
            entries = [(i, f) for i, f in entries if f and i not in self._inflight]
            if not entries:
                self._backlog = False
                if self.claim_idle_ms:
                    claimed = r.xautoclaim(
                        self.stream,
                        self.group,
                        self.consumer,
                        self.claim_idle_ms,
                        "0-0",
                        count=self.read_count,
                    )
                    self._buffer.extend((i, f) for i, f in claimed[1] if f)
            else:
                self.replayed += len(entries)
                self._buffer.extend(entries)
            if self._buffer:
                return
        got = r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.read_count)
        if got:
            self._buffer.extend(got[0][1])

    def next_tuple(self) -> None:
        if self._retry:
            entry_id = self._retry.popleft()
            fields = self._inflight.get(entry_id)
            if fields is not None:
                self.replayed += 1
                self.emit([fields.get(f) for f in self.fields], tup_id=entry_id)
            return
        if not self._buffer:
            self._flush_acks()
            self._fill()
            if not self._buffer:
                return
        entry_id, fields = self._buffer.popleft()
        self._inflight[entry_id] = fields
        self.emit([fields.get(f) for f in self.fields], tup_id=entry_id)

    def ack(self, tup_id: Any) -> None:
        if self._inflight.pop(tup_id, None) is not None:
            # XACKed in bulk (one round trip per ack_batch), and whenever the spout idles.
            self._acks.append(tup_id)
            self.acked += 1
            if len(self._acks) >= self.ack_batch:
                self._flush_acks()

    def _flush_acks(self) -> None:
        if self._acks:
            self._r.xack(self.stream, self.group, *self._acks)
            self._acks = []

    def fail(self, tup_id: Any) -> None:
        if tup_id in self._inflight:
            self._retry.append(tup_id)

    def deactivate(self) -> None:
        if self._r is not None:
            self._flush_acks()

    def close(self) -> None:
        if self._r is not None:
            self._flush_acks()
            self._r.close()


__all__ = ["RedisStreamSpout"]
