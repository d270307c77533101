"""The ``squall`` command: one argparse parser, one module per command group.

Each command module exposes ``register(commands)``, which adds its subparser
and sets ``func`` to a handler ``(args) -> exit status``. A new command group
(``nimbus``, ``supervisor``, ``submit``, ``drpc``, ``ui``, ``list``, ``kill``...)
is a new module here plus one line in :data:`COMMANDS`.

>>> main(["version"])  # doctest: +ELLIPSIS
squall ...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from squall.cli import cluster, drpc, run, ui, version

#: ``register`` functions of the command groups, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    run.register,
    drpc.register,
    cluster.register,
    ui.register,
    version.register,
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``squall`` parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="squall",
        description="Squall: Apache Storm, done in Python.",
        epilog="Run 'squall COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
