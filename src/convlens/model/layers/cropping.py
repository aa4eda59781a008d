"""Cropping2D: rows and columns cut from the edges of an image volume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from convlens.errors import ConvlensError
from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import (
    EditorField,
    Layer,
    Shape,
    dims,
    edge_pairs,
    register,
    size_formula,
)


@register
@dataclass(frozen=True)
class Cropping2D(Layer):
    """Cuts rows and columns off the edges of an image volume: ((top, bottom), (left, right))."""

    keras_type: ClassVar[str] = "Cropping2D"
    receptive: ClassVar[str] = "shift"
    journey: ClassVar[str] = "after_conv"
    ending: ClassVar[str] = "no"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (EditorField("cropping", "pairs"),)
    editor_default: ClassVar[dict[str, Any]] = {"cropping": [[1, 1], [1, 1]]}
    onnx_ops: ClassVar[tuple[str, ...]] = ("Slice",)

    cropping: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "cropping", edge_pairs(self.cropping, "Cropping2D cropping"))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, depth = self.require_volume(input_shape)
        (top, bottom), (left, right) = self.cropping
        rows, cols = height - top - bottom, width - left - right
        if rows < 1 or cols < 1:
            raise ConvlensError(
                f"{self.label()} cuts {top + bottom} rows and {left + right} columns from a "
                f"{dims(input_shape)} input, which leaves nothing; crop less."
            )
        return (rows, cols, depth)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self.require_volume(input_shape)
        (top, bottom), (left, right) = self.cropping
        out = self.output_shape(input_shape)
        rows, cols = f"{height} - {top} - {bottom}", f"{width} - {left} - {right}"
        return f"{size_formula(out, rows, cols)} (edges cut off); depth unchanged"

    def describe(self) -> str:
        (top, bottom), (left, right) = self.cropping
        return f"Cropping2D(({top}, {bottom}), ({left}, {right}))"

    def field_shift(self) -> tuple[int, int]:
        (top, _), (left, _) = self.cropping
        return (-top, -left)  # output pixel 0 is input pixel (top, left)

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Cropping2D: ((top, bottom), (left, right))."""
        kc.channels_last(config)
        return cls(config.get("cropping", ((0, 0), (0, 0))), name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"cropping": [list(p) for p in self.cropping], "data_format": "channels_last"}
