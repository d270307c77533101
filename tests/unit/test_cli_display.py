"""What ``squall run`` prints: rates, tables, throttled errors, and the console's redraws."""

from __future__ import annotations

import io

import pytest

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
from squall.runtime.stats import ComponentStats, ErrorReport

pytestmark = pytest.mark.timeout(10)


def stats(component: str, kind: str = "bolt", **counters: float) -> ComponentStats:
    return ComponentStats(component, kind, 1, 2, **counters)  # type: ignore[arg-type]


def report(task: int = 3, error: str = "ValueError: bad") -> ErrorReport:
    tb = f'Traceback (most recent call last):\n  File "t.py", line 9, in process\n{error}\n'
    return ErrorReport("wc", "split", task, 0.0, error, tb)


def test_rates_are_deltas_per_second_and_totals_are_the_latest_snapshot() -> None:
    before = {"split": stats("split", emitted=1000, executed=100, acked=90)}
    after = {"split": stats("split", emitted=3000, executed=500, acked=480, failed=2)}
    (row,) = rate_rows(before, after, 2.0, ["split"])
    assert (row.emitted_per_sec, row.executed_per_sec) == (1000.0, 200.0)
    assert (row.acked, row.failed) == (480, 2)


def test_first_rates_count_from_zero_when_there_is_no_earlier_snapshot() -> None:
    (row,) = rate_rows({}, {"words": stats("words", "spout", emitted=50)}, 0.5, ["words"])
    assert row.emitted_per_sec == 100.0


def test_error_count_shown_is_the_larger_of_stats_and_reports_seen() -> None:
    after = {"split": stats("split", errors=1)}
    (row,) = rate_rows({}, after, 1.0, ["split"], errors={"split": 4})
    assert row.errors == 4


def test_rows_follow_the_given_order_and_skip_components_without_stats() -> None:
    after = {"count": stats("count"), "words": stats("words", "spout")}
    rows = rate_rows({}, after, 1.0, ["words", "split", "count"])
    assert [r.component for r in rows] == ["words", "count"]


def test_spouts_come_first_then_bolts_in_declaration_order() -> None:
    kinds = {"split": "bolt", "a": "spout", "count": "bolt", "b": "spout"}
    assert order_components(kinds) == ["a", "b", "split", "count"]


def test_plain_lines_have_one_key_value_line_per_component() -> None:
    rows = rate_rows({}, {"a": stats("a"), "b": stats("b", emitted=7)}, 1.0, ["a", "b"])
    lines = plain_lines(rows, 4.25)
    assert len(lines) == 2
    assert lines[1].startswith("[4.2s] b: emitted/s=7 executed/s=0 acked=0")


def test_live_table_columns_line_up() -> None:
    rows = rate_rows({}, {"a": stats("a", emitted=12345678), "bb": stats("bb")}, 1.0, ["a", "bb"])
    header, first, second = live_table(rows)
    assert "12,345,678" in first
    assert len(header) == len(first) == len(second)


def test_summary_has_totals_per_component_and_errors_per_task() -> None:
    final = {"words": stats("words", "spout", emitted=10), "split": stats("split", executed=10)}
    errors = {("split", 3): 5, ("split", 4): 1}
    lines = summary_lines("wc", final, ["words", "split"], 3.0, "Ctrl-C", errors)
    assert lines[0] == "Summary: topology wc ran 3.0s (stopped: Ctrl-C)"
    split_line = next(line for line in lines if line.startswith("split"))
    assert split_line.split()[7] == "6"  # the errors column
    assert lines[-1].startswith("errors: 6 raised by user code (split task 3: 5, split task 4: 1)")


def test_error_report_names_topology_component_task_and_shows_the_traceback() -> None:
    text = format_error(report())
    assert text.splitlines()[0] == (
        "ERROR in component 'split' task 3 (topology wc, worker 0): ValueError: bad"
    )
    assert '    File "t.py", line 9, in process' in text


def test_throttle_prints_a_few_per_task_then_counts_the_rest() -> None:
    now = [0.0]
    throttle = ErrorThrottle(10, 3, clock=lambda: now[0])
    shown = [throttle.admit(report()) for _ in range(10)]
    assert shown == [True] * 3 + [False] * 7
    assert throttle.admit(report(task=4)), "each task has its own allowance"
    assert throttle.drain() == [("split", 3, 7, "ValueError: bad")]
    assert throttle.drain() == [], "drain resets the held-back count"


def test_throttle_allows_more_once_the_interval_has_passed() -> None:
    now = [0.0]
    throttle = ErrorThrottle(10, 1, clock=lambda: now[0])
    assert throttle.admit(report())
    now[0] = 9.9
    assert not throttle.admit(report())
    now[0] = 10.0
    assert throttle.admit(report())


def test_suppressed_line_reads_as_n_more_errors_from_a_task() -> None:
    line = suppressed_line("split", 3, 1, "KeyError: 'x'")
    assert line == "... 1 more error from component 'split' task 3 (latest: KeyError: 'x')"


def test_plain_console_appends_lines_and_sends_messages_to_err() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(out, err, live=False)
    console.update(["a", "b"])
    console.message("oops")
    console.update(["c"])
    assert out.getvalue() == "a\nb\nc\n"
    assert err.getvalue() == "oops\n"


def test_live_console_redraws_the_table_in_place_around_messages() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(out, err, live=True)
    console.update(["t1", "r1"])
    console.message("oops")
    console.update(["t2", "r2"])
    console.finish()
    up2 = "\x1b[2A\r\x1b[J"
    # Drawn, erased for the message, redrawn, erased for the update, drawn, erased at the end.
    assert out.getvalue() == "t1\nr1\n" + up2 + "t1\nr1\n" + up2 + "t2\nr2\n" + up2
    assert err.getvalue() == "oops\n"
