"""A client of nimbus's HTTP/JSON API: finds the leader among the seeds, then asks it.

Used by ``squall submit|list|kill|activate|deactivate|rebalance``, by
supervisors (to fetch topology code) and by standby nimbuses (to copy it).

Requests never hang: every connection has a timeout, and when no nimbus
leads, :class:`NimbusUnavailableError` says so ("no leader nimbus") at once.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from squall.cluster import conf as K

DEFAULT_TIMEOUT_SECS = 10.0


class NimbusClientError(Exception):
    """Nimbus refused a request; the message is nimbus's (it names what is wrong)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NimbusUnavailableError(NimbusClientError):
    """No nimbus answered, or none of those that did is the leader."""


def seeds_from_conf(conf: Mapping[str, Any]) -> list[str]:
    """``host:port`` for every entry of ``nimbus.seeds`` (default port ``nimbus.thrift.port``).

    >>> seeds_from_conf({"nimbus.seeds": ["n1", "n2:7000"], "nimbus.thrift.port": 6627})
    ['n1:6627', 'n2:7000']
    """
    port = int(K.get(conf, K.NIMBUS_THRIFT_PORT))
    seeds = K.get(conf, K.NIMBUS_SEEDS)
    if isinstance(seeds, str):
        seeds = [s for s in seeds.split(",") if s.strip()]
    return [s if ":" in s else f"{s}:{port}" for s in (str(x).strip() for x in seeds)]


class NimbusClient:
    """Talks to the leader nimbus.

    Args:
        seeds: ``host:port`` of nimbus candidates to ask (any order).
        token: the shared secret (``nimbus.auth.token``), if the cluster has one.
        timeout_secs: per connection.
    """

    def __init__(
        self,
        seeds: Sequence[str],
        token: str | None = None,
        timeout_secs: float = DEFAULT_TIMEOUT_SECS,
    ) -> None:
        if not seeds:
            raise ValueError("no nimbus address given (nimbus.seeds)")
        self.seeds = list(seeds)
        self.token = token
        self.timeout = timeout_secs
        self._leader: str | None = None

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> NimbusClient:
        return cls(seeds_from_conf(conf), conf.get(K.NIMBUS_AUTH_TOKEN) or None)

    # -- plumbing -----------------------------------------------------------------------
    def _call(
        self,
        address: str,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        host, _, port = address.rpartition(":")
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=self.timeout)
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _json(self, address: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = None if body is None else json.dumps(body).encode()
        status, data = self._call(address, method, path, raw)
        try:
            return status, json.loads(data or b"null")
        except ValueError:
            return status, {"error": data[:200].decode(errors="replace")}

    def leader(self) -> str:
        """The leader's ``host:port``, asking the seeds in turn."""
        if self._leader is not None:
            return self._leader
        problems = []
        for seed in self.seeds:
            try:
                status, info = self._json(seed, "GET", "/api/v1/nimbus")
            except (OSError, http.client.HTTPException) as e:
                problems.append(f"{seed}: {_reason(e)}")
                continue
            if status == 401:
                raise NimbusClientError(401, f"nimbus {seed} refused the token (nimbus.auth.token)")
            if status != 200 or not isinstance(info, dict):
                problems.append(f"{seed}: HTTP {status}")
                continue
            if info.get("leader"):
                self._leader = seed
                return seed
            if info.get("leader_address"):
                self._leader = str(info["leader_address"])
                return self._leader
            problems.append(f"{seed}: not the leader, and knows no leader")
        raise NimbusUnavailableError(503, "no leader nimbus (" + "; ".join(problems) + ")")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON request to the leader; follows one redirect to a new leader."""
        for attempt in range(2):
            address = self.leader()
            try:
                status, data = self._json(address, method, path, body)
            except (OSError, http.client.HTTPException) as e:
                self._leader = None
                if attempt == 0:
                    continue
                raise NimbusUnavailableError(
                    503, f"no leader nimbus ({address}: {_reason(e)})"
                ) from e
            if status == 503 and attempt == 0:
                self._leader = None
                continue
            return _result(status, data)
        raise AssertionError("unreachable")

    # -- the API --------------------------------------------------------------------------
    def upload(self, package: bytes) -> str:
        address = self.leader()
        try:
            status, data = self._call(
                address, "POST", "/api/v1/uploads", package, "application/octet-stream"
            )
        except (OSError, http.client.HTTPException) as e:
            raise NimbusUnavailableError(
                503, f"uploading to nimbus {address} failed: {_reason(e)}"
            ) from e
        try:
            body = json.loads(data or b"null")
        except ValueError:
            body = {"error": data[:200].decode(errors="replace")}
        return str(_result(status, body)["code"])

    def submit(self, request: Mapping[str, Any]) -> str:
        return str(self.request("POST", "/api/v1/topologies", dict(request))["id"])

    def topologies(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.request("GET", "/api/v1/topologies")["topologies"]
        return data

    def cluster(self) -> dict[str, Any]:
        data: dict[str, Any] = self.request("GET", "/api/v1/cluster")
        return data

    def _action(self, name: str, action: str, body: Mapping[str, Any]) -> str:
        path = f"/api/v1/topologies/{quote(name, safe='')}/{action}"
        return str(self.request("POST", path, dict(body))["id"])

    def kill(self, name: str, wait_secs: float | None = None) -> str:
        return self._action(name, "kill", {"wait_secs": wait_secs})

    def activate(self, name: str) -> str:
        return self._action(name, "activate", {})

    def deactivate(self, name: str) -> str:
        return self._action(name, "deactivate", {})

    def rebalance(
        self,
        name: str,
        wait_secs: float | None = None,
        num_workers: int | None = None,
        executors: Mapping[str, int] | None = None,
    ) -> str:
        body = {"wait_secs": wait_secs, "num_workers": num_workers, "executors": executors or {}}
        return self._action(name, "rebalance", body)

    def detail(self, name: str) -> dict[str, Any]:
        """One topology: status, shape, placement, workers, config, description."""
        data: dict[str, Any] = self.request("GET", f"/api/v1/topologies/{quote(name, safe='')}")
        return data

    def stats(self, name: str) -> dict[str, Any]:
        """Executor counters as the workers last reported them, and sampled tuples."""
        path = f"/api/v1/topologies/{quote(name, safe='')}/stats"
        data: dict[str, Any] = self.request("GET", path)
        return data

    def errors(self, name: str) -> list[dict[str, Any]]:
        path = f"/api/v1/topologies/{quote(name, safe='')}/errors"
        data: list[dict[str, Any]] = self.request("GET", path)["errors"]
        return data

    def set_debug(self, name: str, component: str | None, enabled: bool, percent: float) -> str:
        body = {"component": component, "enabled": enabled, "percent": percent}
        return self._action(name, "debug", body)

    def nimbus_info(self, address: str) -> dict[str, Any]:
        """What the nimbus at ``address`` says of itself (leader or not, uptime, version)."""
        status, data = self._json(address, "GET", "/api/v1/nimbus")
        result: dict[str, Any] = _result(status, data)
        return result

    def code(self, address: str, topology_id: str) -> tuple[bytes, dict[str, Any]]:
        """A topology's package and meta, from the nimbus at ``address``."""
        base = f"/api/v1/topologies/{quote(topology_id, safe='')}"
        status, data = self._call(address, "GET", base + "/code")
        if status != 200:
            raise NimbusClientError(status, f"{address}: no code for {topology_id} (HTTP {status})")
        status, meta = self._json(address, "GET", base + "/meta")
        return data, _result(status, meta)


def _result(status: int, data: Any) -> Any:
    if status == 200:
        return data
    message = data.get("error") if isinstance(data, dict) else None
    message = str(message or f"HTTP {status}")
    if status == 503:
        raise NimbusUnavailableError(status, message)
    raise NimbusClientError(status, message)


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(e).__name__}: {e}"
