"""``squall ui`` (the UI daemon) and ``squall monitor`` (live rates in the terminal).

``squall ui FILE...`` runs the given topologies in local mode, in this process,
and serves the UI for them until Ctrl-C (``squall run --ui`` does the same for
one topology, with the terminal view). ``squall ui`` without files is Storm's UI
daemon: it shows the cluster whose nimbus ``--nimbus``, ``--conf`` or
``$SQUALL_CONF`` names (``nimbus.seeds``; 127.0.0.1:6627 by default).
``squall monitor NAME`` polls a running UI's REST API, like ``storm monitor`` polls
nimbus, and prints one line per component every interval::

    topology  component  parallelism  stream   time-diff ms  emitted  throughput (Kt/s)
    numbers   double     2            default  4002          8004     2.000
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squall.api.topology import as_definition
from squall.cli.loader import load_topology
from squall.cli.options import add_conf_file_option, add_config_option, add_nimbus_options
from squall.daemon.local_cluster import LocalCluster
from squall.ui.logs import default_log_dir
from squall.ui.server import DEFAULT_HOST, DEFAULT_PORT, UIServer
from squall.ui.source import LocalSource

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ui`` and ``monitor`` to the ``squall`` parser."""
    p = commands.add_parser(
        "ui",
        help="serve the web UI, Storm's REST API and /metrics (a cluster, or local topologies)",
        description=(
            "Serve the UI: pages, Storm's REST API under /api/v1, Prometheus metrics at\n"
            "/metrics and the worker logs. With topology files, run them here in local\n"
            "mode; without, show the cluster nimbus leads. Ctrl-C stops."
        ),
        epilog=(
            "examples:\n  squall ui examples/wordcount.py --port 8080\n"
            "  squall ui --conf cluster.json\n  squall ui --nimbus 10.0.0.5:6627"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("targets", nargs="*", metavar="FILE_OR_MODULE[:ATTR]", help="topologies to run")
    add_server_options(p)
    add_config_option(p, "topology config for every topology (repeatable)")
    add_conf_file_option(p)
    add_nimbus_options(p, "nimbus.seeds")
    p.set_defaults(func=ui_command)

    m = commands.add_parser(
        "monitor",
        help="print a running topology's throughput every few seconds (storm monitor)",
        description="Poll a Squall UI's REST API and print throughput per component.",
        epilog="example:\n  squall monitor wordcount -c split -s default -i 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("topology", metavar="NAME", help="topology name (or id)")
    m.add_argument(
        "-c",
        "-m",
        "--component",
        dest="component",
        help="only this component (default: every one)",
    )
    m.add_argument("-s", "--stream", default="default", help="stream to watch (default: default)")
    m.add_argument(
        "-w",
        "--watch",
        choices=("emitted", "transferred"),
        default="emitted",
        help="which counter (default: emitted)",
    )
    m.add_argument(
        "-i", "--interval", type=float, default=4.0, metavar="SECS", help="poll interval (4)"
    )
    m.add_argument(
        "-n",
        "--count",
        type=int,
        default=0,
        metavar="N",
        help="stop after N intervals (default: until Ctrl-C)",
    )
    m.add_argument(
        "--url",
        default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="the UI to ask (default: http://127.0.0.1:8080)",
    )
    m.set_defaults(func=monitor_command)


def add_server_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--host``, ``--port`` and ``--log-dir`` (``--ui-host``... with a prefix)."""
    p.add_argument(
        f"--{prefix}host",
        default=DEFAULT_HOST,
        metavar="ADDR",
        help=f"address the UI binds (default {DEFAULT_HOST}; 0.0.0.0 for every interface)",
    )
    p.add_argument(
        f"--{prefix}port",
        type=int,
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"the UI's port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "where worker logs go (default $SQUALL_LOG_DIR or ~/.squall/logs); for a "
            "cluster, read them from here instead of from the supervisors' logviewers"
        ),
    )


def start_ui(cluster: LocalCluster, host: str, port: int, log_dir: Path | None) -> UIServer:
    """Start the UI over ``cluster`` (raises OSError when the port is taken)."""
    return UIServer(
        LocalSource(cluster), host=host, port=port, log_dir=log_dir or default_log_dir()
    ).start()


def ui_command(args: argparse.Namespace) -> int:
    if not args.targets:
        return _serve_cluster(args)
    loaded = []
    for target in args.targets:
        try:
            top = load_topology(target)
            loaded.append((top.default_name, as_definition(top.obj, top.default_name)))
        except Exception as e:
            sys.stderr.write(f"squall ui: cannot load {target}: {e}\n")
            return EXIT_FAILED
    with _stop_on_sigterm() as stop:
        return _serve(args, loaded, stop)


@contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """An event SIGTERM sets while the block runs (on the main thread; elsewhere never).

    SIGTERM then stops as cleanly as Ctrl-C does (topologies closed, workers stopped).
    """
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _serve(args: argparse.Namespace, loaded: list[tuple[str, Any]], stop: threading.Event) -> int:
    with LocalCluster() as cluster:
        try:
            ui = start_ui(cluster, args.host, args.port, args.log_dir)
        except OSError as e:
            sys.stderr.write(f"squall ui: cannot serve on {args.host}:{args.port}: {e}\n")
            return EXIT_FAILED
        try:
            for name, definition in loaded:
                try:
                    cluster.submit(name, definition, dict(args.conf))
                except Exception as e:
                    sys.stderr.write(f"squall ui: cannot start topology {name!r}: {e}\n")
                    return EXIT_FAILED
            sys.stdout.write(
                f"Squall UI at {ui.url}/ ({len(loaded)} topolog"
                f"{'y' if len(loaded) == 1 else 'ies'}; logs in {ui.log_dir}). Ctrl-C stops.\n"
            )
            sys.stdout.flush()
            try:
                while not stop.wait(0.5):
                    if not cluster.topologies:
                        sys.stdout.write("squall ui: every topology was killed; stopping.\n")
                        break
            except KeyboardInterrupt:
                pass
        finally:
            ui.stop()
    return EXIT_OK


def cluster_ui(
    conf: dict[str, Any],
    host: str,
    port: int,
    log_dir: Path | None,
    nimbus: str | None = None,
    token: str | None = None,
) -> UIServer:
    """A UI over the cluster ``conf`` names (not started; raises OSError when the port is taken).

    Worker logs come from every supervisor's logviewer, or from ``log_dir`` on
    this machine when one is given.
    """
    from squall.cli.cluster import nimbus_client
    from squall.cluster import conf as K
    from squall.ui.cluster_source import ClusterSource

    conf = K.merged(conf)
    source = ClusterSource(nimbus_client(conf, nimbus, token))
    return UIServer(
        source,
        host=host,
        port=port,
        log_dir=log_dir,
        capture_logs=False,
        conf=conf,
        events=source.events,
        logs=None if log_dir is not None else source,
    )


def _serve_cluster(args: argparse.Namespace) -> int:
    from squall.cluster import conf as K
    from squall.daemon.nimbus_client import NimbusClientError

    try:
        conf = K.load_file(args.conf) if args.conf else {}
        ui = cluster_ui(conf, args.host, args.port, args.log_dir, args.nimbus, args.token)
    except OSError as e:
        sys.stderr.write(f"squall ui: cannot serve on {args.host}:{args.port}: {e}\n")
        return EXIT_FAILED
    except (ValueError, K.DaemonConfigError) as e:
        sys.stderr.write(f"squall ui: {e}\n")
        return EXIT_USAGE
    source: Any = ui.source
    try:
        leader = source.client.leader()
        where = f"the cluster led by nimbus {leader}"
    except (NimbusClientError, OSError) as e:
        # Like Storm's UI: serve anyway; pages show the error until nimbus answers.
        where = f"a cluster whose nimbus does not answer yet ({e})"
    sys.stdout.write(
        f"Squall UI at {ui.url}/ for {where}; worker logs from "
        f"{ui.logs.where if ui.logs is not None else 'nowhere'}.\n"
        "To run topologies here instead: squall ui FILE... Ctrl-C stops.\n"
    )
    sys.stdout.flush()
    with _stop_on_sigterm() as stop:
        ui.start()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            ui.stop()
    return EXIT_OK


# -- squall monitor --------------------------------------------------------------------------


class MonitorError(RuntimeError):
    """The UI could not be asked, or has no such topology or component."""


@dataclass(frozen=True)
class MonitorRow:
    topology: str
    component: str
    parallelism: int
    stream: str
    time_diff_ms: int
    count: int
    throughput_kts: float


class Monitor:
    """Polls one topology's components through the REST API and computes throughput."""

    def __init__(
        self,
        url: str,
        topology: str,
        component: str | None = None,
        stream: str = "default",
        watch: str = "emitted",
    ) -> None:
        self.url = url.rstrip("/")
        self.topology = topology
        self.component = component
        self.stream = stream
        self.watch = watch
        self._last: dict[str, tuple[float, int]] = {}

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            try:
                message = json.load(e).get("errorMessage", "")
            except Exception:
                message = ""
            raise MonitorError(message or f"{e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise MonitorError(f"cannot reach the UI at {self.url}: {reason}") from None

    def components(self) -> list[str]:
        doc = self._get(f"/api/v1/topology/{urllib.parse.quote(self.topology, safe='')}")
        names = [s["spoutId"] for s in doc["spouts"]] + [b["boltId"] for b in doc["bolts"]]
        if self.component is not None:
            if self.component not in names:
                raise MonitorError(
                    f"topology {self.topology!r} has no component {self.component!r} "
                    f"(it has: {', '.join(names)})"
                )
            return [self.component]
        return names

    def poll(self) -> list[MonitorRow]:
        """One row per component: the watched counter's change since the last poll."""
        rows = []
        tid = urllib.parse.quote(self.topology, safe="")
        for comp in self.components():
            doc = self._get(f"/api/v1/topology/{tid}/component/{urllib.parse.quote(comp, safe='')}")
            count = sum(
                int(o[self.watch]) for o in doc["outputStats"] if o["stream"] == self.stream
            )
            now = time.monotonic()
            before = self._last.get(comp)
            self._last[comp] = (now, count)
            if before is None:
                continue
            dt_ms = max(1, int((now - before[0]) * 1000))
            diff = count - before[1]
            rows.append(
                MonitorRow(
                    topology=doc["name"],
                    component=comp,
                    parallelism=int(doc["executors"]),
                    stream=self.stream,
                    time_diff_ms=dt_ms,
                    count=diff,
                    throughput_kts=diff / dt_ms,  # tuples per ms = thousands per second
                )
            )
        return rows


def format_rows(rows: Sequence[MonitorRow], watch: str, header: bool) -> list[str]:
    """Storm monitor's columns (``%-15s`` wide), one line per row.

    >>> r = MonitorRow("wc", "split", 2, "default", 4000, 8000, 2.0)
    >>> header, line = format_rows([r], "emitted", header=True)
    >>> header.split("  ")[0], line.split()
    ('topology', ['wc', 'split', '2', 'default', '4000', '8000', '2.000'])
    """
    fmt = "{:<15} {:<15} {:<15} {:<15} {:<15} {:<15} {}"
    out = []
    if header:
        out.append(
            fmt.format(
                "topology",
                "component",
                "parallelism",
                "stream",
                "time-diff ms",
                watch,
                "throughput (Kt/s)",
            )
        )
    for r in rows:
        out.append(
            fmt.format(
                r.topology,
                r.component,
                r.parallelism,
                r.stream,
                r.time_diff_ms,
                r.count,
                f"{r.throughput_kts:.3f}",
            )
        )
    return out


def monitor_command(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        sys.stderr.write("squall monitor: --interval must be > 0\n")
        return EXIT_USAGE
    mon = Monitor(args.url, args.topology, args.component, args.stream, args.watch)
    try:
        mon.poll()  # the baseline
        header = True
        done = 0
        while args.count <= 0 or done < args.count:
            time.sleep(args.interval)
            lines = format_rows(mon.poll(), args.watch, header)
            header = False
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            done += 1
    except MonitorError as e:
        sys.stderr.write(f"squall monitor: {e}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        pass
    return EXIT_OK
