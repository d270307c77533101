"""DRPC config keys (Storm's names where Storm has one) and their defaults.

Squall serves everything on one HTTP port: clients call ``/drpc/...`` and DRPC
spouts and ``ReturnResults`` bolts in other processes call ``/drpc-invocations/...``
there too. Storm's Thrift ports (``drpc.port`` 3772, ``drpc.invocations.port``
3773) do not exist; a ``drpc.servers`` entry without a port means
``drpc.http.port``.

>>> server_addresses({"drpc.servers": ["10.0.0.5", "h2:4000"]})
[('10.0.0.5', 3774), ('h2', 4000)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

DRPC_SERVERS: Final = "drpc.servers"
DRPC_HTTP_PORT: Final = "drpc.http.port"
DRPC_HTTP_HOST: Final = "drpc.http.host"
DRPC_REQUEST_TIMEOUT_SECS: Final = "drpc.request.timeout.secs"
DRPC_QUEUE_SIZE: Final = "drpc.queue.size"
DRPC_MAX_BODY_BYTES: Final = "drpc.http.max.body.bytes"
# Bearer token every HTTP caller must send, when set (Squall's; Storm uses SASL/ACLs).
DRPC_AUTH_TOKEN: Final = "drpc.auth.token"
# Token for the invocation endpoints (topologies); defaults to drpc.auth.token.
DRPC_INVOCATIONS_TOKEN: Final = "drpc.invocations.token"

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 3774

DEFAULTS: Final[Mapping[str, Any]] = {
    DRPC_SERVERS: None,
    DRPC_HTTP_PORT: DEFAULT_PORT,
    DRPC_HTTP_HOST: DEFAULT_HOST,
    DRPC_REQUEST_TIMEOUT_SECS: 600,
    DRPC_QUEUE_SIZE: 128,
    DRPC_MAX_BODY_BYTES: 1 << 20,
    DRPC_AUTH_TOKEN: None,
    DRPC_INVOCATIONS_TOKEN: None,
}


def get(conf: Mapping[str, Any], key: str) -> Any:
    """``conf[key]``, or the DRPC default when unset (or None)."""
    value = conf.get(key)
    return DEFAULTS[key] if value is None else value


def server_addresses(conf: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``drpc.servers`` as ``(host, port)`` pairs; entries are ``host`` or ``host:port``.

    Raises:
        ValueError: an entry is not a string, or its port is not a number.
    """
    raw = conf.get(DRPC_SERVERS) or []
    if isinstance(raw, str):
        raw = [s for s in raw.split(",") if s.strip()]
    default_port = int(get(conf, DRPC_HTTP_PORT))
    out: list[tuple[str, int]] = []
    for entry in raw:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(
                f"{DRPC_SERVERS}: entries must be 'host' or 'host:port', got {entry!r}"
            )
        host, sep, port = entry.strip().rpartition(":")
        if not sep or "]" in port:
            out.append((entry.strip(), default_port))
            continue
        try:
            out.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ValueError(f"{DRPC_SERVERS}: bad port in {entry!r}") from None
    return out


def tokens(conf: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(client token, invocations token)``; the second defaults to the first."""
    client = conf.get(DRPC_AUTH_TOKEN) or None
    invocations = conf.get(DRPC_INVOCATIONS_TOKEN) or client
    return client, invocations
