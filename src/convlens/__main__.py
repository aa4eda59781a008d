"""``python -m convlens``: the same as the ``convlens`` command."""

from convlens.cli.main import run

run()
