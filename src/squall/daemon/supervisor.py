"""The supervisor: runs the workers nimbus assigns to this machine's slots.

It registers itself in ZooKeeper (an ephemeral node listing its slots,
re-created after a lost session), watches the assignments, and every
``supervisor.monitor.frequency.secs`` (or when an assignment changes) makes the
processes match them:

* a slot assigned to a worker that is not running gets one: the topology's
  code is fetched from nimbus (checked against its digest) and unpacked once
  per topology, then ``python -m squall.daemon.cluster_worker`` starts in its
  own session with a boot file;
* a worker that died, or whose local heartbeat file went stale
  (``supervisor.worker.timeout.secs``; ``supervisor.worker.start.timeout.secs``
  before its first beat), is killed and started again within a monitor period;
* a worker whose slot is no longer assigned to it (topology killed,
  rebalanced, moved) gets SIGTERM, then SIGKILL after
  ``supervisor.worker.shutdown.sleep.secs``; code of topologies it no longer
  runs is deleted.

Everything it needs survives its own death: worker pids, boot files and the
last assignments it saw are on local disk, so a restarted supervisor adopts the
workers still running (same pids, no restart), and keeps restarting dead
workers from its cached assignments while ZooKeeper or nimbus is unreachable.
It only ever signals pids it recorded, after checking that the process is
still the worker it started (its command line names the boot file).

Workers it starts get a pid file ``<local-dir>/supervisor/workers/<port>.pid``
(what ``tools/reliability/chaos.py --pidfiles`` reads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import squall
from squall.cluster import conf as K
from squall.cluster.records import (
    Assignment,
    NimbusInfo,
    SupervisorInfo,
    WorkerAssignment,
    WorkerSlot,
)
from squall.cluster.state import ClusterState, LeaderElection
from squall.cluster.store import (
    ConnectionState,
    CoordinationError,
    CoordinationStore,
)
from squall.daemon.cluster_worker import Boot
from squall.daemon.code_package import PackageError, sha256, unpack_project
from squall.daemon.logviewer import stale_topology_logs, worker_dir
from squall.daemon.nimbus import connect, persistent_id

log = logging.getLogger("squall.supervisor")

WORKER_MODULE = "squall.daemon.cluster_worker"
#: How long a new worker may take to exit after SIGKILL before we give up waiting.
KILL_WAIT_SECS = 5.0


@dataclass(frozen=True)
class Desired:
    """What should run on one slot."""

    topology_id: str
    worker: WorkerAssignment
    assignment: Assignment
    status: str


@dataclass
class RunningWorker:
    """A worker process this supervisor started (or adopted after a restart)."""

    port: int
    topology_id: str
    index: int
    executors: tuple[tuple[int, int], ...]
    pid: int
    boot_file: str
    started: float  # wall clock
    proc: subprocess.Popen[bytes] | None = None

    def record(self) -> dict[str, Any]:
        """What ``<port>.json`` keeps, so that a restarted supervisor can adopt the worker."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "proc"}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> RunningWorker:
        """The worker :meth:`record` describes (raises ValueError, KeyError or TypeError)."""
        return cls(
            port=int(rec["port"]),
            topology_id=str(rec["topology_id"]),
            index=int(rec["index"]),
            executors=tuple((int(a), int(b)) for a, b in rec["executors"]),
            pid=int(rec["pid"]),
            boot_file=str(rec["boot_file"]),
            started=float(rec["started"]),
        )

    def matches(self, d: Desired) -> bool:
        return (
            self.topology_id == d.topology_id
            and self.index == d.worker.index
            and self.executors == tuple(sorted(d.worker.executors))
        )


class Supervisor:
    """The supervisor daemon's logic.

    Args:
        conf: daemon config (see :mod:`squall.cluster.conf`).
        store: the coordination store.
        local_dir: where it keeps its id, code, boot files, pid files and logs.
        fetch_code: ``(nimbus address, topology id) -> (package, meta)``; by default
            asks nimbus over HTTP (:class:`~squall.daemon.nimbus_client.NimbusClient`).
        python: the interpreter for workers.
    """

    def __init__(
        self,
        conf: Mapping[str, Any],
        store: CoordinationStore,
        *,
        local_dir: str | os.PathLike[str] | None = None,
        fetch_code: Callable[[str, str], tuple[bytes, dict[str, Any]]] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.conf = K.merged(conf)
        self.store = store
        self.state = ClusterState(store, str(self.conf[K.STORM_ZOOKEEPER_ROOT]))
        base = Path(local_dir or self.conf[K.STORM_LOCAL_DIR]).resolve()
        self.dir = base / "supervisor"
        self.workers_dir = self.dir / "workers"
        self.dist_dir = self.dir / "stormdist"
        log_dir = self.conf.get(K.STORM_LOG_DIR)
        self.logs_dir = Path(log_dir).resolve() if log_dir else self.dir / "logs"
        for d in (self.workers_dir, self.dist_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.id = persistent_id(self.dir / "id", "supervisor")
        self.host = str(self.conf[K.STORM_LOCAL_HOSTNAME])
        self.ports = tuple(int(p) for p in self.conf[K.SUPERVISOR_SLOTS_PORTS])
        self.python = python
        #: Set by whoever runs the logviewer for this supervisor, before :meth:`run`.
        self.logviewer_port = 0
        self.fetch_code = fetch_code or self._fetch_over_http
        self.started = time.time()
        self.workers: dict[int, RunningWorker] = {}
        self.restarts = 0
        self.wake = threading.Event()
        self._registered_session: int | None = None
        self._last_beat = 0.0
        self._cache_file = self.dir / "assignments.json"
        self._desired: dict[int, Desired] = self._load_cache()
        self._lock = threading.Lock()
        self._launch_errors: dict[int, str] = {}
        store.add_listener(self._on_state)
        self._adopt()

    # -- startup: adopt what survived us -------------------------------------------------
    def _adopt(self) -> None:
        for f in sorted(self.workers_dir.glob("*.json")):
            if f.name.endswith(".boot.json"):
                continue
            try:
                w = RunningWorker.from_record(json.loads(f.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("ignoring the unreadable worker record %s: %s", f, e)
                continue
            if self._is_our_worker(w):
                self.workers[w.port] = w
                log.info("adopted worker pid %s on port %s (%s)", w.pid, w.port, w.topology_id)
            else:
                self._forget_worker(w.port)

    def _is_our_worker(self, w: RunningWorker) -> bool:
        """Is ``w.pid`` still the worker we started (not a dead pid reused by another program)?"""
        if w.proc is not None:
            return w.proc.poll() is None
        try:
            with open(f"/proc/{w.pid}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            with open(f"/proc/{w.pid}/stat", "rb") as f:
                state = f.read().rpartition(b")")[2].split()[0]
        except OSError:
            return False
        return (
            state != b"Z" and WORKER_MODULE.encode() in cmdline and w.boot_file.encode() in cmdline
        )

    # -- ZooKeeper ----------------------------------------------------------------------------
    def _on_state(self, state: ConnectionState) -> None:
        self.wake.set()

    def _info(self) -> SupervisorInfo:
        now = time.time()
        return SupervisorInfo(
            id=self.id,
            host=self.host,
            ports=self.ports,
            time_secs=now,
            uptime_secs=now - self.started,
            version=getattr(squall, "__version__", ""),
            logviewer_port=self.logviewer_port,
        )

    def _register(self) -> None:
        session = self.store.session_id
        if session is None:
            return
        if self._registered_session != session:
            self.state.setup()
            self.state.register_supervisor(self._info())
            self._registered_session = session
            log.info("supervisor %s registered (%s, slots %s)", self.id, self.host, self.ports)
        elif time.time() - self._last_beat >= float(
            self.conf[K.SUPERVISOR_HEARTBEAT_FREQUENCY_SECS]
        ):
            self.state.update_supervisor(self._info())
        self._last_beat = time.time()

    def _read_assignments(self) -> dict[int, Desired] | None:
        """This supervisor's slots as ZooKeeper says, or None when it cannot be read."""
        if self.store.session_id is None:
            return None
        try:
            assignments = self.state.assignments(watch=self.wake.set)
            desired: dict[int, Desired] = {}
            for tid, (a, _v) in assignments.items():
                mine = [w for w in a.workers if w.node == self.id and w.port in self.ports]
                if not mine:
                    continue
                base = self.state.storm_base(tid, watch=self.wake.set)
                status = base[0].status if base is not None else "INACTIVE"
                for w in mine:
                    desired[w.port] = Desired(tid, w, a, status)
            return desired
        except CoordinationError as e:
            log.debug("cannot read the assignments: %s", e)
            return None

    def _load_cache(self) -> dict[int, Desired]:
        try:
            raw = json.loads(self._cache_file.read_text())
        except (OSError, ValueError):
            return {}
        out: dict[int, Desired] = {}
        try:
            for port, d in raw.items():
                a = Assignment.decode(json.dumps(d["assignment"]).encode())
                w = a.worker_at_index(int(d["index"]))
                if w is not None:
                    out[int(port)] = Desired(str(d["topology_id"]), w, a, str(d["status"]))
        except (ValueError, KeyError, TypeError) as e:
            log.warning("ignoring the unreadable assignment cache: %s", e)
            return {}
        return out

    def _save_cache(self, desired: Mapping[int, Desired]) -> None:
        data = {
            str(port): {
                "topology_id": d.topology_id,
                "index": d.worker.index,
                "status": d.status,
                "assignment": json.loads(d.assignment.encode()),
            }
            for port, d in desired.items()
        }
        tmp = self._cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._cache_file)

    # -- the monitor pass ---------------------------------------------------------------------
    def step(self) -> None:
        """Make the worker processes match the assignments (cached ones if ZooKeeper is away)."""
        with self._lock:
            try:
                self._register()
            except CoordinationError as e:
                log.debug("cannot register: %s", e)
            desired = self._read_assignments()
            if desired is not None and desired != self._desired:
                self._desired = desired
                self._save_cache(desired)
            self._reconcile(self._desired)

    def _reconcile(self, desired: Mapping[int, Desired]) -> None:
        to_stop: list[RunningWorker] = []
        for port, w in list(self.workers.items()):
            d = desired.get(port)
            if d is None or not w.matches(d):
                to_stop.append(w)
        self._stop_workers(to_stop, "its slot is no longer assigned to it")
        now = time.time()
        timeout = float(self.conf[K.SUPERVISOR_WORKER_TIMEOUT_SECS])
        start_timeout = float(self.conf[K.SUPERVISOR_WORKER_START_TIMEOUT_SECS])
        hung: list[RunningWorker] = []
        for port, w in list(self.workers.items()):
            if not self._is_our_worker(w):
                code = w.proc.returncode if w.proc is not None else None
                log.warning(
                    "worker pid %s on port %s (%s) died%s; restarting it",
                    w.pid,
                    port,
                    w.topology_id,
                    f" with code {code}" if code is not None else "",
                )
                self._forget_worker(port)
                continue
            beat = self._last_local_beat(port, w.pid)
            if beat is None:
                if now - w.started > start_timeout:
                    hung.append(w)
            elif now - beat > timeout:
                hung.append(w)
        self._stop_workers(hung, "its heartbeat is stale")
        for port, d in sorted(desired.items()):
            if port in self.workers:
                continue
            try:
                self._launch(port, d)
                self._launch_errors.pop(port, None)
            except Exception as e:
                # Retried every pass (nimbus may be restarting): said once per cause.
                if self._launch_errors.get(port) == str(e):
                    continue
                self._launch_errors[port] = str(e)
                log.error(
                    "cannot start worker %s of %s on port %s: %s",
                    d.worker.index,
                    d.topology_id,
                    port,
                    e,
                )
        self._cleanup_code(desired)

    def _last_local_beat(self, port: int, pid: int) -> float | None:
        try:
            rec = json.loads((self.workers_dir / f"{port}.hb").read_text())
        except (OSError, ValueError):
            return None
        if rec.get("pid") != pid:
            return None
        return float(rec.get("time", 0.0))

    # -- starting and stopping workers -------------------------------------------------------------
    def _launch(self, port: int, d: Desired) -> None:
        code_dir, meta = self._ensure_code(d)
        boot_file = self.workers_dir / f"{port}.boot.json"
        hb_file = self.workers_dir / f"{port}.hb"
        with contextlib.suppress(OSError):
            hb_file.unlink()
        log_dir = worker_dir(self.logs_dir, d.topology_id, port)
        log_dir.mkdir(parents=True, exist_ok=True)
        boot = Boot(
            topology_id=d.topology_id,
            supervisor_id=self.id,
            host=self.host,
            port=port,
            index=d.worker.index,
            code_dir=str(code_dir),
            name=str(meta["name"]),
            target=str(meta["target"]),
            topology_conf=meta.get("conf") or {},
            assignment=d.assignment,
            status=d.status,
            component_tasks={k: (int(v[0]), int(v[1])) for k, v in meta["component_tasks"].items()},
            daemon_conf=_worker_conf(self.conf),
            heartbeat_file=str(hb_file),
            log_dir=str(log_dir),
            curve=meta.get("curve"),
        )
        # It holds the ZooKeeper credentials, if any: readable by this user only.
        fd = os.open(boot_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(boot.to_json())
        env = dict(os.environ)
        root = str(Path(squall.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        venv_python = code_dir.parent / "venv" / "bin" / "python"
        python = str(venv_python) if venv_python.is_file() else self.python
        # The worker writes worker.log itself (rotated); what escapes logging (prints,
        # a crash before logging is set up) lands in worker.log.out / worker.log.err.
        with (
            open(log_dir / "worker.log.out", "ab") as out,
            open(log_dir / "worker.log.err", "ab") as err,
        ):
            proc = subprocess.Popen(
                [python, "-m", WORKER_MODULE, str(boot_file)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(code_dir),
                # Its own session: the worker outlives us, and our Ctrl-C is not its.
                start_new_session=True,
            )
        w = RunningWorker(
            port=port,
            topology_id=d.topology_id,
            index=d.worker.index,
            executors=tuple(sorted(d.worker.executors)),
            pid=proc.pid,
            boot_file=str(boot_file),
            started=time.time(),
            proc=proc,
        )
        self.workers[port] = w
        (self.workers_dir / f"{port}.json").write_text(json.dumps(w.record()))
        (self.workers_dir / f"{port}.pid").write_text(str(proc.pid))
        self.restarts += 1
        log.info(
            "started worker %s of %s on port %s (pid %s)",
            d.worker.index,
            d.topology_id,
            port,
            proc.pid,
        )

    def _stop_workers(self, workers: list[RunningWorker], why: str) -> None:
        if not workers:
            return
        for w in workers:
            log.info(
                "stopping worker pid %s on port %s (%s): %s", w.pid, w.port, w.topology_id, why
            )
            self._signal(w, signal.SIGTERM)
        deadline = time.time() + float(self.conf[K.SUPERVISOR_WORKER_SHUTDOWN_SLEEP_SECS])
        left = list(workers)
        while left and time.time() < deadline:
            left = [w for w in left if self._is_our_worker(w)]
            if left:
                time.sleep(0.05)
        for w in left:
            log.warning("worker pid %s did not stop in time; killing it", w.pid)
            self._signal(w, signal.SIGKILL)
        kill_deadline = time.time() + KILL_WAIT_SECS
        while any(self._is_our_worker(w) for w in left) and time.time() < kill_deadline:
            time.sleep(0.05)
        for w in workers:
            self._forget_worker(w.port)

    def _signal(self, w: RunningWorker, sig: signal.Signals) -> None:
        if not self._is_our_worker(w):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.pid, sig)

    def _forget_worker(self, port: int) -> None:
        w = self.workers.pop(port, None)
        if w is not None and w.proc is not None:
            with contextlib.suppress(Exception):
                w.proc.wait(0)
        for suffix in (".json", ".pid", ".hb", ".boot.json"):
            with contextlib.suppress(OSError):
                (self.workers_dir / f"{port}{suffix}").unlink()

    def kill_all_workers(self) -> None:
        """Stop every worker this supervisor runs (``squall supervisor --kill-workers``, tests)."""
        with self._lock:
            self._stop_workers(list(self.workers.values()), "the supervisor is told to stop them")

    # -- code --------------------------------------------------------------------------------------
    def _ensure_code(self, d: Desired) -> tuple[Path, dict[str, Any]]:
        folder = self.dist_dir / d.topology_id
        code_dir, meta_file = folder / "code", folder / "meta.json"
        if meta_file.is_file():
            meta: dict[str, Any] = json.loads(meta_file.read_text())
            return code_dir, meta
        base = self.state.storm_base(d.topology_id) if self.store.session_id else None
        if base is None:
            raise RuntimeError(f"topology {d.topology_id} is not known (ZooKeeper unreachable?)")
        expected = base[0].code_sha256
        errors = []
        for address in self._nimbus_addresses():
            try:
                data, meta = self.fetch_code(address, d.topology_id)
            except Exception as e:
                errors.append(f"{address}: {e}")
                continue
            if sha256(data) != expected:
                errors.append(f"{address}: the package has the wrong digest")
                continue
            break
        else:
            raise RuntimeError("cannot fetch the code: " + ("; ".join(errors) or "no nimbus"))
        tmp = self.dist_dir / f".{d.topology_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            unpack_project(data, tmp / "code")
        except PackageError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        meta["component_tasks"] = {k: list(v) for k, v in base[0].component_tasks.items()}
        self._make_environment(tmp, d.topology_id)
        # It may hold the topology's CURVE keys: readable by this user only.
        fd = os.open(tmp / "meta.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(meta))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        log.info("fetched the code of %s", d.topology_id)
        return code_dir, meta

    def _make_environment(self, folder: Path, tid: str) -> None:
        """A virtualenv for the topology from its project's ``requirements.txt``, if any.

        The topology's own packages come first in the worker's ``sys.path``; what
        the supervisor's Python has (squall's own dependencies) comes after them,
        through a ``.pth`` file, so the topology's pins win and nothing is shared
        between topologies.
        """
        req = folder / "code" / "requirements.txt"
        if not req.is_file() or not self.conf.get(K.SUPERVISOR_TOPOLOGY_VENV, True):
            return
        venv = folder / "venv"
        log.info("building a virtualenv for %s from its requirements.txt", tid)
        # Without its own pip (ensurepip takes seconds): the supervisor's pip installs into it.
        _run(
            [self.python, "-m", "venv", "--without-pip", str(venv)],
            f"{tid}: cannot create a virtualenv",
        )
        python = venv / "bin" / "python"
        _run(
            [
                self.python,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(req),
            ],
            f"{tid}: pip could not install requirements.txt",
            cwd=folder / "code",
        )
        sites = sorted((venv / "lib").glob("python*/site-packages"))
        if sites:
            host = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
            (sites[0] / "squall-host.pth").write_text("\n".join(host) + "\n")

    def _nimbus_addresses(self) -> list[str]:
        from squall.daemon.nimbus_client import seeds_from_conf

        out: list[str] = []
        with contextlib.suppress(CoordinationError):
            if self.store.session_id is not None:
                election = LeaderElection(self.state, NimbusInfo("", "", 0))
                out = [info.address for _n, info in election.candidates()]
        for seed in seeds_from_conf(self.conf):
            if seed not in out:
                out.append(seed)
        return out

    def _fetch_over_http(self, address: str, tid: str) -> tuple[bytes, dict[str, Any]]:
        from squall.daemon.nimbus_client import NimbusClient

        client = NimbusClient([address], self.conf.get(K.NIMBUS_AUTH_TOKEN) or None)
        return client.code(address, tid)

    def _cleanup_code(self, desired: Mapping[int, Desired]) -> None:
        keep = {d.topology_id for d in desired.values()} | {
            w.topology_id for w in self.workers.values()
        }
        for folder in self.dist_dir.iterdir():
            if folder.name.startswith("."):
                continue
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
                log.info("removed the code of %s", folder.name)
        age = float(self.conf[K.LOGVIEWER_CLEANUP_AGE_MINS]) * 60.0
        for folder in stale_topology_logs(self.logs_dir, keep, time.time(), age):
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the logs of %s (untouched for %.0f min)", folder.name, age / 60)

    # -- running -----------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Monitor passes until ``stop``; ZooKeeper trouble never ends it (cached assignments)."""
        freq = float(self.conf[K.SUPERVISOR_MONITOR_FREQUENCY_SECS])
        started = threading.Event()

        def start_store() -> None:
            connect(self.store, stop, f"supervisor {self.id}")
            started.set()
            self.wake.set()

        # Connecting may take long (ZooKeeper down): workers are restarted meanwhile.
        threading.Thread(target=start_store, name="squall-zk-connect", daemon=True).start()
        while not stop.is_set():
            self.wake.clear()
            try:
                self.step()
            except Exception:
                log.exception("supervisor %s: monitor pass failed", self.id)
            self.wake.wait(freq)
        if started.is_set():
            with contextlib.suppress(Exception):
                self.store.stop()


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{what}: {e}") from e
    if proc.returncode != 0:
        raise RuntimeError(f"{what}:\n{(proc.stderr or proc.stdout).strip()[-2000:]}")


def _worker_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The daemon keys a worker needs (ZooKeeper, heartbeats)."""
    keys = (
        K.STORM_ZOOKEEPER_SERVERS,
        K.STORM_ZOOKEEPER_PORT,
        K.STORM_ZOOKEEPER_ROOT,
        K.STORM_ZOOKEEPER_SESSION_TIMEOUT,
        K.STORM_ZOOKEEPER_CONNECTION_TIMEOUT,
        K.STORM_ZOOKEEPER_AUTH_PAYLOAD,
        K.WORKER_HEARTBEAT_FREQUENCY_SECS,
    )
    return {k: conf[k] for k in keys if conf.get(k) is not None}


def worker_pids(local_dir: str | os.PathLike[str]) -> dict[int, int]:
    """port -> pid of the workers a supervisor with this local dir started (from its pid files)."""
    out: dict[int, int] = {}
    for f in (Path(local_dir) / "supervisor" / "workers").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            out[int(f.stem)] = int(f.read_text().strip())
    return out


__all__ = ["Desired", "RunningWorker", "Supervisor", "WorkerSlot", "worker_pids"]
