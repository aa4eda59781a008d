"""``python -m convlens``: the same as the ``convlens`` command."""

import sys

from convlens.cli.main import main

sys.exit(main())
