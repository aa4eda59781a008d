"""The `convlens` program as a Unix tool: a reader that leaves early (`| head`) ends it quietly."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from convlens.cli import main as cli_main


def run_with_reader_gone(*argv: str) -> tuple[int, str]:
    """Run `python -m convlens ARGV` with its stdout's reader closed before it writes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "convlens", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # as `head` does after its lines: every write now meets EPIPE
    err = process.stderr.read()
    return process.wait(timeout=120), err


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (("summary",), cli_main.EXIT_READER_GONE),  # 141, as a shell reports for `yes | head -1`
        (("summary", "--model", "seed-dnn", "--json"), cli_main.EXIT_READER_GONE),
        (("--help",), 0),  # argparse drops what it cannot write and exits 0 itself
        (("train", "--help"), 0),
    ],
)
def test_a_reader_leaving_early_ends_the_command_quietly(argv, status) -> None:
    code, err = run_with_reader_gone(*argv)
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit
    assert code == status


def test_a_reader_still_there_is_not_mistaken_for_one_gone(monkeypatch) -> None:
    read_end, write_end = os.pipe()
    with open(write_end, "w") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        assert not cli_main.stdout_reader_gone()
        os.close(read_end)
        assert cli_main.stdout_reader_gone()


def test_a_broken_pipe_of_its_own_is_not_hidden(monkeypatch) -> None:
    """A BrokenPipeError while stdout's reader is still there is a fault: it is raised."""
    read_end, write_end = os.pipe()

    def breaks(args) -> int:
        raise BrokenPipeError("a child process's pipe")

    with open(write_end, "w") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        monkeypatch.setattr(cli_main, "build_parser", lambda: _parser_running(breaks))
        with pytest.raises(BrokenPipeError):
            cli_main.main(["anything"])
    os.close(read_end)


def _parser_running(function):
    """A parser whose one command runs ``function``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.set_defaults(func=function)
    return parser
