"""Cluster commands: the daemons (``nimbus``, ``supervisor``, ``dev-zookeeper``) and the
client commands (``submit``, ``list``, ``kill``, ``activate``, ``deactivate``, ``rebalance``).

Daemons and clients read the cluster's config from ``--conf FILE`` (JSON or
TOML; default: the file named by ``$SQUALL_CONF``) plus ``-c key=value``
overrides, with Storm's key names (``storm.zookeeper.servers``,
``nimbus.seeds``, ``supervisor.slots.ports``...; see ``docs/cluster.md``).

Exit status of the client commands: 0 done; 1 nimbus refused (the message says
why: unknown topology, name in use, no leader nimbus...) or the topology could
not be loaded or packed; 2 bad usage.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squall import config as C
from squall.cli.options import add_conf_file_option, add_config_option, add_nimbus_options
from squall.cluster import conf as K

if TYPE_CHECKING:
    from squall.daemon.nimbus_client import NimbusClient

# The daemons and the client are imported by the commands that use them, so that
# `squall run` and `squall --help` do not pay for them.

EXIT_OK = 0
EXIT_REFUSED = 1

#: Storm's ``ListTopologies`` row format.
LIST_FORMAT = "%-20s %-10s %-10s %-12s %-12s %-20s %-20s"

#: Where ``dev-zookeeper`` keeps its data (Storm's key and default).
DEV_ZOOKEEPER_PATH = "dev.zookeeper.path"
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")


def _common(p: argparse.ArgumentParser, topology_conf: bool = False) -> None:
    add_conf_file_option(p)
    add_config_option(
        p,
        (
            "set a topology config key (repeatable; VALUE is JSON if it parses)"
            if topology_conf
            else "override a cluster config key (repeatable; VALUE is JSON if it parses)"
        ),
        dest="overrides",
    )


def _client_options(p: argparse.ArgumentParser) -> None:
    add_nimbus_options(p, "nimbus.seeds and nimbus.thrift.port from the config")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the cluster commands to the ``squall`` parser."""
    for name, helptext, description, command in (
        (
            "nimbus",
            "run a nimbus (cluster master) daemon",
            "Run nimbus: accept topologies, schedule them, watch their workers.",
            nimbus_command,
        ),
        (
            "supervisor",
            "run a supervisor daemon (starts this machine's workers)",
            "Run a supervisor: start and watch the workers nimbus assigns here.",
            supervisor_command,
        ),
    ):
        p = commands.add_parser(name, help=helptext, description=description)
        _common(p)
        p.add_argument("--pid-file", metavar="FILE", help="write the daemon's pid here")
        p.set_defaults(func=command)

    p = commands.add_parser(
        "dev-zookeeper",
        help="run a throw-away ZooKeeper for trying a cluster on one machine",
        description=(
            "Run a standalone ZooKeeper (Debian's zookeeper package) on 127.0.0.1 at\n"
            "storm.zookeeper.port, keeping its data in dev.zookeeper.path. For development only."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.set_defaults(func=dev_zookeeper_command)

    p = commands.add_parser(
        "submit",
        help="send a topology to the cluster",
        description=(
            "Package the topology's project folder (minus caches and virtualenvs),\n"
            "upload it to the leader nimbus and start the topology."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="FILE_OR_MODULE[:ATTR]")
    p.add_argument("-n", "--name", help="topology name (default: the topology's own name)")
    p.add_argument("--inactive", action="store_true", help="submit it deactivated")
    _common(p, topology_conf=True)
    _client_options(p)
    p.set_defaults(func=submit_command)

    p = commands.add_parser("list", help="list the cluster's topologies")
    _common(p)
    _client_options(p)
    p.set_defaults(func=list_command)

    p = commands.add_parser(
        "get-errors",
        help="the latest error of each component of a topology (storm get-errors)",
        description=(
            "Print, as JSON, the latest error of every component of a running topology:\n"
            '{"Topology Name": NAME, "Comp-Errors": {COMPONENT: ERROR}} (Storm\'s format).'
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("topology", metavar="NAME")
    _common(p)
    _client_options(p)
    p.set_defaults(func=get_errors_command)

    for name, helptext in (
        ("kill", "kill a topology: deactivate it, wait, remove it"),
        ("activate", "activate a topology's spouts"),
        ("deactivate", "deactivate a topology's spouts"),
        ("rebalance", "spread a topology again, with new worker and executor counts"),
    ):
        p = commands.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:])
        p.add_argument("topology", metavar="NAME")
        if name in ("kill", "rebalance"):
            p.add_argument(
                "-w",
                "--wait",
                type=float,
                metavar="SECS",
                help="seconds to wait with the spouts deactivated (default: the message timeout)",
            )
        if name == "rebalance":
            p.add_argument("-n", "--num-workers", type=int, metavar="N", help="new worker count")
            p.add_argument(
                "-e",
                "--executors",
                action="append",
                default=[],
                metavar="COMPONENT=N",
                help="new executor count for a component (repeatable)",
            )
        _common(p)
        _client_options(p)
        p.set_defaults(func=_action_command, action=name)


# -- config ------------------------------------------------------------------------------
def _conf(args: argparse.Namespace, topology_conf: bool = False) -> dict[str, Any]:
    conf: dict[str, Any] = {}
    if args.conf:
        conf.update(K.load_file(args.conf))
    if not topology_conf:
        conf.update(dict(args.overrides))
    return K.merged(conf)


_Handler = Callable[[argparse.Namespace], int]
_ConfiguredCommand = Callable[[argparse.Namespace, dict[str, Any]], int]


def _configured(topology_conf: bool = False) -> Callable[[_ConfiguredCommand], _Handler]:
    """Make ``command(args, conf)`` a handler of ``args`` alone.

    The handler reads the config first (see :func:`_conf`); one that cannot be
    read or is invalid is bad usage: its message, and exit status 2.
    """

    def wrap(command: _ConfiguredCommand) -> _Handler:
        @functools.wraps(command)
        def handler(args: argparse.Namespace) -> int:
            try:
                conf = _conf(args, topology_conf)
            except K.DaemonConfigError as e:
                return _fail(str(e), 2)
            return command(args, conf)

        return handler

    return wrap


def _start_daemon(pid_file: str | None) -> threading.Event:
    """Log to stderr, write the pid file; returns the event that SIGINT and SIGTERM set."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    return stop


def _fail(message: str, status: int = EXIT_REFUSED) -> int:
    sys.stderr.write(f"squall: {message}\n")
    return status


# -- daemons ------------------------------------------------------------------------------
@_configured()
def nimbus_command(args: argparse.Namespace, conf: dict[str, Any]) -> int:
    """``squall nimbus``: the HTTP API on nimbus.host:nimbus.thrift.port, and the monitor loop."""
    from squall.cluster import zookeeper_store
    from squall.daemon.nimbus import Nimbus, NimbusServer
    from squall.daemon.nimbus_client import NimbusClient

    stop = _start_daemon(args.pid_file)
    token = conf.get(K.NIMBUS_AUTH_TOKEN) or None

    def fetch(info: Any, tid: str) -> tuple[bytes, dict[str, Any]]:
        return NimbusClient([info.address], token).code(info.address, tid)

    try:
        server = NimbusServer(str(conf[K.NIMBUS_HOST]), int(conf[K.NIMBUS_THRIFT_PORT]))
    except OSError as e:
        return _fail(
            f"nimbus cannot listen on {conf[K.NIMBUS_HOST]}:{conf[K.NIMBUS_THRIFT_PORT]}: {e}"
        )
    conf[K.NIMBUS_THRIFT_PORT] = server.server_address[1]
    nimbus = Nimbus(conf, zookeeper_store(conf), fetch_code=fetch)
    server.nimbus = nimbus
    threading.Thread(target=server.serve_forever, name="squall-nimbus-api", daemon=True).start()
    logging.getLogger("squall.nimbus").info(
        "nimbus %s listening on %s:%s (ZooKeeper %s%s)",
        nimbus.id,
        nimbus.host,
        nimbus.port,
        K.zookeeper_hosts(conf),
        conf[K.STORM_ZOOKEEPER_ROOT],
    )
    try:
        nimbus.run(stop)
    finally:
        server.shutdown()
        server.server_close()
        nimbus.store.stop()
    return EXIT_OK


@_configured()
def supervisor_command(args: argparse.Namespace, conf: dict[str, Any]) -> int:
    """``squall supervisor``: run until SIGINT/SIGTERM (its workers keep running)."""
    from squall.cluster import zookeeper_store
    from squall.daemon.supervisor import Supervisor

    stop = _start_daemon(args.pid_file)
    supervisor = Supervisor(conf, zookeeper_store(conf))
    viewer = _start_logviewer(conf, supervisor)
    logging.getLogger("squall.supervisor").info(
        "supervisor %s on %s with slots %s (ZooKeeper %s%s)",
        supervisor.id,
        supervisor.host,
        list(supervisor.ports),
        K.zookeeper_hosts(conf),
        conf[K.STORM_ZOOKEEPER_ROOT],
    )
    try:
        supervisor.run(stop)
    finally:
        if viewer is not None:
            viewer.stop()
    return EXIT_OK


def _start_logviewer(conf: dict[str, Any], supervisor: Any) -> Any:
    """The supervisor's logviewer (its workers' logs for the UI), or None if it cannot bind."""
    from squall.daemon.logviewer import LogViewer

    port = int(conf.get(K.LOGVIEWER_PORT) or 0)
    if port < 0:
        return None
    try:
        viewer = LogViewer(
            supervisor.logs_dir,
            supervisor.host,
            int(port),
            conf.get(K.NIMBUS_AUTH_TOKEN) or None,
        ).start()
    except OSError as e:
        logging.getLogger("squall.supervisor").warning(
            "no logviewer: cannot listen on %s:%s (%s); the UI cannot show this machine's "
            "worker logs (set %s to a free port, or 0)",
            supervisor.host,
            port,
            e,
            K.LOGVIEWER_PORT,
        )
        return None
    supervisor.logviewer_port = viewer.port
    logging.getLogger("squall.supervisor").info(
        "logviewer on %s:%s serving %s", supervisor.host, viewer.port, supervisor.logs_dir
    )
    return viewer


def dev_zookeeper_command(args: argparse.Namespace) -> int:
    """``squall dev-zookeeper``: exec a standalone ZooKeeper in the foreground."""
    raw: dict[str, Any] = K.load_file(args.conf) if args.conf else {}
    raw.update(dict(args.overrides))
    port = int(raw.get(K.STORM_ZOOKEEPER_PORT) or K.DEFAULTS[K.STORM_ZOOKEEPER_PORT])
    path = Path(raw.get(DEV_ZOOKEEPER_PATH) or Path(tempfile.gettempdir()) / "dev-squall-zookeeper")
    if not ZOOKEEPER_JAR.is_file():
        return _fail(
            f"{ZOOKEEPER_JAR} is missing: install Debian's zookeeper package "
            "(apt-get install zookeeper)"
        )
    java = shutil.which("java")
    if java is None:
        return _fail("java is not installed")
    (path / "data").mkdir(parents=True, exist_ok=True)
    cfg = path / "zoo.cfg"
    cfg.write_text(
        "\n".join(
            [
                "tickTime=2000",
                f"dataDir={path / 'data'}",
                f"clientPort={port}",
                "clientPortAddress=127.0.0.1",
                "maxClientCnxns=0",
                "admin.enableServer=false",
                "4lw.commands.whitelist=ruok,srvr,stat,mntr",
                "",
            ]
        )
    )
    cp = str(ZOOKEEPER_JAR)
    simple = Path("/usr/share/java/slf4j-simple.jar")
    if simple.is_file():
        cp += f":{simple}"
    sys.stderr.write(f"squall dev-zookeeper: 127.0.0.1:{port}, data in {path}\n")
    sys.stderr.flush()
    os.execv(
        java,
        [
            java,
            "-Xmx256m",
            "-Djava.net.preferIPv4Stack=true",
            "-cp",
            cp,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(cfg),
        ],
    )


# -- clients -------------------------------------------------------------------------------
def nimbus_client(
    conf: dict[str, Any], nimbus: str | None = None, token: str | None = None
) -> NimbusClient:
    """A client of ``nimbus`` (``HOST:PORT``), else of the config's ``nimbus.seeds``.

    Its token is ``token``, else ``nimbus.auth.token``, else ``$SQUALL_NIMBUS_TOKEN``.
    """
    from squall.daemon.nimbus_client import NimbusClient

    secret = token or conf.get(K.NIMBUS_AUTH_TOKEN) or os.environ.get("SQUALL_NIMBUS_TOKEN")
    client = NimbusClient([nimbus]) if nimbus else NimbusClient.from_conf(conf)
    client.token = secret or None
    return client


def _client(args: argparse.Namespace, conf: dict[str, Any]) -> NimbusClient:
    return nimbus_client(conf, args.nimbus, args.token)


def _reply(ask: Callable[[], str], refused: str = "") -> int:
    """Print what ``ask()`` returns; when nimbus refuses, its message after ``refused``, exit 1."""
    from squall.daemon.nimbus_client import NimbusClientError

    try:
        text = ask()
    except NimbusClientError as e:
        return _fail(f"{refused}{e}")
    sys.stdout.write(text)
    return EXIT_OK


@_configured(topology_conf=True)
def submit_command(args: argparse.Namespace, conf: dict[str, Any]) -> int:
    """``squall submit``: load, check and package the topology, then upload and submit it."""
    from squall.api.errors import InvalidTopologyError
    from squall.cli.loader import TopologyLoadError
    from squall.daemon.code_package import PackageError

    topology_conf = dict(args.overrides)
    try:
        request, package = prepare_submission(args.target, args.name, topology_conf)
    except (TopologyLoadError, InvalidTopologyError, C.ConfigError, PackageError) as e:
        return _fail(str(e))
    request["inactive"] = bool(args.inactive)
    client = _client(args, conf)

    def upload_and_submit() -> str:
        request["code"] = client.upload(package)
        tid = client.submit(request)
        return (
            f"Submitted topology {request['name']!r} as {tid} "
            f"({len(package)} byte package, {request['num_workers']} workers)\n"
        )

    return _reply(upload_and_submit, f"nimbus refused the topology {request['name']!r}: ")


def prepare_submission(
    target: str, name: str | None, topology_conf: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """The submit request (without ``code``) and the package, for ``squall submit``.

    Raises:
        TopologyLoadError, InvalidTopologyError, ConfigError, PackageError: naming
            the file, component or config key at fault.
    """
    from squall.api.description import describe
    from squall.api.topology import as_definition
    from squall.cli.loader import load_topology, split_target
    from squall.daemon.code_package import pack_project, project_root, relative_target
    from squall.runtime.plan import make_plan
    from squall.state.stateful import with_checkpoints

    loaded = load_topology(target)
    source, _attr = split_target(target)
    attr = loaded.where.rpartition(":")[2]
    name = name or loaded.default_name
    C.check(topology_conf)
    # Stateful bolts get the checkpoint spout (as in local mode; workers do the same).
    topology = with_checkpoints(as_definition(loaded.obj, name))
    plan = make_plan(topology, topology_conf)
    conf = dict(topology_conf)
    # Frozen at submit, as Storm does: a rebalance changes workers, never ackers.
    conf[C.TOPOLOGY_ACKER_EXECUTORS] = plan.num_ackers
    conf[C.TOPOLOGY_WORKERS] = plan.num_workers
    for key, value in conf.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise C.ConfigError(
                f"topology config {key!r}: {value!r} cannot be sent to the cluster (not JSON)"
            ) from None
    executors: dict[str, int] = {}
    for e in plan.executors:
        executors[e.component] = executors.get(e.component, 0) + 1
    root = project_root(source, loaded.module)
    package = pack_project(root)
    request = {
        "name": name,
        "target": f"{relative_target(source, loaded.module, root)}:{attr}",
        "conf": conf,
        "num_workers": plan.num_workers,
        "component_tasks": {c: [ts[0], ts[-1]] for c, ts in plan.component_tasks.items()},
        "component_executors": executors,
        "owner": _owner(),
        # Its shape, for the UI (which never loads user code).
        "definition": describe(plan.topology),
    }
    return request, package


def _owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


@_configured()
def list_command(args: argparse.Namespace, conf: dict[str, Any]) -> int:
    """``squall list``: Storm's table of topologies."""
    client = _client(args, conf)
    return _reply(lambda: format_list(client.topologies()))


@_configured()
def get_errors_command(args: argparse.Namespace, conf: dict[str, Any]) -> int:
    """``squall get-errors NAME``: the latest error per component, as Storm prints them."""
    client = _client(args, conf)
    name = args.topology
    return _reply(lambda: json.dumps(latest_errors(name, client.errors(name)), indent=2) + "\n")


def latest_errors(name: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Storm's ``get-errors`` document: each component's most recent error.

    >>> latest_errors("wc", [{"component": "split", "error": "old", "time_secs": 1},
    ...                      {"component": "split", "error": "new", "time_secs": 2}])
    {'Topology Name': 'wc', 'Comp-Errors': {'split': 'new'}}
    """
    latest: dict[str, tuple[float, str]] = {}
    for e in errors:
        comp, when = str(e.get("component", "")), float(e.get("time_secs", 0.0))
        if comp not in latest or when >= latest[comp][0]:
            latest[comp] = (when, str(e.get("error", "")))
    return {
        "Topology Name": name,
        "Comp-Errors": {c: err for c, (_t, err) in sorted(latest.items())},
    }


def format_list(topologies: list[dict[str, Any]]) -> str:
    """Storm's ``storm list`` output.

    >>> print(format_list([]), end="")
    No topologies running.
    >>> row = {"name": "wc", "status": "ACTIVE", "num_tasks": 9, "num_workers": 2,
    ...        "uptime_secs": 61, "id": "wc-1-1700000000", "owner": "ann"}
    >>> print(format_list([row]), end="")  # doctest: +NORMALIZE_WHITESPACE
    Topology_name        Status     Num_tasks  Num_workers  Uptime_secs  Topology_Id          Owner
    ----------------------------------------------------------------------------------------
    wc                   ACTIVE     9          2            61           wc-1-1700000000      ann
    """
    if not topologies:
        return "No topologies running.\n"
    lines = [
        LIST_FORMAT
        % (
            "Topology_name",
            "Status",
            "Num_tasks",
            "Num_workers",
            "Uptime_secs",
            "Topology_Id",
            "Owner",
        ),
        "-" * 88,
    ]
    for t in topologies:
        lines.append(
            LIST_FORMAT
            % (
                t["name"],
                t["status"],
                t["num_tasks"],
                t["num_workers"],
                t["uptime_secs"],
                t["id"],
                t.get("owner", ""),
            )
        )
    return "".join(line.rstrip() + "\n" for line in lines)


@_configured()
def _action_command(args: argparse.Namespace, conf: dict[str, Any]) -> int:
    client = _client(args, conf)
    name = args.topology
    executors: dict[str, int] = {}
    for item in args.executors if args.action == "rebalance" else ():
        comp, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            return _fail(f"-e expects COMPONENT=N, got {item!r}", 2)
        executors[comp.strip()] = int(n)

    def act() -> str:
        if args.action == "kill":
            client.kill(name, args.wait)
            return f"Killed topology: {name}\n"
        if args.action == "activate":
            client.activate(name)
            return f"Activated topology: {name}\n"
        if args.action == "deactivate":
            client.deactivate(name)
            return f"Deactivated topology: {name}\n"
        client.rebalance(name, args.wait, args.num_workers, executors)
        return f"Topology {name} is rebalancing\n"

    return _reply(act)
