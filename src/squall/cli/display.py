"""What ``squall run`` prints: live rates, user-code errors (throttled) and the summary.

Formatting is pure (functions of stats snapshots) so it is tested without a
terminal. :class:`Console` owns the output streams: in a terminal it redraws
the live table in place with ANSI escapes; anywhere else it prints one plain
line per component per interval, which is easy to grep and to log.

>>> from squall.runtime.stats import ComponentStats
>>> before = {"split": ComponentStats("split", "bolt", 1, 1, emitted=100, executed=10)}
>>> after = {"split": ComponentStats("split", "bolt", 1, 1, emitted=300, executed=30)}
>>> rows = rate_rows(before, after, 2.0, ["split"])
>>> rows[0].emitted_per_sec, rows[0].executed_per_sec
(100.0, 10.0)
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from squall.runtime.stats import ComponentStats, ErrorReport

# Move the cursor up N lines to column 0, then clear to the end of the screen.
_UP = "\x1b[{n}A\r\x1b[J"


@dataclass(frozen=True)
class RateRow:
    """One component's line in the live display."""

    component: str
    kind: str
    tasks: int
    emitted_per_sec: float
    executed_per_sec: float
    acked: int
    failed: int
    errors: int
    capacity: float


def order_components(kinds: Mapping[str, str]) -> list[str]:
    """Spouts first, then bolts, each in declaration order.

    >>> order_components({"count": "bolt", "words": "spout", "split": "bolt"})
    ['words', 'count', 'split']
    """
    spouts = [c for c, k in kinds.items() if k == "spout"]
    return spouts + [c for c in kinds if c not in spouts]


def rate_rows(
    before: Mapping[str, ComponentStats],
    after: Mapping[str, ComponentStats],
    secs: float,
    order: Sequence[str],
    errors: Mapping[str, int] | None = None,
) -> list[RateRow]:
    """Per-second rates between two snapshots, and running totals from the later one.

    ``errors`` (component -> count seen by the error callback) wins over the stats
    counter when larger, so an error reported during start-up is never shown as 0.
    """
    secs = max(secs, 1e-9)
    rows: list[RateRow] = []
    for comp in order:
        cur = after.get(comp)
        if cur is None:
            continue
        prev = before.get(comp)
        emitted0 = prev.emitted if prev is not None else 0
        executed0 = prev.executed if prev is not None else 0
        rows.append(
            RateRow(
                component=comp,
                kind=cur.kind,
                tasks=cur.tasks,
                emitted_per_sec=(cur.emitted - emitted0) / secs,
                executed_per_sec=(cur.executed - executed0) / secs,
                acked=cur.acked,
                failed=cur.failed,
                errors=max(cur.errors, (errors or {}).get(comp, 0)),
                capacity=cur.capacity,
            )
        )
    return rows


def _num(x: float) -> str:
    return f"{round(x):,}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-align the first column, right-align the others."""
    body = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    out = []
    for r in body:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells).rstrip())
    return out


def live_table(rows: Sequence[RateRow]) -> list[str]:
    """The live display's table, header first.

    >>> r = RateRow("split", "bolt", 2, 1500.0, 250.0, 7, 1, 0, 0.25)
    >>> print("\\n".join(live_table([r])))
    component  type  tasks  emitted/s  executed/s  acked  failed  errors  capacity
    split      bolt      2      1,500         250      7       1       0     0.250
    """
    header = [
        "component",
        "type",
        "tasks",
        "emitted/s",
        "executed/s",
        "acked",
        "failed",
        "errors",
        "capacity",
    ]
    return _table(
        header,
        (
            [
                r.component,
                r.kind,
                str(r.tasks),
                _num(r.emitted_per_sec),
                _num(r.executed_per_sec),
                _num(r.acked),
                _num(r.failed),
                _num(r.errors),
                f"{r.capacity:.3f}",
            ]
            for r in rows
        ),
    )


def plain_lines(rows: Sequence[RateRow], elapsed_secs: float) -> list[str]:
    """One ``key=value`` line per component, for logs and pipes.

    >>> r = RateRow("split", "bolt", 2, 1500.0, 250.0, 7, 1, 0, 0.25)
    >>> plain_lines([r], 3.0)
    ['[3.0s] split: emitted/s=1500 executed/s=250 acked=7 failed=1 errors=0 capacity=0.250']
    """
    return [
        f"[{elapsed_secs:.1f}s] {r.component}: emitted/s={round(r.emitted_per_sec)} "
        f"executed/s={round(r.executed_per_sec)} acked={r.acked} failed={r.failed} "
        f"errors={r.errors} capacity={r.capacity:.3f}"
        for r in rows
    ]


def summary_lines(
    name: str,
    stats: Mapping[str, ComponentStats],
    order: Sequence[str],
    elapsed_secs: float,
    reason: str,
    errors: Mapping[tuple[str, int], int],
) -> list[str]:
    """The final summary: totals per component, then the error count per task.

    >>> s = {"words": ComponentStats("words", "spout", 1, 1, emitted=10, acked=10)}
    >>> print("\\n".join(summary_lines("wc", s, ["words"], 2.0, "duration reached", {})))
    Summary: topology wc ran 2.0s (stopped: duration reached)
    component   type  tasks  emitted  executed  acked  failed  errors  latency ms  capacity
    words      spout      1       10         0     10       0       0       0.000     0.000
    errors: none
    """
    per_comp: dict[str, int] = {}
    for (comp, _task), n in errors.items():
        per_comp[comp] = per_comp.get(comp, 0) + n
    header = [
        "component",
        "type",
        "tasks",
        "emitted",
        "executed",
        "acked",
        "failed",
        "errors",
        "latency ms",
        "capacity",
    ]
    rows = []
    for comp in order:
        st = stats.get(comp)
        if st is None:
            continue
        # Spouts: complete latency (emit to fully acked); bolts: execute latency.
        latency = st.complete_latency_ms if st.kind == "spout" else st.execute_latency_ms
        rows.append(
            [
                comp,
                st.kind,
                str(st.tasks),
                _num(st.emitted),
                _num(st.executed),
                _num(st.acked),
                _num(st.failed),
                _num(max(st.errors, per_comp.get(comp, 0))),
                f"{latency:.3f}",
                f"{st.capacity:.3f}",
            ]
        )
    out = [f"Summary: topology {name} ran {elapsed_secs:.1f}s (stopped: {reason})"]
    out += _table(header, rows)
    total = sum(errors.values())
    if total == 0:
        out.append("errors: none")
    else:
        worst = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
        parts = [f"{comp} task {task}: {n}" for (comp, task), n in worst[:8]]
        if len(worst) > 8:
            parts.append(f"... {len(worst) - 8} more tasks")
        out.append(f"errors: {total} raised by user code ({', '.join(parts)}); see above")
    return out


def format_error(report: ErrorReport, with_traceback: bool = True) -> str:
    """An error report as printed by ``squall run``: where, what, then the traceback.

    >>> r = ErrorReport("wc", "split", 3, 0.0, "ValueError: bad", "Traceback ...\\nValueError: bad")
    >>> print(format_error(r))
    ERROR in component 'split' task 3 (topology wc, worker 0): ValueError: bad
        Traceback ...
        ValueError: bad
    >>> print(format_error(r, with_traceback=False))  # doctest: +NORMALIZE_WHITESPACE
    ERROR in component 'split' task 3 (topology wc, worker 0): ValueError: bad
    (same traceback as above)
    """
    head = (
        f"ERROR in component {report.component!r} task {report.task} "
        f"(topology {report.topology}, worker {report.worker}): {report.error}"
    )
    if not with_traceback:
        return head + "\n    (same traceback as above)"
    tb = report.traceback.rstrip()
    return head + "\n" + "\n".join("    " + line for line in tb.splitlines())


@dataclass
class _Recent:
    shown: deque[float] = field(default_factory=deque)
    suppressed: int = 0
    last_error: str = ""


class ErrorThrottle:
    """Decides which error reports are printed in full, per (component, task).

    At most ``max_per_interval`` reports per task are printed within
    ``interval_secs`` (Storm's ``topology.error.throttle.interval.secs`` and
    ``topology.max.error.report.per.interval``); the rest are counted and
    summarised by :meth:`drain`, so a crash loop shows as one line per task.

    >>> now = [0.0]
    >>> t = ErrorThrottle(10, 2, clock=lambda: now[0])
    >>> r = ErrorReport("wc", "split", 3, 0.0, "ValueError: x", "tb")
    >>> [t.admit(r) for _ in range(4)]
    [True, True, False, False]
    >>> t.drain()
    [('split', 3, 2, 'ValueError: x')]
    >>> now[0] = 11.0
    >>> t.admit(r)
    True
    """

    def __init__(
        self,
        interval_secs: float,
        max_per_interval: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_secs = float(interval_secs)
        self.max_per_interval = int(max_per_interval)
        self.clock = clock
        self._recent: dict[tuple[str, int], _Recent] = {}

    def admit(self, report: ErrorReport) -> bool:
        """True if ``report`` should be printed in full; otherwise it is counted."""
        key = (report.component, report.task)
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = _Recent()
        now = self.clock()
        shown = recent.shown
        while shown and now - shown[0] >= self.interval_secs:
            shown.popleft()
        if len(shown) < self.max_per_interval:
            shown.append(now)
            return True
        recent.suppressed += 1
        recent.last_error = report.error
        return False

    def drain(self) -> list[tuple[str, int, int, str]]:
        """``(component, task, count, last error)`` for reports held back since the last drain."""
        out = []
        for (comp, task), recent in sorted(self._recent.items()):
            if recent.suppressed:
                out.append((comp, task, recent.suppressed, recent.last_error))
                recent.suppressed = 0
        return out


def suppressed_line(component: str, task: int, count: int, last_error: str) -> str:
    """The one line that stands for errors that were not printed in full.

    >>> suppressed_line("split", 3, 57, "ZeroDivisionError: division by zero")
    "... 57 more errors from component 'split' task 3 (latest: ZeroDivisionError: division by zero)"
    """
    noun = "error" if count == 1 else "errors"
    return (
        f"... {count} more {noun} from component {component!r} task {task} (latest: {last_error})"
    )


class Console:
    """Serialised output for the live display, messages and errors.

    Messages (errors, logs) go to ``err``; the live table and the summary to
    ``out``. In live mode the table is the last thing on the screen: a message
    first erases it, is written, then the table is drawn again. Every method
    may be called from any thread.
    """

    def __init__(self, out: TextIO, err: TextIO, live: bool) -> None:
        self.out = out
        self.err = err
        self.live = live
        self._lock = threading.Lock()
        self._block: list[str] = []

    @staticmethod
    def is_terminal(stream: TextIO) -> bool:
        """True if ``stream`` is an interactive terminal that understands ANSI escapes."""
        import os

        try:
            return stream.isatty() and os.environ.get("TERM", "") != "dumb"
        except (AttributeError, ValueError):
            return False

    def _erase(self) -> None:
        if self._block:
            self.out.write(_UP.format(n=len(self._block)))
            self._block = []

    def _draw(self, lines: list[str]) -> None:
        # Lines longer than the terminal would wrap and break the erase count.
        width = shutil.get_terminal_size((120, 24)).columns - 1
        clipped = [line[:width] for line in lines]
        self.out.write("".join(line + "\n" for line in clipped))
        self._block = clipped

    def update(self, lines: list[str]) -> None:
        """Show the latest table: redrawn in place when live, appended otherwise."""
        with self._lock:
            if self.live:
                self._erase()
                self._draw(lines)
            else:
                self.out.write("".join(line + "\n" for line in lines))
            self.out.flush()

    def message(self, text: str, to_out: bool = False) -> None:
        """Print ``text`` (to ``err`` unless ``to_out``) above the live table."""
        with self._lock:
            block = self._block
            if self.live:
                self._erase()
                self.out.flush()
            stream = self.out if to_out else self.err
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
            if self.live and block:
                self._draw(block)
                self.out.flush()

    def finish(self) -> None:
        """Erase the live table (the summary takes its place)."""
        with self._lock:
            if self.live:
                self._erase()
                self.out.flush()
