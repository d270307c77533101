"""The UI over a cluster: a :class:`~squall.ui.source.TopologySource` that asks nimbus.

Storm's UI is a client of nimbus; so is this. Everything comes from nimbus's
HTTP API (:class:`~squall.daemon.nimbus_client.NimbusClient`), which reads it
from ZooKeeper: the topology's status and placement, the description of its
components that ``squall submit`` sent (the UI never loads user code), the
executor counters every worker writes into its heartbeat, the errors workers
report, and the sampled tuples of topologies in debug mode. Actions go to the
leader nimbus, as ``squall activate|deactivate|rebalance|kill`` do. Worker logs
come from the logviewer every supervisor runs (:mod:`squall.daemon.logviewer`),
so the UI shows the logs of workers on every machine.

Counters are as fresh as the workers' heartbeats (``worker.heartbeat.frequency.secs``,
1 s by default). Reads are cached for :data:`CACHE_SECS` so a page load that
asks for the same topology several times costs one round trip.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from squall.api.description import DescribedBolt, DescriptionError, from_description
from squall.api.topology import ComponentDef, TopologyDef
from squall.daemon.nimbus_client import (
    NimbusClient,
    NimbusClientError,
    NimbusUnavailableError,
)
from squall.runtime.stats import ErrorReport, ExecutorSnapshot
from squall.ui.logs import LogNotFound
from squall.ui.source import (
    ClusterInfo,
    DebugOptions,
    ExecutorPlace,
    NimbusInfo,
    Snapshot,
    SourceError,
    SupervisorInfo,
    TopologyInfo,
    TopologyNotFound,
    WorkerInfo,
)

log = logging.getLogger("squall.ui.cluster")

#: How long a read from nimbus is reused.
CACHE_SECS = 0.5
#: Sampled tuples kept per topology.
EVENTS_KEPT = 2000
#: How long the UI waits for a supervisor's logviewer.
LOGVIEWER_TIMEOUT_SECS = 5.0
#: The sampling percentage shown for a topology that is not in debug mode (Storm's default).
DEFAULT_SAMPLING_PCT = 10.0

T = TypeVar("T")


class ClusterSource:
    """A :class:`~squall.ui.source.TopologySource` backed by nimbus.

    Args:
        client: talks to the leader nimbus (``NimbusClient.from_conf(conf)``).
        clock: wall-clock time, for snapshot times.
    """

    def __init__(self, client: NimbusClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._events: dict[str, deque[dict[str, Any]]] = {}
        self._seen: dict[str, dict[tuple[int, int], int]] = {}

    # -- plumbing ---------------------------------------------------------------------
    def _ask(self, key: tuple[str, str], fetch: Callable[[], T], fresh: bool = False) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and not fresh and now - hit[0] < CACHE_SECS:
            value: T = hit[1]
            return value
        try:
            value = fetch()
        except NimbusUnavailableError as e:
            raise SourceError(503, f"nimbus: {e}") from None
        except NimbusClientError as e:
            if e.status == 404:
                raise TopologyNotFound(str(e)) from None
            raise SourceError(e.status, f"nimbus: {e}") from None
        except OSError as e:
            raise SourceError(503, f"nimbus cannot be reached: {e}") from None
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def _act(self, topology_id: str, action: Callable[[], Any]) -> None:
        self._ask(("action", topology_id), action, fresh=True)
        with self._lock:
            # What we showed of the topology is stale now.
            for key in [k for k in self._cache if k[1] == topology_id or k[0] == "list"]:
                del self._cache[key]

    # -- TopologySource ---------------------------------------------------------------
    def cluster_info(self) -> ClusterInfo:
        data = self._ask(("cluster", ""), self.client.cluster)
        nimbuses = []
        for n in data.get("nimbuses") or []:
            address = str(n.get("address", ""))
            host, _, port = address.rpartition(":")
            uptime, version = 0.0, ""
            try:
                info = self._ask(("nimbus", address), _bind(self.client.nimbus_info, address))
                uptime = float(info.get("uptime_secs") or 0.0)
                version = str(info.get("version") or "")
            except (SourceError, TopologyNotFound):
                pass  # a standby that does not answer is still listed
            nimbuses.append(
                NimbusInfo(host, int(port or 0), bool(n.get("leader")), uptime, version)
            )
        supervisors = tuple(
            SupervisorInfo(
                id=str(s["id"]),
                host=str(s["host"]),
                uptime_secs=float(s.get("uptime_secs") or 0.0),
                slots_total=len(s.get("ports") or ()),
                slots_used=int(s.get("slots_used") or 0),
                version=str(s.get("version") or ""),
            )
            for s in data.get("supervisors") or []
        )
        return ClusterInfo(tuple(nimbuses), supervisors, local=False)

    def topologies(self) -> list[TopologyInfo]:
        rows = self._ask(("list", ""), self.client.topologies)
        out = []
        for row in rows:
            try:
                out.append(self.topology(str(row["id"])))
            except TopologyNotFound:
                continue  # removed between the two requests
        return out

    def topology(self, topology_id: str) -> TopologyInfo:
        detail = self._ask(("detail", topology_id), lambda: self.client.detail(topology_id))
        return topology_info(detail)

    def snapshot(self, topology_id: str) -> Snapshot:
        tid = self.topology(topology_id).id
        data = self._ask(("stats", tid), lambda: self.client.stats(tid))
        executors = []
        for wire in data.get("executors") or []:
            try:
                executors.append(ExecutorSnapshot.from_wire(wire))
            except (IndexError, TypeError, ValueError) as e:
                log.warning("topology %s: unreadable executor stats skipped: %s", tid, e)
        self._note_events(tid, data.get("events") or [])
        return Snapshot(self.clock(), tuple(executors))

    def errors(self, topology_id: str) -> Sequence[ErrorReport]:
        info = self.topology(topology_id)
        rows = self._ask(("errors", info.id), lambda: self.client.errors(info.id))
        by_port = {w.port: w.index for w in info.workers}
        return [
            ErrorReport(
                topology=info.name,
                component=str(e.get("component", "")),
                task=int(e.get("task", 0)),
                time=float(e.get("time_secs", 0.0)),
                error=str(e.get("error", "")),
                traceback=str(e.get("traceback", "")),
                worker=by_port.get(int(e.get("port", 0)), 0),
            )
            for e in rows
        ]

    def activate(self, topology_id: str) -> None:
        self._act(topology_id, lambda: self.client.activate(topology_id))

    def deactivate(self, topology_id: str) -> None:
        self._act(topology_id, lambda: self.client.deactivate(topology_id))

    def rebalance(self, topology_id: str, wait_secs: float) -> None:
        self._act(topology_id, lambda: self.client.rebalance(topology_id, wait_secs))

    def kill(self, topology_id: str, wait_secs: float) -> None:
        self._act(topology_id, lambda: self.client.kill(topology_id, wait_secs))

    def set_debug(
        self, topology_id: str, component: str | None, enabled: bool, percent: float
    ) -> None:
        self._act(
            topology_id, lambda: self.client.set_debug(topology_id, component, enabled, percent)
        )

    # -- worker logs, from each supervisor's logviewer (LogAccess) -----------------------
    @property
    def where(self) -> str:
        return "each supervisor's logviewer"

    def _viewers(self) -> dict[str, tuple[str, int]]:
        """supervisor id -> (host, logviewer port), for supervisors that run one."""
        data = self._ask(("cluster", ""), self.client.cluster)
        return {
            str(s["id"]): (str(s["host"]), int(s.get("logviewer_port") or 0))
            for s in data.get("supervisors") or []
            if s.get("logviewer_port")
        }

    def _viewer_get(self, address: tuple[str, int], path: str) -> tuple[int, dict[str, str], bytes]:
        host, port = address
        req = urllib.request.Request(f"http://{host}:{port}{path}")
        if self.client.token:
            req.add_header("Authorization", f"Bearer {self.client.token}")
        try:
            with urllib.request.urlopen(req, timeout=LOGVIEWER_TIMEOUT_SECS) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def log_files(self, topology_id: str | None) -> list[dict[str, Any]]:
        viewers = self._viewers()
        nodes = set(viewers)
        tid = None
        if topology_id:
            info = self.topology(topology_id)
            tid = info.id
            nodes = {w.supervisor_id for w in info.workers} & nodes
        query = f"?topology={quote(tid, safe='')}" if tid else ""
        out: list[dict[str, Any]] = []
        for node in sorted(nodes):
            try:
                status, _h, body = self._viewer_get(viewers[node], "/api/v1/logs" + query)
                files = json.loads(body)["files"] if status == 200 else []
            except (OSError, ValueError, KeyError) as e:
                log.info("the logviewer of supervisor %s does not answer: %s", node, e)
                continue
            for f in files:
                out.append({**f, "node": node, "host": viewers[node][0]})
        return out

    def read_log(
        self, file: str, start: int | None, length: int | None, node: str | None
    ) -> tuple[bytes, int, int]:
        viewers = self._viewers()
        if node is None:
            node = self._node_of(file)
        if node not in viewers:
            raise LogNotFound(f"supervisor {node!r} has no logviewer the UI knows of")
        query = {"file": file}
        if start is not None:
            query["start"] = str(start)
        if length is not None:
            query["length"] = str(length)
        try:
            status, headers, body = self._viewer_get(
                viewers[node], "/api/v1/log?" + urllib.parse.urlencode(query)
            )
        except OSError as e:
            raise SourceError(
                502, f"the logviewer of supervisor {node} ({viewers[node][0]}) does not answer: {e}"
            ) from None
        if status == 404:
            raise LogNotFound(f"no log file {file!r} on supervisor {node}")
        if status != 200:
            raise SourceError(502, f"the logviewer of supervisor {node} answered HTTP {status}")
        return body, int(headers.get("X-Log-Start", 0)), int(headers.get("X-Log-Size", len(body)))

    def _node_of(self, file: str) -> str:
        """The supervisor of ``topology-id/port/...`` when only one worker has that port."""
        tid, _, rest = file.partition("/")
        port = rest.partition("/")[0]
        try:
            info = self.topology(tid)
        except TopologyNotFound:
            raise LogNotFound(f"no running topology {tid!r}: name the supervisor (node=)") from None
        nodes = {w.supervisor_id for w in info.workers if str(w.port) == port}
        if len(nodes) != 1:
            raise LogNotFound(
                f"{len(nodes)} workers of {tid} have port {port}: name the supervisor (node=)"
            )
        return nodes.pop()

    # -- sampled tuples ---------------------------------------------------------------
    def _note_events(self, tid: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Keep the sampled tuples not seen before (workers resend their latest ones)."""
        with self._lock:
            kept = self._events.setdefault(tid, deque(maxlen=EVENTS_KEPT))
            seen = self._seen.setdefault(tid, {})
            fresh = []
            for e in events:
                key = (int(e.get("worker", 0)), int(e.get("port", 0)))
                seq = int(e.get("seq", 0))
                if seq > seen.get(key, 0):
                    fresh.append((float(e.get("ts", 0.0)), key, seq, dict(e)))
            for _ts, key, seq, e in sorted(fresh, key=lambda f: (f[0], f[2])):
                seen[key] = max(seen.get(key, 0), seq)
                kept.append(e)

    def events(self, topology_id: str, component: str | None, limit: int) -> list[dict[str, Any]]:
        """The sampled tuples seen so far (newest last), as the UI's event list shows them."""
        try:
            self.snapshot(topology_id)  # picks up what the workers sampled since
            tid = self.topology(topology_id).id
        except TopologyNotFound:
            return []
        with self._lock:
            found = list(self._events.get(tid, ()))
        if component is not None:
            found = [e for e in found if e.get("component") == component]
        return found[-limit:] if limit > 0 else []


def _bind(fn: Callable[[str], T], arg: str) -> Callable[[], T]:
    return lambda: fn(arg)


def topology_info(detail: Mapping[str, Any]) -> TopologyInfo:
    """A :class:`TopologyInfo` from nimbus's ``GET /api/v1/topologies/ID``.

    >>> d = {"id": "wc-1-5", "name": "wc", "status": "ACTIVE", "owner": "ann",
    ...      "uptime_secs": 3, "component_tasks": {"split": [1, 2], "__acker": [3, 3]},
    ...      "debug": {"split": 5.0}, "conf": {}, "definition": None,
    ...      "workers": [{"index": 0, "node": "s1", "host": "h", "port": 6700,
    ...                   "executors": [[1, 1], [2, 2], [3, 3]], "uptime_secs": 2.5}]}
    >>> info = topology_info(d)
    >>> [(e.component, e.tasks, e.port) for e in info.executors]
    [('split', (1,), 6700), ('split', (2,), 6700), ('__acker', (3,), 6700)]
    >>> info.debug_of("split"), info.debug.enabled
    (DebugOptions(enabled=True, percent=5.0), False)
    """
    tasks = {str(c): (int(r[0]), int(r[1])) for c, r in detail["component_tasks"].items()}
    owner_of = {t: c for c, (first, last) in tasks.items() for t in range(first, last + 1)}
    workers = []
    executors = []
    for w in detail.get("workers") or []:
        host, port, index = str(w["host"]), int(w["port"]), int(w["index"])
        workers.append(
            WorkerInfo(
                index=index,
                host=host,
                port=port,
                uptime_secs=float(w.get("uptime_secs") or 0.0),
                supervisor_id=str(w.get("node", "")),
                pid=w.get("pid"),
            )
        )
        for start, end in w.get("executors") or []:
            executors.append(
                ExecutorPlace(
                    owner_of.get(int(start), "?"),
                    tuple(range(int(start), int(end) + 1)),
                    index,
                    host,
                    port,
                )
            )
    executors.sort(key=lambda e: e.tasks[0])
    debug = {str(k): float(v) for k, v in (detail.get("debug") or {}).items()}
    whole = debug.pop("", None)
    return TopologyInfo(
        id=str(detail["id"]),
        name=str(detail["name"]),
        status=str(detail["status"]),
        owner=str(detail.get("owner") or ""),
        uptime_secs=float(detail.get("uptime_secs") or 0.0),
        definition=_definition(str(detail["name"]), detail.get("definition"), tasks),
        conf=dict(detail.get("conf") or {}),
        executors=tuple(executors),
        workers=tuple(sorted(workers, key=lambda w: w.index)),
        debug=DebugOptions(True, whole) if whole else DebugOptions(False, DEFAULT_SAMPLING_PCT),
        component_debug={c: DebugOptions(True, p) for c, p in debug.items()},
    )


def _definition(name: str, described: Any, tasks: Mapping[str, tuple[int, int]]) -> TopologyDef:
    if isinstance(described, Mapping):
        try:
            return from_description(described)
        except DescriptionError as e:
            log.warning(
                "topology %s: its description is unreadable (%s); shown without it", name, e
            )
    # Submitted without a description: components are known, their shape is not.
    comps = {
        c: ComponentDef(c, "bolt", DescribedBolt, last - first + 1, None, (), {}, {})
        for c, (first, last) in tasks.items()
        if not c.startswith("__")
    }
    return TopologyDef(name, comps)
