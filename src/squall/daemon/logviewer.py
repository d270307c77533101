"""Worker log files on a machine, and the logviewer that serves them (Storm's, per supervisor).

Layout (Storm's)::

    <storm.log.dir>/workers-artifacts/<topology-id>/<port>/worker.log   (+ .1 ... rotated)
    <storm.log.dir>/workers-artifacts/<topology-id>/<port>/events.log   sampled tuples

Workers write these files themselves; every supervisor runs a :class:`LogViewer`
(``logviewer.port``, Storm's 8000 by default, on ``storm.local.hostname``) so the
UI can show the logs of workers on any machine. It answers two requests, with
the cluster's bearer token (``nimbus.auth.token``) when one is set::

    GET /api/v1/logs?topology=ID          {"logDir": ..., "files": [{"file", "size", ...}]}
    GET /api/v1/log?file=ID/PORT/worker.log[&start=N][&length=N]
                                          the bytes; X-Log-Start and X-Log-Size headers

Nothing outside the log directory can be read (``..``, absolute paths and links
out are refused).
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from squall.daemon.httpd import DaemonHTTPServer, RefusalLog, TokenGate

log = logging.getLogger("squall.logviewer")

#: What the logviewer shows when asked for no particular range.
DEFAULT_TAIL_BYTES = 64 * 1024
#: The most one request returns.
MAX_READ_BYTES = 64 * 1024 * 1024


def worker_dir(root: Path, topology_id: str, port: int) -> Path:
    """``<root>/workers-artifacts/<topology-id>/<port>`` (Storm's layout)."""
    return Path(root) / "workers-artifacts" / topology_id / str(port)


class LogNotFound(FileNotFoundError):
    """The requested log file does not exist, or is outside the log directory."""


def read_log(
    root: Path, file: str, start: int | None, length: int | None
) -> tuple[bytes, int, int]:
    """Bytes ``[start, start+length)`` of ``root/workers-artifacts/<file>`` (or of a daemon log).

    Returns (data, start, file size). Without ``start`` it is the tail of
    ``length`` (default 64 KiB) bytes, cut to begin at a line. ``file`` is
    relative, as in Storm's links (``topology-id/6700/worker.log``); anything
    that would leave the log directory is refused.
    """
    path = resolve_log(root, file)
    size = path.stat().st_size
    length = DEFAULT_TAIL_BYTES if length is None else min(max(0, length), MAX_READ_BYTES)
    tail = start is None
    at = max(0, size - length) if start is None else min(max(0, start), size)
    with path.open("rb") as f:
        f.seek(at)
        data = f.read(length)
    if tail and at > 0:
        nl = data.find(b"\n")
        if 0 <= nl < len(data) - 1:
            at += nl + 1
            data = data[nl + 1 :]
    return data, at, size


def resolve_log(root: Path, file: str) -> Path:
    base = Path(root).resolve()
    artifacts = (base / "workers-artifacts").resolve()
    for parent in (artifacts, base):
        candidate = (parent / file).resolve()
        if candidate.is_relative_to(parent) and candidate.is_file():
            return candidate
    raise LogNotFound(f"no log file {file!r} under {root}")


def list_logs(root: Path, topology_id: str | None = None) -> list[dict[str, Any]]:
    """Log files under the directory (optionally one topology's), as logviewer entries."""
    base = Path(root) / "workers-artifacts"
    out: list[dict[str, Any]] = []
    if not base.is_dir():
        return out
    dirs = [base / topology_id] if topology_id else sorted(p for p in base.iterdir() if p.is_dir())
    for tdir in dirs:
        if not tdir.is_dir():
            continue
        for port_dir in sorted(p for p in tdir.iterdir() if p.is_dir()):
            for f in sorted(port_dir.iterdir()):
                if f.is_file():
                    out.append(
                        {
                            "file": f"{tdir.name}/{port_dir.name}/{f.name}",
                            "topologyId": tdir.name,
                            "port": port_dir.name,
                            "size": f.stat().st_size,
                            "modified": f.stat().st_mtime,
                        }
                    )
    return out


def stale_topology_logs(root: Path, keep: set[str], now: float, age_secs: float) -> list[Path]:
    """Topology log folders to delete: no worker here runs the topology, and nothing in
    the folder was written for ``age_secs`` (Storm's logviewer cleanup).

    >>> import os, tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for tid in ("old-1-1", "live-2-2", "recent-3-3"):
    ...     (root / "workers-artifacts" / tid / "6700").mkdir(parents=True)
    ...     f = root / "workers-artifacts" / tid / "6700" / "worker.log"
    ...     _ = f.write_text("x")
    ...     os.utime(f, (100.0, 100.0 if tid != "recent-3-3" else 900.0))
    >>> [p.name for p in stale_topology_logs(root, {"live-2-2"}, now=1000.0, age_secs=500)]
    ['old-1-1']
    """
    base = Path(root) / "workers-artifacts"
    if not base.is_dir():
        return []
    out = []
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or folder.name in keep:
            continue
        try:
            newest = max(
                (p.stat().st_mtime for p in folder.rglob("*") if p.is_file()),
                default=folder.stat().st_mtime,
            )
        except OSError:
            continue  # being written or removed right now: next pass
        if now - newest >= age_secs:
            out.append(folder)
    return out


class LogViewer:
    """Serves the log files under ``root`` over HTTP (a supervisor runs one).

    Args:
        root: the log directory (``storm.log.dir``).
        host: the address to bind (the supervisor's ``storm.local.hostname``).
        port: the port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        token: when set, every request must carry ``Authorization: Bearer <token>``.

    >>> import tempfile, urllib.request
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "workers-artifacts" / "t-1-1" / "6700").mkdir(parents=True)
    >>> _ = (root / "workers-artifacts" / "t-1-1" / "6700" / "worker.log").write_text("hi\\n")
    >>> with LogViewer(root, "127.0.0.1", 0) as lv:
    ...     url = f"http://127.0.0.1:{lv.port}/api/v1/log?file=t-1-1/6700/worker.log"
    ...     urllib.request.urlopen(url).read()
    b'hi\\n'
    """

    def __init__(self, root: Path, host: str, port: int, token: str | None = None) -> None:
        self.root = Path(root)
        self.gate = TokenGate(
            token, RefusalLog(log, "logviewer: refused an unauthenticated request")
        )
        self._httpd = _Server((host, port), _Handler)
        self._httpd.viewer = self
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    def start(self) -> LogViewer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            name="squall-logviewer",
            kwargs={"poll_interval": 0.5},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LogViewer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(DaemonHTTPServer):
    viewer: LogViewer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 15

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json", {})

    def do_GET(self) -> None:
        viewer = self.server.viewer
        if not viewer.gate.admits(self.headers.get("Authorization"), self.client_address[0]):
            self._error(HTTPStatus.UNAUTHORIZED, "missing or wrong token")
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)

        def arg(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        try:
            if url.path == "/api/v1/logs":
                files = list_logs(viewer.root, arg("topology") or None)
                body = {"logDir": str(viewer.root), "files": files}
                self._send(200, json.dumps(body).encode(), "application/json", {})
            elif url.path == "/api/v1/log":
                file = arg("file")
                if not file:
                    raise ValueError("which log? pass ?file=<topology-id>/<port>/worker.log")
                start = _number(arg("start"), "start")
                length = _number(arg("length"), "length")
                data, at, size = read_log(viewer.root, file, start, length)
                headers = {"X-Log-Start": str(at), "X-Log-Size": str(size)}
                self._send(200, data, "text/plain; charset=utf-8", headers)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {url.path}")
        except LogNotFound as e:
            self._error(HTTPStatus.NOT_FOUND, str(e))
        except ValueError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except (BrokenPipeError, ConnectionResetError):
            pass


def _number(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number (got {text!r})") from None
    if n < 0:
        raise ValueError(f"{name} must not be negative (got {n})")
    return n
