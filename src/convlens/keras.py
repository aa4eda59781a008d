"""convlens.keras: what convlens gives a Keras user's own training loop.

    model.fit(x, y, epochs=5, callbacks=[convlens.keras.LiveView(images=x_test[:1])])
    run = convlens.from_keras(model)   # the fitted model as a run: Explorer, report, commands

A door of the package's face (like convlens/__init__.py): its names are
imported on first use, so ``import convlens.keras`` loads neither torch nor
Keras. LiveView itself lives in convlens/notebook/keras.py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["LiveView", "from_keras"]
_PUBLIC = {"LiveView": "convlens.notebook.keras", "from_keras": "convlens.notebook.workflows"}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'convlens.keras' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from convlens.notebook.keras import LiveView
    from convlens.notebook.workflows import from_keras
