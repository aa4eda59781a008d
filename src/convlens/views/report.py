"""A self-contained HTML report of a trained run, and the run's figures.

``write_report`` draws every figure of a run (training curves, confusion
matrix, per-class accuracy, the journey grid, one layer's maps, the learned
filters, the misclassified gallery), writes them as figures/*.png and embeds
them in one report.html: images as base64 ``data:`` URIs, CSS inline, no
script and no reference to anything outside the file, so it opens in any
browser with no server and no network. Every piece of text is HTML-escaped.

Only the test split is used: a report never retrains and never reads the
training images.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_bytes, atomic_write_text
from convlens.inspect.faithfulness import read_cached
from convlens.runs.directory import read_history, run_name
from convlens.runs.evaluate import Evaluation, evaluate
from convlens.runs.loading import Run, load_run
from convlens.version import __version__
from convlens.views import plots
from convlens.views.run_figures import ReportOptions, built_figures_png, figure_plans

if TYPE_CHECKING:
    from convlens.data.datasets import Split

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"


@dataclass
class Report:
    """A rendered report: its HTML and its figures as PNG bytes by name."""

    html: str
    figures: dict[str, bytes] = field(default_factory=dict)


# ---------------------------------------------------------------- the test split


# ---------------------------------------------------------------- figures of a run


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1280px; padding: 1.5rem 2rem 4rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2.6rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.lead { color: #444; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.6rem 1rem; min-width: 9rem; }
.card b { display: block; font-size: 1.35rem; }
.card span { color: #555; font-size: 0.85rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
.wide { overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f6; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.why { color: #333; font-size: 0.85rem; min-width: 14rem; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.9em; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9rem; max-width: 70rem; }
nav a { margin-right: 0.8rem; }
.note { color: #555; font-size: 0.9rem; }
footer { margin-top: 3rem; color: #666; font-size: 0.8rem; }
"""

SECTIONS = (
    ("compare", "Comparison"),
    ("model", "Model"),
    ("training", "Training"),
    ("results", "Test results"),
    ("journey", "Journey"),
    ("filters", "Filters"),
    ("mistakes", "Mistakes"),
)


def _e(value: Any) -> str:
    """Text made safe for HTML (quotes too)."""
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str, caption: str) -> str:
    """A figure with its PNG embedded as a data: URI."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]]) -> str:
    """An HTML table (no header row when ``head`` is empty); cells are (text, css class)."""
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    thead = f"<thead><tr>{header}</tr></thead>" if head else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"
            for text, cls in row
        )
        + "</tr>"
        for row in rows
    )
    # in a box that scrolls sideways on a narrow screen, so the page itself does not
    return f'<div class="wide"><table>{thead}<tbody>{body}</tbody></table></div>'


def _duration(value: float) -> str:
    """A duration for people: '12.3 s' or '7 min 49 s'."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s"


def _seconds(value: Any) -> str:
    """A duration in seconds as '469.0 s (7 min 49 s)'; 'n/a' when unknown."""
    if not isinstance(value, (int, float)):
        return "n/a"
    return _duration(value) if value < 60 else f"{value:,.1f} s ({_duration(value)})"


def _percent(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, (int, float)) else "n/a"


def _cards(run: Run, evaluation: Evaluation) -> str:
    metrics = run.metrics
    cards = [
        (f"{evaluation.accuracy:.2%}", f"test accuracy on {len(evaluation.predictions):,} images"),
        (f"{run.model.total_params:,}", "parameters"),
        (str(metrics.get("epochs", "n/a")), "epochs"),
        (
            _duration(metrics["seconds"])
            if isinstance(metrics.get("seconds"), (int, float))
            else "n/a",
            "training time",
        ),
    ]
    return (
        '<div class="cards">'
        + "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>" for v, k in cards)
        + "</div>"
    )


def _model_section(run: Run) -> str:
    summary = run.model.summary_dict()
    rows = [
        [
            (f"{layer['name']} ({layer['type']})", ""),
            (
                "("
                + ", ".join("None" if n is None else str(n) for n in layer["output_shape"])
                + ")",
                "num",
            ),
            (f"{layer['params']:,}", "num"),
            (f"shape: {layer['shape_explanation']}. params: {layer['params_explanation']}.", "why"),
            (layer["receptive_field_explanation"] or "the whole image", "why"),
        ]
        for layer in summary["layers"]
    ]
    table = _table(["Layer (type)", "Output Shape", "Param #", "Why", "Receptive field"], rows)
    input_shape = ", ".join("None" if n is None else str(n) for n in summary["input_shape"])
    return (
        _imported_note(run)
        + f"<p>Input ({_e(input_shape)}): a batch of images, height x width x channels; "
        "<code>None</code> stands for the batch size, as Keras prints it.</p>"
        f"{table}<p>Total params: {summary['total_params']:,} &middot; trainable: "
        f"{summary['trainable_params']:,} &middot; non-trainable: "
        f"{summary['non_trainable_params']:,}</p>"
    )


def _verb(run: Run) -> str:
    """How the run relates to its dataset: trained on it, or (imported) scored on it."""
    return "scored on" if isinstance(run.metrics.get("imported_from"), dict) else "trained on"


def _imported_note(run: Run) -> str:
    """Where an imported model came from, and the pixels' scale it takes (empty otherwise)."""
    source = run.metrics.get("imported_from")
    if not isinstance(source, dict):
        return ""
    version = source.get("keras_version") or source.get("producer") or "unknown version"
    return (
        f'<p class="note">Imported from {_e(source.get("file", "?"))} '
        f"({_e(source.get('format', '?'))}, {_e(version)}; SHA-256 "
        f"<code>{_e(str(source.get('sha256', ''))[:16])}&hellip;</code>), not trained by "
        f"convlens; its pixels 0..255 are multiplied by {run.model.input_scale:.6g} first.</p>"
    )


def _history_table(history: list[dict[str, float | None]]) -> str:
    def cell(row: Mapping[str, float | None], key: str, fmt: str) -> tuple[str, str]:
        value = row.get(key)
        return ("" if value is None else format(value, fmt), "num")

    rows = [
        [
            (str(int(row["epoch"] or 0)), "num"),
            cell(row, "train_loss", ".4f"),
            cell(row, "train_accuracy", ".2%"),
            cell(row, "test_loss", ".4f"),
            cell(row, "test_accuracy", ".2%"),
            cell(row, "seconds", ".1f"),
        ]
        for row in history
    ]
    head = ["epoch", "train loss", "train accuracy", "test loss", "test accuracy", "seconds"]
    return _table(head, rows)


def _training_section(run: Run, pngs: Mapping[str, bytes]) -> str:
    if isinstance(run.metrics.get("imported_from"), dict) and "curves" not in pngs:
        return _imported_note(run).replace(
            "not trained by convlens",
            "trained elsewhere, so there are no curves or training figures here",
        )
    metrics = run.metrics
    history = read_history(run.path)
    parts = []
    if "curves" in pngs:
        parts.append(
            _img(
                pngs["curves"],
                "training curves",
                "Loss and accuracy per epoch, on the training and the test split.",
            )
        )
        parts.append(_history_table(history))
    else:
        parts.append('<p class="note">This run has no history.csv: no curves to draw.</p>')
    config = metrics.get("config") or {}
    facts = [
        ("training time (evaluation included)", _seconds(metrics.get("seconds"))),
        ("per epoch", _seconds(metrics.get("seconds_per_epoch"))),
        (
            "images per second",
            f"{metrics['images_per_second']:,.0f}"
            if isinstance(metrics.get("images_per_second"), (int, float))
            else "n/a",
        ),
        ("CPU threads", metrics.get("threads", "n/a")),
        ("torch", metrics.get("torch", "n/a")),
        ("recipe", config.get("recipe", "n/a")),
        (
            "batch size, learning rate",
            f"{config.get('batch_size', 'n/a')}, {config.get('learning_rate', 'n/a')}",
        ),
        ("stopped early", metrics.get("stopped_early", "n/a")),
    ]
    parts.append(_table([], [[(k, ""), (str(v), "")] for k, v in facts]))
    return "".join(parts)


def _results_section(run: Run, evaluation: Evaluation, pngs: Mapping[str, bytes]) -> str:
    names = run.class_names
    worst = int(np.nanargmin(evaluation.per_class_accuracy))
    recorded = run.metrics.get("test_accuracy")
    differs = isinstance(recorded, float) and abs(recorded - evaluation.accuracy) > 5e-5
    note = (
        f'<p class="note">metrics.json recorded {recorded:.2%} when the run was trained '
        "(its own evaluation settings or test images); this page measures the model again on "
        "the test split it was given.</p>"
        if differs
        else ""
    )
    return (
        f"<p>Test accuracy <b>{evaluation.accuracy:.2%}</b> (loss {evaluation.loss:.4f}) on "
        f"{len(evaluation.predictions):,} test images. Hardest class: {_e(names[worst])} "
        f"({evaluation.per_class_accuracy[worst]:.1%}).</p>{note}"
        + _img(
            pngs["per_class"],
            "per-class accuracy",
            "Share of each class's test images "
            "predicted right; the dashed line is the overall accuracy.",
        )
        + _img(
            pngs["confusion"],
            "confusion matrix",
            "Rows: the true class; columns: the "
            "predicted class (numbers as in the row labels). Each cell counts test images; "
            "its colour is its share of the row.",
        )
    )


def _journey_section(run: Run, pngs: Mapping[str, bytes]) -> str:
    if "journey" not in pngs:
        return (
            f'<p class="note">{_e(run.model.name)} has no convolution or pooling layer: there '
            "is no journey of maps and no learned filters to show.</p>"
        )
    return _img(
        pngs["journey"],
        "journey grid",
        "One filter's output after every convolution and "
        "pooling layer, for test images of one class (one per row), as in the lesson. "
        "Bright is a strong response, black zero. Each layer numbers its own filters: the "
        "same number in a later layer is a different filter, fed by all the earlier maps.",
    ) + _img(
        pngs["feature_maps"],
        "feature maps",
        "Every map of the first convolution "
        "for the first image above: each filter responds to a different edge or region.",
    )


def _filters_section(pngs: Mapping[str, bytes]) -> str:
    if "filters" not in pngs:
        return '<p class="note">No convolution layer: no filters to show.</p>'
    return _img(
        pngs["filters"],
        "learned filters",
        "The first convolution's kernels as "
        "learned: each is slid over the image and its weighted sum (plus a bias, then "
        "the activation) gives one map above.",
    )


def _mistakes_section(run: Run, pngs: Mapping[str, bytes]) -> str:
    if "misclassified" not in pngs:
        return '<p class="note">The model got every test image right: no mistakes to show.</p>'
    gallery = _img(
        pngs["misclassified"],
        "misclassified test images",
        "Test images the model "
        "got wrong, the surest mistakes first: the true class and what the model said.",
    )
    if "mistakes_why" not in pngs:
        return gallery
    chosen = read_cached(run.path)  # measured while the figure was drawn
    why = "" if chosen is None else f" {chosen.why}"
    return gallery + _img(
        pngs["mistakes_why"],
        "why the mistakes",
        "The surest mistakes again, each with two maps of the run's default method over it: "
        "the pixels that raised the score of the class the model said, and those that raised "
        f"the score of the true class. Where the two differ is what misled it.{why}",
    )


def _compare_section(runs: Sequence[Run], png: bytes | None) -> str:
    rows = []
    for run in runs:
        m = run.metrics
        rows.append(
            [
                (run_name(run.path), ""),
                (run.model.name, ""),
                (_percent(m.get("test_accuracy")), "num"),
                (f"{run.model.total_params:,}", "num"),
                (str(m.get("epochs", "n/a")), "num"),
                (_seconds(m.get("seconds")), "num"),
                (_seconds(m.get("seconds_per_epoch")), "num"),
            ]
        )
    head = ["run", "model", "test accuracy", "parameters", "epochs", "training time", "per epoch"]
    figure = "" if png is None else _img(png, "comparison", "Test accuracy after each epoch.")
    return (
        "<p>Side by side, from each run's metrics.json (the lesson's comparison: a dense "
        "baseline against the CNN).</p>" + _table(head, rows) + figure
    )


def report_html(
    run: Run, evaluation: Evaluation, pngs: Mapping[str, bytes], others: Sequence[Run] = ()
) -> str:
    """The report page as one HTML string: every figure embedded, nothing external."""
    m = run.metrics
    dataset = m.get("dataset", "its dataset")
    sections = {
        "compare": _compare_section([run, *others], pngs.get("comparison")) if others else "",
        "model": _model_section(run),
        "training": _training_section(run, pngs),
        "results": _results_section(run, evaluation, pngs),
        "journey": _journey_section(run, pngs),
        "filters": _filters_section(pngs),
        "mistakes": _mistakes_section(run, pngs),
    }
    nav = " ".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS if sections[key])
    body = "".join(
        f'<section id="{key}"><h2>{_e(title)}</h2>{sections[key]}</section>'
        for key, title in SECTIONS
        if sections[key]
    )
    title = f"convlens report: {run_name(run.path)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="lead">{_e(run.model.name)} {_verb(run)} {_e(dataset)}; '
        f"{len(evaluation.predictions):,} test images.</p>"
        f"{_cards(run, evaluation)}<nav>{nav}</nav>{body}"
        f"<footer>Written by convlens {_e(__version__)} on {_e(time.strftime('%Y-%m-%d %H:%M'))}"
        f" from the run directory {_e(run_name(run.path))}. Training config: "
        f"<code>{_e(json.dumps(m.get('config', {}), sort_keys=True))}</code></footer>"
        "</body></html>\n"
    )


# ---------------------------------------------------------------- putting it together


def render_report(
    run: Run,
    test: Split,
    evaluation: Evaluation | None = None,
    options: ReportOptions | None = None,
    others: Sequence[Run] = (),
) -> Report:
    """Draw every figure of ``run`` and build the page; ``others`` are runs to compare with.

    ``evaluation`` (the run's result on ``test``) is computed when not given.
    """
    options = options or ReportOptions()
    if evaluation is None:
        evaluation = evaluate(run.network, test, run.model.input_shape, run.model.num_classes)
    plans = figure_plans(run, test, evaluation, options)
    if others:
        histories = {run_name(r.path): read_history(r.path) for r in [run, *others]}
        plans["comparison"] = lambda: partial(plots.comparison_figure, histories)
    pngs = built_figures_png(plans)
    return Report(report_html(run, evaluation, pngs, others), pngs)


def write_report(
    run: Run,
    test: Split,
    out: str | Path | None = None,
    evaluation: Evaluation | None = None,
    options: ReportOptions | None = None,
    others: Sequence[Run] = (),
    figures_dir: str | Path | None = None,
) -> Path:
    """Write the report (default: <run>/report.html) and, if asked, its figures as PNG files.

    Each file is written atomically. Returns the report's path.
    """
    report = render_report(run, test, evaluation, options, others)
    path = Path(out) if out is not None else run.path / REPORT_FILE
    try:
        if figures_dir is not None:
            folder = Path(figures_dir)
            folder.mkdir(parents=True, exist_ok=True)
            for name, png in report.figures.items():
                atomic_write_bytes(folder / f"{name}.png", png)
        atomic_write_text(path, report.html)
    except OSError as exc:
        raise ConvlensError(
            f"could not write the report {path} ({exc.strerror or exc}); choose a writable --out."
        ) from None
    return path


def write_run_report(
    directory: str | Path,
    test: Split,
    evaluation: Evaluation | None = None,
    options: ReportOptions | None = None,
) -> Path:
    """Write <directory>/report.html and <directory>/figures/*.png for the run in ``directory``.

    What ``convlens train`` calls before publishing a run (``evaluation`` is
    then the one training just made). Returns the report's path.
    """
    run = load_run(directory)
    return write_report(
        run, test, evaluation=evaluation, options=options, figures_dir=run.path / FIGURES_DIR
    )
