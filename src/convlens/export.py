"""Moved to ``convlens.interop.export`` (other frameworks' files live in interop/).

This module keeps the old import path working: ``from convlens.export import export_run``.
"""

from convlens.interop.export import (  # noqa: F401
    DEFAULT_FILES,
    FORMATS,
    INPUT_NAME,
    PREPROCESSING,
    Exported,
    ExportedNetwork,
    export_bytes,
    export_metadata,
    export_run,
    read_metadata,
)
