"""Local mode across worker processes: ZeroMQ between them, msgpack batches, same results.

Every test here starts real worker processes (or real sockets) on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import topologies as T

from squall import LocalCluster, Spout, Topology
from squall.daemon.local_workers import WorkerStartError
from squall.daemon.shipping import NotShippableError
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan
from squall.runtime.stats import ErrorReport
from squall.serialization import BatchDecoder, BatchEncoder
from squall.transport import ZmqLink
from squall.transport.zmq_link import DEFAULT_WINDOW

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        yield c


def _alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _word_counts(cluster: LocalCluster, workers: int, sentences: int) -> Any:
    run = cluster.submit(
        f"wc{workers}", T.WordCount, {"topology.workers": workers, T.SENTENCE_COUNT: sentences}
    )
    cluster.wait_until(lambda: run.stats()["sentences"].acked == sentences, timeout=30)
    return T.final_counts(run.stats()["count"].metrics)


@pytest.mark.parametrize("workers", [2, 3])
def test_word_counts_across_workers_equal_the_in_process_counts(
    real_cluster: LocalCluster, workers: int
) -> None:
    sentences = 3000
    in_process = _word_counts(real_cluster, 1, sentences)
    across = _word_counts(real_cluster, workers, sentences)
    assert in_process == T.expected_word_counts(sentences)
    assert across == in_process


def test_every_spout_tuple_is_acked_when_its_tree_spans_workers(
    real_cluster: LocalCluster,
) -> None:
    sentences = 2000
    run = real_cluster.submit(
        "acks", T.WordCount, {"topology.workers": 2, T.SENTENCE_COUNT: sentences}
    )
    real_cluster.wait_until(lambda: run.stats()["sentences"].acked == sentences, timeout=30)
    time.sleep(0.2)  # nothing more may arrive: no double acks, no fails
    stats = run.stats()
    assert stats["sentences"].acked == sentences
    assert stats["sentences"].failed == 0
    # The trees really crossed: split and count run in both workers.
    plan = run.plan
    assert {e.worker for e in plan.executors if e.component == "count"} == {0, 1}


def test_a_failing_bolt_fails_the_tuples_of_a_spout_in_another_worker(
    real_cluster: LocalCluster,
) -> None:
    numbers = 200
    errors: list[ErrorReport] = []
    conf = {"topology.workers": 2, T.NUMBER_COUNT: numbers}
    plan = make_plan(T.Judge.definition("judge"), conf)
    spout_worker = plan.task_to_worker[plan.component_tasks["numbers"][0]]
    judge_workers = {plan.task_to_worker[t] for t in plan.component_tasks["judge"]}
    assert judge_workers - {spout_worker}, "the test needs a judge task in another worker"

    run = real_cluster.submit("judge", T.Judge, conf, on_error=errors.append)
    real_cluster.wait_until(
        lambda: (lambda s: s.acked + s.failed)(run.stats()["numbers"]) == numbers, timeout=30
    )
    metrics = run.stats()["numbers"].metrics
    assert sorted(metrics["failed_ids"]) == list(range(1, numbers, 2))
    assert sorted(metrics["acked_ids"]) == list(range(0, numbers, 2))
    # The bolt's errors reached this process's on_error, naming the component.
    real_cluster.wait_until(lambda: len(errors) >= 1, timeout=10)
    assert {e.component for e in errors} == {"judge"}
    assert "ValueError: odd number" in errors[0].error


def test_a_component_defined_in_a_function_is_refused_before_any_worker_starts(
    real_cluster: LocalCluster,
) -> None:
    class Inline(Spout):
        outputs = ["n"]

    class Local(Topology):
        inline = Inline.spec()

    before = _children()
    with pytest.raises(NotShippableError) as info:
        real_cluster.submit("inline", Local, {"topology.workers": 2})
    message = str(info.value)
    assert "component 'inline'" in message
    assert "defined inside a function" in message
    assert _children() == before
    assert "inline" not in real_cluster.topologies


def test_a_component_failing_to_initialize_in_a_worker_fails_the_submit_naming_it(
    real_cluster: LocalCluster,
) -> None:
    errors: list[ErrorReport] = []
    before = _children()
    with pytest.raises(WorkerStartError) as info:
        real_cluster.submit(
            "broken",
            T.BrokenStart,
            {"topology.workers": 2, "topology.acker.executors": 0},
            on_error=errors.append,
        )
    assert "component 'broken'" in str(info.value)
    assert "cannot open the database" in str(info.value)
    assert [e.component for e in errors] == ["broken"]
    assert _children() == before


def test_a_slow_bolt_in_another_worker_throttles_the_spout(real_cluster: LocalCluster) -> None:
    capacity = 1000
    conf = {
        "topology.workers": 2,
        "topology.acker.executors": 0,
        "topology.executor.receive.buffer.size": capacity,
        "squall.executor.batch.size": 50,
        T.SLOW_SECS: 0.001,
    }
    plan = make_plan(T.Flood.definition("flood"), conf)
    assert (
        plan.task_to_worker[plan.component_tasks["flood"][0]]
        != (plan.task_to_worker[plan.component_tasks["slow"][0]])
    )
    run = real_cluster.submit("flood", T.Flood, conf)

    def in_flight() -> int:
        s = run.stats()
        return s["flood"].emitted - s["slow"].executed

    time.sleep(1.0)
    early = in_flight()
    time.sleep(2.0)
    late = in_flight()
    # The spout can emit several 100k tuples/s; without backpressure this would grow by
    # that much every second. With it: at most the bolt's inbox plus the send window
    # (plus one loop pass of the spout), however long it runs.
    bound = capacity + DEFAULT_WINDOW + 1000
    assert early < bound
    assert late < bound
    assert run.stats()["slow"].executed > 500  # the slow bolt kept working


def test_stop_leaves_no_worker_processes(real_cluster: LocalCluster) -> None:
    run = real_cluster.submit(
        "stopme", T.Flood, {"topology.workers": 3, "topology.acker.executors": 0, T.SLOW_SECS: 0}
    )
    pids = run._workers.pids
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    real_cluster.kill("stopme")
    assert not any(_alive(p) for p in pids)
    assert [p.returncode for p in run._workers.processes] == [0, 0, 0]


def test_a_worker_that_dies_is_reported_and_the_rest_still_stop(
    real_cluster: LocalCluster,
) -> None:
    errors: list[ErrorReport] = []
    run = real_cluster.submit(
        "crash",
        T.Crash,
        {"topology.workers": 2, "topology.acker.executors": 0},
        on_error=errors.append,
    )
    pids = run._workers.pids
    real_cluster.wait_until(lambda: bool(errors), timeout=20)
    crash_worker = run.plan.task_to_worker[run.plan.component_tasks["crash"][0]]
    assert errors[0].component == "__system"
    assert errors[0].worker == crash_worker
    assert f"worker {crash_worker} (pid {pids[crash_worker]}) exited unexpectedly with code 7" in (
        errors[0].error
    )
    assert set(run.stats()) == {"flood"}  # the survivors still answer
    real_cluster.kill("crash")
    assert not any(_alive(p) for p in pids)


def test_workers_exit_when_their_parent_is_killed() -> None:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tests.topologies import run_until_killed; run_until_killed(2)",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        _wait_for(lambda: not any(_alive(p) for p in pids), 15, "orphaned workers to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_full_remote_inbox_stops_the_upstream_until_relief_is_announced() -> None:
    """Two engines of one plan in this process, joined by real ZeroMQ links, stepped by hand."""
    capacity = 100
    conf = {
        "topology.workers": 2,
        "topology.acker.executors": 0,
        "topology.executor.receive.buffer.size": capacity,
        "topology.backpressure.check.millis": 0,
        "squall.executor.batch.size": 10,
        T.SLOW_SECS: 0,
    }
    plan = make_plan(T.Flood.definition("flood"), conf)
    spout_w = plan.task_to_worker[plan.component_tasks["flood"][0]]
    bolt_w = 1 - spout_w
    tasks: dict[int, list[int]] = {}
    for t, w in plan.task_to_worker.items():
        tasks.setdefault(w, []).append(t)
    links = {
        w: ZmqLink(w, BatchEncoder(), BatchDecoder.for_topology(plan.topology), worker_tasks=tasks)
        for w in (0, 1)
    }
    try:
        for link in links.values():
            link.connect({o.worker: o.port for o in links.values()})
        engines = {w: Engine(plan, w, remote=links[w]) for w in (0, 1)}
        for w, e in engines.items():
            links[w].attach(e)
            e.start()
        spout, bolt = engines[spout_w], engines[bolt_w]
        slow = bolt.executors[0]
        bolt_tasks = frozenset(slow.task_ids)

        def spout_pass() -> int:
            links[spout_w].poll()
            return spout.run_once()

        # The bolt's worker only receives (its bolt is "slow": never stepped).
        def bolt_receives() -> None:
            links[bolt_w].idle_wait(0.01)
            links[bolt_w].poll()

        for _ in range(200):
            spout_pass()
            bolt_receives()
            if links[spout_w].any_blocked(bolt_tasks):
                break
        assert links[spout_w].any_blocked(bolt_tasks), "the bolt's worker never announced"
        assert slow.queued >= capacity
        # Blocked: however many passes run, the spout emits nothing more.
        emitted = spout.component_stats()["flood"].emitted
        for _ in range(50):
            assert spout_pass() == 0
            bolt_receives()
        assert spout.component_stats()["flood"].emitted == emitted
        assert slow.queued <= emitted

        # The bolt drains its inbox (and what was still on its way); its worker
        # announces relief, and the spout resumes.
        def relieved() -> bool:
            while slow.queued:
                bolt.run_once()
            bolt_receives()
            links[spout_w].poll()
            return not links[spout_w].any_blocked(bolt_tasks)

        _wait_for(relieved, 5, "relief to be announced")
        assert spout_pass() > 0
    finally:
        for link in links.values():
            link.close()


def _children() -> set[int]:
    """Pids of this process's live children."""
    out: set[int] = set()
    for f in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        out.update(int(p) for p in f.read_text().split())
    return {p for p in out if _alive(p)}


SCRIPT = """
from squall import Bolt, LocalCluster, Spout, Topology


class Numbers(Spout):
    outputs = ["n"]

    def initialize(self, conf, context):
        self.todo = iter(range(100))

    def next_tuple(self):
        n = next(self.todo, None)
        if n is not None:
            self.emit([n], tup_id=n)


class Check(Bolt):
    def process(self, tup):
        assert tup.values.n < 100


class Script(Topology):
    numbers = Numbers.spec()
    check = Check.spec(inputs=[numbers], par=2)


def main():
    with LocalCluster() as cluster:
        run = cluster.submit("script", Script, {"topology.workers": 2})
        cluster.wait_until(lambda: run.stats()["numbers"].acked == 100, timeout=30)
        print("acked", run.stats()["numbers"].acked)

"""


def _run_script(tmp_path: Path, tail: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "my_script.py"
    path.write_text(SCRIPT + tail)
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=45, cwd=tmp_path
    )


def test_a_script_run_as_main_ships_its_own_components_to_the_workers(tmp_path: Path) -> None:
    done = _run_script(tmp_path, 'if __name__ == "__main__":\n    main()\n')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "acked 100"


def test_a_script_that_submits_without_a_main_guard_gets_told_to_add_one(tmp_path: Path) -> None:
    done = _run_script(tmp_path, "main()\n")
    assert done.returncode != 0
    assert "WorkerStartError" in done.stderr
    assert 'put the code that submits it under `if __name__ == "__main__":`' in done.stderr
