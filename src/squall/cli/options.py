"""Argument types and options that several ``squall`` commands share.

The ``-c KEY=VALUE`` option of ``run``, ``ui``, ``drpc`` and the cluster
commands, the ``--conf FILE`` and ``--nimbus``/``--token`` options of the
commands that talk to a cluster, and argparse types for positive numbers.
Each command keeps its own help text; the parsing is the same everywhere.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from squall import config as C


def config_pair(example: str | None = None) -> Callable[[str], tuple[str, Any]]:
    """The argparse type of ``-c KEY=VALUE``: ``(key, value)``, VALUE parsed as JSON if it can be.

    Args:
        example: a ``KEY=VALUE`` the error message shows, if any.

    >>> config_pair()("topology.workers=2")
    ('topology.workers', 2)
    >>> config_pair("topology.workers=2")("workers")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected KEY=VALUE (for example topology.workers=2), got 'workers'
    """
    expected = f"KEY=VALUE (for example {example})" if example else "KEY=VALUE"

    def parse(text: str) -> tuple[str, Any]:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return key, C.parse_value(value)

    return parse


def add_config_option(
    p: argparse.ArgumentParser, helptext: str, dest: str = "conf", example: str | None = None
) -> None:
    """``-c/--config KEY=VALUE`` (repeatable): a list of ``(key, value)`` in ``args.<dest>``."""
    p.add_argument(
        "-c",
        "--config",
        dest=dest,
        action="append",
        type=config_pair(example),
        default=[],
        metavar="KEY=VALUE",
        help=helptext,
    )


def add_conf_file_option(p: argparse.ArgumentParser) -> None:
    """``--conf FILE``: the cluster config (default: ``$SQUALL_CONF``)."""
    p.add_argument(
        "--conf",
        metavar="FILE",
        default=os.environ.get("SQUALL_CONF"),
        help="the cluster config, JSON or TOML (default: $SQUALL_CONF)",
    )


def add_nimbus_options(p: argparse.ArgumentParser, default_nimbus: str) -> None:
    """``--nimbus HOST:PORT`` and ``--token``; ``default_nimbus`` says where nimbus is otherwise."""
    p.add_argument(
        "--nimbus", metavar="HOST:PORT", help=f"ask this nimbus (default: {default_nimbus})"
    )
    p.add_argument("--token", help="nimbus's shared secret (default: nimbus.auth.token)")


def positive_int(text: str) -> int:
    """The argparse type of a whole number above zero.

    >>> positive_int("2")
    2
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """The argparse type of a number of seconds above zero.

    >>> positive_float("0.5")
    0.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value
