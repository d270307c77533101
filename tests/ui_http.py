"""A tiny HTTP client for the UI tests: JSON in, status checked, errors as values."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class Http:
    """Requests to one UI (``base`` is its URL) over a real socket."""

    def __init__(self, base: str) -> None:
        self.base = base

    def raw(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body), for any status."""
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path: str) -> Any:
        """The JSON body of a GET that must answer 200."""
        status, _, body = self.raw(path)
        assert status == 200, body
        return json.loads(body)

    def post(self, path: str) -> Any:
        """The JSON body of a POST that must answer 200."""
        status, _, body = self.raw(path, "POST")
        assert status == 200, body
        return json.loads(body)


def rows(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """A list of JSON objects keyed by one of their fields."""
    return {r[key]: r for r in items}
