"""The summary table as HTML, for notebooks: Keras's columns plus the why of each number.

What ``format_summary`` prints as text (model/sequential.py), as a table a
notebook shows when a Sequential is the value of a cell: Layer (type),
Output Shape, Param #, and Why, which says where the shape and the count
come from and which input pixels one output pixel sees.
"""

from __future__ import annotations

from typing import Any

from convlens import shown


def _why(shape_why: str, params_why: str, sees: str | None) -> str:
    lines = [("shape", shape_why), ("params", params_why)] + ([("sees", sees)] if sees else [])
    text = "<br>".join(
        f'<span style="{shown.MUTED}">{label}</span> {shown.escape(text)}' for label, text in lines
    )
    return f'<div style="min-width: 320px">{text}</div>'


def summary_html(model: Any, explain: bool = True) -> str:
    """The summary table of a Sequential ``model`` as an HTML block (escaped, inline styles)."""
    fields = model.receptive_fields()
    rows = []
    for row in model.rows:
        name = (
            f'{shown.escape(row.name)} <span style="{shown.MUTED}">({row.layer.keras_type})</span>'
        )
        cells = [
            name,
            f'<span style="{shown.MONO}; white-space: nowrap">{row.keras_shape}</span>',
            f'<span style="{shown.MONO}; white-space: nowrap">{row.params:,}</span>',
        ]
        if explain:
            field = fields[row.name]
            cells.append(_why(row.shape_why, row.params_why, field.why if field else None))
        rows.append(cells)
    head = ["Layer (type)", "Output Shape", "Param #", *(["Why"] if explain else [])]
    frozen = model.total_params - model.trainable_params
    totals = (
        f"Total params: {model.total_params:,} ({model.total_params * 4 / 1024:,.2f} KB) · "
        f"Trainable params: {model.trainable_params:,} · Non-trainable params: {frozen:,}"
    )
    notes = [f"input {model.input_shape}"]
    if model.test_time_flip:
        notes.append("predicts from each image and its mirror (mean of the two logits)")
    return shown.block(
        f'Model: "{model.name}"',
        shown.paragraph(" · ".join(notes), muted=True),
        shown.table(head, rows),
        shown.paragraph(totals),
    )
