"""The Figure every convlens figure is: matplotlib's, shown as a PNG where it is returned.

A notebook shows a returned object by its ``_repr_png_``; a plain
``matplotlib.figure.Figure`` made without pyplot (as every figure here is, so
no global state leaks between calls) has none unless the inline backend was
switched on, and would print as ``<Figure size 1300x440 with 3 Axes>``.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class ShownFigure(Figure):
    """A matplotlib Figure that a notebook shows as a PNG (at its own dpi) when returned."""

    def _repr_png_(self) -> bytes:
        """The figure drawn by its canvas as PNG bytes."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=self.dpi, facecolor="white")
        return buffer.getvalue()
