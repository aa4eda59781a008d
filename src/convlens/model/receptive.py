"""Receptive fields: which input pixels each output pixel of a layer can see.

Along each axis, a layer with a window of k pixels, stride s and "before"
padding p turns the previous layer's field r, jump j (input pixels between
neighbouring outputs) and start a (the input row of output 0's first pixel;
negative when padding reaches outside) into

    r' = r + (k - 1) x j     j' = j x s     a' = a - p x j

starting from the input itself (r = 1, j = 1, a = 0). Convolutions and
pooling have windows; batch normalisation, dropout and activation layers act
pixel by pixel and keep the field; ZeroPadding2D shifts it; global pooling
with keepdims is one window over the whole map; Flatten and Dense see everything and have none. Output pixel
i of a layer sees input rows a + i x j .. a + i x j + r - 1 (those inside the
image). No torch: the summary needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convlens.errors import ConvlensError
from convlens.model.layers import RECEPTIVE_RULES, Layer, Shape

Pair = tuple[int, int]


@dataclass(frozen=True)
class ReceptiveField:
    """One layer's receptive field on the input, per axis (rows, columns)."""

    size: Pair  # input pixels one output pixel sees: 8x8 for the lesson's conv2d_1
    jump: Pair  # input pixels between neighbouring output pixels
    start: Pair  # input row/column where output pixel 0's field begins (< 0: padding)
    why: str  # the formula, as the summary prints it

    def window(self, row: int, col: int, input_shape: Shape) -> tuple[int, int, int, int]:
        """Output pixel (row, col)'s field, cut to the image: (top, left, bottom, right), ends excluded."""
        top, left = self.start[0] + row * self.jump[0], self.start[1] + col * self.jump[1]
        bottom, right = top + self.size[0], left + self.size[1]
        return max(top, 0), max(left, 0), min(bottom, input_shape[0]), min(right, input_shape[1])

    def centre(self, index: int, axis: int) -> float:
        """The input coordinate of output pixel ``index``'s field centre along ``axis`` (0 rows)."""
        return self.start[axis] + index * self.jump[axis] + (self.size[axis] - 1) / 2


INPUT_FIELD = ReceptiveField((1, 1), (1, 1), (0, 0), "the input: each pixel sees itself")


def _dims(pair: Pair) -> str:
    return f"{pair[0]}x{pair[1]}"


def _axis_formula(r: int, k: int, j: int) -> str:
    return f"{r} + ({k} - 1) x {j}"


def next_field(previous: ReceptiveField, layer: Layer, input_shape: Shape) -> ReceptiveField | None:
    """The field after ``layer`` (on ``input_shape``), given the field before it; None if flat.

    The layer type's ``receptive`` rule says how (model/layers/base.py): pixelwise keeps
    the field, shift moves it, window grows it, flat has none.
    """
    rule = layer.receptive
    if rule not in RECEPTIVE_RULES:
        raise ConvlensError(
            f"{layer.keras_type} has no receptive-field rule ({rule!r}); give its class one of "
            f"{', '.join(RECEPTIVE_RULES)}."
        )
    if rule == "flat" or len(input_shape) != 3:
        return None
    if rule == "pixelwise":
        return ReceptiveField(previous.size, previous.jump, previous.start, "as the layer before")
    if rule == "shift":
        (top, left), (j0, j1), (a0, a1) = layer.field_shift(), previous.jump, previous.start
        start = (a0 - top * j0, a1 - left * j1)
        return ReceptiveField(previous.size, previous.jump, start, "as the layer before, shifted")
    window = layer.field_window(input_shape)
    if window is None:
        return None
    return _windowed(previous, *window)


def _windowed(previous: ReceptiveField, window: Pair, strides: Pair, pads: Pair) -> ReceptiveField:
    """The field after a sliding window: r + (k - 1) x j, j x s, a - p x j on each axis."""
    (kh, kw), (sh, sw) = window, strides
    (r0, r1), (j0, j1), (a0, a1) = previous.size, previous.jump, previous.start
    size = (r0 + (kh - 1) * j0, r1 + (kw - 1) * j1)
    jump = (j0 * sh, j1 * sw)
    start = (a0 - pads[0] * j0, a1 - pads[1] * j1)
    if (r0, kh, j0) == (r1, kw, j1):
        formula = _axis_formula(r0, kh, j0)
    else:
        formula = f"rows {_axis_formula(r0, kh, j0)}, columns {_axis_formula(r1, kw, j1)}"
    why = (
        f"{_dims(size)} of the input: {formula} (field before + (window - 1) x jump before); "
        f"jump {_dims(jump)} = {_dims(previous.jump)} x stride {_dims((sh, sw))}"
    )
    return ReceptiveField(size, jump, start, why)


def receptive_fields(
    layers: Sequence[tuple[Layer, Shape]],
) -> list[ReceptiveField | None]:
    """Each layer's field, from (layer, its input shape) pairs in order; None for flat layers."""
    fields: list[ReceptiveField | None] = []
    previous: ReceptiveField | None = INPUT_FIELD
    for layer, input_shape in layers:
        previous = None if previous is None else next_field(previous, layer, input_shape)
        fields.append(previous)
    return fields
