"""Trident spouts over real sources: Redis streams and files, transactional and opaque.

Each stream key (or file) is one partition; emitter tasks share the partitions.
The meta of a batch is where it starts and ends in its partition, so a
restarted topology continues after what it committed:

* :class:`RedisStreamTransactionalSpout`: meta ``[after_id, last_id]``; a batch is
  ``XRANGE key (after_id last_id``, the same entries on every replay (as long as
  the stream is not trimmed below them).
* :class:`RedisStreamOpaqueSpout`: a batch is up to ``batch_size`` entries after the
  previous batch's last id, read again on a replay (it may hold more entries).
* :class:`FileTransactionalSpout` / :class:`FileOpaqueSpout`: the same over text
  files, by byte offset, one row per complete line (a line is complete once its
  newline is written, so files may grow while the topology runs).

Rows are the entry's fields named in ``fields`` (Redis) or ``parse(line)`` (files,
by default ``(line,)``); ``parse`` must be a module-level function so worker
processes can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from squall.state.backend import RedisBackend
from squall.trident.spouts import OpaqueSpout, TransactionalSpout


def _check_keys(keys: Any, what: str) -> tuple[str, ...]:
    if isinstance(keys, str):
        keys = [keys]
    out = tuple(str(k) for k in keys)
    if not out:
        raise ValueError(f"{what}: give at least one partition")
    return out


class _RedisStreams:
    """What the two Redis stream spouts share: the client and row building."""

    def __init__(
        self, redis: RedisBackend, keys: str | Sequence[str], fields: Sequence[str], batch_size: int
    ) -> None:
        if not isinstance(redis, RedisBackend):
            raise TypeError(f"{type(self).__name__}(redis=...) takes a RedisBackend, got {redis!r}")
        if batch_size <= 0:
            raise ValueError(f"{type(self).__name__}: batch_size must be > 0, got {batch_size}")
        self.redis = redis
        self.keys = _check_keys(keys, type(self).__name__)
        self.fields: Sequence[str] = tuple(fields)
        self.batch_size = batch_size
        self._r: Any = None

    def _client(self) -> Any:
        if self._r is None:
            self._r = self.redis.client()
        return self._r

    def open(self, conf: Mapping[str, Any], context: Any) -> None:
        self._client()

    def close(self) -> None:
        if self._r is not None:
            self._r.close()
            self._r = None

    def partitions(self) -> Sequence[str]:
        return self.keys

    def _rows(self, entries: Iterable[tuple[str, Mapping[str, str]]]) -> list[tuple[Any, ...]]:
        fields = self.fields
        return [tuple(f.get(name) for name in fields) for _, f in entries]

    def _after(self, key: str, after: str) -> list[tuple[str, Mapping[str, str]]]:
        return self._client().xrange(key, f"({after}", "+", count=self.batch_size)  # type: ignore[no-any-return]


class RedisStreamTransactionalSpout(_RedisStreams, TransactionalSpout):
    """Batches of up to ``batch_size`` entries per stream key, fixed once emitted.

    Args:
        redis: the server.
        keys: the stream key(s), one partition each.
        fields: the entry fields to emit, in order (the spout's output fields).
        batch_size: at most this many entries per key per batch.
    """

    def new_batch(self, partition: str, last_meta: Any) -> Any:
        after = "0-0" if last_meta is None else str(last_meta[1])
        entries = self._after(partition, after)
        return [after, entries[-1][0] if entries else after]

    def read_batch(self, partition: str, meta: Any) -> Iterable[Sequence[Any]]:
        after, last = str(meta[0]), str(meta[1])
        if after == last:
            return []
        return self._rows(self._client().xrange(partition, f"({after}", last))


class RedisStreamOpaqueSpout(_RedisStreams, OpaqueSpout):
    """Batches of up to ``batch_size`` entries per key after the last committed one."""

    def emit_batch(self, partition: str, last_meta: Any) -> tuple[Any, Iterable[Sequence[Any]]]:
        after = "0-0" if last_meta is None else str(last_meta)
        entries = self._after(partition, after)
        return (entries[-1][0] if entries else after), self._rows(entries)


def line_row(line: str) -> tuple[str]:
    """The default ``parse``: the line itself, as the only field."""
    return (line,)


class _Files:
    def __init__(
        self,
        paths: str | Sequence[str],
        fields: Sequence[str] = ("line",),
        batch_size: int = 1000,
        parse: Callable[[str], Sequence[Any]] = line_row,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"{type(self).__name__}: batch_size must be > 0, got {batch_size}")
        self.paths = _check_keys(paths, type(self).__name__)
        self.fields: Sequence[str] = tuple(fields)
        self.batch_size = batch_size
        self.parse = parse

    def partitions(self) -> Sequence[str]:
        return self.paths

    def _read(self, path: str, start: int) -> tuple[int, list[Sequence[Any]]]:
        """Up to ``batch_size`` complete lines from byte ``start``: (end offset, rows)."""
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed below; the file may not exist yet)
        except FileNotFoundError:
            return start, []
        with f:
            f.seek(start)
            rows: list[Sequence[Any]] = []
            end = start
            while len(rows) < self.batch_size:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # nothing more, or a line still being written
                end += len(line)
                rows.append(self.parse(line[:-1].decode("utf-8", "replace")))
            return end, rows

    def _range(self, path: str, start: int, end: int) -> list[Sequence[Any]]:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        return [self.parse(line.decode("utf-8", "replace")) for line in data.split(b"\n")[:-1]]


class FileTransactionalSpout(_Files, TransactionalSpout):
    """Text files, one row per line, batches fixed once emitted (by byte range).

    Args:
        paths: the file(s), one partition each.
        fields: the output fields.
        batch_size: at most this many lines per file per batch.
        parse: line -> row (a module-level function).
    """

    def new_batch(self, partition: str, last_meta: Any) -> Any:
        start = 0 if last_meta is None else int(last_meta[1])
        end, _rows = self._read(partition, start)
        return [start, end]

    def read_batch(self, partition: str, meta: Any) -> Iterable[Sequence[Any]]:
        start, end = int(meta[0]), int(meta[1])
        return [] if start == end else self._range(partition, start, end)


class FileOpaqueSpout(_Files, OpaqueSpout):
    """Text files, one row per line; a replay reads again from the previous batch's end."""

    def emit_batch(self, partition: str, last_meta: Any) -> tuple[Any, Iterable[Sequence[Any]]]:
        start = 0 if last_meta is None else int(last_meta)
        return self._read(partition, start)


__all__ = [
    "FileOpaqueSpout",
    "FileTransactionalSpout",
    "RedisStreamOpaqueSpout",
    "RedisStreamTransactionalSpout",
    "line_row",
]
