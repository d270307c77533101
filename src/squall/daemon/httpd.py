"""What the daemons' small HTTP servers share (nimbus's API, the logviewer, the UI).

* :class:`DaemonHTTPServer`: a thread per connection, with a listen backlog that
  survives a burst of connections;
* :class:`TokenGate`: the bearer-token check, in constant time, counting refusals;
* :class:`RefusalLog`: refusals logged without letting a flood of them flood the
  log. Every refusal is counted; the first ``burst`` in each window are logged
  with the peer's address, and the rest are summed up in one line when the
  window turns.

>>> lines = []
>>> class Log:
...     def warning(self, msg, *args): lines.append(msg % args)
>>> now = [0.0]
>>> r = RefusalLog(Log(), "refused an unauthenticated request", burst=2, clock=lambda: now[0])
>>> for _ in range(5):
...     r.refused("10.0.0.9")
>>> now[0] = 61.0
>>> r.refused("10.0.0.7")
>>> lines  # doctest: +NORMALIZE_WHITESPACE
['refused an unauthenticated request from 10.0.0.9',
 'refused an unauthenticated request from 10.0.0.9',
 'refused an unauthenticated request: 3 more in the last 61 s (not logged one by one)',
 'refused an unauthenticated request from 10.0.0.7']
>>> r.total
6
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any


class DaemonHTTPServer(ThreadingHTTPServer):
    """A thread per connection; handler threads never keep the process alive."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of connections (or a flood of idle
    # ones) would make the kernel drop new clients' SYNs, so they wait seconds to connect.
    request_queue_size = 1024


class RefusalLog:
    """Counts refusals and logs them, at most ``burst`` lines per ``window_secs``.

    Args:
        logger: where lines go (its ``warning`` method).
        what: the line's text ("refused an unauthenticated request").
        burst: refusals logged one by one per window.
        window_secs: the window.
        clock: monotonic time (tests pass a fake one).
    """

    def __init__(
        self,
        logger: Any,
        what: str,
        burst: int = 10,
        window_secs: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.burst = burst
        self.window_secs = window_secs
        self.clock = clock
        self.total = 0
        self._lock = threading.Lock()
        self._start = clock()
        self._in_window = 0
        self._suppressed = 0

    def refused(self, peer: str) -> None:
        """Count one refusal of a request from ``peer`` (and maybe log it)."""
        with self._lock:
            now = self.clock()
            self.total += 1
            if now - self._start >= self.window_secs:
                if self._suppressed:
                    self.logger.warning(
                        "%s: %d more in the last %.0f s (not logged one by one)",
                        self.what,
                        self._suppressed,
                        now - self._start,
                    )
                self._start, self._in_window, self._suppressed = now, 0, 0
            self._in_window += 1
            if self._in_window <= self.burst:
                self.logger.warning("%s from %s", self.what, peer)
            else:
                self._suppressed += 1


class TokenGate:
    """Admits requests that carry ``Authorization: Bearer <token>`` (all, without a token).

    >>> gate = TokenGate("s3cret", RefusalLog(None, "refused", burst=0))
    >>> gate.admits("Bearer s3cret", "10.0.0.1"), gate.admits(None, "10.0.0.2")
    (True, False)
    >>> gate.refusals.total
    1
    >>> TokenGate(None, gate.refusals).admits(None, "10.0.0.3")
    True
    """

    def __init__(self, token: str | None, refusals: RefusalLog) -> None:
        self.token = token or None
        self.refusals = refusals

    def admits(self, authorization: str | None, peer: str) -> bool:
        if self.token is None:
            return True
        given = (authorization or "").encode()
        if hmac.compare_digest(given, f"Bearer {self.token}".encode()):
            return True
        self.refusals.refused(peer)
        return False
