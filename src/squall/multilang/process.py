"""One child process of a shell component: started, fed, read and killed for sure.

Design (why it looks like this):

* **No I/O threads on the data path.** stdin and stdout are non-blocking pipes
  written and read by the engine's loop thread (``flush``/``read`` are called
  from the component's ``squall_pending``). Under the GIL a reader or writer
  thread would wait up to the switch interval (5 ms) for its turn whenever the
  loop is busy, which caps a pipe at a few thousand round trips a second; a
  non-blocking read that finds nothing costs about a microsecond.
* **stderr is drained on a thread**, because a child that floods it would
  otherwise block on a full pipe. Lines are logged under the component's logger
  with a rate limit (a child writing 1 GB to stderr costs bounded memory and log
  volume), and the last lines are kept for error reports.
* **The child leads its own session** (``start_new_session``), so ``kill`` takes
  down anything it started too, and it is always reaped: no orphan, no zombie.
  A child also sees EOF on stdin when the worker dies, on which Storm's and
  pystorm's clients exit.
* **Liveness** reads the CPU time of the child's session from ``/proc``: a child
  that is silent but computing is busy, not hung (see ``ShellBolt``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from squall.multilang.codec import Codec, Decoder

_READ_CHUNK = 1 << 16
# Per read() call at most this many chunks, so one chatty child cannot starve the loop.
_MAX_CHUNKS_PER_READ = 16
_STDERR_LINES_PER_SEC = 50
_STDERR_LINE_LIMIT = 2000

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ChildProcess:
    """A running child with non-blocking stdin/stdout and a stderr drain thread.

    Args:
        argv: the command line.
        cwd: working directory.
        env: extra environment; ``PATH`` is appended to the inherited one (as Storm does).
        codec: the serializer used on stdin/stdout.
        max_message_bytes: cap on one message from the child.
        logger: where stderr lines go.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str] | None,
        codec: Codec,
        max_message_bytes: int,
        logger: logging.Logger,
    ) -> None:
        self.argv = list(argv)
        self.codec = codec
        self.logger = logger
        self.decoder: Decoder = codec.decoder(max_message_bytes)
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if k == "PATH" and full_env.get("PATH"):
                full_env["PATH"] = full_env["PATH"] + os.pathsep + v
            else:
                full_env[k] = v
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in_fd = self.proc.stdin.fileno()
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        os.set_blocking(self._out_fd, False)
        self.pending_out = bytearray()
        self.eof = False
        self.broken_pipe = False
        self.started = time.monotonic()
        self.last_read = self.started
        self.bytes_read = 0
        self.stderr_tail: deque[str] = deque(maxlen=10)
        self.stderr_skipped = 0
        self._killed = False
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name=f"squall-stderr-{self.pid}", daemon=True
        )
        self._stderr_thread.start()
        _LIVE[self.pid] = self

    # -- data path (loop thread) -----------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue ``data`` for the child and write as much as the pipe takes now."""
        self.pending_out += data
        self.flush()

    def flush(self) -> None:
        """Write what is queued, without blocking; the rest waits for the next call."""
        buf = self.pending_out
        while buf:
            try:
                n = os.write(self._in_fd, buf)
            except BlockingIOError:
                return
            except (BrokenPipeError, OSError):
                # The child closed stdin or died; the reader will see EOF.
                self.broken_pipe = True
                buf.clear()
                return
            del buf[:n]

    def read(self, out: list[Any]) -> int:
        """Decode what the child wrote into ``out``; returns bytes read. Raises ProtocolError."""
        total = 0
        for _ in range(_MAX_CHUNKS_PER_READ):
            try:
                data = os.read(self._out_fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.eof = True
                break
            total += len(data)
            self.decoder.feed(data, out)
            if len(data) < _READ_CHUNK:
                break
        if total:
            self.last_read = time.monotonic()
            self.bytes_read += total
        return total

    # -- health ------------------------------------------------------------------
    def exit_code(self) -> int | None:
        return self.proc.poll()

    def cpu_ticks(self) -> int:
        """CPU time (clock ticks) used by every live process in the child's session."""
        total = 0
        sid = self.pid
        try:
            names = os.listdir("/proc")
        except OSError:
            return 0
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # Fields after the command (which may hold spaces) start after the last ')'.
            rest = stat[stat.rfind(b")") + 2 :].split()
            try:
                if int(rest[3]) != sid:  # field 6: session id
                    continue
                total += int(rest[11]) + int(rest[12])  # fields 14, 15: utime, stime
            except (IndexError, ValueError):
                continue
        return total

    def describe(self) -> str:
        """``pid N, exit code C`` (or ``still running``) and the command, for error texts."""
        code = self.proc.poll()
        state = "still running" if code is None else _exit_text(code)
        return f"pid {self.pid}, {state}, command {' '.join(self.argv)!r}"

    def stderr_excerpt(self) -> str:
        lines = list(self.stderr_tail)
        return " | ".join(lines)[-1000:]

    # -- ending --------------------------------------------------------------------
    def close(self, grace_secs: float = 1.0) -> int | None:
        """Close stdin (a polite child exits on EOF), wait ``grace_secs``, then kill the session."""
        if self._killed:
            return self.proc.returncode
        with contextlib.suppress(OSError):
            os.set_blocking(self._in_fd, True)
            if self.pending_out and not self.broken_pipe:
                # Best effort: a last message (e.g. a final ack) may still be queued.
                os.write(self._in_fd, bytes(self.pending_out[:_READ_CHUNK]))
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        if grace_secs > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace_secs)
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL the child's whole session and reap the child. Safe to call twice."""
        if self._killed:
            return self.proc.returncode
        self._killed = True
        _LIVE.pop(self.pid, None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        code: int | None
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
            code = None
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()
        self._stderr_thread.join(1.0)
        with contextlib.suppress(OSError):
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        return code

    def _drain_stderr(self) -> None:
        fd = self.proc.stderr.fileno()  # type: ignore[union-attr]
        budget = float(_STDERR_LINES_PER_SEC)
        last = time.monotonic()
        partial = b""
        log = self.logger
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic()
            budget = min(
                float(_STDERR_LINES_PER_SEC), budget + (now - last) * _STDERR_LINES_PER_SEC
            )
            last = now
            if budget < 1:
                # Flooded: count, keep the tail for error reports, log nothing now.
                self.stderr_skipped += chunk.count(b"\n")
                partial = chunk[-_STDERR_LINE_LIMIT:]
                self.stderr_tail.append(_line_text(chunk.rsplit(b"\n", 2)[-1]))
                continue
            data = partial + chunk
            lines = data.split(b"\n")
            partial = lines.pop()[-_STDERR_LINE_LIMIT:]
            for raw in lines:
                text = _line_text(raw)
                self.stderr_tail.append(text)
                if budget >= 1:
                    budget -= 1
                    log.info("stderr (pid %s): %s", self.pid, text)
                else:
                    self.stderr_skipped += 1
        if partial:
            self.stderr_tail.append(_line_text(partial))
        if self.stderr_skipped:
            log.info(
                "stderr (pid %s): %d more lines were not logged (rate limit %d lines/s)",
                self.pid,
                self.stderr_skipped,
                _STDERR_LINES_PER_SEC,
            )


def _line_text(raw: bytes) -> str:
    text = raw[:_STDERR_LINE_LIMIT].decode("utf-8", "backslashreplace").rstrip("\r")
    return text + ("...(truncated)" if len(raw) > _STDERR_LINE_LIMIT else "")


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit code {code}"


def cpu_secs(ticks: int) -> float:
    return ticks / float(_CLK_TCK)


# Every child not yet killed, so that a worker that exits without stopping its
# topology still leaves no orphan behind.
_LIVE: dict[int, ChildProcess] = {}


def kill_all_children() -> None:
    """Kill every child this process started and has not killed yet."""
    for child in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            child.kill()


atexit.register(kill_all_children)

__all__ = ["ChildProcess", "cpu_secs", "kill_all_children"]
