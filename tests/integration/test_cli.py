"""``squall run`` as a user runs it: a real subprocess, real time, real signals."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).parents[2]
SQUALL = str(Path(sys.executable).parent / "squall")

RAISES = """
import itertools
from squall import Bolt, Spout, Topology

class Numbers(Spout):
    outputs = ["n"]

    def initialize(self, conf, context):
        self.numbers = itertools.count()

    def next_tuple(self):
        n = next(self.numbers)
        self.emit([n], tup_id=n)

class Divide(Bolt):
    outputs = ["q"]

    def process(self, tup):
        self.emit([100 // (tup.values.n % 7)])

class Crashy(Topology):
    numbers = Numbers.spec()
    divide = Divide.spec(inputs=[numbers], par=2)
"""

BAD_FIELD = """
from squall import Bolt, Grouping, Spout, Topology

class Words(Spout):
    outputs = ["word"]

class Count(Bolt):
    outputs = ["word", "count"]

class Bad(Topology):
    words = Words.spec()
    count = Count.spec(inputs={words: Grouping.fields("wrd")})
"""


def squall(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def topology_file(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def rate(line: str, key: str) -> int:
    match = re.search(rf"\b{re.escape(key)}=(\d+)", line)
    assert match, f"no {key}= in {line!r}"
    return int(match.group(1))


def test_run_wordcount_shows_rates_then_a_summary_and_exits_0() -> None:
    result = squall("run", "examples/wordcount.py", "--duration", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    for component in ("sentences", "split", "count"):
        rows = [line for line in lines if re.match(rf"\[\d+\.\ds\] {component}: ", line)]
        assert len(rows) >= 2, f"expected a rate line per second for {component}:\n{out}"
    split_rows = [line for line in lines if "] split: " in line]
    assert rate(split_rows[0], "emitted/s") > 0 and rate(split_rows[0], "executed/s") > 0
    assert "Summary: topology WordCount ran 2.0s (stopped: duration reached)" in out
    summary = lines[lines.index(next(x for x in lines if x.startswith("Summary:"))) :]
    assert any(x.split()[:2] == ["count", "bolt"] for x in summary)
    assert summary[-1] == "errors: none"
    assert "Traceback" not in result.stderr


def test_bad_topology_exits_1_with_a_message_naming_component_and_field(tmp_path: Path) -> None:
    result = squall("run", topology_file(tmp_path, "bad.py", BAD_FIELD))
    assert result.returncode == 1
    assert "invalid topology 'Bad'" in result.stderr
    assert "component 'count'" in result.stderr and "field 'wrd'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_workers_option_runs_a_topology_file_in_worker_processes() -> None:
    result = squall("run", "examples/reliable_wordcount.py", "--workers", "2", "--duration", "2")
    assert result.returncode == 0, result.stderr
    assert "3 components, 6 tasks, 2 workers" in result.stdout
    # Every sentence is acked in the end, across processes: 200 rounds of 5 sentences.
    spout = next(line for line in result.stdout.splitlines() if line.startswith("sentences "))
    assert spout.split()[5] == "1,000"


def test_an_initialize_that_raises_stops_the_start_with_status_1(tmp_path: Path) -> None:
    source = RAISES.replace(
        "class Divide(Bolt):",
        "class Divide(Bolt):\n    def initialize(self, conf, context):\n"
        "        self.url = conf['db.url']\n",
    )
    result = squall("run", topology_file(tmp_path, "needs_db.py", source))
    assert result.returncode == 1
    assert "ERROR in component 'divide' task" in result.stderr
    assert "in initialize\n" in result.stderr and "KeyError: 'db.url'" in result.stderr
    assert "squall run: cannot start topology 'Crashy'" in result.stderr


@pytest.mark.parametrize(
    ("signum", "status", "reason"),
    [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_a_signal_stops_the_run_cleanly_with_a_summary(
    signum: int, status: int, reason: str
) -> None:
    proc = subprocess.Popen(
        [SQUALL, "run", "examples/wordcount.py", "--interval", "0.5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        while not any("] count: " in line for line in seen):
            line = proc.stdout.readline()
            assert line, f"squall run ended early:\n{''.join(seen)}"
            seen.append(line)
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert f"Stopping topology WordCount ({reason})" in rest
    assert re.search(rf"Summary: topology WordCount ran [\d.]+s \(stopped: {reason}\)", rest)
    assert rest.rstrip().endswith("errors: none")
    assert "Traceback" not in err


def test_a_bolt_that_raises_is_shown_with_component_task_and_traceback(tmp_path: Path) -> None:
    path = topology_file(tmp_path, "raises.py", RAISES)
    result = squall("run", path, "--duration", "1.5", "--interval", "0.5")
    assert result.returncode == 3, "errors in user code make the exit status 3"
    err = result.stderr
    first = re.search(
        r"ERROR in component 'divide' task (\d+) \(topology Crashy, worker 0\): "
        r"ZeroDivisionError: integer division or modulo by zero",
        err,
    )
    assert first, err[:2000]
    assert "Traceback (most recent call last):" in err
    assert f'File "{path}", line 19, in process' in err
    # A crash loop is throttled into one line per task instead of flooding.
    assert re.search(r"\.\.\. \d+ more errors from component 'divide' task \d+", err)
    assert err.count("Traceback (most recent call last):") <= 4
    summary = re.search(r"errors: (\d+) raised by user code \(divide task", result.stdout)
    assert summary and int(summary.group(1)) > 100
    divide_failed = next(
        line for line in result.stdout.splitlines() if line.startswith("divide ")
    ).split()
    assert divide_failed[6] == divide_failed[7], "every error failed its tuple"


def test_in_a_terminal_the_table_is_redrawn_in_place() -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [SQUALL, "run", "examples/exclamation.py", "--duration", "1.5", "--interval", "0.5"],
        cwd=ROOT,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal.
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=10) == 0
    screen = b"".join(chunks).decode()
    assert "component" in screen and "emitted/s" in screen and "exclaim2" in screen
    assert "\x1b[5A\r\x1b[J" in screen, "the 5-line table is erased before each redraw"
    assert "Summary: topology Exclamation" in screen
