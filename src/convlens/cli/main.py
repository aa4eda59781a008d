"""The ``convlens`` entry point: gathers every topic's commands and runs one.

Each topic module registers its commands with ``@command`` (cli/base.py) when
it is imported; importing them here, and only here, keeps base free of circles.
"""

from __future__ import annotations

import atexit
import io
import os
import select
import sys
from collections.abc import Sequence

# imported for their @command registrations
from convlens.cli import explore, export, inspect, interop, lab, model, why  # noqa: F401
from convlens.cli.base import build_parser
from convlens.errors import EXIT_USER_ERROR, ConvlensError

EXIT_READER_GONE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s yes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    try:
        return run_command(argv)
    except BrokenPipeError:
        if not stdout_reader_gone():
            raise  # a pipe of our own broke: a real fault, shown as one
        return quiet_exit()


def run_command(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its command; a user's error is one sentence on stderr."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except ConvlensError as exc:
        print(f"convlens: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("convlens: interrupted.", file=sys.stderr)
        return 130
    finally:  # --help's exit included: a reader gone away is found here, not at the exit
        sys.stdout.flush()


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`convlens ... | head`).

    A pipe's write end polls as POLLERR once no reader is left. When stdout is
    no file (a test's capture) the broken pipe can only have been its own.
    """
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return True
    return any(event & select.POLLERR for _, event in poller.poll(0))


def quiet_exit() -> int:
    """Point stdout at /dev/null, so what is still buffered goes nowhere, and exit as Unix tools do.

    A tool whose reader stops early (`head`) ends without a word: a shell
    reports 141, SIGPIPE's status.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass  # no file behind stdout: nothing will be flushed into a closed pipe
    return EXIT_READER_GONE


def run() -> None:
    """The ``convlens`` program: ``main`` for the command line, then a quick exit.

    Everything the command writes is written (files atomically, as they go) and
    flushed, and the exit handlers run; what is skipped is the interpreter
    tearing down torch's and matplotlib's modules one by one, which took 0.3 to
    0.5 s after every command (measured: `python -c "import torch"` spends
    0.33 s leaving).
    """
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    run()
