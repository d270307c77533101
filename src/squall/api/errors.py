"""Exceptions raised at the API boundary; every message names what is at fault."""

from __future__ import annotations


class InvalidTopologyError(ValueError):
    """The topology's structure is invalid (Storm's InvalidTopologyException)."""


class EmitError(ValueError):
    """An emit broke the declared shape: unknown stream, wrong field count, bad direct task."""


class FailedError(Exception):
    """Raise from ``Bolt.process`` to fail the input tuple without reporting an error.

    Mirrors Storm's ``FailedException`` for basic bolts.
    """
