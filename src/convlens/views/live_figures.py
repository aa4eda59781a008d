"""The live view's curves: loss and accuracy while a model trains, redrawn as they grow.

What the page's training panel draws (static/js/charts.js) as one matplotlib
figure for a notebook: the running training loss and accuracy of each epoch
at every step drawn, and the test (or validation) figures after each epoch.
The x axis counts epochs (1.5 is half-way through the second epoch).
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg

from convlens.views.figure import ShownFigure


def live_curves_figure(
    steps: Sequence[tuple[float, float, float]],
    epochs: Sequence[tuple[int, float | None, float | None]],
    total_epochs: int,
    *,
    test_label: str = "test",
) -> ShownFigure:
    """Loss and accuracy so far: ``steps`` (epoch position, loss, accuracy) while training,
    ``epochs`` (epoch, test loss, test accuracy) after each epoch; 9 x 2.8 inches."""
    figure = ShownFigure(figsize=(9, 2.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    x = [s[0] for s in steps]
    for axes, column, title in ((loss_axes, 1, "Loss"), (accuracy_axes, 2, "Accuracy")):
        if steps:
            axes.plot(x, [s[column] for s in steps], "-", linewidth=1.2, label="train (running)")
        done = [(e[0], e[column]) for e in epochs if e[column] is not None]
        if done:
            axes.plot(*zip(*done, strict=True), "s--", color="#e8590c", label=test_label)
        axes.set_xlim(0, max(total_epochs, 1))
        axes.set_xlabel("epoch")
        axes.set_title(title, fontsize=10)
        axes.grid(alpha=0.3)
        if steps or done:
            axes.legend(fontsize=8, loc="best")
    accuracy_axes.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    return figure
