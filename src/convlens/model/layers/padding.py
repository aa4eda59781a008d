"""ZeroPadding2D: rows and columns of zeros around an image volume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import (
    EditorField,
    Layer,
    Shape,
    edge_pairs,
    register,
    size_formula,
)


@register
@dataclass(frozen=True)
class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around an image volume: ((top, bottom), (left, right))."""

    keras_type: ClassVar[str] = "ZeroPadding2D"
    receptive: ClassVar[str] = "shift"
    journey: ClassVar[str] = "after_conv"
    ending: ClassVar[str] = "no"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (EditorField("padding", "pairs"),)
    editor_default: ClassVar[dict[str, Any]] = {"padding": [[1, 1], [1, 1]]}
    onnx_ops: ClassVar[tuple[str, ...]] = ("Pad",)

    padding: tuple[tuple[int, int], tuple[int, int]] = ((1, 1), (1, 1))

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "padding", edge_pairs(self.padding, "ZeroPadding2D padding"))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, depth = self.require_volume(input_shape)
        (top, bottom), (left, right) = self.padding
        return (height + top + bottom, width + left + right, depth)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self.require_volume(input_shape)
        (top, bottom), (left, right) = self.padding
        out = self.output_shape(input_shape)
        rows, cols = f"{height} + {top} + {bottom}", f"{width} + {left} + {right}"
        return f"{size_formula(out, rows, cols)} (zeros added around the border); depth unchanged"

    def describe(self) -> str:
        (top, bottom), (left, right) = self.padding
        return f"ZeroPadding2D(({top}, {bottom}), ({left}, {right}))"

    def field_shift(self) -> tuple[int, int]:
        (top, _), (left, _) = self.padding
        return (top, left)

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """ZeroPadding2D: ((top, bottom), (left, right))."""
        kc.channels_last(config)
        return cls(config.get("padding", (1, 1)), name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"padding": [list(p) for p in self.padding], "data_format": "channels_last"}
