"""A supervisor's logviewer over real HTTP on 127.0.0.1: what it serves, and what it refuses."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.daemon.logviewer import LogViewer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
def viewer(tmp_path: Path) -> Iterator[LogViewer]:
    folder = tmp_path / "workers-artifacts" / "wc-1-100" / "6700"
    folder.mkdir(parents=True)
    (folder / "worker.log").write_text("".join(f"line {i}\n" for i in range(1000)))
    (tmp_path / "secret.txt").write_text("not a log")
    with LogViewer(tmp_path, "127.0.0.1", 0, token="s3cret") as lv:
        yield lv


def get(
    lv: LogViewer, path: str, token: str | None = "s3cret"
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{lv.port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_it_lists_a_topologys_files_and_serves_the_tail_and_any_range(viewer: LogViewer) -> None:
    status, _, body = get(viewer, "/api/v1/logs?topology=wc-1-100")
    assert status == 200
    [entry] = json.loads(body)["files"]
    assert (entry["file"], entry["port"], entry["size"]) == (
        "wc-1-100/6700/worker.log",
        "6700",
        8890,
    )
    status, headers, body = get(viewer, "/api/v1/log?file=wc-1-100/6700/worker.log&length=20")
    assert status == 200
    assert body == b"line 998\nline 999\n"  # the last 20 bytes, cut to start at a line
    assert headers["X-Log-Size"] == "8890"
    status, headers, body = get(
        viewer, "/api/v1/log?file=wc-1-100/6700/worker.log&start=0&length=14"
    )
    assert (body, headers["X-Log-Start"]) == (b"line 0\nline 1\n", "0")


def test_it_refuses_requests_without_the_token_paths_out_of_its_folder_and_bad_numbers(
    viewer: LogViewer,
) -> None:
    assert get(viewer, "/api/v1/logs", token=None)[0] == 401
    assert get(viewer, "/api/v1/logs", token="wrong")[0] == 401
    for path in ("../secret.txt", "../../etc/passwd", "/etc/passwd", "wc-1-100/6700/nope.log"):
        status, _, body = get(viewer, f"/api/v1/log?file={path}")
        assert status == 404, path
        assert "no log file" in json.loads(body)["error"]
    status, _, body = get(viewer, "/api/v1/log?file=wc-1-100/6700/worker.log&start=-5")
    assert (status, json.loads(body)["error"]) == (400, "start must not be negative (got -5)")
    assert get(viewer, "/api/v1/log")[0] == 400
    assert get(viewer, "/api/v1/elsewhere")[0] == 404
