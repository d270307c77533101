"""Worker log files: routed per topology and worker, rotated, tailed safely."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from squall.ui.logs import LogNotFound, WorkerLogFiles, list_logs, read_log


def ids(name: str, worker: int) -> tuple[str, int] | None:
    if name != "wc":
        return None
    return ("wc-1-100", 6700 + max(worker, 0))


def record(msg: str, **extra: object) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "squall.runtime", "msg": msg, **extra})


def test_records_go_to_their_workers_file_and_the_rest_to_the_daemon_log(tmp_path: Path) -> None:
    files = WorkerLogFiles(tmp_path, ids)
    files.handle(record("from worker 1", topology="wc", worker=1))
    files.handle(logging.makeLogRecord({"name": "squall.wc.split.3", "msg": "component says hi"}))
    files.handle(record("nobody's"))
    files.flush()
    files.close()
    worker1 = (tmp_path / "workers-artifacts/wc-1-100/6701/worker.log").read_text()
    worker0 = (tmp_path / "workers-artifacts/wc-1-100/6700/worker.log").read_text()
    assert "from worker 1" in worker1 and "component says hi" in worker0
    assert "nobody's" in (tmp_path / "squall.log").read_text()
    assert [f["file"] for f in list_logs(tmp_path, "wc-1-100")] == [
        "wc-1-100/6700/worker.log",
        "wc-1-100/6701/worker.log",
    ]


def test_files_rotate_and_keep_a_bounded_number_of_backups(tmp_path: Path) -> None:
    files = WorkerLogFiles(tmp_path, ids, max_bytes=1000, backups=2)
    for i in range(100):
        files.handle(record(f"line {i:03d} " + "x" * 40, topology="wc", worker=0))
    files.close()
    folder = tmp_path / "workers-artifacts/wc-1-100/6700"
    assert sorted(p.name for p in folder.iterdir()) == [
        "worker.log",
        "worker.log.1",
        "worker.log.2",
    ]
    assert all(p.stat().st_size <= 1000 for p in folder.iterdir())
    assert "line 099" in (folder / "worker.log").read_text()


def test_the_tail_starts_at_a_line_and_ranges_read_exact_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "workers-artifacts/wc-1-100/6700"
    folder.mkdir(parents=True)
    (folder / "worker.log").write_text("".join(f"line {i}\n" for i in range(1000)))
    data, start, size = read_log(tmp_path, "wc-1-100/6700/worker.log", None, 100)
    assert data.startswith(b"line ") and data.endswith(b"line 999\n")
    assert start + len(data) == size
    data, start, _ = read_log(tmp_path, "wc-1-100/6700/worker.log", 0, 14)
    assert (data, start) == (b"line 0\nline 1\n", 0)


def test_paths_outside_the_log_directory_are_refused(tmp_path: Path) -> None:
    (tmp_path.parent / "secret.txt").write_text("no")
    with pytest.raises(LogNotFound):
        read_log(tmp_path, "../secret.txt", None, None)
    with pytest.raises(LogNotFound):
        read_log(tmp_path, "/etc/passwd", None, None)
