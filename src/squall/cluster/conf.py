"""Config keys of the cluster daemons (Storm's names where Storm has one) and their defaults.

Daemons read a config file (JSON or TOML, ``--conf``) plus ``-c key=value``
overrides; these are the keys they understand. Times keep Storm's units
(``storm.zookeeper.session.timeout`` is in milliseconds, the rest in seconds).

>>> zookeeper_hosts({"storm.zookeeper.servers": ["zk1", "zk2:2182"]})
'zk1:2181,zk2:2182'
>>> get({}, NIMBUS_TASK_TIMEOUT_SECS)
30
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

STORM_ZOOKEEPER_SERVERS: Final = "storm.zookeeper.servers"
STORM_ZOOKEEPER_PORT: Final = "storm.zookeeper.port"
STORM_ZOOKEEPER_ROOT: Final = "storm.zookeeper.root"
STORM_ZOOKEEPER_SESSION_TIMEOUT: Final = "storm.zookeeper.session.timeout"
STORM_ZOOKEEPER_CONNECTION_TIMEOUT: Final = "storm.zookeeper.connection.timeout"
# ``user:password``: a digest ACL on every node the daemons create (Storm's name).
STORM_ZOOKEEPER_AUTH_PAYLOAD: Final = "storm.zookeeper.auth.payload"
STORM_LOCAL_DIR: Final = "storm.local.dir"
# Where worker logs go: <dir>/workers-artifacts/<topology-id>/<port>/worker.log (Storm's
# layout); unset means <storm.local.dir>/supervisor/logs.
STORM_LOG_DIR: Final = "storm.log.dir"
# The address a supervisor's workers bind and advertise (Storm's name); loopback by default.
STORM_LOCAL_HOSTNAME: Final = "storm.local.hostname"

NIMBUS_SEEDS: Final = "nimbus.seeds"
# Nimbus serves its HTTP/JSON API on Storm's Thrift port.
NIMBUS_THRIFT_PORT: Final = "nimbus.thrift.port"
# The address nimbus binds and advertises to clients and supervisors; loopback by default.
NIMBUS_HOST: Final = "nimbus.host"
NIMBUS_TASK_TIMEOUT_SECS: Final = "nimbus.task.timeout.secs"
NIMBUS_MONITOR_FREQ_SECS: Final = "nimbus.monitor.freq.secs"
NIMBUS_TASK_LAUNCH_SECS: Final = "nimbus.task.launch.secs"
# Squall's: a bearer token every API caller must send, when set.
NIMBUS_AUTH_TOKEN: Final = "nimbus.auth.token"
# Squall's: the largest topology package nimbus accepts (checked before reading it).
NIMBUS_MAX_UPLOAD_BYTES: Final = "nimbus.max.upload.bytes"
# Squall's: the largest JSON request body.
NIMBUS_MAX_REQUEST_BYTES: Final = "nimbus.max.request.bytes"

SUPERVISOR_SLOTS_PORTS: Final = "supervisor.slots.ports"
SUPERVISOR_MONITOR_FREQUENCY_SECS: Final = "supervisor.monitor.frequency.secs"
SUPERVISOR_HEARTBEAT_FREQUENCY_SECS: Final = "supervisor.heartbeat.frequency.secs"
SUPERVISOR_WORKER_TIMEOUT_SECS: Final = "supervisor.worker.timeout.secs"
SUPERVISOR_WORKER_START_TIMEOUT_SECS: Final = "supervisor.worker.start.timeout.secs"
SUPERVISOR_WORKER_SHUTDOWN_SLEEP_SECS: Final = "supervisor.worker.shutdown.sleep.secs"
# Squall's: a virtualenv per topology from its project's requirements.txt (pip runs on the
# supervisor: it needs an index, or wheels shipped in the project).
SUPERVISOR_TOPOLOGY_VENV: Final = "supervisor.topology.virtualenv"
WORKER_HEARTBEAT_FREQUENCY_SECS: Final = "worker.heartbeat.frequency.secs"
# Every supervisor serves its workers' logs here (Storm's logviewer); 0 picks a free port,
# -1 turns it off.
LOGVIEWER_PORT: Final = "logviewer.port"
# The logs of a topology no worker here runs are deleted this long after their last write
# (Storm's key and default: 7 days).
LOGVIEWER_CLEANUP_AGE_MINS: Final = "logviewer.cleanup.age.mins"

DEFAULTS: Final[Mapping[str, Any]] = {
    STORM_ZOOKEEPER_SERVERS: ["127.0.0.1"],
    STORM_ZOOKEEPER_PORT: 2181,
    STORM_ZOOKEEPER_ROOT: "/squall",
    STORM_ZOOKEEPER_SESSION_TIMEOUT: 20000,
    STORM_ZOOKEEPER_CONNECTION_TIMEOUT: 15000,
    STORM_ZOOKEEPER_AUTH_PAYLOAD: None,
    STORM_LOCAL_DIR: "squall-local",
    STORM_LOG_DIR: None,
    STORM_LOCAL_HOSTNAME: "127.0.0.1",
    NIMBUS_SEEDS: ["127.0.0.1"],
    NIMBUS_THRIFT_PORT: 6627,
    NIMBUS_HOST: "127.0.0.1",
    NIMBUS_TASK_TIMEOUT_SECS: 30,
    NIMBUS_MONITOR_FREQ_SECS: 10,
    NIMBUS_TASK_LAUNCH_SECS: 120,
    NIMBUS_AUTH_TOKEN: None,
    NIMBUS_MAX_UPLOAD_BYTES: 64 * 1024 * 1024,
    NIMBUS_MAX_REQUEST_BYTES: 1024 * 1024,
    SUPERVISOR_SLOTS_PORTS: [6700, 6701, 6702, 6703],
    SUPERVISOR_MONITOR_FREQUENCY_SECS: 3,
    SUPERVISOR_HEARTBEAT_FREQUENCY_SECS: 5,
    SUPERVISOR_WORKER_TIMEOUT_SECS: 30,
    SUPERVISOR_WORKER_START_TIMEOUT_SECS: 120,
    SUPERVISOR_WORKER_SHUTDOWN_SLEEP_SECS: 3,
    SUPERVISOR_TOPOLOGY_VENV: True,
    WORKER_HEARTBEAT_FREQUENCY_SECS: 1,
    LOGVIEWER_PORT: 8000,
    LOGVIEWER_CLEANUP_AGE_MINS: 10080,
}

_NUMBERS: Final = frozenset(
    {
        STORM_ZOOKEEPER_PORT,
        STORM_ZOOKEEPER_SESSION_TIMEOUT,
        STORM_ZOOKEEPER_CONNECTION_TIMEOUT,
        NIMBUS_THRIFT_PORT,
        NIMBUS_TASK_TIMEOUT_SECS,
        NIMBUS_MONITOR_FREQ_SECS,
        NIMBUS_TASK_LAUNCH_SECS,
        NIMBUS_MAX_UPLOAD_BYTES,
        NIMBUS_MAX_REQUEST_BYTES,
        SUPERVISOR_MONITOR_FREQUENCY_SECS,
        SUPERVISOR_HEARTBEAT_FREQUENCY_SECS,
        SUPERVISOR_WORKER_TIMEOUT_SECS,
        SUPERVISOR_WORKER_START_TIMEOUT_SECS,
        SUPERVISOR_WORKER_SHUTDOWN_SLEEP_SECS,
        WORKER_HEARTBEAT_FREQUENCY_SECS,
        LOGVIEWER_CLEANUP_AGE_MINS,
    }
)


class DaemonConfigError(ValueError):
    """A daemon config value is missing, of the wrong type, or out of range (names the key)."""


def get(conf: Mapping[str, Any], key: str) -> Any:
    """``conf[key]``, or the default when unset (or None)."""
    value = conf.get(key)
    return DEFAULTS.get(key) if value is None else value


def merged(conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults overlaid with ``conf``, checked.

    Raises:
        DaemonConfigError: naming the key at fault.
    """
    out = dict(DEFAULTS)
    out.update({k: v for k, v in (conf or {}).items() if v is not None})
    check(out)
    return out


def check(conf: Mapping[str, Any]) -> None:
    """Raise :class:`DaemonConfigError` naming the first bad key.

    >>> check({"supervisor.slots.ports": [6700, "x"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    squall.cluster.conf.DaemonConfigError: supervisor.slots.ports must be a list of ports ...
    """
    for key in _NUMBERS:
        value = conf.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise DaemonConfigError(f"{key} must be a number > 0, got {value!r}")
    ports = conf.get(SUPERVISOR_SLOTS_PORTS)
    if ports is not None and (
        not isinstance(ports, list | tuple)
        or not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports)
        or len(set(ports)) != len(ports)
    ):
        raise DaemonConfigError(
            f"{SUPERVISOR_SLOTS_PORTS} must be a list of ports (1..65535), got {ports!r}"
        )
    for key in (STORM_ZOOKEEPER_SERVERS, NIMBUS_SEEDS):
        value = conf.get(key)
        if value is not None and (
            not isinstance(value, list | tuple) or not all(isinstance(s, str) and s for s in value)
        ):
            raise DaemonConfigError(f"{key} must be a list of host names, got {value!r}")
    root = conf.get(STORM_ZOOKEEPER_ROOT)
    if root is not None and (not isinstance(root, str) or not root.startswith("/") or root == "/"):
        raise DaemonConfigError(
            f"{STORM_ZOOKEEPER_ROOT} must be an absolute path below '/', got {root!r}"
        )
    lv = conf.get(LOGVIEWER_PORT)
    if lv is not None and (isinstance(lv, bool) or not isinstance(lv, int) or not -1 <= lv < 65536):
        raise DaemonConfigError(
            f"{LOGVIEWER_PORT} must be a port, 0 (any free one) or -1 (none), got {lv!r}"
        )
    payload = conf.get(STORM_ZOOKEEPER_AUTH_PAYLOAD)
    if payload is not None and (not isinstance(payload, str) or ":" not in payload):
        raise DaemonConfigError(f"{STORM_ZOOKEEPER_AUTH_PAYLOAD} must be 'user:password'")


def zookeeper_hosts(conf: Mapping[str, Any]) -> str:
    """``storm.zookeeper.servers`` + ``storm.zookeeper.port`` as kazoo's ``host:port,...``."""
    port = int(get(conf, STORM_ZOOKEEPER_PORT))
    servers = get(conf, STORM_ZOOKEEPER_SERVERS)
    if isinstance(servers, str):
        servers = [s for s in servers.split(",") if s.strip()]
    out = []
    for s in servers:
        s = str(s).strip()
        out.append(s if ":" in s else f"{s}:{port}")
    return ",".join(out)


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a daemon config file: ``.json`` or ``.toml`` (flat ``"dotted.key" = value`` pairs).

    Raises:
        DaemonConfigError: the file cannot be read or parsed (names the file and line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise DaemonConfigError(f"{p}: cannot read the config file: {e.strerror}") from e
    try:
        if p.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DaemonConfigError(f"{p}: {e}") from e
    except json.JSONDecodeError as e:
        raise DaemonConfigError(f"{p}:{e.lineno}: {e.msg}") from e
    if not isinstance(data, dict):
        raise DaemonConfigError(f"{p}: the config must be a mapping of keys to values")
    return _flatten(data)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    # TOML tables ([nimbus] task.timeout.secs = 5) read as dotted keys, like storm.yaml.
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
