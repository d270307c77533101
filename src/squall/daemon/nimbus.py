"""Nimbus: receives topologies, stores their code, schedules them, watches their workers.

Several nimbus processes may run; the one whose election node is lowest leads
(:class:`~squall.cluster.state.LeaderElection`), the others stand by, copy the
code of every topology from the leader, and answer read requests. Every write
the leader makes to ZooKeeper is a transaction that also checks its election
node (and the version of what it replaces), so a leader that was paused and
lost its session cannot overwrite what its successor wrote.

Nimbus keeps no state of its own beyond topology code on disk: everything else
is in ZooKeeper, so it can be ``kill -9``-ed and restarted at any time, and
workers keep processing while it is down (nothing is reassigned then, and
supervisors still restart dead workers).

The monitor pass (:meth:`Nimbus.step`, every ``nimbus.monitor.freq.secs`` and
whenever a supervisor comes or goes):

1. end the wait of killed topologies (remove them) and of rebalancing ones
   (re-schedule them from scratch with their new shape);
2. find each topology's live workers: a worker is alive while its heartbeat
   node keeps changing (nimbus times that with *its own* clock, and counts
   none of the time it spent disconnected from ZooKeeper or not leading);
3. run the even scheduler (:mod:`squall.daemon.scheduler`) and write the
   assignments that changed;
4. remove what belongs to no topology (assignments, heartbeats, errors, code).

Clients talk to nimbus over a small HTTP/JSON API (:class:`NimbusServer`),
bound to 127.0.0.1 unless configured, with an optional bearer token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import squall
from squall import config as C
from squall.cluster import conf as K
from squall.cluster.records import (
    ACTIVE,
    INACTIVE,
    KILLED,
    REBALANCING,
    Assignment,
    ExecutorId,
    NimbusInfo,
    StormBase,
    WorkerAssignment,
    WorkerSlot,
)
from squall.cluster.state import (
    ASSIGNMENTS,
    ERRORS,
    STORMS,
    WORKERBEATS,
    ClusterState,
    LeaderElection,
    NotLeaderError,
)
from squall.cluster.store import (
    BadVersionError,
    ConnectionState,
    CoordinationError,
    CoordinationStore,
    CoordinationUnavailableError,
    Create,
    Delete,
    NoNodeError,
    Op,
    SetData,
)
from squall.daemon.httpd import DaemonHTTPServer, RefusalLog, TokenGate
from squall.daemon.scheduler import (
    make_assignment,
    same_placement,
    schedule_even,
    topology_executors,
)
from squall.transport.zmq_link import CurveKeys

log = logging.getLogger("squall.nimbus")

#: Storm's rule for topology names (``Utils.validateTopologyName``).
TOPOLOGY_NAME = re.compile(r"^[^/.:\\]+$")
MAX_NAME_LENGTH = 200
#: Uploads not submitted within this time are deleted.
UPLOAD_TTL_SECS = 3600.0


class NimbusError(Exception):
    """A request nimbus refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


@dataclass
class _Beat:
    version: int
    seen: float  # nimbus's monotonic clock when it first saw this version


class Nimbus:
    """The nimbus daemon's logic (the HTTP server and the loop are around it).

    Args:
        conf: daemon config (see :mod:`squall.cluster.conf`).
        store: the coordination store (started by :meth:`run`, or already connected).
        local_dir: where code and uploads are kept (default ``storm.local.dir``).
        clock: a monotonic clock, for liveness (tests pass a fake one).
        wall: wall-clock time, for what is stored in ZooKeeper.
    """

    def __init__(
        self,
        conf: Mapping[str, Any],
        store: CoordinationStore,
        *,
        local_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        fetch_code: Callable[[NimbusInfo, str], tuple[bytes, dict[str, Any]]] | None = None,
    ) -> None:
        self.conf = K.merged(conf)
        self.store = store
        self.state = ClusterState(store, str(self.conf[K.STORM_ZOOKEEPER_ROOT]))
        base = Path(local_dir or self.conf[K.STORM_LOCAL_DIR]).resolve()
        self.dir = base / "nimbus"
        self.code_dir = self.dir / "code"
        self.upload_dir = self.dir / "uploads"
        for d in (self.code_dir, self.upload_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.id = persistent_id(self.dir / "id", "nimbus")
        self.host = str(self.conf[K.NIMBUS_HOST])
        self.port = int(self.conf[K.NIMBUS_THRIFT_PORT])
        self.election = LeaderElection(self.state, NimbusInfo(self.id, self.host, self.port))
        self.clock = clock
        self.wall = wall
        self.fetch_code = fetch_code
        self.token = self.conf.get(K.NIMBUS_AUTH_TOKEN) or None
        self.gate = TokenGate(
            self.token, RefusalLog(log, "nimbus: refused an unauthenticated request")
        )
        self.task_timeout = float(self.conf[K.NIMBUS_TASK_TIMEOUT_SECS])
        self.launch_secs = float(self.conf[K.NIMBUS_TASK_LAUNCH_SECS])
        self.max_upload = int(self.conf[K.NIMBUS_MAX_UPLOAD_BYTES])
        self._lock = threading.RLock()
        self._beats: dict[tuple[str, WorkerSlot], _Beat] = {}
        self._assigned_at: dict[tuple[str, WorkerSlot], float] = {}
        self._grace_from = clock()
        self._leading = False
        self._disconnected = False
        self._setup_session: int | None = None
        self._submitted = 0
        self._started = clock()
        self._no_slots_logged: set[str] = set()
        self.wake = threading.Event()
        store.add_listener(self._on_state)

    # -- the monitor pass ---------------------------------------------------------------
    def _on_state(self, state: ConnectionState) -> None:
        if state is not ConnectionState.CONNECTED:
            self._disconnected = True
        self.wake.set()

    @property
    def leading(self) -> bool:
        """True while this nimbus acts as the leader (as of its last pass)."""
        return self._leading

    def step(self) -> None:
        """One monitor pass; never raises for ZooKeeper trouble (the next pass retries)."""
        with self._lock:
            try:
                self._step()
            except NotLeaderError as e:
                log.warning("nimbus %s: %s", self.id, e)
                self._leading = False
            except (CoordinationUnavailableError, BadVersionError) as e:
                log.info("nimbus %s: monitor pass skipped: %s", self.id, e)
            except CoordinationError as e:
                log.warning("nimbus %s: monitor pass failed: %s", self.id, e)

    def _step(self) -> None:
        session = self.store.session_id
        if session is None:
            if self._leading:
                log.warning("nimbus %s: not connected to ZooKeeper; stops leading", self.id)
            self._leading = False
            return
        if self._disconnected:
            # Heartbeats could not be written or read while we were away: grace for all.
            self._disconnected = False
            self._grace_from = self.clock()
        if self._setup_session != session:
            self.state.setup()
            self._setup_session = session
        self.election.join()
        leading = self.election.is_leader()
        if leading and not self._leading:
            log.info("nimbus %s at %s:%s is the leader", self.id, self.host, self.port)
            self._beats.clear()
            self._grace_from = self.clock()
        elif self._leading and not leading:
            log.warning("nimbus %s is no longer the leader", self.id)
        self._leading = leading
        bases = self.state.storm_bases()
        self._sync_code(bases)
        if not leading:
            return
        self.state.supervisors(watch=self.wake.set)
        now = self.wall()
        for tid, (base, _version) in sorted(bases.items()):
            if base.status == KILLED and (base.deadline_secs or 0) <= now:
                self._remove(tid)
        bases = self.state.storm_bases()
        self._schedule(bases)
        self._cleanup(bases)

    # -- liveness -------------------------------------------------------------------------
    def _alive_workers(
        self, tid: str, assignment: Assignment
    ) -> dict[WorkerSlot, tuple[ExecutorId, ...]]:
        now = self.clock()
        beats = self.state.heartbeats(tid)
        alive: dict[WorkerSlot, tuple[ExecutorId, ...]] = {}
        for w in assignment.workers:
            key = (tid, w.slot)
            rec = beats.get(w.slot.name)
            if rec is not None and sorted(rec[0].executors) == sorted(w.executors):
                known = self._beats.get(key)
                if known is None or known.version != rec[1]:
                    self._beats[key] = _Beat(rec[1], now)
            known = self._beats.get(key)
            launched = self._assigned_at.get(key)
            if known is not None and (launched is None or known.seen >= launched):
                deadline = known.seen + self.task_timeout
            elif launched is not None:
                deadline = launched + self.launch_secs
            else:
                deadline = -1.0
            # Time spent not leading or disconnected does not count against a worker.
            deadline = max(deadline, self._grace_from + self.task_timeout)
            if now < deadline:
                alive[w.slot] = w.executors
            else:
                log.warning(
                    "topology %s: worker %s (%s:%s) sent no heartbeat for %.0fs; reassigning",
                    tid,
                    w.index,
                    w.host,
                    w.port,
                    self.task_timeout,
                )
        return alive

    # -- scheduling -------------------------------------------------------------------------
    def _schedule(self, bases: Mapping[str, tuple[StormBase, int]]) -> None:
        sups = self.state.supervisors()
        hosts = {sid: info.host for sid, info in sups.items()}
        all_slots = {slot for info in sups.values() for slot in info.slots()}
        current: dict[str, tuple[Assignment, int]] = {}
        alive: dict[str, dict[WorkerSlot, tuple[ExecutorId, ...]]] = {}
        now_wall = self.wall()
        for tid in bases:
            rec = self.state.assignment(tid)
            if rec is not None:
                current[tid] = rec
                alive[tid] = self._alive_workers(tid, rec[0])
            else:
                alive[tid] = {}
        rebalancing = {
            tid
            for tid, (base, _v) in bases.items()
            if base.status == REBALANCING and (base.deadline_secs or 0) <= now_wall
        }
        used = {slot for tid, m in alive.items() if tid not in rebalancing for slot in m}
        free = all_slots - used
        for tid in sorted(bases):
            base, version = bases[tid]
            if base.status == KILLED:
                continue
            ops: list[Op] = []
            live = alive[tid]
            if tid in rebalancing:
                base = self._rebalanced(base)
                ops.append(SetData(self.state.path(STORMS, tid), base.encode(), version))
                live = {}
                free |= set(alive[tid])
            executors = topology_executors(base.component_tasks, base.component_executors)
            prev = current[tid][0] if tid in current else None
            dead = {w.slot for w in prev.workers if w.slot not in live} if prev else set()
            placement = schedule_even(executors, base.num_workers, live, free, avoid=dead)
            if not placement and not ops:
                if tid not in self._no_slots_logged:
                    log.warning("topology %s: no free slot to run it on", tid)
                    self._no_slots_logged.add(tid)
                continue
            self._no_slots_logged.discard(tid)
            new = make_assignment(tid, placement, hosts, prev, now_wall)
            free -= set(placement.values())
            if same_placement(new, prev) and not ops:
                continue
            path = self.state.path(ASSIGNMENTS, tid)
            if tid in current:
                ops.append(SetData(path, new.encode(), current[tid][1]))
            else:
                ops.append(Create(path, new.encode()))
            self.state.commit_fenced(self.election.fence(), ops)
            mono = self.clock()
            old_slots = {w.slot: w for w in prev.workers} if prev is not None else {}
            for w in new.workers:
                if old_slots.get(w.slot) != w:
                    self._assigned_at[(tid, w.slot)] = mono
            log.info(
                "topology %s assigned to %s",
                tid,
                ", ".join(f"{w.index}@{w.host}:{w.port}" for w in new.workers) or "nothing",
            )

    def _rebalanced(self, base: StormBase) -> StormBase:
        opts = dict(base.rebalance or {})
        execs = dict(base.component_executors)
        execs.update({str(k): int(v) for k, v in (opts.get("executors") or {}).items()})
        return dataclasses.replace(
            base,
            status=base.prev_status or ACTIVE,
            prev_status=None,
            deadline_secs=None,
            rebalance=None,
            num_workers=int(opts.get("num_workers") or base.num_workers),
            component_executors=execs,
        )

    # -- removal and cleanup --------------------------------------------------------------------
    def _remove(self, tid: str) -> None:
        ops: list[Op] = []
        if self.store.exists(self.state.path(ASSIGNMENTS, tid)) is not None:
            ops.append(Delete(self.state.path(ASSIGNMENTS, tid)))
        ops.append(Delete(self.state.path(STORMS, tid)))
        self.state.commit_fenced(self.election.fence(), ops)
        log.info("topology %s removed", tid)
        self._forget(tid)

    def _forget(self, tid: str) -> None:
        for sub in (WORKERBEATS, ERRORS):
            with contextlib.suppress(CoordinationError):
                self.store.delete(self.state.path(sub, tid), recursive=True)
        for suffix in (".tar.gz", ".json"):
            with contextlib.suppress(OSError):
                (self.code_dir / f"{tid}{suffix}").unlink()
        for key in [k for k in self._beats if k[0] == tid]:
            del self._beats[key]
        for key in [k for k in self._assigned_at if k[0] == tid]:
            del self._assigned_at[key]

    def _cleanup(self, bases: Mapping[str, tuple[StormBase, int]]) -> None:
        for tid in self.state.assignment_ids():
            if tid not in bases:
                self.state.commit_fenced(
                    self.election.fence(), [Delete(self.state.path(ASSIGNMENTS, tid))]
                )
        for sub in (WORKERBEATS, ERRORS):
            for tid in self.store.children(self.state.path(sub)):
                if tid not in bases:
                    with contextlib.suppress(CoordinationError):
                        self.store.delete(self.state.path(sub, tid), recursive=True)
        for tid in bases:
            slots = {w.slot.name for w in self._workers(tid)}
            try:
                names = self.store.children(self.state.path(WORKERBEATS, tid))
            except NoNodeError:
                continue
            for name in names:
                if name not in slots:
                    self.store.delete(self.state.path(WORKERBEATS, tid, name))
        cutoff = time.time() - UPLOAD_TTL_SECS
        for f in self.upload_dir.iterdir():
            with contextlib.suppress(OSError):
                if f.stat().st_mtime < cutoff:
                    f.unlink()

    def _sync_code(self, bases: Mapping[str, tuple[StormBase, int]]) -> None:
        """Keep a copy of every topology's code (a standby must be able to take over)."""
        for f in self.code_dir.iterdir():
            tid = f.name.removesuffix(".tar.gz").removesuffix(".json")
            if tid not in bases and not f.name.startswith("."):
                with contextlib.suppress(OSError):
                    f.unlink()
        if self.fetch_code is None:
            return
        missing = [tid for tid in bases if not (self.code_dir / f"{tid}.json").is_file()]
        if not missing:
            return
        others = [info for _n, info in self.election.candidates() if info.id != self.id]
        for tid in missing:
            for info in others:
                try:
                    data, meta = self.fetch_code(info, tid)
                except Exception as e:
                    log.debug("cannot copy the code of %s from %s: %s", tid, info.address, e)
                    continue
                if hashlib.sha256(data).hexdigest() != bases[tid][0].code_sha256:
                    log.warning("the code of %s from %s has the wrong digest", tid, info.address)
                    continue
                self._store_code(tid, data, meta)
                log.info("copied the code of %s from nimbus %s", tid, info.address)
                break

    def _store_code(self, tid: str, data: bytes, meta: Mapping[str, Any]) -> None:
        _atomic_write(self.code_dir / f"{tid}.tar.gz", data)
        _atomic_write(self.code_dir / f"{tid}.json", json.dumps(meta).encode())

    # -- requests ---------------------------------------------------------------------------------
    def _require_leader(self) -> None:
        if self._leading and self.election.is_leader():
            return
        leader = None
        with contextlib.suppress(CoordinationError):
            info = self.election.leader()
            if info is not None and info.id != self.id:
                leader = info.address
        raise NimbusError(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "this nimbus is not the leader" if leader else "no leader nimbus",
            leader=leader,
        )

    def info(self) -> dict[str, Any]:
        """Who this nimbus is and who leads."""
        leader = None
        with contextlib.suppress(CoordinationError):
            info = self.election.leader()
            leader = info.address if info is not None else None
        return {
            "id": self.id,
            "host": self.host,
            "port": self.port,
            "leader": self._leading,
            "leader_address": leader,
            "uptime_secs": max(0.0, self.clock() - self._started),
            "version": squall.__version__,
        }

    def upload(self, stream: BinaryIO | Any, length: int) -> str:
        """Store an uploaded package (read in chunks, capped); return its sha256 ``code`` id."""
        self._require_leader()
        if length > self.max_upload:
            raise NimbusError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the package is {length} bytes; nimbus accepts at most {self.max_upload} "
                f"({K.NIMBUS_MAX_UPLOAD_BYTES})",
            )
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.upload_dir, prefix=".up-")
        try:
            with os.fdopen(fd, "wb") as out:
                left = length
                while left:
                    chunk = stream.read(min(left, 1 << 20))
                    if not chunk:
                        raise NimbusError(HTTPStatus.BAD_REQUEST, "the upload ended early")
                    digest.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
            code = digest.hexdigest()
            os.replace(tmp, self.upload_dir / code)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return code

    def submit(self, req: Mapping[str, Any]) -> str:
        """Accept a topology (its code was uploaded first); return its id."""
        with self._lock:
            self._require_leader()
            spec = _check_submission(req)
            name = spec["name"]
            bases = self.state.storm_bases()
            for tid, (b, _v) in bases.items():
                if b.name == name:
                    raise NimbusError(
                        HTTPStatus.CONFLICT,
                        f"topology {name!r} is already running on the cluster (as {tid}); "
                        "kill it first",
                    )
            upload = self.upload_dir / spec["code"]
            if not re.fullmatch(r"[0-9a-f]{64}", spec["code"]) or not upload.is_file():
                raise NimbusError(
                    HTTPStatus.BAD_REQUEST,
                    f"no uploaded package {spec['code']!r}: upload the code first",
                )
            now = self.wall()
            self._submitted += 1
            tid = f"{name}-{self._submitted}-{int(now)}"
            while tid in bases:
                self._submitted += 1
                tid = f"{name}-{self._submitted}-{int(now)}"
            base = StormBase(
                name=name,
                status=INACTIVE if spec["inactive"] else ACTIVE,
                launch_time_secs=now,
                num_workers=spec["num_workers"],
                component_tasks=spec["component_tasks"],
                component_executors=spec["component_executors"],
                owner=spec["owner"],
                code_sha256=spec["code"],
                num_tasks=max(last for _f, last in spec["component_tasks"].values()),
            )
            meta = {
                "topology_id": tid,
                "name": name,
                "target": spec["target"],
                "conf": spec["conf"],
                "definition": spec["definition"],
            }
            if self.token:
                # A secured cluster also secures the workers' data sockets: keys per
                # topology, handed to supervisors with the code (behind the token).
                meta["curve"] = CurveKeys.generate().to_json()
            data = upload.read_bytes()
            self._store_code(tid, data, meta)
            try:
                self.state.commit_fenced(
                    self.election.fence(),
                    [
                        Create(self.state.path(STORMS, tid), base.encode()),
                        Create(self.state.path(WORKERBEATS, tid)),
                        Create(self.state.path(ERRORS, tid)),
                    ],
                )
            except BaseException:
                self._forget(tid)
                raise
            with contextlib.suppress(OSError):
                upload.unlink()
            log.info("topology %s submitted (%d workers)", tid, base.num_workers)
            self.wake.set()
            return tid

    def _find(self, name: str) -> tuple[str, StormBase, int]:
        for tid, (base, version) in self.state.storm_bases().items():
            if base.name == name or tid == name:
                return tid, base, version
        raise NimbusError(HTTPStatus.NOT_FOUND, f"topology {name!r} is not running")

    def _update(self, tid: str, base: StormBase, version: int) -> None:
        self.state.commit_fenced(
            self.election.fence(),
            [SetData(self.state.path(STORMS, tid), base.encode(), version)],
        )
        self.wake.set()

    def kill(self, name: str, wait_secs: float | None = None) -> str:
        """Deactivate now; remove after ``wait_secs`` (default: the message timeout)."""
        with self._lock:
            self._require_leader()
            tid, base, version = self._find(name)
            wait = self._wait_secs(tid, wait_secs)
            deadline = self.wall() + wait
            if base.status == KILLED and (base.deadline_secs or 0) <= deadline:
                return tid
            self._update(
                tid,
                dataclasses.replace(base, status=KILLED, deadline_secs=deadline, rebalance=None),
                version,
            )
            log.info("topology %s killed; removed in %.0fs", tid, wait)
            return tid

    def activate(self, name: str) -> str:
        return self._set_status(name, ACTIVE)

    def deactivate(self, name: str) -> str:
        return self._set_status(name, INACTIVE)

    def _set_status(self, name: str, status: str) -> str:
        with self._lock:
            self._require_leader()
            tid, base, version = self._find(name)
            if base.status == KILLED:
                raise NimbusError(HTTPStatus.CONFLICT, f"topology {name!r} is being killed")
            if base.status == REBALANCING:
                new = dataclasses.replace(base, prev_status=status)
            elif base.status == status:
                return tid
            else:
                new = dataclasses.replace(base, status=status)
            self._update(tid, new, version)
            log.info("topology %s %s", tid, "activated" if status == ACTIVE else "deactivated")
            return tid

    def rebalance(
        self,
        name: str,
        wait_secs: float | None = None,
        num_workers: int | None = None,
        executors: Mapping[str, int] | None = None,
    ) -> str:
        """Deactivate for ``wait_secs``, then re-schedule with the new worker/executor counts."""
        with self._lock:
            self._require_leader()
            tid, base, version = self._find(name)
            if base.status in (KILLED, REBALANCING):
                raise NimbusError(
                    HTTPStatus.CONFLICT, f"topology {name!r} is {base.status.lower()}"
                )
            if num_workers is not None and (
                isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
            ):
                raise NimbusError(HTTPStatus.BAD_REQUEST, "the number of workers must be > 0")
            execs: dict[str, int] = {}
            for comp, n in (executors or {}).items():
                if comp not in base.component_tasks or comp.startswith("__"):
                    raise NimbusError(
                        HTTPStatus.BAD_REQUEST, f"topology {name!r} has no component {comp!r}"
                    )
                if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    raise NimbusError(
                        HTTPStatus.BAD_REQUEST,
                        f"component {comp!r}: the number of executors must be > 0, got {n!r}",
                    )
                first, last = base.component_tasks[comp]
                if n > last - first + 1:
                    raise NimbusError(
                        HTTPStatus.BAD_REQUEST,
                        f"component {comp!r} has {last - first + 1} tasks; it cannot have "
                        f"{n} executors (task counts never change)",
                    )
                execs[comp] = n
            wait = self._wait_secs(tid, wait_secs)
            new = dataclasses.replace(
                base,
                status=REBALANCING,
                prev_status=base.status,
                deadline_secs=self.wall() + wait,
                rebalance={"num_workers": num_workers, "executors": execs},
            )
            self._update(tid, new, version)
            log.info("topology %s rebalancing in %.0fs", tid, wait)
            return tid

    def set_debug(self, name: str, component: str | None, enabled: bool, percent: Any) -> str:
        """Storm's debug toggle: sample ``percent`` % of emitted tuples (whole topology or one
        component); workers follow the change within a heartbeat."""
        with self._lock:
            self._require_leader()
            tid, base, version = self._find(name)
            if component is not None and (
                component not in base.component_tasks or component.startswith("__")
            ):
                raise NimbusError(
                    HTTPStatus.BAD_REQUEST, f"topology {name!r} has no component {component!r}"
                )
            if enabled and (
                isinstance(percent, bool)
                or not isinstance(percent, int | float)
                or not 0 < percent <= 100
            ):
                raise NimbusError(
                    HTTPStatus.BAD_REQUEST,
                    f"the sampling percentage must be in (0, 100], got {percent!r}",
                )
            debug = dict(base.debug)
            if component is None:
                # The whole topology: per-component settings give way, as in Storm.
                debug = {"": float(percent)} if enabled else {}
            elif enabled:
                debug[component] = float(percent)
            else:
                debug.pop(component, None)
            self._update(tid, dataclasses.replace(base, debug=debug), version)
            log.info("topology %s: debug sampling %s", tid, debug or "off")
            return tid

    def detail(self, name: str) -> dict[str, Any]:
        """One topology as the UI shows it: status, shape, placement, workers, config."""
        tid, base, _version = self._find(name)
        beats = self.state.heartbeats(tid)
        meta = self._meta_if_stored(tid)
        out_workers = []
        for w in self._workers(tid):
            beat = beats.get(w.slot.name)
            hb = beat[0] if beat is not None else None
            out_workers.append(
                {
                    **w.to_json(),
                    "pid": hb.pid if hb is not None else None,
                    "uptime_secs": hb.uptime_secs if hb is not None else 0.0,
                    "heartbeat_secs": hb.time_secs if hb is not None else None,
                }
            )
        return {
            "id": tid,
            "name": base.name,
            "status": base.status,
            "owner": base.owner,
            "launch_time_secs": base.launch_time_secs,
            "uptime_secs": max(0.0, self.wall() - base.launch_time_secs),
            "num_workers": base.num_workers,
            "component_tasks": {c: list(r) for c, r in base.component_tasks.items()},
            "component_executors": dict(base.component_executors),
            "debug": dict(base.debug),
            "conf": meta.get("conf") or {},
            "definition": meta.get("definition"),
            "workers": out_workers,
        }

    def stats(self, name: str) -> dict[str, Any]:
        """Every executor's counters, as its worker last reported them, and sampled tuples."""
        tid, _base, _version = self._find(name)
        current = {w.slot.name: w for w in self._workers(tid)}
        executors: list[Any] = []
        events: list[dict[str, Any]] = []
        for key, (hb, _v) in sorted(self.state.heartbeats(tid).items()):
            w = current.get(key)
            # A heartbeat left by a worker of an older placement is not counted twice.
            if w is None or w.index != hb.index:
                continue
            executors.extend(hb.executor_stats)
            events.extend({**e, "worker": hb.index, "port": hb.port} for e in hb.events)
        return {"id": tid, "time_secs": self.wall(), "executors": executors, "events": events}

    def errors(self, name: str) -> dict[str, Any]:
        """The most recent errors of every component (oldest first)."""
        tid, _base, _version = self._find(name)
        found = [e for errs in self.state.errors(tid).values() for e in errs]
        found.sort(key=lambda e: e.time_secs)
        return {"id": tid, "errors": [dataclasses.asdict(e) for e in found]}

    def _wait_secs(self, tid: str, wait_secs: float | None) -> float:
        if wait_secs is not None:
            if not isinstance(wait_secs, int | float) or wait_secs < 0:
                raise NimbusError(HTTPStatus.BAD_REQUEST, "the wait must be >= 0 seconds")
            return float(wait_secs)
        conf = self._meta_if_stored(tid).get("conf") or {}
        return float(conf.get(C.TOPOLOGY_MESSAGE_TIMEOUT_SECS) or 30)

    def topologies(self) -> list[dict[str, Any]]:
        """A summary of every topology, as ``squall list`` shows it."""
        out = []
        now = self.wall()
        for tid, (base, _v) in sorted(self.state.storm_bases().items()):
            workers = self._workers(tid)
            out.append(
                {
                    "id": tid,
                    "name": base.name,
                    "status": base.status,
                    "owner": base.owner,
                    "num_tasks": base.num_tasks,
                    "num_executors": sum(len(w.executors) for w in workers),
                    "num_workers": len(workers),
                    "requested_workers": base.num_workers,
                    "uptime_secs": max(0, int(now - base.launch_time_secs)),
                    "workers": [
                        {"index": w.index, "host": w.host, "port": w.port, "node": w.node}
                        for w in workers
                    ],
                }
            )
        return out

    def cluster(self) -> dict[str, Any]:
        """Supervisors and their slots, and the nimbus candidates."""
        sups = self.state.supervisors()
        used = {w.slot for a, _v in self.state.assignments().values() for w in a.workers}
        return {
            "supervisors": [
                {
                    "id": s.id,
                    "host": s.host,
                    "ports": list(s.ports),
                    "slots_used": sum(1 for slot in s.slots() if slot in used),
                    "uptime_secs": s.uptime_secs,
                    "version": s.version,
                    "logviewer_port": s.logviewer_port,
                }
                for s in sups.values()
            ],
            "nimbuses": [
                {"id": i.id, "address": i.address, "leader": k == 0}
                for k, (_n, i) in enumerate(self.election.candidates())
            ],
        }

    def _workers(self, tid: str) -> tuple[WorkerAssignment, ...]:
        """The workers of ``tid``'s assignment (none before it is scheduled)."""
        rec = self.state.assignment(tid)
        return rec[0].workers if rec else ()

    def _meta_if_stored(self, tid: str) -> dict[str, Any]:
        """:meth:`meta`, or ``{}`` while this nimbus has not stored ``tid``'s code yet."""
        return self.meta(tid) if (self.code_dir / f"{tid}.json").is_file() else {}

    def code_file(self, tid: str) -> Path:
        path = self.code_dir / f"{tid}.tar.gz"
        if not _safe_id(tid) or not path.is_file():
            raise NimbusError(HTTPStatus.NOT_FOUND, f"no code for topology {tid!r} here")
        return path

    def meta(self, tid: str) -> dict[str, Any]:
        path = self.code_dir / f"{tid}.json"
        if not _safe_id(tid) or not path.is_file():
            raise NimbusError(HTTPStatus.NOT_FOUND, f"no code for topology {tid!r} here")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    # -- running ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Connect, then run monitor passes until ``stop`` (ZooKeeper trouble never ends it)."""
        connect(self.store, stop, "nimbus")
        freq = float(self.conf[K.NIMBUS_MONITOR_FREQ_SECS])
        while not stop.is_set():
            self.wake.clear()
            self.step()
            self.wake.wait(freq)
        with contextlib.suppress(Exception):
            self.election.leave()


def connect(store: CoordinationStore, stop: threading.Event, who: str) -> None:
    """Start ``store``, retrying every second until connected or ``stop`` (logs once)."""
    warned = False
    while not stop.is_set():
        try:
            store.start(timeout_secs=5.0)
            return
        except CoordinationUnavailableError as e:
            if not warned:
                log.warning("%s: %s; retrying", who, e)
                warned = True
            stop.wait(1.0)


def _check_submission(req: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a submit request; raise NimbusError(400) naming the field at fault."""

    def bad(msg: str) -> NimbusError:
        return NimbusError(HTTPStatus.BAD_REQUEST, msg)

    if not isinstance(req, Mapping):
        raise bad("the request must be a JSON object")
    name = req.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise bad(f"'name' must be a non-empty string of at most {MAX_NAME_LENGTH} characters")
    if not TOPOLOGY_NAME.match(name):
        raise bad(f"topology name {name!r} is invalid: it may not contain '/', '.', ':' or '\\'")
    target = req.get("target")
    if not isinstance(target, str) or not target:
        raise bad("'target' must name the topology in the package (FILE_OR_MODULE[:ATTR])")
    conf = req.get("conf") or {}
    if not isinstance(conf, dict):
        raise bad("'conf' must be a JSON object")
    try:
        C.check(conf)
    except C.ConfigError as e:
        raise bad(str(e)) from e
    workers = req.get("num_workers")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise bad(f"'num_workers' must be an integer > 0, got {workers!r}")
    tasks_in = req.get("component_tasks")
    execs_in = req.get("component_executors")
    if not isinstance(tasks_in, dict) or not tasks_in or not isinstance(execs_in, dict):
        raise bad("'component_tasks' and 'component_executors' must be JSON objects")
    tasks: dict[str, tuple[int, int]] = {}
    for comp, rng in tasks_in.items():
        if (
            not isinstance(comp, str)
            or not comp
            or not isinstance(rng, list)
            or len(rng) != 2
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in rng)
            or not 0 < rng[0] <= rng[1]
        ):
            raise bad(f"component {comp!r}: bad task range {rng!r}")
        tasks[comp] = (rng[0], rng[1])
    expected = 1
    for first, last in sorted(tasks.values()):
        if first != expected:
            raise bad(f"task ids must run from 1 without gaps or overlaps (at task {first})")
        expected = last + 1
    execs: dict[str, int] = {}
    for comp in tasks:
        n = execs_in.get(comp)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise bad(f"component {comp!r}: the number of executors must be > 0, got {n!r}")
        execs[comp] = n
    unknown = set(execs_in) - set(tasks)
    if unknown:
        raise bad(f"executors given for unknown components: {sorted(unknown)}")
    code = req.get("code")
    if not isinstance(code, str):
        raise bad("'code' must be the id the upload returned")
    owner = req.get("owner") or ""
    definition = req.get("definition")
    if definition is not None and not isinstance(definition, dict):
        raise bad("'definition' must be the topology's description (a JSON object)")
    return {
        "definition": definition,
        "name": name,
        "target": target,
        "conf": conf,
        "num_workers": workers,
        "component_tasks": tasks,
        "component_executors": execs,
        "code": code,
        "owner": str(owner)[:200],
        "inactive": bool(req.get("inactive")),
    }


def _safe_id(tid: str) -> bool:
    return bool(TOPOLOGY_NAME.match(tid)) or bool(re.fullmatch(r"[^/\\]+-\d+-\d+", tid))


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def persistent_id(path: Path, prefix: str) -> str:
    """An id kept on disk, so a restarted daemon is the same daemon."""
    try:
        value = path.read_text().strip()
        if value:
            return value
    except OSError:
        pass
    value = f"{prefix}-{uuid.uuid4().hex[:12]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, value.encode())
    return value


# -- the HTTP/JSON API ---------------------------------------------------------------------
class NimbusServer(DaemonHTTPServer):
    """Nimbus's API: small JSON requests, token-checked before any body is read.

    ``GET /api/v1/nimbus`` (who leads), ``GET /api/v1/topologies``,
    ``GET /api/v1/cluster``, ``POST /api/v1/uploads`` (the package, raw bytes),
    ``POST /api/v1/topologies`` (submit), ``POST /api/v1/topologies/NAME/kill``
    (``activate``, ``deactivate``, ``rebalance``), ``GET
    /api/v1/topologies/ID/code`` and ``.../meta`` (supervisors, standby nimbuses).
    """

    nimbus: Nimbus

    def __init__(self, host: str, port: int, nimbus: Nimbus | None = None) -> None:
        # Bound before nimbus exists when the port is 0 (nimbus advertises the real one).
        super().__init__((host, port), _Handler)
        if nimbus is not None:
            self.nimbus = nimbus


class _Handler(BaseHTTPRequestHandler):
    server: NimbusServer
    # A client that stops sending in the middle of a request is dropped.
    timeout = 15
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        ok = self.server.nimbus.gate.admits(
            self.headers.get("Authorization"), self.client_address[0]
        )
        if not ok:
            self.close_connection = True
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong token"})
        return ok

    def _length(self, cap: int) -> int:
        text = self.headers.get("Content-Length")
        if text is None:
            raise NimbusError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        try:
            n = int(text)
        except ValueError:
            raise NimbusError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if n < 0:
            raise NimbusError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if n > cap:
            self.close_connection = True
            raise NimbusError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request is {n} bytes; at most {cap}"
            )
        return n

    def _json(self) -> dict[str, Any]:
        n = self._length(int(self.server.nimbus.conf[K.NIMBUS_MAX_REQUEST_BYTES]))
        raw = self.rfile.read(n) if n else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError as e:
            raise NimbusError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {e}") from e
        if not isinstance(body, dict):
            raise NimbusError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _route(self, method: str) -> None:
        if not self._authorized():
            return
        nimbus = self.server.nimbus
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        try:
            if parts[:2] != ["api", "v1"] or len(parts) < 3:
                raise NimbusError(HTTPStatus.NOT_FOUND, f"no such endpoint: {self.path}")
            what = parts[2:]
            if method == "GET" and what == ["nimbus"]:
                self._reply(HTTPStatus.OK, nimbus.info())
            elif method == "GET" and what == ["topologies"]:
                self._reply(HTTPStatus.OK, {"topologies": nimbus.topologies()})
            elif method == "GET" and what == ["cluster"]:
                self._reply(HTTPStatus.OK, nimbus.cluster())
            elif method == "GET" and len(what) == 2 and what[0] == "topologies":
                self._reply(HTTPStatus.OK, nimbus.detail(what[1]))
            elif method == "GET" and len(what) == 3 and what[0] == "topologies":
                if what[2] == "meta":
                    self._reply(HTTPStatus.OK, nimbus.meta(what[1]))
                elif what[2] == "code":
                    self._send_file(nimbus.code_file(what[1]))
                elif what[2] == "stats":
                    self._reply(HTTPStatus.OK, nimbus.stats(what[1]))
                elif what[2] == "errors":
                    self._reply(HTTPStatus.OK, nimbus.errors(what[1]))
                else:
                    raise NimbusError(HTTPStatus.NOT_FOUND, f"no such endpoint: {self.path}")
            elif method == "POST" and what == ["uploads"]:
                n = self._length(nimbus.max_upload)
                self._reply(HTTPStatus.OK, {"code": nimbus.upload(self.rfile, n)})
            elif method == "POST" and what == ["topologies"]:
                self._reply(HTTPStatus.OK, {"id": nimbus.submit(self._json())})
            elif method == "POST" and len(what) == 3 and what[0] == "topologies":
                body = self._json()
                name, action = what[1], what[2]
                if action == "kill":
                    tid = nimbus.kill(name, body.get("wait_secs"))
                elif action == "activate":
                    tid = nimbus.activate(name)
                elif action == "deactivate":
                    tid = nimbus.deactivate(name)
                elif action == "rebalance":
                    tid = nimbus.rebalance(
                        name,
                        body.get("wait_secs"),
                        body.get("num_workers"),
                        body.get("executors") or {},
                    )
                elif action == "debug":
                    component = body.get("component")
                    if component is not None and not isinstance(component, str):
                        raise NimbusError(HTTPStatus.BAD_REQUEST, "'component' must be a string")
                    tid = nimbus.set_debug(
                        name, component, bool(body.get("enabled")), body.get("percent", 10)
                    )
                else:
                    raise NimbusError(HTTPStatus.NOT_FOUND, f"no such action: {action}")
                self._reply(HTTPStatus.OK, {"id": tid})
            else:
                raise NimbusError(HTTPStatus.NOT_FOUND, f"no such endpoint: {method} {self.path}")
        except NimbusError as e:
            self._reply(e.status, {"error": str(e), **e.extra})
        except NotLeaderError as e:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(e)})
        except CoordinationUnavailableError as e:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"ZooKeeper is unavailable: {e}"})
        except CoordinationError as e:
            log.exception("request %s %s failed", method, self.path)
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(e)})

    def _send_file(self, path: Path) -> None:
        data = path.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")
