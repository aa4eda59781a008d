"""The figures of a trained run (journey, maps, filters, mistakes, curves), drawn
from its test split only, and their PNG encoding.
"""

from __future__ import annotations

import io
import os
import pickle
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


def run_figures(
    run: Run, test: Split, evaluation: Evaluation, options: ReportOptions | None = None
) -> dict[str, Figure]:
    """Every figure of a run by file stem (curves, per_class, confusion, journey, ...).

    A model without convolutions has no journey, maps or filters figures;
    a model without mistakes has no gallery.
    """
    options = options or ReportOptions()
    names = run.class_names
    figures: dict[str, Figure] = {}
    history = read_history(run.path)
    if history:
        figures["curves"] = plots.training_curves_figure(
            history, title=f"Training curves of {run_name(run.path)}", note=_loss_note(run)
        )
    figures["per_class"] = plots.per_class_figure(
        evaluation.per_class_accuracy,
        names,
        overall=evaluation.accuracy,
        title="Test accuracy per class",
    )
    figures["confusion"] = plots.confusion_figure(
        evaluation.confusion, names, title="Confusion matrix on the test split"
    )
    if journey.journey_layers(run.model):
        indices = journey.choose_images(
            test.labels,
            names,
            options.class_choice,
            options.images,
            options.image_indices,
            fewer_ok=options.class_choice is None,  # the report's default class may be small
        )
        figures["journey"] = journey_figure(run, test, indices, options.filter_index, options.scale)
        figures["feature_maps"] = feature_maps_figure(run, test, int(indices[0]))
        figures["filters"] = filters_figure(run)
    gallery = misclassified_figure(run, test, evaluation, options.mistakes)
    if gallery is not None:
        figures["misclassified"] = gallery
    explained = mistakes_why_figure(run, test, evaluation, options.explained_mistakes)
    if explained is not None:
        figures["mistakes_why"] = explained
    return figures


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


def figures_png(figures: dict[str, Figure]) -> dict[str, bytes]:
    """Every figure as PNG bytes (``figure_png``), drawn by two processes where fork exists.

    Drawing is most of a report's time and matplotlib draws on one core: a forked
    child draws about half the figures (by area) while this process draws the
    rest, and sends its PNG bytes back through a pipe. The child only draws
    with matplotlib and encodes with Pillow (no torch), then leaves with
    ``os._exit``. Without fork, or when the child fails, every figure is drawn here.
    """
    if not hasattr(os, "fork") or len(figures) < 2:
        return {name: figure_png(figure) for name, figure in figures.items()}
    mine, theirs = _halves(figures)
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: draw its half, send it, leave without any cleanup
        try:
            os.close(reading)
            data = pickle.dumps({name: figure_png(figures[name]) for name in theirs})
            with os.fdopen(writing, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    os.close(writing)
    drawn = {name: figure_png(figures[name]) for name in mine}
    with os.fdopen(reading, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    try:
        drawn.update(pickle.loads(data))
    except (pickle.UnpicklingError, EOFError):  # the child died: draw its half here
        drawn.update({name: figure_png(figures[name]) for name in theirs})
    return {name: drawn[name] for name in figures}


def _halves(figures: dict[str, Figure]) -> tuple[list[str], list[str]]:
    """Two lists of names whose figures' areas are about equal (largest first, greedily)."""
    halves: tuple[list[str], list[str]] = ([], [])
    areas = [0.0, 0.0]
    for name, figure in sorted(figures.items(), key=lambda kv: -_area(kv[1])):
        lighter = 0 if areas[0] <= areas[1] else 1
        halves[lighter].append(name)
        areas[lighter] += _area(figure)
    return halves


def _area(figure: Figure) -> float:
    width, height = figure.get_size_inches()
    return float(width * height)
