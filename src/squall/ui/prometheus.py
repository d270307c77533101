"""Prometheus text exposition (``GET /metrics``) of every topology's counters.

Names follow Prometheus conventions: a ``squall_`` prefix, ``_total`` on
counters, base units (seconds) and summaries as ``_sum``/``_count`` pairs.
Labels: ``topology``, ``component``, and ``task`` and ``stream`` where Squall
counts per task and stream (emitted, transferred), ``executor`` (Storm's
``[start-end]`` task range) where it counts per executor (executed, acked,
failed, latencies, queues), and ``source_component``/``source_stream`` on
executed tuples. User metrics (``report_metric``) appear as
``squall_user_metric{...,name="..."}`` when their value is a number, or one
sample per key (label ``key``) when it is a dict of numbers.

>>> from squall.runtime.stats import ExecutorSnapshot
>>> s = ExecutorSnapshot("split", "bolt", (3,), 0, 1.0, outputs=((3, "default", 5, 5),))
>>> print(render([MetricsInput("wc", "wc-1-1", "ACTIVE", 1.0, [s], {}, {})]).splitlines()[2])
squall_topology_up{topology="wc",topology_id="wc-1-1",status="ACTIVE"} 1
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from squall.runtime.stats import ExecutorSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricsInput:
    """One topology's numbers, as the exposition needs them."""

    name: str
    id: str
    status: str
    uptime_secs: float
    executors: Sequence[ExecutorSnapshot]
    capacities: Mapping[tuple[int, int], float]
    worker_restarts: Mapping[int, int]


_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("squall_topology_up", "gauge", "1 for every running topology, labelled with its status."),
    ("squall_topology_uptime_seconds", "gauge", "Seconds since the topology started."),
    ("squall_emitted_total", "counter", "Tuples emitted, per task and output stream."),
    ("squall_transferred_total", "counter", "Tuple deliveries to subscriber tasks."),
    ("squall_executed_total", "counter", "Tuples executed, per executor and input stream."),
    ("squall_acked_total", "counter", "Tuples acked (bolts) or tuple trees completed (spouts)."),
    ("squall_failed_total", "counter", "Tuples failed (bolts) or tuple trees failed (spouts)."),
    ("squall_errors_total", "counter", "Errors raised by user code."),
    ("squall_spout_timeouts_total", "counter", "Tuple trees that timed out."),
    ("squall_execute_latency_seconds", "summary", "Time spent executing tuples."),
    ("squall_process_latency_seconds", "summary", "Time from the start of execute to ack."),
    ("squall_complete_latency_seconds", "summary", "Time from spout emit to the tree's ack."),
    ("squall_capacity_ratio", "gauge", "Storm's capacity: busy fraction over 10 minutes."),
    ("squall_queue_depth", "gauge", "Tuples waiting in the executor's inbox."),
    ("squall_queue_capacity", "gauge", "Capacity of the executor's inbox."),
    ("squall_backpressure", "gauge", "1 while the executor's inbox is full."),
    ("squall_spout_pending", "gauge", "Spout tuple trees in flight."),
    ("squall_executor_uptime_seconds", "gauge", "Seconds since the executor started."),
    ("squall_worker_restarts_total", "counter", "Times a worker was seen to restart."),
    ("squall_user_metric", "gauge", "Values reported by user code with report_metric."),
)


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, Any]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _num(x: float) -> str:
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


def render(topologies: Iterable[MetricsInput]) -> str:
    """The text exposition of ``topologies`` (one ``# HELP``/``# TYPE`` per family)."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _FAMILIES}

    def add(family: str, suffix: str, labels: Iterable[tuple[str, Any]], value: float) -> None:
        samples[family].append(f"{family}{suffix}{_labels(labels)} {_num(value)}")

    for t in topologies:
        top = (("topology", t.name),)
        add("squall_topology_up", "", (*top, ("topology_id", t.id), ("status", t.status)), 1)
        add("squall_topology_uptime_seconds", "", top, t.uptime_secs)
        for w, n in sorted(t.worker_restarts.items()):
            add("squall_worker_restarts_total", "", (*top, ("worker", w)), n)
        for s in t.executors:
            comp = (*top, ("component", s.component))
            ex = (*comp, ("executor", f"[{s.tasks[0]}-{s.tasks[-1]}]"))
            for task, stream, emitted, transferred in s.outputs:
                lab = (*comp, ("task", task), ("stream", stream))
                add("squall_emitted_total", "", lab, emitted)
                add("squall_transferred_total", "", lab, transferred)
            executed = 0
            for src, stream, n in s.inputs:
                executed += n
                add(
                    "squall_executed_total",
                    "",
                    (*ex, ("source_component", src), ("source_stream", stream)),
                    n,
                )
            add("squall_acked_total", "", ex, s.acked)
            add("squall_failed_total", "", ex, s.failed)
            add("squall_errors_total", "", ex, s.errors)
            add("squall_queue_depth", "", ex, s.queued)
            add("squall_queue_capacity", "", ex, s.queue_capacity)
            add("squall_backpressure", "", ex, 1 if s.backpressure else 0)
            add("squall_executor_uptime_seconds", "", ex, s.uptime_secs)
            if s.kind == "spout":
                add("squall_spout_pending", "", ex, s.pending)
                add("squall_spout_timeouts_total", "", ex, s.timeouts)
                add("squall_complete_latency_seconds", "_sum", ex, s.complete_ms / 1000.0)
                add("squall_complete_latency_seconds", "_count", ex, s.complete_n)
            else:
                for fam in ("squall_execute_latency_seconds", "squall_process_latency_seconds"):
                    add(fam, "_sum", ex, s.execute_ms / 1000.0)
                    add(fam, "_count", ex, executed)
                add("squall_capacity_ratio", "", ex, t.capacities.get(s.id, 0.0))
            for name, value in sorted(s.metrics.items()):
                for key, v in _numbers(value):
                    mlab: tuple[tuple[str, Any], ...] = (
                        (*ex, ("name", name))
                        if key is None
                        else (*ex, ("name", name), ("key", key))
                    )
                    add("squall_user_metric", "", mlab, v)
    lines: list[str] = []
    for name, kind, help_text in _FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"


def _numbers(value: Any) -> list[tuple[str | None, float]]:
    """A metric value as samples: a number, or a flat dict of numbers (MultiCountMetric)."""
    if isinstance(value, bool):
        return [(None, 1.0 if value else 0.0)]
    if isinstance(value, int | float):
        return [(None, value)]
    if isinstance(value, Mapping):
        return [
            (str(k), float(v))
            for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
    return []
