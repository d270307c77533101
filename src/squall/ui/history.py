"""Storm's stats windows (10 minutes, 3 hours, 1 day, all time) from cumulative counters.

Workers report cumulative counters per executor (:class:`ExecutorSnapshot`).
:class:`StatsHistory` keeps a few of those snapshots per window, thinned to one
per *step*, and answers "what happened in the last W seconds" as the latest
counters minus the newest kept snapshot that is at least W seconds old.
Memory is bounded: about ``W / step + 2`` snapshots per window, whatever the
length of the run (three windows of ~60 each by default).

An executor whose counters went backwards was restarted (its worker died and
came back): its earlier totals are carried forward, so windows and all-time
totals never go negative, and the restart is counted.

>>> from squall.runtime.stats import ExecutorSnapshot
>>> h = StatsHistory()
>>> def snap(t, acked):
...     return ExecutorSnapshot("s", "spout", (1,), 0, uptime_secs=t, acked=acked)
>>> h.record(0.0, [snap(0.0, 0)])
>>> h.record(300.0, [snap(300.0, 50)])
>>> h.record(900.0, [snap(900.0, 80)])
>>> h.window(None)[(1, 1)].acked, h.window(600)[(1, 1)].acked
(80, 30)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from squall.runtime.stats import ExecutorSnapshot

ExecutorKey = tuple[int, int]
K = TypeVar("K")

#: Storm's window names, in the order the UI lists them.
WINDOWS: Final = ("600", "10800", "86400", ":all-time")
ALL_TIME: Final = ":all-time"

#: (window seconds, step seconds): a kept snapshot at most every step.
DEFAULT_TIERS: Final = ((600.0, 10.0), (10800.0, 180.0), (86400.0, 1440.0))


def window_secs(window: str) -> float | None:
    """Seconds in a Storm window name; None for ``:all-time``.

    >>> window_secs("600"), window_secs(":all-time")
    (600.0, None)
    >>> window_secs("5m")
    Traceback (most recent call last):
    ...
    ValueError: window must be one of 600, 10800, 86400, :all-time (got '5m')
    """
    if window == ALL_TIME:
        return None
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)} (got {window!r})")
    return float(window)


@dataclass
class Counters:
    """What one executor did (cumulative, or over a window)."""

    emitted: dict[tuple[int, str], int] = field(default_factory=dict)  # (task, stream)
    transferred: dict[tuple[int, str], int] = field(default_factory=dict)
    executed: dict[tuple[str, str], int] = field(default_factory=dict)  # (component, stream)
    acked: int = 0
    failed: int = 0
    errors: int = 0
    execute_ms: float = 0.0
    complete_ms: float = 0.0
    complete_n: int = 0
    busy_secs: float = 0.0

    @classmethod
    def of(cls, s: ExecutorSnapshot) -> Counters:
        return cls(
            emitted={(t, st): e for t, st, e, _ in s.outputs},
            transferred={(t, st): x for t, st, _, x in s.outputs},
            executed={(c, st): n for c, st, n in s.inputs},
            acked=s.acked,
            failed=s.failed,
            errors=s.errors,
            execute_ms=s.execute_ms,
            complete_ms=s.complete_ms,
            complete_n=s.complete_n,
            busy_secs=s.busy_secs,
        )

    def plus(self, o: Counters, sign: int = 1) -> Counters:
        return Counters(
            emitted=_add(self.emitted, o.emitted, sign),
            transferred=_add(self.transferred, o.transferred, sign),
            executed=_add(self.executed, o.executed, sign),
            acked=self.acked + sign * o.acked,
            failed=self.failed + sign * o.failed,
            errors=self.errors + sign * o.errors,
            execute_ms=self.execute_ms + sign * o.execute_ms,
            complete_ms=self.complete_ms + sign * o.complete_ms,
            complete_n=self.complete_n + sign * o.complete_n,
            busy_secs=self.busy_secs + sign * o.busy_secs,
        )

    def minus(self, o: Counters) -> Counters:
        return self.plus(o, -1)

    @property
    def total_emitted(self) -> int:
        return sum(self.emitted.values())

    @property
    def total_transferred(self) -> int:
        return sum(self.transferred.values())

    @property
    def total_executed(self) -> int:
        return sum(self.executed.values())

    def went_backwards(self, before: Counters) -> bool:
        """True if any counter is below its value in ``before`` (a restart)."""
        if self.acked < before.acked or self.failed < before.failed:
            return True
        if self.execute_ms < before.execute_ms or self.complete_n < before.complete_n:
            return True
        return any(self.emitted.get(k, 0) < v for k, v in before.emitted.items()) or any(
            self.executed.get(k, 0) < v for k, v in before.executed.items()
        )


def _add(a: Mapping[K, int], b: Mapping[K, int], sign: int) -> dict[K, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + sign * v
    return out


@dataclass
class _Tier:
    secs: float
    step: float
    samples: deque[tuple[float, dict[ExecutorKey, Counters]]] = field(default_factory=deque)

    def offer(self, now: float, counters: dict[ExecutorKey, Counters]) -> None:
        if not self.samples or now - self.samples[-1][0] >= self.step:
            self.samples.append((now, counters))
        # Keep exactly one sample at or before the window's start (the baseline).
        cutoff = now - self.secs
        while len(self.samples) >= 2 and self.samples[1][0] <= cutoff:
            self.samples.popleft()

    def baseline(self) -> tuple[float, dict[ExecutorKey, Counters]] | None:
        """The newest sample at least ``secs`` old, else the oldest one (None if empty)."""
        if not self.samples:
            return None
        return self.samples[0]


class StatsHistory:
    """Windowed counters for one topology, from snapshots recorded over time.

    Args:
        tiers: (window seconds, step seconds) pairs; a window not listed here
            falls back to the smallest tier at least as long.
    """

    def __init__(self, tiers: Iterable[tuple[float, float]] = DEFAULT_TIERS) -> None:
        self._tiers = [_Tier(float(w), float(s)) for w, s in sorted(tiers)]
        self._latest: dict[ExecutorKey, Counters] = {}
        self._raw: dict[ExecutorKey, Counters] = {}
        self._carried: dict[ExecutorKey, Counters] = {}
        self._born: dict[ExecutorKey, float] = {}
        self.snapshots: dict[ExecutorKey, ExecutorSnapshot] = {}
        self.restarts: dict[int, int] = {}  # worker -> restarts seen
        self.now = 0.0
        # The last few records, for live rates.
        self._recent: deque[tuple[float, dict[ExecutorKey, Counters]]] = deque(maxlen=64)

    def record(self, now: float, snapshots: Iterable[ExecutorSnapshot]) -> None:
        """Add the counters read at time ``now`` (seconds on the topology's clock)."""
        latest: dict[ExecutorKey, Counters] = {}
        snaps: dict[ExecutorKey, ExecutorSnapshot] = {}
        restarted_workers: set[int] = set()
        for s in snapshots:
            key = s.id
            raw = Counters.of(s)
            before = self._raw.get(key)
            prev_snap = self.snapshots.get(key)
            if before is not None and (
                raw.went_backwards(before)
                or (prev_snap is not None and s.uptime_secs + 1e-6 < prev_snap.uptime_secs)
            ):
                # A new incarnation of this executor: keep what the old one did.
                self._carried[key] = self._carried.get(key, Counters()).plus(before)
                restarted_workers.add(s.worker)
            self._raw[key] = raw
            carried = self._carried.get(key)
            latest[key] = raw.plus(carried) if carried is not None else raw
            snaps[key] = s
            if key not in self._born:
                self._born[key] = now - s.uptime_secs
        for w in restarted_workers:
            self.restarts[w] = self.restarts.get(w, 0) + 1
        self._latest = latest
        self._recent.append((now, latest))
        self.snapshots = snaps
        self.now = now
        for tier in self._tiers:
            tier.offer(now, latest)

    def window(self, secs: float | None) -> dict[ExecutorKey, Counters]:
        """Per-executor counters over the last ``secs`` seconds (None: all time)."""
        return {k: c for k, (c, _span) in self.window_spans(secs).items()}

    def window_spans(self, secs: float | None) -> dict[ExecutorKey, tuple[Counters, float]]:
        """Like :meth:`window`, with the seconds each executor's counters cover.

        The span is the executor's uptime when it started inside the window,
        else the age of the baseline snapshot (``secs`` give or take one step).
        """
        if secs is None:
            return {k: (c, self.uptime(k)) for k, c in self._latest.items()}
        tier = next((t for t in self._tiers if t.secs >= secs), self._tiers[-1])
        base = tier.baseline()
        cutoff = self.now - secs
        out: dict[ExecutorKey, tuple[Counters, float]] = {}
        for key, cur in self._latest.items():
            old = base[1].get(key) if base is not None else None
            if old is None or self._born.get(key, 0.0) >= cutoff - 1e-9:
                # Started inside the window (or nothing older is known): all of it counts.
                out[key] = (cur, min(self.uptime(key), secs))
                continue
            assert base is not None
            out[key] = (cur.minus(old), self.now - base[0])
        return out

    def capacities(self) -> dict[ExecutorKey, float]:
        """Storm's capacity per executor over the last 10 minutes.

        ``executed x execute latency / (1000 x min(uptime, 600))``, i.e. the
        fraction of the time the executor spent executing (0..1, more means
        overloaded).
        """
        out: dict[ExecutorKey, float] = {}
        for key, (c, span) in self.window_spans(600.0).items():
            out[key] = c.execute_ms / (1000.0 * span) if span > 0 else 0.0
        return out

    def recent(self, over_secs: float = 5.0) -> tuple[float, dict[ExecutorKey, Counters]]:
        """Counters over roughly the last ``over_secs``, and the seconds they cover.

        The UI turns these into live rates (tuples per second). The span starts
        at the newest record at least ``over_secs`` old (or the oldest kept).
        """
        if len(self._recent) < 2:
            return 0.0, {}
        cutoff = self.now - over_secs
        t0, before = self._recent[0]
        for t, c in self._recent:
            if t > cutoff:
                break
            t0, before = t, c
        if t0 >= self.now:
            t0, before = self._recent[-2]
        dt = self.now - t0
        return dt, {k: c.minus(before[k]) if k in before else c for k, c in self._latest.items()}

    def uptime(self, key: ExecutorKey) -> float:
        s = self.snapshots.get(key)
        return s.uptime_secs if s is not None else 0.0
