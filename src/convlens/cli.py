"""The ``convlens`` command: parses arguments, calls the Python API, prints.

Subcommands live by topic in cli_model.py (summary, train, evaluate, predict)
and cli_lab.py (convolve, explain-pixel); each registers its parser with the
``@command`` decorator and runs a few lines that call the API. Errors a user can
cause arrive as ConvlensError and leave as one sentence on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from convlens.errors import EXIT_USER_ERROR, ConvlensError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one sentence with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"convlens: error: {message}; see `{self.prog} --help`.\n")


Registrar = Callable[["argparse._SubParsersAction[_Parser]"], None]
COMMANDS: list[Registrar] = []


def command(register: Registrar) -> Registrar:
    """Decorator: add a subcommand's parser-registering function to the CLI."""
    COMMANDS.append(register)
    return register


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = _Parser(
        prog="convlens",
        description="Convolutional neural networks on small images: real, fast and visible.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for register in COMMANDS:
        register(sub)
    choices = sub._choices_actions  # what --help lists, in the lesson's order
    choices.sort(key=lambda action: _listed_position(action.dest))
    return parser


# `convlens --help` lists the commands in the lesson's order; any other comes after them.
COMMAND_ORDER = (
    "summary",
    "train",
    "evaluate",
    "predict",
    "inspect",
    "why",
    "report",
    "convolve",
    "explain-pixel",
    "explore",
    "import",
    "export",
)


def _listed_position(name: str) -> int:
    return COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER)


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


# Subcommand modules register themselves on import; importing them here keeps
# `convlens` a single entry point while each topic's commands live beside it.
from convlens import (  # noqa: E402,F401
    cli_export,
    cli_inspect,
    cli_interop,
    cli_lab,
    cli_model,
    cli_web,
    cli_why,
)

if __name__ == "__main__":
    sys.exit(main())
