"""Typed configuration keys with Storm's names and defaults.

Precedence, lowest first (as in Storm): these defaults < topology config <
component config declared on the component class < component config given in
``spec(config=...)`` / ``add_configuration``.

>>> from squall.config import defaults, TOPOLOGY_MESSAGE_TIMEOUT_SECS
>>> defaults()[TOPOLOGY_MESSAGE_TIMEOUT_SECS]
30
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

TOPOLOGY_WORKERS: Final = "topology.workers"
TOPOLOGY_ACKER_EXECUTORS: Final = "topology.acker.executors"
TOPOLOGY_TASKS: Final = "topology.tasks"
TOPOLOGY_MAX_TASK_PARALLELISM: Final = "topology.max.task.parallelism"
TOPOLOGY_MESSAGE_TIMEOUT_SECS: Final = "topology.message.timeout.secs"
TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS: Final = "topology.enable.message.timeouts"
TOPOLOGY_MAX_SPOUT_PENDING: Final = "topology.max.spout.pending"
TOPOLOGY_TICK_TUPLE_FREQ_SECS: Final = "topology.tick.tuple.freq.secs"
TOPOLOGY_DEBUG: Final = "topology.debug"
TOPOLOGY_NAME: Final = "topology.name"
TOPOLOGY_EXECUTOR_RECEIVE_BUFFER_SIZE: Final = "topology.executor.receive.buffer.size"
TOPOLOGY_TRANSFER_BUFFER_SIZE: Final = "topology.transfer.buffer.size"
TOPOLOGY_BATCH_FLUSH_INTERVAL_MILLIS: Final = "topology.batch.flush.interval.millis"
TOPOLOGY_BACKPRESSURE_CHECK_MILLIS: Final = "topology.backpressure.check.millis"
TOPOLOGY_ERROR_THROTTLE_INTERVAL_SECS: Final = "topology.error.throttle.interval.secs"
TOPOLOGY_MAX_ERROR_REPORT_PER_INTERVAL: Final = "topology.max.error.report.per.interval"
TOPOLOGY_TESTING_ALWAYS_TRY_SERIALIZE: Final = "topology.testing.always.try.serialize"
TOPOLOGY_SHELLBOLT_MAX_PENDING: Final = "topology.shellbolt.max.pending"
TOPOLOGY_MULTILANG_SERIALIZER: Final = "topology.multilang.serializer"
TOPOLOGY_STATS_SAMPLE_RATE: Final = "topology.stats.sample.rate"
# Squall's own keys: how many tuples one executor handles per scheduling step.
SQUALL_EXECUTOR_BATCH_SIZE: Final = "squall.executor.batch.size"
# Upstream executors pause once an inbox holds this many tuples (a scheduling
# threshold below the hard topology.executor.receive.buffer.size; 0 = use that).
SQUALL_EXECUTOR_RUN_LIMIT: Final = "squall.executor.run.limit"
# Between worker processes: the largest frame accepted (checked before allocating),
# and how many tuples a sender may have in flight to one peer beyond what it confirmed.
SQUALL_TRANSPORT_MAX_FRAME_BYTES: Final = "squall.transport.max.frame.bytes"
SQUALL_TRANSPORT_WINDOW: Final = "squall.transport.window"

_DEFAULTS: Final[Mapping[str, Any]] = {
    TOPOLOGY_WORKERS: 1,
    TOPOLOGY_ACKER_EXECUTORS: None,
    TOPOLOGY_TASKS: None,
    TOPOLOGY_MAX_TASK_PARALLELISM: None,
    TOPOLOGY_MESSAGE_TIMEOUT_SECS: 30,
    TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS: True,
    TOPOLOGY_MAX_SPOUT_PENDING: None,
    TOPOLOGY_TICK_TUPLE_FREQ_SECS: None,
    TOPOLOGY_DEBUG: False,
    TOPOLOGY_EXECUTOR_RECEIVE_BUFFER_SIZE: 32768,
    TOPOLOGY_TRANSFER_BUFFER_SIZE: 1000,
    TOPOLOGY_BATCH_FLUSH_INTERVAL_MILLIS: 1,
    TOPOLOGY_BACKPRESSURE_CHECK_MILLIS: 50,
    TOPOLOGY_ERROR_THROTTLE_INTERVAL_SECS: 10,
    TOPOLOGY_MAX_ERROR_REPORT_PER_INTERVAL: 5,
    TOPOLOGY_TESTING_ALWAYS_TRY_SERIALIZE: False,
    TOPOLOGY_SHELLBOLT_MAX_PENDING: 100,
    TOPOLOGY_MULTILANG_SERIALIZER: "json",
    TOPOLOGY_STATS_SAMPLE_RATE: 1.0,
    SQUALL_EXECUTOR_BATCH_SIZE: 512,
    SQUALL_EXECUTOR_RUN_LIMIT: 1024,
    SQUALL_TRANSPORT_MAX_FRAME_BYTES: 64 * 1024 * 1024,
    SQUALL_TRANSPORT_WINDOW: 16384,
}

# The type every known key must have; ``None`` is allowed where the default is None.
_TYPES: Final[Mapping[str, tuple[type, ...]]] = {
    TOPOLOGY_WORKERS: (int,),
    TOPOLOGY_ACKER_EXECUTORS: (int,),
    TOPOLOGY_TASKS: (int,),
    TOPOLOGY_MAX_TASK_PARALLELISM: (int,),
    TOPOLOGY_MESSAGE_TIMEOUT_SECS: (int, float),
    TOPOLOGY_ENABLE_MESSAGE_TIMEOUTS: (bool,),
    TOPOLOGY_MAX_SPOUT_PENDING: (int,),
    TOPOLOGY_TICK_TUPLE_FREQ_SECS: (int, float),
    TOPOLOGY_DEBUG: (bool,),
    TOPOLOGY_NAME: (str,),
    TOPOLOGY_EXECUTOR_RECEIVE_BUFFER_SIZE: (int,),
    TOPOLOGY_TRANSFER_BUFFER_SIZE: (int,),
    TOPOLOGY_BATCH_FLUSH_INTERVAL_MILLIS: (int, float),
    TOPOLOGY_BACKPRESSURE_CHECK_MILLIS: (int, float),
    TOPOLOGY_ERROR_THROTTLE_INTERVAL_SECS: (int, float),
    TOPOLOGY_MAX_ERROR_REPORT_PER_INTERVAL: (int,),
    TOPOLOGY_TESTING_ALWAYS_TRY_SERIALIZE: (bool,),
    TOPOLOGY_SHELLBOLT_MAX_PENDING: (int,),
    TOPOLOGY_MULTILANG_SERIALIZER: (str,),
    TOPOLOGY_STATS_SAMPLE_RATE: (int, float),
    SQUALL_EXECUTOR_BATCH_SIZE: (int,),
    SQUALL_EXECUTOR_RUN_LIMIT: (int,),
    SQUALL_TRANSPORT_MAX_FRAME_BYTES: (int,),
    SQUALL_TRANSPORT_WINDOW: (int,),
}

# Keys whose value, when set, must be a positive number.
_POSITIVE: Final = frozenset(
    {
        TOPOLOGY_WORKERS,
        TOPOLOGY_TASKS,
        TOPOLOGY_MAX_TASK_PARALLELISM,
        TOPOLOGY_MESSAGE_TIMEOUT_SECS,
        TOPOLOGY_MAX_SPOUT_PENDING,
        TOPOLOGY_TICK_TUPLE_FREQ_SECS,
        TOPOLOGY_EXECUTOR_RECEIVE_BUFFER_SIZE,
        TOPOLOGY_TRANSFER_BUFFER_SIZE,
        SQUALL_EXECUTOR_BATCH_SIZE,
        SQUALL_TRANSPORT_MAX_FRAME_BYTES,
        SQUALL_TRANSPORT_WINDOW,
    }
)


class ConfigError(ValueError):
    """A config value has the wrong type or range; the message names the key."""


def defaults() -> dict[str, Any]:
    """A fresh copy of the default configuration."""
    return dict(_DEFAULTS)


def check(conf: Mapping[str, Any], where: str = "topology") -> None:
    """Raise :class:`ConfigError` naming the key if a known key has a bad value.

    Unknown keys are allowed (users put their own settings in the config, as in Storm).

    >>> check({"topology.workers": 2})
    >>> check({"topology.workers": "two"})
    Traceback (most recent call last):
    ...
    squall.config.ConfigError: topology config 'topology.workers' must be int, got str 'two'
    """
    for key, value in conf.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where} config key {key!r} must be a string")
        types = _TYPES.get(key)
        if types is None or value is None:
            continue
        # bool is an int in Python; only accept it where a bool is wanted.
        ok = False if isinstance(value, bool) and bool not in types else isinstance(value, types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise ConfigError(
                f"{where} config {key!r} must be {names}, got {type(value).__name__} {value!r}"
            )
        if key in _POSITIVE and value <= 0:
            raise ConfigError(f"{where} config {key!r} must be > 0, got {value!r}")
        if key == TOPOLOGY_ACKER_EXECUTORS and value < 0:
            raise ConfigError(f"{where} config {key!r} must be >= 0, got {value!r}")


def parse_value(text: str) -> Any:
    """Parse a ``-c key=value`` command-line value as JSON, falling back to a string.

    >>> parse_value("3"), parse_value("true"), parse_value("abc")
    (3, True, 'abc')
    """
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
