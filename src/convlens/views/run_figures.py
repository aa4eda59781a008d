"""The figures of a trained run (journey, maps, filters, mistakes, curves), drawn
from its test split only, and their PNG encoding.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from convlens.inspect import attribution, journey, methods
from convlens.inspect.faithfulness import default_method
from convlens.model.layers import Conv2D
from convlens.runs.directory import read_history, run_name
from convlens.runs.evaluate import Evaluation
from convlens.runs.loading import Run
from convlens.views import attribution_figures, plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convlens.data.datasets import Split


@dataclass(frozen=True)
class ReportOptions:
    """What the journey and the gallery show; defaults follow the lesson."""

    class_choice: str | int | None = None  # None: the class of test image 0
    images: int = 3
    image_indices: tuple[int, ...] = ()
    filter_index: int | None = None  # None: filter 1 (the lesson's), or 0 for a 1-filter layer
    scale: str = "panel"  # journey colour scale: "panel" or "row"
    mistakes: int = 24
    explained_mistakes: int = 12  # of those, how many get Grad-CAM toward both classes


def default_filter(run: Run) -> int:
    """The lesson's filter 1, or 0 when some journey layer has a single map."""
    rows = journey.journey_layers(run.model)
    return 1 if rows and min(row.output_shape[-1] for row in rows) > 1 else 0


def journey_figure(
    run: Run,
    test: Split,
    indices: np.ndarray,
    filter_index: int | None = None,
    scale: str = "panel",
) -> Figure:
    """The journey grid of ``filter_index`` for the test images at ``indices`` (n,)."""
    filter_index = default_filter(run) if filter_index is None else filter_index
    images = test.images[indices]  # (n, H, W, C)
    seen = journey.journey(run, images, filter_index)
    names = run.class_names
    said = seen.outputs.argmax(axis=1)
    labels = [
        f"test image {i}: {names[test.labels[i]]}\nmodel says {names[k]} {p[k]:.0%}"
        for i, k, p in zip(indices, said, seen.outputs, strict=True)
    ]
    classes = sorted({names[test.labels[i]] for i in indices})
    return plots.journey_figure(
        images,
        seen.maps,
        filter_index=filter_index,
        layer_shapes={row.name: row.output_shape for row in seen.rows},
        row_labels=labels,
        title=f"The journey of {', '.join(classes)} images through {run.model.name}",
        scale=scale,
    )


def feature_maps_figure(run: Run, test: Split, index: int, layer: str | None = None) -> Figure:
    """Every map of ``layer`` (default: the first Conv2D) for test image ``index``."""
    layer = layer or journey.first_conv(run.model).name
    row, maps = journey.feature_maps(run, test.images[index], layer)
    name = run.class_names[test.labels[index]]
    shape = ", ".join(str(n) for n in row.output_shape)
    return plots.feature_maps_figure(
        maps, title=f"Every map of {layer} ({shape}) for test image {index} ({name})"
    )


def filters_figure(run: Run, layer: str | None = None, scale: str = "panel") -> Figure:
    """The learned kernels of ``layer`` (default: the first Conv2D) as a diverging grid."""
    row, kernels = journey.learned_filters(run, layer)
    return plots.filters_figure(
        kernels, title=f"Learned filters of {row.name} in {run.model.name}", scale=scale
    )


def mistakes(evaluation: Evaluation, labels: np.ndarray, count: int) -> np.ndarray:
    """Positions (int64, at most ``count``) of the most confident wrong predictions, surest first."""
    wrong = np.flatnonzero(evaluation.predictions != labels)
    sureness = evaluation.probabilities[wrong, evaluation.predictions[wrong]]
    return wrong[np.argsort(-sureness, kind="stable")][:count]


def misclassified_figure(
    run: Run, test: Split, evaluation: Evaluation, count: int = 24
) -> Figure | None:
    """The gallery of the ``count`` most confident mistakes; None when there is none."""
    chosen = mistakes(evaluation, test.labels, count)
    if len(chosen) == 0:
        return None
    predicted = evaluation.predictions[chosen]
    wrong_total = int((evaluation.predictions != test.labels).sum())
    return plots.misclassified_figure(
        test.images[chosen],
        test.labels[chosen],
        predicted,
        run.class_names,
        confidence=evaluation.probabilities[chosen, predicted],
        captions=[f"test image {i}" for i in chosen],
        title=f"The {len(chosen)} most confident of {wrong_total:,} mistakes on the test split "
        "(percent: probability given to the wrong class)",
    )


def mistakes_why_figure(
    run: Run, test: Split, evaluation: Evaluation, count: int = 12
) -> Figure | None:
    """The ``count`` surest mistakes with the run's default map (faithfulness.default_method)
    toward the wrong and the true class.

    None when the model has no Conv2D or made no mistake.
    """
    chosen = mistakes(evaluation, test.labels, count)
    if len(chosen) == 0 or not any(isinstance(r.layer, Conv2D) for r in run.model.rows):
        return None
    method = default_method(run, test).method
    images, true = test.images[chosen], test.labels[chosen]
    predicted = evaluation.predictions[chosen]
    toward_wrong, toward_true = attribution.explain_targets(run, images, method, [predicted, true])
    how = f"Grad-CAM on {toward_wrong.layer}" if method == "gradcam" else method
    red = "red: raised that class's score" + (
        ", blue: lowered it" if methods.METHODS[method].signed else ""
    )
    return attribution_figures.mistakes_why_figure(
        images,
        toward_wrong.maps,
        toward_true.maps,
        true,
        predicted,
        run.class_names,
        captions=[f"test image {i}" for i in chosen],
        title=f"Why the {len(chosen)} surest mistakes: {how} toward the wrong class and toward "
        f"the true one ({red})",
        signed=methods.METHODS[method].signed,
    )


def _loss_note(run: Run) -> str:
    config = run.metrics.get("config") or {}
    smoothing = config.get("label_smoothing") or 0
    ema = config.get("ema_decay") or 0
    tested = f"the weights' moving average (EMA {ema})" if ema else "the weights"
    note = (
        f"train: averaged over each epoch while the weights change; test: {tested} after the epoch"
    )
    if smoothing:
        note += f"; train loss includes label smoothing {smoothing}, test loss does not"
    keep = config.get("keep_fraction", 1.0)
    selects_from = config.get("select_from_epoch", 2)
    if keep < 1 and selects_from <= run.metrics.get("epochs", config.get("epochs", 0)):
        note += (
            f"; from epoch {selects_from} an epoch trains on {keep:.0%} "
            "of the images, the hardest, and train figures are over every image as of the "
            "last time it was trained on"
        )
    if config.get("shift_augment"):
        note += f"; training images shifted by up to {config['shift_augment']} pixel(s)"
    return note


# The figures built from numbers already in hand (history, evaluation, test images): no torch,
# so a forked child builds and draws them (torch's thread pool does not survive a fork).
WITHOUT_TORCH = frozenset({"curves", "per_class", "confusion", "misclassified"})

FigureBuilder = Callable[[], "Figure | None"]


def figure_builders(
    run: Run, test: Split, evaluation: Evaluation, options: ReportOptions | None = None
) -> dict[str, FigureBuilder]:
    """How to build each figure of a run, by file stem in the report's order; a builder
    returns None for a figure the run has not (no history, no convolution, no mistake)."""
    options = options or ReportOptions()
    names = run.class_names
    builders: dict[str, FigureBuilder] = {
        "curves": lambda: _curves_figure(run),
        "per_class": lambda: plots.per_class_figure(
            evaluation.per_class_accuracy,
            names,
            overall=evaluation.accuracy,
            title="Test accuracy per class",
        ),
        "confusion": lambda: plots.confusion_figure(
            evaluation.confusion, names, title="Confusion matrix on the test split"
        ),
    }
    if journey.journey_layers(run.model):
        indices = journey.choose_images(
            test.labels,
            names,
            options.class_choice,
            options.images,
            options.image_indices,
            fewer_ok=options.class_choice is None,  # the report's default class may be small
        )
        builders["journey"] = lambda: journey_figure(
            run, test, indices, options.filter_index, options.scale
        )
        builders["feature_maps"] = lambda: feature_maps_figure(run, test, int(indices[0]))
        builders["filters"] = lambda: filters_figure(run)
    builders["misclassified"] = lambda: misclassified_figure(
        run, test, evaluation, options.mistakes
    )
    builders["mistakes_why"] = lambda: mistakes_why_figure(
        run, test, evaluation, options.explained_mistakes
    )
    return builders


def _curves_figure(run: Run) -> Figure | None:
    """The training curves from the run's history.csv; None when it has none."""
    history = read_history(run.path)
    if not history:
        return None
    return plots.training_curves_figure(
        history, title=f"Training curves of {run_name(run.path)}", note=_loss_note(run)
    )


def run_figures(
    run: Run, test: Split, evaluation: Evaluation, options: ReportOptions | None = None
) -> dict[str, Figure]:
    """Every figure of a run by file stem (curves, per_class, confusion, journey, ...).

    A model without convolutions has no journey, maps or filters figures;
    a model without mistakes has no gallery.
    """
    built = {
        name: build() for name, build in figure_builders(run, test, evaluation, options).items()
    }
    return {name: figure for name, figure in built.items() if figure is not None}


PNG_LEVEL = 3  # zlib level: 1.45x faster than Pillow's default 6; as RGB, files no larger


def figure_pixels(figure: Figure) -> np.ndarray:
    """The figure drawn by Agg at its dpi: uint8 (rows, columns, 3) when opaque, else RGBA."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else None
    canvas = canvas or FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[..., :3] if (rgba[..., 3] == 255).all() else rgba


def png_of(pixels: np.ndarray, dpi: float = 100) -> bytes:
    """uint8 RGB or RGBA pixels as PNG bytes (zlib level PNG_LEVEL), tagged with ``dpi``."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, format="png", compress_level=PNG_LEVEL, dpi=(dpi, dpi)
    )
    return buffer.getvalue()


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes at its dpi (100 dots per inch), drawn once.

    Written as RGB when every pixel is opaque (every figure here has a white
    face), so the PNG carries no alpha channel to compress.
    """
    return png_of(figure_pixels(figure), figure.dpi)


def built_figures_png(builders: dict[str, FigureBuilder]) -> dict[str, bytes]:
    """Build and draw every figure of ``builders`` (``figure_builders``) as PNG bytes, the
    WITHOUT_TORCH ones by a forked child while this process builds and draws the rest; a
    figure whose builder returns None is left out. The bytes are those one process makes."""

    def png(name: str) -> bytes | None:
        figure = builders[name]()
        return None if figure is None else figure_png(figure)

    theirs = [name for name in builders if name in WITHOUT_TORCH]
    return _drawn_in_two(list(builders), theirs, png)


def _drawn_in_two(
    names: list[str], theirs: list[str], png: Callable[[str], bytes | None]
) -> dict[str, bytes]:
    """``png(name)`` for every name (None ones left out), in ``names``' order; ``theirs`` made
    by a forked child at the same time.

    Drawing is most of a report's time and matplotlib draws on one core. The
    child only builds with numpy and matplotlib and encodes with Pillow (no
    torch), sends its PNG bytes back through a pipe and leaves with
    ``os._exit``. Without fork, or when the child fails, everything is made here.
    """
    mine = [name for name in names if name not in theirs]
    if not hasattr(os, "fork") or not theirs or not mine:
        made = {name: png(name) for name in names}
        return {name: made[name] for name in names if made[name] is not None}
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: make its part, send it, leave without any cleanup
        try:
            os.close(reading)
            data = pickle.dumps({name: png(name) for name in theirs})
            with os.fdopen(writing, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    os.close(writing)
    made = {name: png(name) for name in mine}
    with os.fdopen(reading, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    try:
        made.update(pickle.loads(data))
    except (pickle.UnpicklingError, EOFError):  # the child died: make its part here
        made.update({name: png(name) for name in theirs})
    return {name: made[name] for name in names if made[name] is not None}
