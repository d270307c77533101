"""Time as an injectable dependency, so timeouts can be tested without sleeping.

>>> c = SimulatedClock()
>>> c.now()
0.0
>>> c.advance(2.5); c.now()
2.5
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds, and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, secs: float) -> None: ...

    @property
    def simulated(self) -> bool: ...


class RealClock:
    """The machine's monotonic clock."""

    simulated = False

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, secs: float) -> None:
        if secs > 0:
            time.sleep(secs)


class SimulatedClock:
    """A clock that only moves when told to (Storm's simulated time)."""

    simulated = True

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, secs: float) -> None:
        if secs < 0:
            raise ValueError(f"cannot move time backwards by {secs}")
        self._now += secs

    def sleep(self, secs: float) -> None:
        # Sleeping on simulated time is instantaneous: it moves the clock.
        self.advance(max(0.0, secs))
