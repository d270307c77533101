"""Squall's UI daemon: Storm UI's REST API, web pages, Prometheus metrics and the logviewer.

Layout: ``source`` (what the UI reads: :class:`TopologySource`, local mode's
:class:`LocalSource`), ``history`` (Storm's stats windows from cumulative
counters), ``storm_api`` (the REST documents), ``prometheus`` (``/metrics``),
``logs`` (worker log files and sampled tuples) and ``server`` (the HTTP daemon
that serves them all, plus the pages in ``static/``).
"""

from __future__ import annotations

from squall.ui.server import DEFAULT_HOST, DEFAULT_PORT, UIServer
from squall.ui.source import LocalSource, TopologySource
from squall.ui.storm_api import StormApi

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "LocalSource", "StormApi", "TopologySource", "UIServer"]
