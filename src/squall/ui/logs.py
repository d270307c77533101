"""Worker log files (Storm's layout, rotated), their tail for the logviewer, and sampled tuples.

Layout, as Storm's logviewer expects it::

    <root>/workers-artifacts/<topology-id>/<port>/worker.log   (+ worker.log.1 ... rotated)
    <root>/workers-artifacts/<topology-id>/<port>/events.log   sampled tuples (debug)
    <root>/squall.log                                          everything else

In local mode every record passes through this process (worker processes
forward theirs, tagged with ``topology`` and ``worker``), so one logging
handler, :class:`WorkerLogFiles`, writes them all. Records of the in-process
engine are recognised by the engine thread's name (``squall-<topology>``) and
by component logger names (``squall.<topology>.<component>.<task>``).

:class:`EventLog` receives debug samples (logger ``squall.eventlog``, one JSON
object per record), keeps the most recent per topology in memory for the UI and
appends them to ``events.log``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from squall.daemon.logviewer import (
    DEFAULT_TAIL_BYTES,
    LogNotFound,
    list_logs,
    read_log,
    resolve_log,
    worker_dir,
)

__all__ = [
    "DEFAULT_TAIL_BYTES",
    "EventLog",
    "LocalLogs",
    "LogAccess",
    "LogNotFound",
    "WorkerLogFiles",
    "default_log_dir",
    "list_logs",
    "origin",
    "read_log",
    "resolve_log",
    "worker_dir",
]

#: Rotation: Storm's worker.xml keeps 9 files of 100 MB; laptops get smaller ones.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
#: Sampled tuples kept in memory per topology.
EVENTS_KEPT = 2000

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

#: (topology name, worker index) -> (topology id, port), or None if unknown (worker -1:
#: only if the topology runs now).
Resolver = Callable[[str, int], tuple[str, int] | None]


def default_log_dir() -> Path:
    """``$SQUALL_LOG_DIR``, else ``~/.squall/logs``."""
    env = os.environ.get("SQUALL_LOG_DIR")
    return Path(env) if env else Path.home() / ".squall" / "logs"


def origin(record: logging.LogRecord, known: Callable[[str], bool]) -> tuple[str, int] | None:
    """(topology name, worker index) a record came from, if it can be told.

    Certain: records forwarded by worker processes (tagged ``topology`` and
    ``worker``) and component loggers (``squall.<topology>.<component>.<task>``).
    The in-process engine's thread (``squall-<topology>``) counts when the
    topology is ``known``.

    >>> r = logging.makeLogRecord({"name": "squall.wc.split.3", "threadName": "MainThread"})
    >>> origin(r, lambda name: False)
    ('wc', 0)
    >>> origin(logging.makeLogRecord({"topology": "wc", "worker": 2}), lambda n: False)
    ('wc', 2)
    >>> origin(logging.makeLogRecord({"name": "squall.ui.server"}), lambda n: False) is None
    True
    """
    topo = getattr(record, "topology", None)
    if isinstance(topo, str):
        return topo, int(getattr(record, "worker", 0) or 0)
    name = record.name or ""
    if name.startswith("squall."):
        parts = name.split(".")
        if len(parts) >= 4 and parts[-1].isdigit():
            return ".".join(parts[1:-2]), 0
    thread = record.threadName or ""
    if thread.startswith("squall-") and known(thread[7:]):
        return thread[7:], 0
    return None


class WorkerLogFiles(logging.Handler):
    """Writes each record to its worker's rotated log file, the rest to ``squall.log``.

    Logging stays cheap for the thread that logs (an engine's loop, often): it
    formats the record and queues the line; a writer thread appends lines in
    batches and rotates files (``worker.log`` -> ``worker.log.1`` ...).

    Args:
        root: the log directory.
        resolve: maps (topology name, worker index) to (topology id, port).
        filename: the per-worker file name.
        max_bytes: rotate a file when it would grow past this.
        backups: rotated files kept.
        daemon_log: file (under ``root``) for records of no topology; None drops them.
    """

    def __init__(
        self,
        root: Path,
        resolve: Resolver,
        *,
        filename: str = "worker.log",
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        daemon_log: str | None = "squall.log",
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.resolve = resolve
        self.filename = filename
        self.max_bytes = max_bytes
        self.backups = backups
        self.daemon_log = daemon_log
        self._queue: queue.SimpleQueue[tuple[Path, bytes] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._files: dict[Path, _RotatingFile] = {}
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def path_for(self, topology_id: str, port: int) -> Path:
        return worker_dir(self.root, topology_id, port) / self.filename

    def _known(self, name: str) -> bool:
        # Worker -1: only ask whether it runs (no id is reserved for a guess).
        return self.resolve(name, -1) is not None

    def target(self, record: logging.LogRecord) -> Path | None:
        where = origin(record, self._known)
        if where is not None:
            ids = self.resolve(*where)
            if ids is not None:
                return self.path_for(*ids)
        return self.root / self.daemon_log if self.daemon_log else None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            path = self.target(record)
            if path is None:
                return
            self._queue.put((path, (self.format(record) + "\n").encode("utf-8", "replace")))
            if self._writer is None:
                self._start_writer()
        except Exception:
            self.handleError(record)

    def _start_writer(self) -> None:
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="squall-log-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            touched: set[_RotatingFile] = set()
            while True:
                if item is None:
                    for f in touched:
                        f.flush()
                    return
                if isinstance(item, threading.Event):
                    for f in touched:
                        f.flush()
                    touched.clear()
                    item.set()
                else:
                    try:
                        f = self._file(item[0])
                        f.write(item[1])
                        touched.add(f)
                    except OSError:
                        pass  # a full or read-only disk must not stop the topology
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            for f in touched:
                f.flush()

    def _file(self, path: Path) -> _RotatingFile:
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = _RotatingFile(path, self.max_bytes, self.backups)
        return f

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every line queued so far is in its file."""
        if self._writer is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(5)
            self._writer = None
        for f in self._files.values():
            f.close()
        self._files.clear()
        super().close()


class _RotatingFile:
    """An append-only file that rolls over to ``name.1``..``name.N`` past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("ab")
        self.size = self._f.tell()

    def write(self, data: bytes) -> None:
        if self.max_bytes > 0 and self.size > 0 and self.size + len(data) > self.max_bytes:
            self._rotate()
        self._f.write(data)
        self.size += len(data)

    def _rotate(self) -> None:
        self._f.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._f = self.path.open("ab")
        self.size = 0

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class EventLog(logging.Handler):
    """Sampled tuples: the latest per topology in memory, all of them in ``events.log``."""

    def __init__(self, files: WorkerLogFiles | None = None, kept: int = EVENTS_KEPT) -> None:
        super().__init__()
        self.files = files
        self.kept = kept
        self._events: dict[str, deque[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = json.loads(record.getMessage())
            if not isinstance(event, dict):
                return
            topo = str(event.get("topology", ""))
            event["worker"] = int(getattr(record, "worker", 0) or 0)
            with self._lock:
                q = self._events.get(topo)
                if q is None:
                    q = self._events[topo] = deque(maxlen=self.kept)
                q.append(event)
            if self.files is not None:
                record.__dict__.update(topology=topo, worker=event["worker"])
                self.files.emit(record)
        except Exception:
            self.handleError(record)

    def events(
        self, topology: str, component: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The most recent sampled tuples of a topology (by name), newest last."""
        with self._lock:
            q = list(self._events.get(topology, ()))
        if component is not None:
            q = [e for e in q if e.get("component") == component]
        return q[-limit:] if limit > 0 else []

    def forget(self, topology: str) -> None:
        with self._lock:
            self._events.pop(topology, None)


class LogAccess(Protocol):
    """Where the UI's logviewer pages read worker logs from."""

    @property
    def where(self) -> str:
        """What to show as the log location (a folder, or "each supervisor's logviewer")."""
        ...

    def log_files(self, topology_id: str | None) -> list[dict[str, Any]]:
        """Log files (of one topology, or all), as logviewer entries."""
        ...

    def read_log(
        self, file: str, start: int | None, length: int | None, node: str | None
    ) -> tuple[bytes, int, int]:
        """(data, start, size) of ``file`` (``topology-id/port/name``) on supervisor ``node``.

        Raises:
            LogNotFound: no such file there.
        """
        ...


class LocalLogs:
    """The log files of this machine, under ``root`` (local mode; ``node`` is ignored)."""

    def __init__(self, root: Path, before_read: Callable[[], None] | None = None) -> None:
        self.root = Path(root)
        self.before_read = before_read

    @property
    def where(self) -> str:
        return str(self.root)

    def log_files(self, topology_id: str | None) -> list[dict[str, Any]]:
        return list_logs(self.root, topology_id)

    def read_log(
        self, file: str, start: int | None, length: int | None, node: str | None
    ) -> tuple[bytes, int, int]:
        if self.before_read is not None:
            self.before_read()  # what was logged before the request is in the file
        return read_log(self.root, file, start, length)
