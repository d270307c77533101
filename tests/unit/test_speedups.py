"""The C accelerator must behave exactly like the Python code it replaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from squall import Bolt, Grouping, Spout, Stream, Topology, speedups
from squall.api.errors import EmitError
from squall.api.topology import as_definition
from squall.runtime.engine import Engine
from squall.runtime.plan import make_plan

pytestmark = pytest.mark.skipif(not speedups.AVAILABLE, reason="C accelerator not built")

ROOT = Path(__file__).resolve().parents[2]


class Words(Spout):
    outputs = [Stream(["word"]), Stream(["word", "n"], name="pairs")]


class Router(Bolt):
    outputs = [Stream(["word"]), Stream(["word", "n"], name="pairs"), Stream(["x"], name="nowhere")]


class Sink(Bolt):
    outputs = ["word"]


class Shape(Topology):
    words = Words.spec()
    router = Router.spec(inputs=[words])
    by_word = Sink.spec(inputs={router: Grouping.fields("word")}, par=3)
    shuffled = Sink.spec(inputs={router["pairs"]: Grouping.SHUFFLE}, par=2)


def _router_task(acking: bool = False):  # type: ignore[no-untyped-def]
    d = as_definition(Shape).with_config({"topology.acker.executors": 1 if acking else 0})
    eng = Engine(make_plan(d, d.config), seed=7)
    eng.start(active=False)
    ex = next(e for e in eng.executors if e.component == "router")
    task = next(iter(ex.tasks.values()))
    return task


def _staged(task) -> dict[str, dict[int, list[tuple[object, ...]]]]:  # type: ignore[no-untyped-def]
    out = {}
    for r in task.route_list:
        out[r.stream] = {t: [tuple(v) for v in vals] for t, vals in r.staging.items()}
        r.staging.clear()
    return out


def test_c_emitter_stages_exactly_what_the_python_emit_stages() -> None:
    fast_task, slow_task = _router_task(), _router_task()
    fast, slow = speedups.Emitter(fast_task.routes, fast_task.emit), slow_task.emit
    words = ["dog", "cat", "dog", "emu", "yak", "cat"] * 5
    for w in words:
        for emit in (fast, slow):
            emit([w])
            emit((w, len(w)), stream="pairs")
            emit([w], stream="nowhere")
    assert _staged(fast_task)["default"] == _staged(slow_task)["default"] != {}
    f_routes = {r.stream: r.emitted for r in fast_task.route_list}
    s_routes = {r.stream: r.emitted for r in slow_task.route_list}
    assert f_routes == s_routes == {"default": 30, "pairs": 30, "nowhere": 30}


def test_c_emitter_sends_equal_keys_to_one_task_like_the_grouper() -> None:
    task = _router_task()
    fast = speedups.Emitter(task.routes, task.emit)
    for w in ["dog", "dog", "cat", "dog"]:
        fast([w])
    staged = _staged(task)["default"]
    dog_tasks = [t for t, vals in staged.items() if ("dog",) in vals]
    assert len(dog_tasks) == 1
    assert staged[dog_tasks[0]].count(("dog",)) == 3


def test_c_emitter_falls_back_for_wrong_width_with_the_python_error() -> None:
    task = _router_task()
    fast = speedups.Emitter(task.routes, task.emit)
    with pytest.raises(EmitError, match=r"'router'.*'default'.*1 field"):
        fast(["a", "b"])
    with pytest.raises(EmitError, match="undeclared stream 'nope'"):
        fast(["a"], stream="nope")


def test_c_emitter_falls_back_for_need_task_ids_and_returns_them() -> None:
    task = _router_task()
    fast = speedups.Emitter(task.routes, task.emit)
    tasks = fast(["dog"], need_task_ids=True)
    assert isinstance(tasks, list) and len(tasks) == 1
    assert tasks[0] in task.context.component_tasks["by_word"]


def test_make_values_matches_tuple_new_for_lists_tuples_and_iterables() -> None:
    cls = _router_task().routes["default"].cls
    for seq in (["a"], ("a",), iter(["a"]), (c for c in "a")):
        v = speedups.make_values(cls, seq)
        assert type(v) is cls and tuple(v) == ("a",) and v.word == "a" and v.values is v
    with pytest.raises(TypeError):
        speedups.make_values(cls, 5)


def test_run_unanchored_reports_each_exception_and_keeps_going() -> None:
    seen: list[object] = []
    errors: list[tuple[object, str]] = []

    def process(v: object) -> None:
        if v == 2:
            raise ValueError("two")
        seen.append(v)

    speedups.run_unanchored(process, [1, 2, 3], lambda v, e: errors.append((v, str(e))))
    assert seen == [1, 3]
    assert errors == [(2, "two")]


def test_run_unanchored_lets_keyboard_interrupt_through() -> None:
    def process(v: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        speedups.run_unanchored(process, [1], lambda v, e: None)


_COUNT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {root!r})
    from squall import Bolt, Grouping, Spout, Topology
    from squall.testing import complete_topology, read_tuples

    class Split(Bolt):
        outputs = ["word"]
        def process(self, tup):
            for w in tup.values.sentence.split():
                self.emit([w])

    class Count(Bolt):
        outputs = ["word", "count"]
        def initialize(self, conf, ctx):
            self.c = {{}}
        def process(self, tup):
            w = tup.values.word
            self.c[w] = self.c.get(w, 0) + 1
            self.emit([w, self.c[w]])

    class S(Spout):
        outputs = ["sentence"]

    class T(Topology):
        s = S.spec()
        split = Split.spec(inputs=[s], par=2)
        count = Count.spec(inputs={{split: Grouping.fields("word")}}, par=3)

    sentences = [["the cow jumped over the moon"], ["the dog and the cat"]] * 50
    result = complete_topology(T, mock_sources={{"s": sentences}},
                               conf={{"topology.acker.executors": 0}})
    final = {{}}
    for w, c in read_tuples(result, "count"):
        final[w] = max(final.get(w, 0), c)
    print(json.dumps(final, sort_keys=True))
    """
)


def test_word_counts_are_identical_with_and_without_the_accelerator(tmp_path: Path) -> None:
    script = tmp_path / "count.py"
    script.write_text(_COUNT_SCRIPT.format(root=str(ROOT / "src")))
    results = []
    for no_speedups in ("", "1"):
        env = {**os.environ, "SQUALL_NO_SPEEDUPS": no_speedups}
        out = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout))
    assert results[0] == results[1]
    assert results[0]["the"] == 200


def test_an_acked_tuple_reads_like_its_values_with_and_without_the_accelerator() -> None:
    from squall.api.tuple import AckedTuple, PyAckedTuple, values_class

    cls = values_class("split", "default", ("word", "n"), 4)
    v = cls.make(["dog", 2])
    for make in (AckedTuple, PyAckedTuple):
        t = make(v, {1: 2})
        assert len(t) == 2 and t[0] == "dog" and t[-1] == 2 and list(t) == ["dog", 2]
        assert t[0:1] == ("dog",)
        assert t.values.word == "dog" and t.component == "split" and t.task == 4
