"""DRPC services running in this process, by the address topologies know them by.

Return-info carries ``host`` and ``port``; Storm looks up ``LocalDRPC`` the same
way (its service id as the host, port 0). When a DRPC spout or a
``ReturnResults`` bolt finds its server here, it calls the service directly
instead of going through HTTP; that is what makes a single-process
``squall run`` fast. The table is per process: a worker process never finds
the parent's server here and uses HTTP.

>>> from squall.drpc.service import DRPCService
>>> svc = DRPCService()
>>> register("localhost", 3774, svc)
>>> lookup("127.0.0.1", 3774) is svc
True
>>> unregister("localhost", 3774, svc)
>>> lookup("127.0.0.1", 3774) is None
True
"""

from __future__ import annotations

import threading

from squall.drpc.service import DRPCService

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
_lock = threading.Lock()
_services: dict[tuple[str, int], DRPCService] = {}


def normalize(host: str) -> str:
    """One spelling per loopback address, lower case otherwise."""
    h = host.strip().strip("[]").lower()
    return "127.0.0.1" if h in _LOOPBACK else h


def register(host: str, port: int, service: DRPCService) -> None:
    """Make ``service`` reachable in-process as ``host:port``."""
    with _lock:
        _services[(normalize(host), int(port))] = service


def unregister(host: str, port: int, service: DRPCService) -> None:
    """Remove ``host:port`` if it still names ``service``."""
    key = (normalize(host), int(port))
    with _lock:
        if _services.get(key) is service:
            del _services[key]


def lookup(host: str, port: int) -> DRPCService | None:
    """The in-process service at ``host:port``, or None (then use HTTP)."""
    # A plain dict read: called per fetch and per result, and atomic under the GIL.
    return _services.get((normalize(host), int(port)))
