"""``squall run``: run a topology in local mode with a live view of its rates.

Exit codes (documented in ``docs/cli.md``):

* 0: the run ended (``--duration`` elapsed) and user code raised no error.
* 1: the topology could not be loaded or started (import error, invalid
  topology, bad config, an ``initialize`` that raised); the message names the
  file, line, component, stream or key at fault. Also when the running
  topology stopped answering (its stats could not be read).
* 2: bad command-line usage.
* 3: the run ended normally but user code raised errors (each was printed, the
  tuples involved were failed, and the summary counts them per task).
* 130 / 143: stopped by Ctrl-C (SIGINT) / SIGTERM, after a clean shutdown and
  the summary, like any Unix program (and Storm's own local mode) stopped by a
  signal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from types import FrameType
from typing import Any

from squall import config as C
from squall.api.errors import InvalidTopologyError
from squall.api.topology import TopologyDef, as_definition
from squall.cli.display import (
    Console,
    ErrorThrottle,
    format_error,
    live_table,
    order_components,
    plain_lines,
    rate_rows,
    summary_lines,
    suppressed_line,
)
from squall.cli.drpc import local_endpoint
from squall.cli.loader import TopologyLoadError, load_topology
from squall.cli.options import add_config_option, positive_float, positive_int
from squall.cli.ui import add_server_options, start_ui
from squall.config import ConfigError
from squall.daemon.local_cluster import LocalCluster, LocalTopology
from squall.runtime.stats import ComponentStats, ErrorReport

EXIT_OK = 0
EXIT_BAD_TOPOLOGY = 1
EXIT_USER_ERRORS = 3

# How long in-flight tuples get to finish after the spouts are deactivated.
DRAIN_MAX_SECS = 2.0
DRAIN_POLL_SECS = 0.1

# Failures whose message says everything: no "--verbose for the traceback" hint.
_EXPECTED = (TopologyLoadError, InvalidTopologyError, ConfigError)

_EPILOG = """\
exit status: 0 the run ended, no errors; 1 the topology could not be loaded or
started, or stopped answering; 2 bad usage; 3 user code raised errors during
the run; 130 / 143 stopped by Ctrl-C / SIGTERM (after a clean shutdown and the
summary).

examples:
  squall run examples/wordcount.py --duration 10
  squall run examples/wordcount.py:WordCount -c topology.max.spout.pending=1000
  squall run mypackage.topologies:Clicks --workers 2 --name clicks
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` command to the ``squall`` parser."""
    p = commands.add_parser(
        "run",
        help="run a topology on this machine (local mode)",
        description=(
            "Run a topology in local mode: find it, start it, show live per-component\n"
            "rates, stop on Ctrl-C or after --duration, and print a summary."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        metavar="FILE_OR_MODULE[:ATTR]",
        help="a .py file or a dotted module name, optionally with the topology's name "
        "after a colon; without it the module must define exactly one topology",
    )
    p.add_argument(
        "-w",
        "--workers",
        type=positive_int,
        metavar="N",
        help="local worker processes (sets topology.workers; default 1: one process)",
    )
    p.add_argument(
        "-d",
        "--duration",
        type=positive_float,
        metavar="SECS",
        help="stop after SECS seconds (default: run until Ctrl-C)",
    )
    add_config_option(
        p,
        "set a topology config key; VALUE is JSON if it parses, else a string (repeatable)",
        example="topology.workers=2",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="log every emitted tuple (sets topology.debug)",
    )
    p.add_argument("-n", "--name", help="topology name (default: the topology's own name)")
    p.add_argument("--ui", action="store_true", help="serve the web UI and REST API while it runs")
    add_server_options(p, prefix="ui-")
    p.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="SECS",
        help="how often the rates are refreshed (default 1)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="print plain lines even in a terminal (the default when output is not a tty)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Python tracebacks for load and start-up failures",
    )
    p.set_defaults(func=run_command)


class _Signals:
    """SIGINT/SIGTERM ask for a clean stop; a second one forces an immediate exit."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Only the main thread may set handlers (in-process callers).
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            # The handler runs between bytecodes of the main thread, which may hold
            # the console lock: write with os.write, never through the console.
            os.write(2, b"\nsquall run: second signal, exiting without a clean shutdown\n")
            os._exit(128 + signum)
        self.signum = signum
        self.stop.set()


class _ConsoleLogHandler(logging.Handler):
    """Logging through the console, so log lines never tear the live table."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.message(self.format(record))
        except Exception:
            self.handleError(record)


def _not_error_reports(record: logging.LogRecord) -> bool:
    # The engine also logs each user-code error; squall run prints those itself
    # (with throttling), so the log copy would only double them.
    return not (record.name == "squall.runtime" and record.funcName == "record_error")


class _Monitor:
    """Receives error reports (from engine threads) and prints them, throttled.

    A traceback is printed in full once per throttle interval per component;
    an identical one within the interval prints as its headline only.
    """

    def __init__(self, console: Console, throttle: ErrorThrottle) -> None:
        self.console = console
        self.throttle = throttle
        self._lock = threading.Lock()
        self.errors: dict[tuple[str, int], int] = {}
        self._printed: dict[tuple[str, str], float] = {}

    def on_error(self, report: ErrorReport) -> None:
        with self._lock:
            key = (report.component, report.task)
            self.errors[key] = self.errors.get(key, 0) + 1
            show = self.throttle.admit(report)
            full = False
            if show:
                now = time.monotonic()
                seen = (report.component, report.traceback)
                last = self._printed.get(seen)
                full = last is None or now - last >= self.throttle.interval_secs
                if full:
                    if len(self._printed) > 1000:
                        self._printed.clear()
                    self._printed[seen] = now
        if show:
            self.console.message(format_error(report, with_traceback=full))

    def flush_suppressed(self) -> None:
        with self._lock:
            held = self.throttle.drain()
        for comp, task, n, last in held:
            self.console.message(suppressed_line(comp, task, n, last))

    def totals(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self.errors)

    def by_component(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (comp, _), n in self.totals().items():
            out[comp] = out.get(comp, 0) + n
        return out


def _fmt_secs(secs: float) -> str:
    secs = int(secs)
    return f"{secs // 60:02d}:{secs % 60:02d}"


def _report_failure(
    console: Console, what: str, error: BaseException, verbose: bool, hint: bool = True
) -> int:
    """Print one paragraph naming the culprit (and the traceback with --verbose)."""
    if verbose:
        console.message("".join(traceback.format_exception(error)).rstrip())
    if isinstance(error, _EXPECTED):
        # These messages already name the file, component, stream or key at fault.
        console.message(f"squall run: {error}")
    else:
        more = "" if verbose or not hint else "\n(run with --verbose for the traceback)"
        console.message(f"squall run: {what}: {type(error).__name__}: {error}{more}")
    return EXIT_BAD_TOPOLOGY


def _cli_conf(args: argparse.Namespace) -> dict[str, Any]:
    conf: dict[str, Any] = dict(args.conf)
    if args.workers is not None:
        conf[C.TOPOLOGY_WORKERS] = args.workers
    if args.debug:
        conf[C.TOPOLOGY_DEBUG] = True
    return conf


def _setup_logging(console: Console, debug: bool) -> tuple[logging.Handler, int, int]:
    handler = _ConsoleLogHandler(console)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(_not_error_reports)
    root = logging.getLogger()
    squall_log = logging.getLogger("squall")
    saved = (root.level, squall_log.level)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    # Component logs (``self.log(...)``) are INFO by default; show them, as Storm's
    # local mode does. --debug adds DEBUG and the per-emit log lines.
    squall_log.setLevel(logging.DEBUG if debug else logging.INFO)
    return handler, saved[0], saved[1]


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.target`` and return the exit status."""
    live = not args.plain and Console.is_terminal(sys.stdout)
    console = Console(sys.stdout, sys.stderr, live=live)
    handler, root_level, squall_level = _setup_logging(console, args.debug)
    signals = _Signals()
    signals.install()
    try:
        return _run(args, console, signals)
    finally:
        signals.restore()
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        logging.getLogger("squall").setLevel(squall_level)


def _run(args: argparse.Namespace, console: Console, signals: _Signals) -> int:
    conf = _cli_conf(args)
    try:
        loaded = load_topology(args.target)
        name = args.name or loaded.default_name
        definition = as_definition(loaded.obj, name)
    except Exception as e:
        return _report_failure(console, f"cannot load {args.target}", e, args.verbose)

    effective = C.defaults()
    effective.update(definition.config)
    effective.update(conf)
    try:
        throttle = ErrorThrottle(
            float(effective[C.TOPOLOGY_ERROR_THROTTLE_INTERVAL_SECS]),
            int(effective[C.TOPOLOGY_MAX_ERROR_REPORT_PER_INTERVAL]),
        )
    except (TypeError, ValueError) as e:
        return _report_failure(console, "bad config", e, args.verbose)
    monitor = _Monitor(console, throttle)

    with LocalCluster() as cluster, contextlib.ExitStack() as stack:
        if args.ui:
            try:
                ui = start_ui(cluster, args.ui_host, args.ui_port, args.log_dir)
            except OSError as e:
                return _report_failure(console, "cannot serve the UI", e, args.verbose, False)
            stack.callback(ui.stop)
            console.message(f"Squall UI at {ui.url}/ (worker logs in {ui.log_dir})", to_out=True)
        try:
            # A topology with DRPC spouts gets a DRPC server while it runs.
            conf.update(stack.enter_context(local_endpoint(definition, effective, console.message)))
            run = cluster.submit(name, definition, conf, on_error=monitor.on_error)
        except Exception as e:
            # An initialize() that raised was reported with its traceback already.
            reported = bool(monitor.totals())
            return _report_failure(
                console, f"cannot start topology {name!r}", e, args.verbose, not reported
            )
        return _watch(args, console, signals, monitor, cluster, run, definition, loaded.where)


def _watch(
    args: argparse.Namespace,
    console: Console,
    signals: _Signals,
    monitor: _Monitor,
    cluster: LocalCluster,
    run: LocalTopology,
    definition: TopologyDef,
    where: str,
) -> int:
    name = run.name
    order = order_components({c.name: c.kind for c in definition.components.values()})
    workers = run.plan.num_workers
    tasks = sum(len(t) for c, t in run.plan.component_tasks.items() if c in definition.components)
    until = f"for {args.duration:g}s" if args.duration else "until Ctrl-C"
    console.message(
        f"Running topology {name} from {where}: {len(order)} components, {tasks} tasks, "
        f"{workers} worker{'s' if workers != 1 else ''}, {until}",
        to_out=True,
    )

    started = time.monotonic()
    deadline = started + args.duration if args.duration else None
    prev: Mapping[str, ComponentStats] = {}
    prev_t = started
    last: Mapping[str, ComponentStats] = {}
    reason = "duration reached"
    stuck = False
    tick = started
    while True:
        tick += args.interval
        wake = tick if deadline is None else min(tick, deadline)
        if signals.stop.wait(max(0.0, wake - time.monotonic())):
            reason = "Ctrl-C" if signals.signum == signal.SIGINT else "SIGTERM"
            break
        if name not in cluster.topologies:
            reason = "killed from the UI"
            break
        now = time.monotonic()
        try:
            last = run.stats()
        except Exception as e:
            # The engine did not answer (a component blocking in process or
            # next_tuple, or a worker process gone): stop rather than hang.
            console.finish()
            detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            console.message(
                f"squall run: topology {name} stopped answering ({detail}); is a component "
                "blocking in process() or next_tuple()?"
            )
            reason = "not answering"
            stuck = True
            break
        rows = rate_rows(prev, last, now - prev_t, order, monitor.by_component())
        prev, prev_t = last, now
        monitor.flush_suppressed()
        elapsed = now - started
        if console.live:
            left = f", {_fmt_secs(math.ceil(deadline - now))} left" if deadline is not None else ""
            status = f"{name} | {workers} worker(s) | {_fmt_secs(elapsed)} elapsed{left}"
            console.update([status + " | Ctrl-C to stop", *live_table(rows)])
        else:
            console.update(plain_lines(rows, elapsed))
        if deadline is not None and now >= deadline - 1e-3:
            break

    elapsed = time.monotonic() - started
    console.finish()
    if stuck:
        console.message(f"Stopping topology {name} ({reason})...", True)
        final = last
    else:
        msg = f"Stopping topology {name} ({reason}): draining in-flight tuples..."
        console.message(msg, True)
        final = _drain(run, last)
    cluster.shutdown()
    monitor.flush_suppressed()
    totals = monitor.totals()
    console.message("\n".join(summary_lines(name, final, order, elapsed, reason, totals)), True)
    if signals.signum is not None:
        return 128 + signals.signum
    if stuck:
        return EXIT_BAD_TOPOLOGY
    return EXIT_USER_ERRORS if totals else EXIT_OK


def _drain(run: LocalTopology, last: Mapping[str, ComponentStats]) -> Mapping[str, ComponentStats]:
    """Deactivate the spouts and let in-flight tuples finish; return the final stats.

    Done when two snapshots ``DRAIN_POLL_SECS`` apart show no progress, or after
    ``DRAIN_MAX_SECS``.
    """

    def progress(stats: Mapping[str, ComponentStats]) -> tuple[int, ...]:
        return tuple(s.emitted + s.executed + s.acked + s.failed + s.errors for s in stats.values())

    try:
        run.deactivate()
        snap = run.stats()
        give_up = time.monotonic() + DRAIN_MAX_SECS
        while time.monotonic() < give_up:
            time.sleep(DRAIN_POLL_SECS)
            nxt = run.stats()
            if progress(nxt) == progress(snap):
                return nxt
            snap = nxt
        return snap
    except Exception:
        # A wedged engine must not keep the summary from being printed.
        return last
