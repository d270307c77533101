"""Storm UI's REST API (``/api/v1/...``): the JSON documents, field for field.

:class:`StormApi` turns what a :class:`TopologySource` reports into the
documents Storm's UI serves (``storm-webapp``'s ``UIHelpers``), with the same
paths, query parameters and field names, so scripts and dashboards written for
Storm work unchanged. Counters are windowed by :class:`StatsHistory`, fed by
sampling the source every ``sample_secs`` (and on demand when a request finds
the last sample older than that).

Formatting follows Storm: latencies and capacity are strings with three
decimals (``StatsUtil.floatStr``), uptimes are given pretty (``"1h 2m 3s"``)
and in seconds, counts are integers.

Two places where Storm's documentation and code disagree, and what we do:

* ``POST /topology/:id/rebalance/:wait-time``: the 2.x code ignores the
  documented ``rebalanceOptions`` body and only sets the wait; so do we (local
  mode cannot move executors anyway).
* Spout ``completeLatency`` on the topology page: 2.x sends a raw number, the
  docs and every other latency a 3-decimal string; we send the string.

Per-stream breakdowns Storm measures by sampling and we derive: a bolt's
acked/failed and latencies per input stream are its executor totals split by
the tuples executed from each stream (exact for bolts with one input), and a
spout's acked/failed per output stream are split by tuples emitted on each.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import squall
from squall.api.ids import is_system_id
from squall.runtime.stats import ErrorReport, ExecutorSnapshot
from squall.ui.history import ALL_TIME, WINDOWS, Counters, StatsHistory, window_secs
from squall.ui.source import TopologyInfo, TopologyNotFound, TopologySource, WorkerInfo

JsonDict = dict[str, Any]

#: Seconds between two samples of every topology's counters.
DEFAULT_SAMPLE_SECS = 1.0
#: Rates shown live (graph edges, ``squall monitor``) are averaged over this long.
RATE_SECS = 5.0
#: Storm truncates ``lastError`` to this many characters.
ERROR_SUBSET_CHARS = 200


class ApiError(Exception):
    """A request the API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- Storm's formatting --------------------------------------------------------------------


def float_str(value: float | None) -> str:
    """Storm's ``StatsUtil.floatStr``: three decimals, ``"0"`` for no value.

    >>> float_str(1.23456), float_str(0), float_str(None)
    ('1.235', '0.000', '0')
    """
    return "0" if value is None else f"{value:.3f}"


def pretty_uptime(secs: float) -> str:
    """Storm's ``prettyUptimeSec``: ``"1d 2h 3m 4s"``, largest unit first, "" for 0.

    >>> pretty_uptime(1759), pretty_uptime(600), pretty_uptime(93784)
    ('29m 19s', '10m 0s', '1d 2h 3m 4s')
    """
    n = int(secs)
    parts: list[str] = []
    for unit, div in (("s", 60), ("m", 60), ("h", 24), ("d", None)):
        if n > 0:
            if div is None:
                parts.insert(0, f"{n}{unit}")
            else:
                parts.insert(0, f"{n % div}{unit}")
                n //= div
    return " ".join(parts)


def window_hint(window: str) -> str:
    """``"10m 0s"`` for ``"600"``, ``"All time"`` for ``":all-time"`` (Storm's windowHint)."""
    return "All time" if window == ALL_TIME else pretty_uptime(int(window))


def executor_id(tasks: Sequence[int]) -> str:
    """Storm's pretty executor id: ``"[3-4]"``."""
    return f"[{tasks[0]}-{tasks[-1]}]"


# -- aggregation ------------------------------------------------------------------------------


@dataclass
class Agg:
    """Counters summed over some executors, with Storm's derived values."""

    emitted: int = 0
    transferred: int = 0
    acked: int = 0
    failed: int = 0
    executed: int = 0
    execute_ms: float = 0.0
    complete_ms: float = 0.0
    complete_n: int = 0

    def add(self, c: Counters, include_sys: bool) -> None:
        self.emitted += sum(n for (_, s), n in c.emitted.items() if include_sys or not _sys(s))
        self.transferred += sum(
            n for (_, s), n in c.transferred.items() if include_sys or not _sys(s)
        )
        self.acked += c.acked
        self.failed += c.failed
        self.executed += c.total_executed
        self.execute_ms += c.execute_ms
        self.complete_ms += c.complete_ms
        self.complete_n += c.complete_n

    @property
    def execute_latency(self) -> float:
        return _mean(self.execute_ms, self.executed)

    @property
    def complete_latency(self) -> float:
        return _mean(self.complete_ms, self.complete_n)


def _sys(stream: str) -> bool:
    return is_system_id(stream)


def _mean(total: float, n: float) -> float:
    return total / n if n else 0.0


def _share(part: int, whole: int, value: float) -> float:
    return value * part / whole if whole else 0.0


# -- the API ------------------------------------------------------------------------------------


class StormApi:
    """Storm UI's REST API over a :class:`TopologySource`.

    Args:
        source: where topologies, counters and errors come from.
        sample_secs: how often counters are sampled into the stats windows.
        base_url: prefix of the links in documents (``workerLogLink``...).
        conf: the daemon configuration (``/cluster/configuration``).
        events: optional ``(topology, component, limit) -> [event dict]`` giving
            sampled tuples (debug sampling).
    """

    def __init__(
        self,
        source: TopologySource,
        *,
        sample_secs: float = DEFAULT_SAMPLE_SECS,
        base_url: str = "",
        conf: Mapping[str, Any] | None = None,
        events: Callable[[str, str | None, int], list[JsonDict]] | None = None,
    ) -> None:
        self.source = source
        self.sample_secs = sample_secs
        self.base_url = base_url
        self.conf = dict(conf or {})
        self.events = events
        #: Name the worker's supervisor in log links (a cluster: logs are per machine).
        self.link_nodes = False
        self._histories: dict[str, StatsHistory] = {}
        self._sampled_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- sampling -----------------------------------------------------------
    def start_sampling(self) -> None:
        """Sample every topology every ``sample_secs`` on a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._sample_loop, name="squall-ui-sampler")
        self._thread.daemon = True
        self._thread.start()

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.sample_secs):
            try:
                self.sample()
            except Exception:
                # A topology that went away mid-sample: the next round sees it gone.
                pass

    def sample(self, topology_id: str | None = None) -> None:
        """Read counters now (every topology, or one) into the stats windows."""
        infos = (
            [self.source.topology(topology_id)]
            if topology_id is not None
            else self.source.topologies()
        )
        live = {i.id for i in infos}
        for info in infos:
            try:
                snap = self.source.snapshot(info.id)
            except TopologyNotFound:
                continue
            with self._lock:
                hist = self._histories.setdefault(info.id, StatsHistory())
                hist.record(snap.time, snap.executors)
                self._sampled_at[info.id] = time.monotonic()
        if topology_id is None:
            with self._lock:
                for gone in set(self._histories) - live:
                    del self._histories[gone]
                    self._sampled_at.pop(gone, None)

    def history(self, info: TopologyInfo) -> StatsHistory:
        """The topology's stats windows, sampled now if the last sample is stale."""
        with self._lock:
            at = self._sampled_at.get(info.id)
        if at is None or time.monotonic() - at >= self.sample_secs:
            self.sample(info.id)
        with self._lock:
            return self._histories[info.id]

    # -- helpers ------------------------------------------------------------
    def _topology(self, topology_id: str) -> TopologyInfo:
        try:
            return self.source.topology(topology_id)
        except TopologyNotFound as e:
            raise ApiError(404, str(e)) from None

    def _windowed(self, topology_id: str, window: str) -> tuple[TopologyInfo, StatsHistory]:
        """The topology and its stats windows, for a request about ``window``."""
        _check_window(window)
        info = self._topology(topology_id)
        return info, self.history(info)

    def log_link(self, info: TopologyInfo, worker: int, file: str = "worker.log") -> str:
        """The logviewer page of worker ``worker``'s ``file``.

        On a cluster the link also names the worker's supervisor (``node``): workers
        on two machines may have the same port.
        """
        place = _place(info, worker)
        port = place.port if place is not None else 0
        link = f"{self.base_url}/logviewer.html?file={quote(f'{info.id}/{port}/{file}')}"
        if self.link_nodes and place is not None:
            link += f"&node={quote(place.supervisor_id, safe='')}"
        return link

    def _port_of_worker(self, info: TopologyInfo, worker: int) -> tuple[str, int]:
        place = _place(info, worker)
        return (place.host, place.port) if place is not None else ("", 0)

    @staticmethod
    def _kind(info: TopologyInfo, component: str) -> str:
        c = info.definition.components.get(component)
        if c is not None:
            return c.kind
        return "bolt"  # __acker and other system components are bolts to Storm

    def _components(self, info: TopologyInfo, include_sys: bool) -> list[str]:
        names = {e.component for e in info.executors}
        return sorted(n for n in names if include_sys or not is_system_id(n))

    @staticmethod
    def _by_component(
        hist: StatsHistory, window: str
    ) -> dict[str, list[tuple[ExecutorSnapshot, Counters]]]:
        counters = hist.window(window_secs(window))
        out: dict[str, list[tuple[ExecutorSnapshot, Counters]]] = defaultdict(list)
        for key, snap in sorted(hist.snapshots.items()):
            out[snap.component].append((snap, counters.get(key, Counters())))
        return out

    def _errors(self, info: TopologyInfo, component: str | None = None) -> list[ErrorReport]:
        errs = list(self.source.errors(info.id))
        if component is not None:
            errs = [e for e in errs if e.component == component]
        return errs

    def _error_fields(self, info: TopologyInfo, err: ErrorReport | None) -> JsonDict:
        if err is None:
            return {
                "lastError": "",
                "errorHost": "",
                "errorPort": "",
                "errorTime": None,
                "errorLapsedSecs": None,
                "errorWorkerLogLink": "",
            }
        host, port = self._port_of_worker(info, err.worker)
        return {
            "lastError": err.error[:ERROR_SUBSET_CHARS],
            "errorHost": host,
            "errorPort": port,
            "errorTime": int(err.time),
            "errorLapsedSecs": int(time.time() - err.time),
            "errorWorkerLogLink": self.log_link(info, err.worker),
        }

    # -- GET /cluster/... ---------------------------------------------------
    def cluster_configuration(self) -> JsonDict:
        return redacted(dict(self.conf))

    def cluster_summary(self, user: str | None = None) -> JsonDict:
        cluster = self.source.cluster_info()
        tops = self.source.topologies()
        slots_total = sum(s.slots_total for s in cluster.supervisors)
        slots_used = sum(s.slots_used for s in cluster.supervisors)
        version = squall.__version__
        return {
            "user": user,
            "stormVersion": version,
            "stormVersionInfo": {
                "version": version,
                "revision": "",
                "branch": "",
                "date": "",
                "user": "",
                "url": "",
                "srcChecksum": "",
            },
            "supervisors": len(cluster.supervisors),
            "topologies": len(tops),
            "slotsTotal": slots_total,
            "slotsUsed": slots_used,
            "slotsFree": slots_total - slots_used,
            "executorsTotal": sum(t.num_executors for t in tops),
            "tasksTotal": sum(t.num_tasks for t in tops),
            "totalMem": 0.0,
            "totalCpu": 0.0,
            "availMem": 0.0,
            "availCpu": 0.0,
            "fragmentedMem": 0.0,
            "fragmentedCpu": 0.0,
            "memAssignedPercentUtil": "0.0",
            "cpuAssignedPercentUtil": "0.0",
            "schedulerDisplayResource": False,
            "bugtracker-url": None,
            "central-log-url": None,
            "availGenerics": {},
            "totalGenerics": {},
            # Squall: which kind of source this is ("local" or "cluster").
            "mode": "local" if cluster.local else "cluster",
        }

    def nimbus_summary(self) -> JsonDict:
        return {
            "nimbuses": [
                {
                    "host": n.host,
                    "port": n.port,
                    "status": "Leader" if n.leader else "Not a Leader",
                    "version": n.version,
                    "nimbusUpTime": pretty_uptime(n.uptime_secs),
                    "nimbusUpTimeSeconds": int(n.uptime_secs),
                    "nimbusLogLink": f"{self.base_url}/logviewer.html",
                }
                for n in self.source.cluster_info().nimbuses
            ]
        }

    def supervisor_summary(self) -> JsonDict:
        return {
            "supervisors": [
                {
                    "id": s.id,
                    "host": s.host,
                    "uptime": pretty_uptime(s.uptime_secs),
                    "uptimeSeconds": int(s.uptime_secs),
                    "slotsTotal": s.slots_total,
                    "slotsUsed": s.slots_used,
                    "slotsFree": max(0, s.slots_total - s.slots_used),
                    "totalMem": 0.0,
                    "totalCpu": 0.0,
                    "usedMem": 0.0,
                    "usedCpu": 0.0,
                    "availMem": 0.0,
                    "availCpu": 0.0,
                    "logLink": f"{self.base_url}/logviewer.html",
                    "version": s.version,
                    "blacklisted": False,
                }
                for s in self.source.cluster_info().supervisors
            ],
            "schedulerDisplayResource": False,
            "logviewerPort": self._port(),
            "logviewerScheme": "http",
        }

    def _port(self) -> int:
        tail = self.base_url.rsplit(":", 1)
        return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0

    # -- GET /topology/... --------------------------------------------------
    def _summary_map(self, info: TopologyInfo) -> JsonDict:
        return {
            "id": info.id,
            "encodedId": quote(info.id, safe=""),
            "owner": info.owner,
            "name": info.name,
            "status": info.status,
            "uptime": pretty_uptime(info.uptime_secs),
            "uptimeSeconds": int(info.uptime_secs),
            "tasksTotal": info.num_tasks,
            "workersTotal": info.num_workers,
            "executorsTotal": info.num_executors,
            "replicationCount": 1,
            "schedulerInfo": "",
            "requestedMemOnHeap": 0.0,
            "requestedMemOffHeap": 0.0,
            "requestedTotalMem": 0.0,
            "requestedCpu": 0.0,
            "assignedMemOnHeap": 0.0,
            "assignedMemOffHeap": 0.0,
            "assignedTotalMem": 0.0,
            "assignedCpu": 0.0,
            "topologyVersion": None,
            "stormVersion": squall.__version__,
        }

    def topology_summary(self) -> JsonDict:
        return {
            "topologies": [self._summary_map(i) for i in self.source.topologies()],
            "schedulerDisplayResource": False,
        }

    def topology_workers(self, topology_id: str) -> JsonDict:
        info = self._topology(topology_id)
        return {
            "hostPortList": [{"host": w.host, "port": w.port} for w in info.workers],
            "logviewerPort": self._port(),
            "logviewerScheme": "http",
        }

    def _workers(self, info: TopologyInfo) -> list[JsonDict]:
        out = []
        for w in info.workers:
            mine = [e for e in info.executors if e.worker == w.index]
            tasks: dict[str, int] = defaultdict(int)
            for e in mine:
                tasks[e.component] += len(e.tasks)
            out.append(
                {
                    "supervisorId": w.supervisor_id,
                    "host": w.host,
                    "port": w.port,
                    "topologyId": info.id,
                    "topologyName": info.name,
                    "executorsTotal": len(mine),
                    "assignedMemOnHeap": 0.0,
                    "assignedMemOffHeap": 0.0,
                    "assignedCpu": 0.0,
                    "componentNumTasks": dict(tasks),
                    "uptime": pretty_uptime(w.uptime_secs),
                    "uptimeSeconds": int(w.uptime_secs),
                    "workerLogLink": self.log_link(info, w.index),
                    # Squall: the worker's process id and restarts seen.
                    "pid": w.pid,
                    "restarts": w.restarts,
                }
            )
        return out

    def topology(
        self, topology_id: str, window: str = ALL_TIME, include_sys: bool = False
    ) -> JsonDict:
        info, hist = self._windowed(topology_id, window)
        by_comp_window = {w: self._by_component(hist, w) for w in WINDOWS}
        capacities = hist.capacities()
        errors = self._errors(info)
        last_error = {err.component: err for err in errors}  # the newest per component

        topology_stats = []
        for w in WINDOWS:
            agg = Agg()
            spout_agg = Agg()
            for comp, rows in by_comp_window[w].items():
                if is_system_id(comp) and not include_sys:
                    continue
                for snap, c in rows:
                    agg.add(c, include_sys)
                    if snap.kind == "spout":
                        spout_agg.add(c, include_sys)
            topology_stats.append(
                {
                    "window": w,
                    "windowPretty": window_hint(w),
                    "emitted": agg.emitted,
                    "transferred": agg.transferred,
                    "completeLatency": float_str(spout_agg.complete_latency),
                    "acked": spout_agg.acked,
                    "failed": spout_agg.failed,
                }
            )

        rows_by_comp = by_comp_window[window]
        spouts: list[JsonDict] = []
        bolts: list[JsonDict] = []
        for comp in self._components(info, include_sys):
            rows = rows_by_comp.get(comp, [])
            agg = Agg()
            for _snap, c in rows:
                agg.add(c, include_sys)
            execs = [e for e in info.executors if e.component == comp]
            common = {
                "executors": len(execs),
                "tasks": sum(len(e.tasks) for e in execs),
                "emitted": agg.emitted,
                "transferred": agg.transferred,
                "acked": agg.acked,
                "failed": agg.failed,
                "requestedMemOnHeap": 0.0,
                "requestedMemOffHeap": 0.0,
                "requestedCpu": 0.0,
                **self._error_fields(info, last_error.get(comp)),
            }
            if self._kind(info, comp) == "spout":
                spouts.append(
                    {
                        "spoutId": comp,
                        "encodedSpoutId": quote(comp, safe=""),
                        **common,
                        "completeLatency": float_str(agg.complete_latency),
                    }
                )
            else:
                cap = max((capacities.get(s.id, 0.0) for s, _ in rows), default=0.0)
                bolts.append(
                    {
                        "boltId": comp,
                        "encodedBoltId": quote(comp, safe=""),
                        **common,
                        "executed": agg.executed,
                        "executeLatency": float_str(agg.execute_latency),
                        "processLatency": float_str(agg.execute_latency),
                        "capacity": float_str(cap),
                    }
                )
        conf = redacted(_jsonable(info.conf))
        return {
            **self._summary_map(info),
            "user": None,
            "msgTimeout": info.conf.get("topology.message.timeout.secs"),
            "window": window,
            "windowHint": window_hint(window),
            "debug": info.debug.enabled,
            "samplingPct": info.debug.percent,
            "configuration": conf,
            "visualizationTable": [],
            "schedulerDisplayResource": False,
            "topologyStats": topology_stats,
            "workers": self._workers(info),
            "spouts": spouts,
            "bolts": bolts,
            # Squall: the most recent errors of the whole topology, newest last.
            "topologyErrors": [self._error_map(info, e) for e in errors[-10:]],
        }

    def _error_map(self, info: TopologyInfo, err: ErrorReport) -> JsonDict:
        host, port = self._port_of_worker(info, err.worker)
        return {
            "errorTime": int(err.time),
            "time": int(err.time * 1000),
            "errorHost": host,
            "errorPort": port,
            "error": err.error,
            "errorLapsedSecs": int(time.time() - err.time),
            "errorWorkerLogLink": self.log_link(info, err.worker),
            # Squall: where, and the full traceback.
            "component": err.component,
            "task": err.task,
            "traceback": err.traceback,
        }

    def component(
        self, topology_id: str, component: str, window: str = ALL_TIME, include_sys: bool = False
    ) -> JsonDict:
        _check_window(window)
        info = self._topology(topology_id)
        execs = [e for e in info.executors if e.component == component]
        if not execs:
            raise ApiError(404, f"topology {info.name!r} has no component {component!r}")
        hist = self.history(info)
        kind = self._kind(info, component)
        capacities = hist.capacities()
        per_window = {w: self._by_component(hist, w).get(component, []) for w in WINDOWS}
        rows = per_window[window]
        dbg = info.debug_of(component)
        doc: JsonDict = {
            "user": None,
            "id": component,
            "encodedId": quote(component, safe=""),
            "name": info.name,
            "executors": len(execs),
            "tasks": sum(len(e.tasks) for e in execs),
            "requestedMemOnHeap": 0.0,
            "requestedMemOffHeap": 0.0,
            "requestedCpu": 0.0,
            "schedulerDisplayResource": False,
            "topologyId": info.id,
            "topologyStatus": info.status,
            "encodedTopologyId": quote(info.id, safe=""),
            "window": window,
            "windowHint": window_hint(window),
            "componentType": "spout" if kind == "spout" else "bolt",
            "debug": dbg.enabled,
            "samplingPct": dbg.percent,
            "eventLogLink": self.log_link(info, execs[0].worker, "events.log"),
            "profilingAndDebuggingCapable": True,
            "profileActionEnabled": False,
            "profilerActive": [],
            "componentErrors": [
                self._error_map(info, e) for e in reversed(self._errors(info, component)[-20:])
            ],
        }
        if kind == "spout":
            doc["spoutSummary"] = [self._spout_window(w, per_window[w]) for w in WINDOWS]
            doc["outputStats"] = self._spout_outputs(rows, include_sys)
            doc["executorStats"] = [
                {**self._executor_common(info, s, c, include_sys), **_spout_exec(c)}
                for s, c in rows
            ]
        else:
            doc["boltStats"] = [
                self._bolt_window(w, per_window[w], capacities, include_sys) for w in WINDOWS
            ]
            doc["inputStats"] = self._bolt_inputs(rows, include_sys)
            doc["outputStats"] = self._outputs(rows, include_sys)
            doc["executorStats"] = [
                {
                    **self._executor_common(info, s, c, include_sys),
                    "capacity": float_str(capacities.get(s.id, 0.0)),
                    **_bolt_exec(c),
                }
                for s, c in rows
            ]
        return doc

    def _executor_common(
        self,
        info: TopologyInfo,
        s: ExecutorSnapshot,
        c: Counters,
        include_sys: bool,
    ) -> JsonDict:
        host, port = self._port_of_worker(info, s.worker)
        eid = executor_id(s.tasks)
        agg = Agg()
        agg.add(c, include_sys)
        return {
            "id": eid,
            "encodedId": quote(eid, safe=""),
            "host": host,
            "port": port,
            "uptime": pretty_uptime(s.uptime_secs),
            "uptimeSeconds": int(s.uptime_secs),
            "emitted": agg.emitted,
            "transferred": agg.transferred,
            "acked": c.acked,
            "failed": c.failed,
            "workerLogLink": self.log_link(info, s.worker),
            # Squall: the inbox right now, and the spout's trees in flight.
            "queued": s.queued,
            "queueCapacity": s.queue_capacity,
            "backpressure": s.backpressure,
            "pending": s.pending,
            "metrics": _jsonable(dict(s.metrics)),
        }

    @staticmethod
    def _spout_window(window: str, rows: Iterable[tuple[ExecutorSnapshot, Counters]]) -> JsonDict:
        agg = Agg()
        for _s, c in rows:
            agg.add(c, False)
        return {
            "window": window,
            "windowPretty": window_hint(window),
            "emitted": agg.emitted,
            "transferred": agg.transferred,
            "acked": agg.acked,
            "failed": agg.failed,
            "completeLatency": float_str(agg.complete_latency),
        }

    @staticmethod
    def _bolt_window(
        window: str,
        rows: Iterable[tuple[ExecutorSnapshot, Counters]],
        capacities: Mapping[tuple[int, int], float],
        include_sys: bool,
    ) -> JsonDict:
        agg = Agg()
        cap = 0.0
        for s, c in rows:
            agg.add(c, include_sys)
            cap = max(cap, capacities.get(s.id, 0.0))
        return {
            "window": window,
            "windowPretty": window_hint(window),
            "emitted": agg.emitted,
            "transferred": agg.transferred,
            "acked": agg.acked,
            "failed": agg.failed,
            "executed": agg.executed,
            "executeLatency": float_str(agg.execute_latency),
            "processLatency": float_str(agg.execute_latency),
            "capacity": float_str(cap),
        }

    @staticmethod
    def _stream_totals(
        rows: Iterable[tuple[ExecutorSnapshot, Counters]], include_sys: bool
    ) -> dict[str, JsonDict]:
        """Per output stream: emitted, transferred, and the spout outcomes split by emits."""
        out: dict[str, JsonDict] = {}
        for _s, c in rows:
            by_stream: dict[str, int] = defaultdict(int)
            for (_t, st), n in c.emitted.items():
                by_stream[st] += n
            total = sum(by_stream.values())
            for (_t, st), n in c.transferred.items():
                d = out.setdefault(st, _zero_stream())
                d["transferred"] += n
            for st, n in by_stream.items():
                d = out.setdefault(st, _zero_stream())
                d["emitted"] += n
                d["acked"] += _share(n, total, c.acked)
                d["failed"] += _share(n, total, c.failed)
                d["complete_ms"] += _share(n, total, c.complete_ms)
                d["complete_n"] += _share(n, total, c.complete_n)
        return {s: d for s, d in sorted(out.items()) if include_sys or not _sys(s)}

    def _spout_outputs(
        self, rows: Sequence[tuple[ExecutorSnapshot, Counters]], include_sys: bool
    ) -> list[JsonDict]:
        return [
            {
                "stream": st,
                "emitted": d["emitted"],
                "transferred": d["transferred"],
                "completeLatency": float_str(_mean(d["complete_ms"], d["complete_n"])),
                "acked": round(d["acked"]),
                "failed": round(d["failed"]),
            }
            for st, d in self._stream_totals(rows, include_sys).items()
        ]

    def _outputs(
        self, rows: Sequence[tuple[ExecutorSnapshot, Counters]], include_sys: bool
    ) -> list[JsonDict]:
        return [
            {"stream": st, "emitted": d["emitted"], "transferred": d["transferred"]}
            for st, d in self._stream_totals(rows, include_sys).items()
        ]

    @staticmethod
    def _input_totals(
        rows: Iterable[tuple[ExecutorSnapshot, Counters]], include_sys: bool
    ) -> dict[tuple[str, str], JsonDict]:
        out: dict[tuple[str, str], JsonDict] = {}
        for _s, c in rows:
            total = c.total_executed
            for key, n in c.executed.items():
                if not include_sys and (_sys(key[0]) or _sys(key[1])):
                    continue
                d = out.setdefault(
                    key, {"executed": 0, "execute_ms": 0.0, "acked": 0.0, "failed": 0.0}
                )
                d["executed"] += n
                d["execute_ms"] += _share(n, total, c.execute_ms)
                d["acked"] += _share(n, total, c.acked)
                d["failed"] += _share(n, total, c.failed)
        return dict(sorted(out.items()))

    def _bolt_inputs(
        self, rows: Sequence[tuple[ExecutorSnapshot, Counters]], include_sys: bool
    ) -> list[JsonDict]:
        out = []
        for (comp, stream), d in self._input_totals(rows, include_sys).items():
            lat = _mean(d["execute_ms"], d["executed"])
            out.append(
                {
                    "component": comp,
                    "encodedComponentId": quote(comp, safe=""),
                    "stream": stream,
                    "executeLatency": float_str(lat),
                    "processLatency": float_str(lat),
                    "executed": d["executed"],
                    "acked": round(d["acked"]),
                    "failed": round(d["failed"]),
                }
            )
        return out

    def topology_metrics(
        self, topology_id: str, window: str = ALL_TIME, include_sys: bool = False
    ) -> JsonDict:
        info, hist = self._windowed(topology_id, window)
        by_comp = self._by_component(hist, window)
        spouts, bolts = [], []
        for comp in self._components(info, include_sys):
            rows = by_comp.get(comp, [])
            outs = self._stream_totals(rows, include_sys)
            common = {
                "id": comp,
                "emitted": [{"stream_id": s, "value": d["emitted"]} for s, d in outs.items()],
                "transferred": [
                    {"stream_id": s, "value": d["transferred"]} for s, d in outs.items()
                ],
            }
            if self._kind(info, comp) == "spout":
                spouts.append(
                    {
                        **common,
                        "acked": [
                            {"stream_id": s, "value": round(d["acked"])} for s, d in outs.items()
                        ],
                        "failed": [
                            {"stream_id": s, "value": round(d["failed"])} for s, d in outs.items()
                        ],
                        "complete_ms_avg": [
                            {
                                "stream_id": s,
                                "value": float_str(_mean(d["complete_ms"], d["complete_n"])),
                            }
                            for s, d in outs.items()
                        ],
                    }
                )
            else:
                ins = self._input_totals(rows, include_sys)

                def entries(value: Callable[[JsonDict], Any]) -> list[JsonDict]:
                    return [
                        {"component_id": c, "stream_id": s, "value": value(d)}
                        for (c, s), d in ins.items()  # noqa: B023
                    ]

                bolts.append(
                    {
                        **common,
                        "acked": entries(lambda d: round(d["acked"])),
                        "failed": entries(lambda d: round(d["failed"])),
                        "process_ms_avg": entries(
                            lambda d: float_str(_mean(d["execute_ms"], d["executed"]))
                        ),
                        "executed": entries(lambda d: d["executed"]),
                        "executed_ms_avg": entries(
                            lambda d: float_str(_mean(d["execute_ms"], d["executed"]))
                        ),
                    }
                )
        return {
            "window": window,
            "window-hint": window_hint(window),
            "spouts": spouts,
            "bolts": bolts,
        }

    def visualization(
        self, topology_id: str, window: str = ALL_TIME, include_sys: bool = False
    ) -> JsonDict:
        """Storm's ``/topology/:id/visualization`` map, plus live rates (Squall's ``:rate`` keys).

        Per component: ``:type``, ``:capacity``, ``:latency``, ``:transferred``,
        ``:link``, ``:inputs`` ([{``:component``, ``:stream``, ``:sani-stream``,
        ``:grouping``}]); Squall adds ``:executors``, ``:tasks``, ``:emitRate``,
        ``:executeRate``, ``:ackRate``, ``:failRate``, ``:queued``,
        ``:backpressure``, ``:errors`` and a per-input ``:rate`` (tuples per
        second over the last few seconds).
        """
        info, hist = self._windowed(topology_id, window)
        by_comp = self._by_component(hist, window)
        capacities = hist.capacities()
        dt, recent = hist.recent(RATE_SECS)
        errors_by: dict[str, int] = defaultdict(int)
        for snap in hist.snapshots.values():
            errors_by[snap.component] += snap.errors

        def rate(n: float) -> float:
            return round(n / dt, 3) if dt > 0 else 0.0

        edge_counts: dict[tuple[str, str, str], int] = defaultdict(int)
        comp_recent: dict[str, Agg] = defaultdict(Agg)
        for key, c in recent.items():
            rsnap = hist.snapshots.get(key)
            if rsnap is None:
                continue
            comp_recent[rsnap.component].add(c, include_sys)
            for (src, stream), n in c.executed.items():
                edge_counts[(src, stream, rsnap.component)] += n
        out: JsonDict = {}
        for comp in self._components(info, include_sys):
            rows = by_comp.get(comp, [])
            agg = Agg()
            queued = 0
            pressure = False
            for s, c in rows:
                agg.add(c, include_sys)
                queued += s.queued
                pressure = pressure or s.backpressure
            kind = self._kind(info, comp)
            cdef = info.definition.components.get(comp)
            inputs = []
            if cdef is not None:
                for sid, g in cdef.inputs:
                    if not include_sys and _sys(sid.stream):
                        continue
                    inputs.append(
                        {
                            ":component": sid.component,
                            ":stream": sid.stream,
                            ":sani-stream": _sanitize_stream(sid.stream),
                            ":grouping": str(getattr(g, "kind", g)),
                            ":groupingFields": list(getattr(g, "fields", ())),
                            ":rate": rate(edge_counts.get((sid.component, sid.stream, comp), 0)),
                        }
                    )
            r = comp_recent.get(comp, Agg())
            execs = [e for e in info.executors if e.component == comp]
            out[comp] = {
                ":type": "spout" if kind == "spout" else "bolt",
                ":capacity": 0
                if kind == "spout"
                else round(max((capacities.get(s.id, 0.0) for s, _ in rows), default=0.0), 4),
                ":latency": float_str(
                    agg.complete_latency if kind == "spout" else agg.execute_latency
                ),
                ":transferred": agg.transferred,
                ":link": f"{self.base_url}/component.html?id={quote(comp, safe='')}"
                f"&topology_id={quote(info.id, safe='')}",
                ":inputs": inputs,
                ":executors": len(execs),
                ":tasks": sum(len(e.tasks) for e in execs),
                ":emitted": agg.emitted,
                ":acked": agg.acked,
                ":failed": agg.failed,
                ":executed": agg.executed,
                ":emitRate": rate(r.emitted),
                ":executeRate": rate(r.executed),
                ":ackRate": rate(r.acked),
                ":failRate": rate(r.failed),
                ":queued": queued,
                ":backpressure": pressure,
                ":errors": errors_by.get(comp, 0),
            }
        return out

    def sampled_events(self, topology_id: str, component: str | None, limit: int) -> JsonDict:
        info = self._topology(topology_id)
        events = self.events(info.id, component, limit) if self.events is not None else []
        return {"topologyId": info.id, "component": component, "events": events}

    # -- POST actions -------------------------------------------------------
    def _op(self, info: TopologyInfo, op: str) -> JsonDict:
        return {"topologyOperation": op, "topologyId": info.id, "status": "success"}

    def activate(self, topology_id: str) -> JsonDict:
        info = self._topology(topology_id)
        self.source.activate(info.id)
        return self._op(info, "activate")

    def deactivate(self, topology_id: str) -> JsonDict:
        info = self._topology(topology_id)
        self.source.deactivate(info.id)
        return self._op(info, "deactivate")

    def rebalance(self, topology_id: str, wait_secs: str) -> JsonDict:
        info = self._topology(topology_id)
        self.source.rebalance(info.id, _wait(wait_secs))
        return self._op(info, "rebalance")

    def kill(self, topology_id: str, wait_secs: str) -> JsonDict:
        info = self._topology(topology_id)
        self.source.kill(info.id, _wait(wait_secs))
        return self._op(info, "kill")

    def debug(
        self, topology_id: str, action: str, spct: str, component: str | None = None
    ) -> JsonDict:
        info = self._topology(topology_id)
        if action not in ("enable", "disable"):
            raise ApiError(400, f"debug action must be 'enable' or 'disable' (got {action!r})")
        try:
            pct = float(spct)
        except ValueError:
            raise ApiError(400, f"sampling percentage must be a number (got {spct!r})") from None
        if not 0 <= pct <= 100:
            raise ApiError(400, f"sampling percentage must be between 0 and 100 (got {spct})")
        if component is not None and not any(e.component == component for e in info.executors):
            raise ApiError(404, f"topology {info.name!r} has no component {component!r}")
        self.source.set_debug(info.id, component, action == "enable", pct)
        return self._op(info, f"debug/{action}")


# -- small helpers -------------------------------------------------------------------------------


def _place(info: TopologyInfo, worker: int) -> WorkerInfo | None:
    """Worker ``worker`` of the topology, else its first worker (None: no workers yet)."""
    place = next((w for w in info.workers if w.index == worker), None)
    return place if place is not None or not info.workers else info.workers[0]


def _zero_stream() -> JsonDict:
    return {
        "emitted": 0,
        "transferred": 0,
        "acked": 0.0,
        "failed": 0.0,
        "complete_ms": 0.0,
        "complete_n": 0.0,
    }


def _spout_exec(c: Counters) -> JsonDict:
    return {"completeLatency": float_str(_mean(c.complete_ms, c.complete_n))}


def _bolt_exec(c: Counters) -> JsonDict:
    latency = float_str(_mean(c.execute_ms, c.total_executed))
    return {"executeLatency": latency, "executed": c.total_executed, "processLatency": latency}


def _check_window(window: str) -> None:
    try:
        window_secs(window)
    except ValueError as e:
        raise ApiError(400, str(e)) from None


def _wait(text: str) -> float:
    try:
        secs = float(text)
    except ValueError:
        raise ApiError(400, f"wait time must be a number of seconds (got {text!r})") from None
    if secs < 0:
        raise ApiError(400, f"wait time must not be negative (got {text})")
    return secs


def _sanitize_stream(name: str) -> str:
    """Storm's ``sanitizeStreamName``: characters outside ``[A-Za-z_\\-:.]`` become ``_``.

    A name that does not start with a letter gets Storm's ``"_s"`` prefix.

    >>> _sanitize_stream("default"), _sanitize_stream("__ack init"), _sanitize_stream("2x")
    ('default', '_s__ack_init', '_s_x')
    """
    out = "".join(ch if ch.isascii() and (ch.isalpha() or ch in "_-:.") else "_" for ch in name)
    return out if name[:1].isascii() and name[:1].isalpha() else "_s" + out


#: Config keys whose values the UI never shows (tokens, passwords, ZooKeeper credentials).
SECRET_KEY_PARTS = ("token", "password", "secret", "auth.payload")
HIDDEN = "<hidden>"


def redacted(conf: Mapping[str, Any]) -> JsonDict:
    """``conf`` with the values of secret-looking keys replaced by ``"<hidden>"``.

    >>> redacted({"drpc.auth.token": "s3cret", "topology.workers": 2})
    {'drpc.auth.token': '<hidden>', 'topology.workers': 2}
    """
    return {
        k: (HIDDEN if v is not None and any(p in k.lower() for p in SECRET_KEY_PARTS) else v)
        for k, v in conf.items()
    }


def _jsonable(value: Any) -> Any:
    """Config and metric values as JSON: what json cannot encode becomes its repr."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return repr(value)


def exception_json(status: int, reason: str, error: BaseException) -> JsonDict:
    """Storm's ``UIHelpers.exceptionToJson``: ``{"error": "500 ...", "errorMessage": ...}``."""
    message = (
        str(error) if isinstance(error, ApiError) else "".join(traceback.format_exception(error))
    )
    return {"error": f"{status} {reason}", "errorMessage": message}


__all__ = [
    "ApiError",
    "StormApi",
    "exception_json",
    "float_str",
    "pretty_uptime",
    "window_hint",
]
