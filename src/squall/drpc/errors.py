"""What a DRPC call can fail with, and the HTTP status each failure maps to.

Storm's ``DRPCExecutionException`` carries one of four types; the HTTP front
maps them to statuses (``DRPCExceptionMapper``). Squall adds ``QUEUE_FULL``
(a per-function queue is at ``drpc.queue.size``), served as 503 like a
shutting-down server: both mean "try again later, maybe elsewhere".

>>> e = DRPCExecutionError("Request failed", DRPCErrorType.FAILED_REQUEST)
>>> e.status, e.error_body()
(400, {'error': 'FAILED_REQUEST', 'errorMessage': 'Request failed'})
"""

from __future__ import annotations

import enum
from typing import Any


class DRPCErrorType(enum.Enum):
    """Storm's ``DRPCExceptionType``, plus Squall's ``QUEUE_FULL``."""

    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVER_SHUTDOWN = "SERVER_SHUTDOWN"
    SERVER_TIMEOUT = "SERVER_TIMEOUT"
    FAILED_REQUEST = "FAILED_REQUEST"
    QUEUE_FULL = "QUEUE_FULL"


#: HTTP status for each error type (Storm's DRPCExceptionMapper).
HTTP_STATUS: dict[DRPCErrorType, int] = {
    DRPCErrorType.FAILED_REQUEST: 400,
    DRPCErrorType.SERVER_SHUTDOWN: 503,
    DRPCErrorType.QUEUE_FULL: 503,
    DRPCErrorType.SERVER_TIMEOUT: 504,
    DRPCErrorType.INTERNAL_ERROR: 500,
}


class DRPCError(Exception):
    """Base of every DRPC failure a caller sees.

    Attributes:
        message: what went wrong (Storm's ``msg``; the JSON ``errorMessage``).
        status: the HTTP status that carries it.
        error: the JSON ``error`` field (the type name, or an HTTP reason).
    """

    def __init__(self, message: str, status: int = 500, error: str = "Internal Error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error

    def error_body(self) -> dict[str, Any]:
        """The JSON error body Storm's DRPC HTTP server sends."""
        return {"error": self.error, "errorMessage": self.message}


class DRPCExecutionError(DRPCError):
    """The request failed, timed out, or the server could not take it (Storm's
    ``DRPCExecutionException``).

    Attributes:
        type: a :class:`DRPCErrorType`.
    """

    def __init__(self, message: str, type: DRPCErrorType = DRPCErrorType.INTERNAL_ERROR) -> None:
        super().__init__(message, HTTP_STATUS[type], type.value)
        self.type = type

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.type))


class DRPCAuthorizationError(DRPCError):
    """No valid token (HTTP 401, Storm's ``AuthorizationException``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 401, "401 Unauthorized")


class DRPCConnectionError(DRPCError):
    """No configured DRPC server could be reached (after the client's retries)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 503, "Connection Error")


def failed(message: str = "Request failed") -> DRPCExecutionError:
    """A ``FAILED_REQUEST`` error (HTTP 400)."""
    return DRPCExecutionError(message, DRPCErrorType.FAILED_REQUEST)


__all__ = [
    "HTTP_STATUS",
    "DRPCAuthorizationError",
    "DRPCConnectionError",
    "DRPCError",
    "DRPCErrorType",
    "DRPCExecutionError",
    "failed",
]
