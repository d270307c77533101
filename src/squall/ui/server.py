"""The UI daemon: Storm's REST API, the web pages, ``/metrics`` and the logviewer, on one port.

Standard library only (``http.server``, one thread per request). Requests read
snapshots sampled on the UI's own thread; nothing here waits on a topology's run
loop except the actions (activate, deactivate, debug), which are rare.

>>> from squall import LocalCluster
>>> from squall.ui.source import LocalSource
>>> import json, urllib.request
>>> with LocalCluster() as cluster, UIServer(LocalSource(cluster), port=0) as ui:
...     with urllib.request.urlopen(ui.url + "/api/v1/cluster/summary") as r:
...         json.load(r)["topologies"]
0
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from squall.daemon.httpd import DaemonHTTPServer
from squall.ui import prometheus
from squall.ui.logs import (
    EventLog,
    LocalLogs,
    LogAccess,
    LogNotFound,
    WorkerLogFiles,
)
from squall.ui.source import FIRST_SLOT_PORT, SourceError, TopologyNotFound, TopologySource
from squall.ui.storm_api import (
    DEFAULT_SAMPLE_SECS,
    ApiError,
    JsonDict,
    StormApi,
    exception_json,
)

log = logging.getLogger("squall.ui")

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
EVENT_LOGGER = "squall.eventlog"

_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_PAGES = ("index.html", "topology.html", "component.html", "logviewer.html")
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]{0,63}$")

Handler = Callable[["_Request", re.Match[str]], Any]


class _Request:
    """What a route handler sees of a request."""

    def __init__(self, query: dict[str, list[str]], body: bytes) -> None:
        self.query = query
        self.body = body

    def arg(self, name: str) -> str | None:
        return _first(self.query, name)

    @property
    def window(self) -> str:
        return self.arg("window") or ":all-time"

    @property
    def sys(self) -> bool:
        return (self.arg("sys") or "").lower() in ("1", "true", "yes", "on")


#: ``(topology id, component or None, limit) -> sampled tuples``, newest last.
EventSource = Callable[[str, str | None, int], list[JsonDict]]


class UIServer:
    """The UI daemon over a :class:`TopologySource`.

    Args:
        source: local mode's or a cluster's.
        host: address to bind (127.0.0.1 unless told otherwise).
        port: port to bind; 0 picks a free one (see :attr:`url`).
        log_dir: where worker logs are written (local mode) and read (logviewer);
            None turns log files off.
        capture_logs: install the log file and event log handlers on this
            process's logging (local mode: workers' records come through here).
        sample_secs: how often counters are sampled for the stats windows.
        conf: daemon configuration, served at ``/api/v1/cluster/configuration``.
        events: where sampled tuples come from: ``(topology id, component, limit)`` ->
            events, newest last. Default: this process's event log (local mode); a
            cluster source reads them from the workers' heartbeats.
        logs: where the logviewer reads worker logs. Default: ``log_dir`` on this
            machine (local mode); a cluster source asks each supervisor's logviewer,
            and log links then name the worker's supervisor.
    """

    def __init__(
        self,
        source: TopologySource,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        log_dir: Path | str | None = None,
        capture_logs: bool = True,
        sample_secs: float = DEFAULT_SAMPLE_SECS,
        conf: dict[str, Any] | None = None,
        events: EventSource | None = None,
        logs: LogAccess | None = None,
    ) -> None:
        self.source = source
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.logs: LogAccess | None = logs
        if logs is None and self.log_dir is not None:
            self.logs = LocalLogs(self.log_dir, self._flush_logs)
        self.events = EventLog()
        self.api = StormApi(
            source,
            sample_secs=sample_secs,
            conf=conf,
            events=events
            or (lambda tid, comp, limit: self.events.events(self._name(tid), comp, limit)),
        )
        self._handlers: list[tuple[str | None, logging.Handler]] = []
        self._capture = capture_logs
        self._restore_level: int | None = None
        self.log_files: WorkerLogFiles | None = None
        self._httpd = _Server((host, port), _RequestHandler)
        self._httpd.ui = self
        addr = self._httpd.server_address
        self.host, self.port = str(addr[0]), int(addr[1])
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        self.url = f"http://{shown}:{self.port}"
        self.api.base_url = self.url
        self.api.link_nodes = logs is not None
        self._thread: threading.Thread | None = None
        self.routes = self._routes()

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> UIServer:
        """Serve on a daemon thread and start sampling; returns self."""
        if self._capture:
            self._install_log_handlers()
        self.api.start_sampling()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="squall-ui-http", kwargs={"poll_interval": 0.2}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until :meth:`stop` (``squall ui``)."""
        if self._capture:
            self._install_log_handlers()
        self.api.start_sampling()
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.api.stop_sampling()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        for logger_name, h in self._handlers:
            logging.getLogger(logger_name).removeHandler(h)
            h.close()
        if self.events.files is not None:
            self.events.files.close()
        self._handlers.clear()
        if self._restore_level is not None:
            logging.getLogger("squall").setLevel(self._restore_level)
            self._restore_level = None

    def __enter__(self) -> UIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs ---------------------------------------------------------------
    def _resolve(self, name: str, worker: int) -> tuple[str, int] | None:
        try:
            info = self.source.topology(name)
        except TopologyNotFound:
            # Still starting (its workers log before the cluster lists it)?
            reserve = getattr(self.source, "reserve_id", None)
            if reserve is None or worker < 0:
                return None
            return reserve(name), FIRST_SLOT_PORT + worker
        for w in info.workers:
            if w.index == worker:
                return info.id, w.port
        return (info.id, info.workers[0].port) if info.workers else None

    def _name(self, topology_id: str) -> str:
        try:
            return self.source.topology(topology_id).name
        except TopologyNotFound:
            return topology_id

    def _install_log_handlers(self) -> None:
        events_logger = logging.getLogger(EVENT_LOGGER)
        events_logger.setLevel(logging.INFO)
        # Samples are for the UI and events.log, not the console.
        events_logger.propagate = False
        if self.log_dir is not None:
            # Worker logs keep INFO (component logs, lifecycle), as Storm's do, even
            # when the console shows less. Set before topologies start: worker
            # processes take their levels from this process when they are spawned.
            squall_logger = logging.getLogger("squall")
            if squall_logger.getEffectiveLevel() > logging.INFO:
                self._restore_level = squall_logger.level
                squall_logger.setLevel(logging.INFO)
            files = WorkerLogFiles(self.log_dir, self._resolve)
            self.log_files = files
            logging.getLogger().addHandler(files)
            self._handlers.append((None, files))
            self.events.files = WorkerLogFiles(
                self.log_dir, self._resolve, filename="events.log", daemon_log=None
            )
        events_logger.addHandler(self.events)
        self._handlers.append((EVENT_LOGGER, self.events))

    # -- routes -------------------------------------------------------------
    def _routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        api = self.api
        T = r"/api/v1/topology/(?P<id>[^/]+)"
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/api/v1/cluster/configuration", lambda r, m: api.cluster_configuration()),
            ("GET", r"/api/v1/cluster/summary", lambda r, m: api.cluster_summary()),
            ("GET", r"/api/v1/nimbus/summary", lambda r, m: api.nimbus_summary()),
            ("GET", r"/api/v1/supervisor/summary", lambda r, m: api.supervisor_summary()),
            ("GET", r"/api/v1/topology/summary", lambda r, m: api.topology_summary()),
            (
                "GET",
                r"/api/v1/topology-workers/(?P<id>[^/]+)",
                lambda r, m: api.topology_workers(m["id"]),
            ),
            ("GET", T, lambda r, m: api.topology(m["id"], r.window, r.sys)),
            ("GET", T + "/metrics", lambda r, m: api.topology_metrics(m["id"], r.window, r.sys)),
            (
                "GET",
                T + "/visualization",
                lambda r, m: api.visualization(m["id"], r.window, r.sys),
            ),
            (
                "GET",
                T + r"/component/(?P<c>[^/]+)",
                lambda r, m: api.component(m["id"], m["c"], r.window, r.sys),
            ),
            (
                "GET",
                T + "/events",
                lambda r, m: api.sampled_events(
                    m["id"], r.arg("component"), _int(r.arg("limit"), 100, "limit")
                ),
            ),
            ("GET", r"/api/v1/logs", lambda r, m: self._logs(r.arg("topology"))),
            ("POST", T + "/activate", lambda r, m: api.activate(m["id"])),
            ("POST", T + "/deactivate", lambda r, m: api.deactivate(m["id"])),
            ("POST", T + r"/rebalance/(?P<w>[^/]+)", lambda r, m: api.rebalance(m["id"], m["w"])),
            ("POST", T + r"/kill/(?P<w>[^/]+)", lambda r, m: api.kill(m["id"], m["w"])),
            (
                "POST",
                T + r"/debug/(?P<a>[^/]+)/(?P<p>[^/]+)",
                lambda r, m: api.debug(m["id"], m["a"], m["p"]),
            ),
            (
                "POST",
                T + r"/component/(?P<c>[^/]+)/debug/(?P<a>[^/]+)/(?P<p>[^/]+)",
                lambda r, m: api.debug(m["id"], m["a"], m["p"], m["c"]),
            ),
        ]
        return [(method, re.compile(pattern + "$"), fn) for method, pattern, fn in table]

    def _logs(self, topology: str | None) -> JsonDict:
        if self.logs is None:
            return {"logDir": None, "files": []}
        tid = None
        if topology:
            try:
                tid = self.source.topology(topology).id
            except TopologyNotFound:
                tid = topology
        return {"logDir": self.logs.where, "files": self.logs.log_files(tid)}

    def _flush_logs(self) -> None:
        for files in (self.log_files, self.events.files):
            if files is not None:
                files.flush(1.0)

    def metrics_text(self) -> str:
        """The Prometheus exposition of every running topology (samples them first)."""
        inputs = []
        for info in self.source.topologies():
            try:
                hist = self.api.history(info)
            except (TopologyNotFound, KeyError):
                continue
            inputs.append(
                prometheus.MetricsInput(
                    name=info.name,
                    id=info.id,
                    status=info.status,
                    uptime_secs=info.uptime_secs,
                    executors=list(hist.snapshots.values()),
                    capacities=hist.capacities(),
                    worker_restarts={
                        w.index: max(w.restarts, hist.restarts.get(w.index, 0))
                        for w in info.workers
                    },
                )
            )
        return prometheus.render(inputs)


def _int(text: str | None, default: int, name: str) -> int:
    n = _optional_int(text, name)
    return default if n is None else n


def _optional_int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number (got {text!r})") from None


class _Server(DaemonHTTPServer):
    ui: UIServer


#: The UI's requests carry no body (actions are in the path); more than this is refused.
MAX_BODY_BYTES = 64 * 1024


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "SquallUI"
    # A client that stops sending in the middle of a request is dropped (slow-loris).
    timeout = 15

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    # -- plumbing -------------------------------------------------------------
    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any, callback: str | None) -> None:
        text = json.dumps(doc, allow_nan=False, default=repr)
        headers = {"Access-Control-Allow-Origin": "*"}
        if callback:
            self._send(
                status,
                f"{callback}({text});".encode(),
                "application/javascript;charset=utf-8",
                headers,
            )
        else:
            self._send(status, text.encode(), "application/json;charset=utf-8", headers)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        ui = self.server.ui
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query)
        callback = _first(query, "callback")
        if callback is not None and not _CALLBACK.match(callback):
            callback = None
        try:
            body = self._read_body()
            if method == "POST" and not self._same_origin():
                raise ApiError(403, "cross-site POST refused: send it from the UI's own pages")
            if path == "/api/v1/log":
                return self._log_file(query)
            if path == "/metrics":
                if method != "GET":
                    raise ApiError(405, "GET /metrics")
                return self._send(200, ui.metrics_text().encode(), prometheus.CONTENT_TYPE)
            if not path.startswith("/api/"):
                if method != "GET":
                    raise ApiError(405, f"{method} {path} is not allowed")
                return self._static(path)
            request = _Request(query, body)
            allowed = []
            for m, pattern, handler in ui.routes:
                match = pattern.match(_decode_path(path))
                if match is None:
                    continue
                if m != method:
                    allowed.append(m)
                    continue
                return self._json(200, handler(request, match), callback)
            if allowed:
                raise ApiError(405, f"{method} {path}: use {' or '.join(allowed)}")
            raise ApiError(404, f"no such API endpoint: {path}")
        except ApiError as e:
            self._json(e.status, exception_json(e.status, _reason(e.status), e), callback)
        except TopologyNotFound as e:
            self._json(404, exception_json(404, _reason(404), ApiError(404, str(e))), callback)
        except SourceError as e:
            err = ApiError(e.status, str(e))
            self._json(e.status, exception_json(e.status, _reason(e.status), err), callback)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:
            log.exception("UI request %s %s failed", method, self.path)
            self._json(500, exception_json(500, _reason(500), e), callback)

    def _read_body(self) -> bytes:
        """A (small) body; a large or malformed one is refused before anything is read."""
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        try:
            length = int(text)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, f"bad Content-Length: {text[:40]!r}") from None
        if length < 0:
            self.close_connection = True
            raise ApiError(400, f"bad Content-Length: {length}")
        if length > MAX_BODY_BYTES:
            # Not read: the connection is closed after the answer.
            self.close_connection = True
            raise ApiError(413, f"the request body is {length} bytes; the UI takes none")
        return self.rfile.read(length) if length else b""

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if not origin:
            return True  # curl, scripts: no browser, no cross-site request
        host = self.headers.get("Host", "")
        return urlsplit(origin).netloc == host

    def _static(self, path: str) -> None:
        name = path.lstrip("/") or "index.html"
        if name.startswith("static/"):
            name = name[len("static/") :]
        elif name not in _PAGES:
            raise ApiError(404, f"no such page: {path}")
        if "/" in name or name.startswith("."):
            raise ApiError(404, f"no such page: {path}")
        ext = Path(name).suffix
        if ext not in _STATIC_TYPES:
            raise ApiError(404, f"no such page: {path}")
        res = resources.files("squall.ui") / "static" / name
        try:
            data = res.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ApiError(404, f"no such page: {path}") from None
        self._send(200, data, _STATIC_TYPES[ext])

    def _log_file(self, query: dict[str, list[str]]) -> None:
        ui = self.server.ui
        file = _first(query, "file") or ""
        if ui.logs is None:
            raise ApiError(404, "this UI keeps no log files (started without a log directory)")
        if not file:
            raise ApiError(400, "which log? pass ?file=<topology-id>/<port>/worker.log")
        start = _optional_int(_first(query, "start"), "start")
        length = _optional_int(_first(query, "length"), "length")
        try:
            data, start_at, size = ui.logs.read_log(file, start, length, _first(query, "node"))
        except LogNotFound as e:
            raise ApiError(404, str(e)) from None
        self._send(
            200,
            data,
            "text/plain; charset=utf-8",
            {"X-Log-Start": str(start_at), "X-Log-Size": str(size)},
        )


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _decode_path(path: str) -> str:
    # Ids are URL-encoded in links; each segment is decoded, separators kept.
    return "/".join(unquote(seg).replace("/", "%2F") for seg in path.split("/"))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
