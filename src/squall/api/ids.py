"""Reserved component and stream ids, and the id types (Storm's names)."""

from __future__ import annotations

from typing import Final, NewType

TaskId = NewType("TaskId", int)
ComponentId = NewType("ComponentId", str)
StreamId = NewType("StreamId", str)

DEFAULT_STREAM: Final = "default"

ACKER_COMPONENT: Final = "__acker"
SYSTEM_COMPONENT: Final = "__system"
SYSTEM_TASK: Final = -1

TICK_STREAM: Final = "__tick"
ACK_INIT_STREAM: Final = "__ack_init"
ACK_ACK_STREAM: Final = "__ack_ack"
ACK_FAIL_STREAM: Final = "__ack_fail"
ACK_RESET_TIMEOUT_STREAM: Final = "__ack_reset_timeout"
HEARTBEAT_STREAM: Final = "__heartbeat"
METRICS_STREAM: Final = "__metrics"
FLUSH_STREAM: Final = "__flush"


def is_system_id(name: str) -> bool:
    """Storm reserves every component and stream id that starts with ``__``.

    >>> is_system_id("__acker"), is_system_id("split")
    (True, False)
    """
    return name.startswith("__")
