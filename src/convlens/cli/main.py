"""The ``convlens`` entry point: gathers every topic's commands and runs one.

Each topic module registers its commands with ``@command`` (cli/base.py) when
it is imported; importing them here, and only here, keeps base free of circles.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# imported for their @command registrations
from convlens.cli import explore, export, inspect, interop, lab, model, why  # noqa: F401
from convlens.cli.base import build_parser
from convlens.errors import EXIT_USER_ERROR, ConvlensError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConvlensError as exc:
        print(f"convlens: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("convlens: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
