"""The ``convlens`` command: parses arguments, calls the Python API, prints.

Subcommands live by topic in model.py (summary, train, evaluate, predict)
and lab.py (convolve, explain-pixel); each registers its parser with the
``@command`` decorator and runs a few lines that call the API. Errors a user can
cause arrive as ConvlensError and leave as one sentence on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from collections.abc import Callable

from convlens.errors import EXIT_USER_ERROR


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


def output_width() -> int | None:
    """The characters a printed line may take: the terminal's width, or $COLUMNS when set.

    None when stdout is no terminal and COLUMNS is unset (a file, a pipe): lines
    are left whole there, one explanation per line for grep.
    """
    if os.environ.get("COLUMNS", "").strip().isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def wrap_to(text: str, width: int | None) -> str:
    """``text`` wrapped to ``width`` (continuation lines indented by two), or whole when None."""
    if width is None:
        return text
    return "\n".join(textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False))


def add_invert_arguments(parser: argparse.ArgumentParser) -> None:
    """--invert and --no-invert (default: the explorer's rule, images.invert_rule)."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--invert",
        dest="invert",
        action="store_const",
        const="yes",
        default="auto",
        help="invert brightness first, whatever the picture (default: a picture with a light "
        "border is inverted when the run learned light shapes on black, as the explorer does)",
    )
    choice.add_argument(
        "--no-invert",
        dest="invert",
        action="store_const",
        const="no",
        help="keep every picture as it is, even a dark object on white",
    )


def inverted_note(why: str) -> str:
    """What a printed line adds when its picture was inverted first ("" when it was not)."""
    if not why:
        return ""
    if why == "as asked":
        return " (inverted first, as asked)"
    return f" (inverted first: {why}; --no-invert keeps it as it is)"
