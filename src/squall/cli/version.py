"""``squall version``: print Squall's and Python's versions."""

from __future__ import annotations

import argparse
import platform
import sys


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``version`` command to the ``squall`` parser."""
    p = commands.add_parser("version", help="print the Squall version", description=__doc__)
    p.set_defaults(func=version_command)


def version_command(args: argparse.Namespace) -> int:
    """Print ``squall X.Y.Z (Python A.B.C)``."""
    import squall

    sys.stdout.write(
        f"squall {squall.__version__} (Python {platform.python_version()}, "
        f"{platform.python_implementation()})\n"
    )
    return 0
