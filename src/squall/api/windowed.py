"""Windowing bolts (Storm 1.0's ``IWindowedBolt``): ``process`` gets a window of tuples.

>>> class MovingSum(WindowedBolt):
...     outputs = ["sum"]
...     window_length = Count(3)
...     sliding_interval = Count(1)
...     def process(self, window):
...         self.emit([sum(t.values.n for t in window.get())])

Configuration (class attributes, or the Storm config keys in the component's
config, which win):

* ``window_length``: ``Count(n)`` tuples or ``Duration(secs)``
  (``topology.bolts.window.length.count`` / ``.duration.ms``);
* ``sliding_interval``: ``Count(n)`` or ``Duration(secs)``; ``None`` (default)
  makes a tumbling window (``topology.bolts.window.sliding.interval.count`` /
  ``.duration.ms``);
* event time: ``timestamp_field`` (a field holding seconds), ``lag_secs``
  (default 0) and ``watermark_interval_secs`` (default 1). The watermark is the
  minimum over input streams of (latest timestamp - lag); every window whose end
  is at or before the watermark is evaluated, and the first window ends at the
  earliest timestamp rounded up to the sliding interval. A tuple older than the
  watermark is late: it is emitted on ``late_tuple_stream`` (field
  ``late_tuple``) when set, else dropped, and acked either way;
* processing time otherwise, by the engine's clock (simulated in tests).

``process(window)`` sees ``window.get()`` (every tuple in the window),
``window.new()`` (arrived since the last evaluation), ``window.expired()``
(left since the last evaluation), ``window.start`` and ``window.end``.

Reliability is at-least-once, as in Storm: what ``process`` emits is anchored
to every tuple of the window, and a tuple is acked when it leaves its last
window. So a window must fit in the message timeout (time windows) and in
``topology.max.spout.pending`` (count windows); ``initialize`` checks both.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from squall.api.component import Bolt, ComponentSpec
from squall.api.stream import Stream, normalize_outputs
from squall.api.tuple import Tuple

LENGTH_COUNT = "topology.bolts.window.length.count"
LENGTH_DURATION_MS = "topology.bolts.window.length.duration.ms"
SLIDING_COUNT = "topology.bolts.window.sliding.interval.count"
SLIDING_DURATION_MS = "topology.bolts.window.sliding.interval.duration.ms"
TICK_FREQ = "topology.tick.tuple.freq.secs"


@dataclass(frozen=True)
class Count:
    """A window length or slide in tuples."""

    n: int

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n <= 0:
            raise ValueError(f"Count(n): n must be an int > 0, got {self.n!r}")


@dataclass(frozen=True)
class Duration:
    """A window length or slide in seconds."""

    secs: float

    def __post_init__(self) -> None:
        if not isinstance(self.secs, int | float) or isinstance(self.secs, bool) or self.secs <= 0:
            raise ValueError(f"Duration(secs): secs must be > 0, got {self.secs!r}")


class TupleWindow:
    """What ``process`` receives (Storm's ``TupleWindow``)."""

    __slots__ = ("_expired", "_new", "_tuples", "end", "start")

    def __init__(
        self,
        tuples: Sequence[Tuple],
        new: Sequence[Tuple],
        expired: Sequence[Tuple],
        start: float | None,
        end: float | None,
    ) -> None:
        self._tuples = list(tuples)
        self._new = list(new)
        self._expired = list(expired)
        self.start = start
        self.end = end

    def get(self) -> list[Tuple]:
        """Every tuple in the window, oldest first."""
        return self._tuples

    def new(self) -> list[Tuple]:
        """Tuples that arrived since the previous evaluation."""
        return self._new

    def expired(self) -> list[Tuple]:
        """Tuples that left the window since the previous evaluation."""
        return self._expired

    def __len__(self) -> int:
        return len(self._tuples)

    def __repr__(self) -> str:
        return f"<TupleWindow {len(self._tuples)} tuple(s) ({self.start}, {self.end}]>"


class WindowedBolt(Bolt):
    """A bolt whose ``process(window)`` runs once per window (see the module docstring)."""

    window_length: ClassVar[Count | Duration | None] = None
    sliding_interval: ClassVar[Count | Duration | None] = None
    timestamp_field: ClassVar[str | None] = None
    lag_secs: ClassVar[float] = 0.0
    watermark_interval_secs: ClassVar[float] = 1.0
    late_tuple_stream: ClassVar[str | None] = None

    auto_ack = False

    def __init__(self) -> None:
        super().__init__()
        # The engine calls ``self.process`` per tuple; the class's ``process`` takes windows.
        self._process_window = self.process
        self.process = self._squall_on_tuple  # type: ignore[method-assign,assignment]
        self._anchors: list[Tuple] | None = None
        # The engine's clock (context.now: simulated in tests); None until set up.
        self._now_fn: Callable[[], float] | None = None
        self._tuples: deque[tuple[float, Tuple]] = deque()  # (timestamp, tuple), oldest first
        self._new: list[Tuple] = []
        self._expired: list[Tuple] = []
        self._since_eval = 0
        self._next_end: float | None = None
        self._latest: dict[tuple[str, str], float] = {}
        self._watermark = -math.inf
        self._length: Count | Duration = Count(1)
        self._slide: Count | Duration = Count(1)

    # -- declaration --------------------------------------------------------------------
    @classmethod
    def spec(cls, *args: Any, **kwargs: Any) -> ComponentSpec:
        """As ``Bolt.spec``; also asks for ticks (time windows) and declares the late stream."""
        spec = super().spec(*args, **kwargs)
        config = dict(spec.config)
        length, slide = _window_of(cls, config)
        timed = cls.timestamp_field or isinstance(slide, Duration) or isinstance(length, Duration)
        if timed and TICK_FREQ not in config:
            if cls.timestamp_field:
                freq = cls.watermark_interval_secs
            else:
                freq = slide.secs if isinstance(slide, Duration) else 1.0
            config[TICK_FREQ] = freq
        spec.config = config
        late = cls.late_tuple_stream
        if late:
            outputs = normalize_outputs(spec.outputs or cls.outputs, spec.name or cls.__name__)
            if late not in outputs:
                spec.outputs = [*outputs.values(), Stream(["late_tuple"], name=late)]
        return spec

    # -- set up -------------------------------------------------------------------------
    def _squall_setup(self, conf: Mapping[str, Any]) -> None:
        length, slide = _window_of(type(self), conf)
        where = f"windowed bolt {type(self).__name__}"
        if type(self).timestamp_field and not (
            isinstance(length, Duration) and isinstance(slide, Duration)
        ):
            raise ValueError(f"{where}: event time (timestamp_field) needs Duration windows")
        timeout = conf.get("topology.message.timeout.secs", 30)
        if isinstance(length, Duration):
            total = length.secs + (slide.secs if isinstance(slide, Duration) else 0)
            if timeout is not None and total + type(self).lag_secs > float(timeout):
                raise ValueError(
                    f"{where}: window length + sliding interval ({total:g}s) exceeds "
                    f"topology.message.timeout.secs ({timeout}); tuples would time out"
                )
        pending = conf.get("topology.max.spout.pending")
        if isinstance(length, Count) and pending:
            total_n = length.n + (slide.n if isinstance(slide, Count) else 0)
            if total_n > int(pending):
                raise ValueError(
                    f"{where}: window length + sliding interval ({total_n} tuples) exceeds "
                    f"topology.max.spout.pending ({pending}); the spout would stall"
                )
        self._length, self._slide = length, slide
        context = getattr(self, "context", None)
        self._now_fn = context.now if context is not None else time.monotonic

    def _now(self) -> float:
        fn = self._now_fn
        return float(fn()) if fn is not None else time.monotonic()

    # -- emitting -------------------------------------------------------------------------
    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        anchors: Sequence[Tuple] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        """Emit; inside ``process`` the default anchors are every tuple of the window."""
        if anchors is None:
            anchors = self._anchors
        return self._collector.emit(  # type: ignore[no-any-return]
            tup,
            stream=stream,
            anchors=anchors,
            direct_task=direct_task,
            need_task_ids=need_task_ids,
        )

    # -- the machinery --------------------------------------------------------------------
    def _squall_on_tuple(self, tup: Tuple) -> None:
        if self._now_fn is None:  # set up lazily: a user's initialize need not call super
            self._squall_setup(self.conf)
        field = type(self).timestamp_field
        if field:
            self._event_tuple(tup, field)
            return
        now = self._now()
        self._add(now, tup)
        if isinstance(self._slide, Count):
            self._since_eval += 1
            if self._since_eval >= self._slide.n:
                self._evaluate(None, now)
        elif self._next_end is None:
            self._next_end = now + self._slide.secs

    def _event_tuple(self, tup: Tuple, field: str) -> None:
        try:
            ts = float(getattr(tup.values, field))
        except (AttributeError, TypeError, ValueError) as e:
            raise ValueError(
                f"windowed bolt {type(self).__name__}: tuple from {tup.component}:{tup.stream} "
                f"has no numeric timestamp field {field!r} ({e})"
            ) from None
        if ts < self._watermark:
            late = type(self).late_tuple_stream
            if late:
                self._collector.emit([list(tup.values)], stream=late, anchors=[tup])
            else:
                self.log(f"dropping a late tuple (timestamp {ts} < watermark {self._watermark})")
            self.ack(tup)
            return
        key = (tup.component, tup.stream)
        self._latest[key] = max(self._latest.get(key, -math.inf), ts)
        self._add(ts, tup)
        slide = self._slide
        assert isinstance(slide, Duration)
        if self._next_end is None:
            # The first window ends at the earliest timestamp rounded up to the slide.
            first = min(t for t, _ in self._tuples)
            self._next_end = math.ceil(first / slide.secs) * slide.secs

    def _add(self, ts: float, tup: Tuple) -> None:
        tuples = self._tuples
        if tuples and ts < tuples[-1][0]:
            # Event time may arrive out of order: keep the window sorted by timestamp
            # (the place is near the end, so the walk back is short; no copy).
            i = len(tuples)
            while i > 0 and tuples[i - 1][0] > ts:
                i -= 1
            tuples.insert(i, (ts, tup))
        else:
            tuples.append((ts, tup))
        self._new.append(tup)

    def process_tick(self, tup: Tuple) -> None:
        if self._now_fn is None:
            self._squall_setup(self.conf)
        if type(self).timestamp_field:
            if not self._latest:
                return
            self._watermark = min(self._latest.values()) - type(self).lag_secs
            self._advance(self._watermark)
        elif isinstance(self._slide, Duration) and self._next_end is not None:
            self._advance(self._now())

    def _advance(self, until: float) -> None:
        """Evaluate every time window that ends at or before ``until``."""
        slide = self._slide
        assert isinstance(slide, Duration)
        while self._next_end is not None and self._next_end <= until:
            end = self._next_end
            self._evaluate(end, end)
            self._next_end = end + slide.secs

    def _evaluate(self, end: float | None, now: float) -> None:
        length, slide = self._length, self._slide
        tuples = list(self._tuples)
        # Event-time windows hold (end - length, end] (Storm); processing-time windows
        # [end - length, end), so that a tuple that arrives as a window closes goes to the
        # next one. Later tuples (event time) wait for their window.
        event = bool(type(self).timestamp_field)
        if end is not None:
            upto = [(t, x) for t, x in tuples if (t <= end if event else t < end)]
            later = tuples[len(upto) :]
        else:
            upto, later = tuples, []
        if isinstance(length, Count):
            cut = max(0, len(upto) - length.n)
        else:
            start = (end if end is not None else now) - length.secs
            cut = sum(1 for t, _ in upto if (t <= start if event else t < start))
        evicted = [x for _, x in upto[:cut]]
        keep = upto[cut:]
        window_tuples = [x for _, x in keep]
        ids = {id(x) for x in window_tuples}
        window = TupleWindow(
            window_tuples,
            [x for x in self._new if id(x) in ids],
            self._expired + evicted,
            None if end is None else end - (length.secs if isinstance(length, Duration) else 0),
            end,
        )
        if window_tuples or window.expired():
            # (As Storm: a window with nothing in it and nothing leaving is not evaluated.)
            self._anchors = window_tuples
            try:
                self._process_window(window)
            finally:
                self._anchors = None
        # A tuple is acked once it has left every window it can be in.
        for x in evicted:
            self.ack(x)
        self._expired = []
        self._new = [x for x in self._new if id(x) not in ids]
        self._since_eval = 0
        # Tuples the next window cannot hold leave now (acked now, reported as expired then):
        # with a tumbling window, every tuple of this one.
        doomed = 0
        if isinstance(length, Count) and isinstance(slide, Count):
            doomed = max(0, len(keep) - max(0, length.n - slide.n))
        elif isinstance(length, Duration) and isinstance(slide, Duration) and end is not None:
            nxt = end + slide.secs - length.secs
            doomed = sum(1 for t, _ in keep if (t <= nxt if event else t < nxt))
        for _, x in keep[:doomed]:
            self.ack(x)
            self._expired.append(x)
        self._tuples = deque(keep[doomed:] + later)

    def process(self, window: TupleWindow) -> None:  # type: ignore[override]
        """Handle one window (override this)."""


def _window_of(
    cls: type[WindowedBolt], conf: Mapping[str, Any]
) -> tuple[Count | Duration, Count | Duration]:
    length: Count | Duration | None = cls.window_length
    slide: Count | Duration | None = cls.sliding_interval
    if conf.get(LENGTH_COUNT):
        length = Count(int(conf[LENGTH_COUNT]))
    elif conf.get(LENGTH_DURATION_MS):
        length = Duration(float(conf[LENGTH_DURATION_MS]) / 1000.0)
    if conf.get(SLIDING_COUNT):
        slide = Count(int(conf[SLIDING_COUNT]))
    elif conf.get(SLIDING_DURATION_MS):
        slide = Duration(float(conf[SLIDING_DURATION_MS]) / 1000.0)
    if length is None:
        raise ValueError(
            f"windowed bolt {cls.__name__}: no window length; set window_length = Count(n) or "
            f"Duration(secs), or {LENGTH_COUNT} / {LENGTH_DURATION_MS} in its config"
        )
    if not isinstance(length, Count | Duration) or not isinstance(slide, Count | Duration | None):
        raise TypeError(
            f"windowed bolt {cls.__name__}: window_length and sliding_interval take Count(n) "
            "or Duration(secs)"
        )
    return length, slide if slide is not None else length


__all__ = ["Count", "Duration", "TupleWindow", "WindowedBolt"]
