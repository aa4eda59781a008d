"""The figures of a trained run (journey, maps, filters, mistakes, curves), drawn
from its test split only, and their PNG encoding.
"""

from __future__ import annotations

import gc
import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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


FigureBuilder = Callable[[], "Figure | None"]  # a figure, or None when the run has not that one
FigurePlan = Callable[[], "FigureBuilder | None"]  # a figure's numbers now, its drawing later


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
    return journey_drawing(run, test, indices, filter_index, scale)()


def journey_drawing(
    run: Run,
    test: Split,
    indices: np.ndarray,
    filter_index: int | None = None,
    scale: str = "panel",
) -> FigureBuilder:
    """``journey_figure`` in two steps: the forward pass now, the drawing when called."""
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
    return partial(
        plots.journey_figure,
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
    return feature_maps_drawing(run, test, index, layer)()


def feature_maps_drawing(
    run: Run, test: Split, index: int, layer: str | None = None
) -> FigureBuilder:
    """``feature_maps_figure`` in two steps: the forward pass now, the drawing when called."""
    layer = layer or journey.first_conv(run.model).name
    row, maps = journey.feature_maps(run, test.images[index], layer)
    name = run.class_names[test.labels[index]]
    shape = ", ".join(str(n) for n in row.output_shape)
    return partial(
        plots.feature_maps_figure,
        maps,
        title=f"Every map of {layer} ({shape}) for test image {index} ({name})",
    )


def filters_figure(run: Run, layer: str | None = None, scale: str = "panel") -> Figure:
    """The learned kernels of ``layer`` (default: the first Conv2D) as a diverging grid."""
    return filters_drawing(run, layer, scale)()


def filters_drawing(run: Run, layer: str | None = None, scale: str = "panel") -> FigureBuilder:
    """``filters_figure`` in two steps: the weights read now, the drawing when called."""
    row, kernels = journey.learned_filters(run, layer)
    return partial(
        plots.filters_figure,
        kernels,
        title=f"Learned filters of {row.name} in {run.model.name}",
        scale=scale,
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
    drawing = mistakes_why_drawing(run, test, evaluation, count)
    return None if drawing is None else drawing()


def mistakes_why_drawing(
    run: Run, test: Split, evaluation: Evaluation, count: int = 12
) -> FigureBuilder | None:
    """``mistakes_why_figure`` in two steps: the maps now, the drawing when called; None when
    there is no figure."""
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
    return partial(
        attribution_figures.mistakes_why_figure,
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


# The figures a forked child draws while this process draws the rest, once this process has
# made every figure's numbers (the forward passes: torch's thread pool does not survive a
# fork): about half of the drawing each (benchmarks/report_speed.py times each figure).
CHILD_DRAWS = frozenset({"curves", "per_class", "confusion", "misclassified"})


def figure_plans(
    run: Run, test: Split, evaluation: Evaluation, options: ReportOptions | None = None
) -> dict[str, FigurePlan]:
    """Each figure of a run in two steps, by file stem in the report's order: calling a plan
    makes the figure's numbers (the model's forward passes, its maps) and returns how to draw
    it (no torch), or None for a figure the run has not (no convolution, no mistake)."""
    options = options or ReportOptions()
    names = run.class_names
    plans: dict[str, FigurePlan] = {
        "curves": lambda: partial(_curves_figure, run),
        "per_class": lambda: partial(
            plots.per_class_figure,
            evaluation.per_class_accuracy,
            names,
            overall=evaluation.accuracy,
            title="Test accuracy per class",
        ),
        "confusion": lambda: partial(
            plots.confusion_figure,
            evaluation.confusion,
            names,
            title="Confusion matrix on the test split",
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
        plans["journey"] = lambda: journey_drawing(
            run, test, indices, options.filter_index, options.scale
        )
        plans["feature_maps"] = lambda: feature_maps_drawing(run, test, int(indices[0]))
        plans["filters"] = lambda: filters_drawing(run)
    plans["misclassified"] = lambda: partial(
        misclassified_figure, run, test, evaluation, options.mistakes
    )
    plans["mistakes_why"] = lambda: mistakes_why_drawing(
        run, test, evaluation, options.explained_mistakes
    )
    return plans


def _carried_out(plan: FigurePlan) -> Figure | None:
    """The figure a plan makes: its numbers, then its drawing (None: no such figure)."""
    drawing = plan()
    return None if drawing is None else drawing()


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
    plans = figure_plans(run, test, evaluation, options)
    built = {name: _carried_out(plan) for name, plan in plans.items()}
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


def built_figures_png(plans: dict[str, FigurePlan]) -> dict[str, bytes]:
    """Every figure of ``plans`` (``figure_plans``) as PNG bytes, in their order; a figure a
    plan has not is left out. The bytes are those one process makes.

    Each figure's numbers are made here first (the forward passes, on every
    core); then a forked child draws the CHILD_DRAWS figures, which needs no
    torch, while this process draws the rest.
    """
    drawings = {name: plan() for name, plan in plans.items()}

    def png(name: str) -> bytes | None:
        drawing = drawings[name]
        figure = None if drawing is None else drawing()
        return None if figure is None else figure_png(figure)

    theirs = [name for name in drawings if name in CHILD_DRAWS]
    return _drawn_in_two(list(drawings), theirs, png)


def _drawn_in_two(
    names: list[str], theirs: list[str], png: Callable[[str], bytes | None]
) -> dict[str, bytes]:
    """``png(name)`` for every name (None ones left out), in ``names``' order; ``theirs`` made
    by a forked child at the same time.

    Drawing is most of a report's time and matplotlib draws on one core. The
    child only draws with numpy, matplotlib and Pillow (no torch), sends its
    PNG bytes back through a pipe and leaves with ``os._exit``. Without fork,
    or when the child fails, everything is made here.
    """
    mine = [name for name in names if name not in theirs]
    if not hasattr(os, "fork") or not theirs or not mine:
        made = {name: png(name) for name in names}
        return {name: made[name] for name in names if made[name] is not None}
    reading, writing = os.pipe()
    # A garbage collection writes to every object it walks; after a fork each such write
    # copies the page both processes shared (per-class accuracy: 0.09 -> 0.22 s with 11,000
    # page copies). Frozen, the objects made so far are walked by neither process.
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # the child: make its part, send it, leave without any cleanup
        try:
            os.close(reading)
            data = pickle.dumps({name: png(name) for name in theirs})
            with os.fdopen(writing, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    try:
        os.close(writing)
        made = {name: png(name) for name in mine}
        with os.fdopen(reading, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
    finally:
        gc.unfreeze()  # a long-lived process (the explorer, a notebook) collects as before
    try:
        made.update(pickle.loads(data))
    except (pickle.UnpicklingError, EOFError):  # the child died: make its part here
        made.update({name: png(name) for name in theirs})
    return {name: made[name] for name in names if made[name] is not None}
