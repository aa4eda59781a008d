"""What a notebook shows of a run: its headline, its training curves and its confusion matrix.

The headline is read from metrics.json (model, dataset or origin, test
accuracy, epochs, training time); the pictures are the figures the run's
report wrote (figures/curves.png and figures/confusion.png), embedded as they
are, so showing a run draws nothing and never reloads its data.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from convlens import shown

FIGURES = (("curves", "training curves"), ("confusion", "confusion matrix on the test split"))


def headline(metrics: dict[str, Any], model_name: str, params: int) -> list[str]:
    """The run's facts in the order a person reads them."""
    facts = [f"model {model_name} ({params:,} parameters)"]
    origin = metrics.get("imported_from")
    if isinstance(origin, dict):
        facts.append(f"imported from {origin.get('file') or origin.get('format', 'a model')}")
    if metrics.get("dataset"):
        verb = "scored" if origin else "trained"
        facts.append(f"{verb} on {metrics['dataset']}")
    if metrics.get("epochs") is not None:
        facts.append(f"{metrics['epochs']} epoch{'' if metrics['epochs'] == 1 else 's'}")
    if isinstance(metrics.get("test_accuracy"), (int, float)):
        facts.append(f"test accuracy {metrics['test_accuracy']:.2%}")
    if isinstance(metrics.get("seconds"), (int, float)):
        facts.append(f"trained in {_duration(metrics['seconds'])}")
    return facts


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    image = (
        f'<img src="data:image/png;base64,{data}" alt="{shown.escape(caption)}" '
        f'style="max-width: 100%; width: 480px">'
    )
    return shown.figure(image, shown.escape(caption))


def run_html(path: Path, metrics: dict[str, Any], model_name: str, params: int) -> str:
    """The run's headline and figures as one HTML block."""
    figures = [
        _figure(path / "figures" / f"{stem}.png", caption)
        for stem, caption in FIGURES
        if (path / "figures" / f"{stem}.png").is_file()
    ]
    note = (
        ""
        if figures
        else shown.paragraph(
            "No report figures: the run was not scored on a dataset; convlens.evaluate(run) "
            "scores it.",
            muted=True,
        )
    )
    return shown.block(
        f"Run {path.name}",
        shown.paragraph(" · ".join(headline(metrics, model_name, params))),
        shown.paragraph(str(path), muted=True),
        "".join(figures),
        note,
    )


def _shade(share: float) -> str:
    """A cell's background: white for none of the row, deep blue for all of it."""
    light = round(255 - 180 * share)
    text = "#ffffff" if share > 0.55 else "#1f1f1f"
    return f"background: rgb({light}, {light + (255 - light) // 3}, 255); color: {text}"


def evaluation_html(accuracy: float, loss: float, confusion: Any) -> str:
    """Accuracy, loss and the confusion matrix (rows: true class, columns: predicted) as HTML."""
    rows = []
    for true, counts in enumerate(confusion):
        total = max(int(counts.sum()), 1)
        cells = [f"<b>{true}</b>"]
        for count in counts:
            style = f"{_shade(int(count) / total)}; padding: 1px 6px; text-align: right"
            cells.append(f'<span style="{style}; display: block">{int(count)}</span>')
        rows.append(cells)
    head = ["true \\ predicted", *(str(i) for i in range(len(confusion)))]
    return shown.block(
        f"Evaluation: accuracy {accuracy:.2%}, loss {loss:.4f}",
        shown.paragraph(
            f"{int(confusion.sum()):,} test images; rows: true class, columns: predicted class",
            muted=True,
        ),
        shown.table(head, rows),
    )
