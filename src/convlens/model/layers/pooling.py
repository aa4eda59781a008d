"""Pooling: MaxPooling2D and AveragePooling2D over windows, and global pooling over whole maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from convlens.errors import ConvlensError
from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import (
    EditorField,
    Layer,
    Shape,
    Window,
    check_padding,
    check_pair,
    dims,
    register,
    same_padding,
    size_formula,
    window_formula,
    window_output,
)


@dataclass(frozen=True)
class _Pooling2D(Layer):
    """Shared arithmetic of max and average pooling."""

    receptive: ClassVar[str] = "window"
    journey: ClassVar[str] = "stage"
    ending: ClassVar[str] = "no"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (
        EditorField("pool_size", "pair"),
        EditorField("strides", "pair?"),
        EditorField("padding", "padding"),
    )
    editor_default: ClassVar[dict[str, Any]] = {"pool_size": [2, 2]}
    verb: ClassVar[str] = "pools"

    pool_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] | None = None
    padding: str = "valid"

    def __post_init__(self) -> None:
        super().__post_init__()
        kind = self.keras_type
        object.__setattr__(self, "pool_size", check_pair(self.pool_size, f"{kind} pool_size"))
        strides = self.pool_size if self.strides is None else self.strides
        object.__setattr__(self, "strides", check_pair(strides, f"{kind} strides"))
        object.__setattr__(self, "padding", check_padding(self.padding))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, depth = self.require_volume(input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides  # type: ignore[misc]
        out_h = window_output(height, ph, sh, self.padding)
        out_w = window_output(width, pw, sw, self.padding)
        if out_h < 1 or out_w < 1:
            raise ConvlensError(
                f"{self.label()} with a {ph}x{pw} window leaves nothing of its "
                f"{dims(input_shape)} input; use a window of at most {height}x{width} "
                f"or padding='same'."
            )
        return (out_h, out_w, depth)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self.require_volume(input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides  # type: ignore[misc]
        rows = window_formula(height, ph, sh, self.padding, pooling=True)
        cols = window_formula(width, pw, sw, self.padding, pooling=True)
        size = size_formula(self.output_shape(input_shape), rows, cols)
        dropped = self.padding == "valid" and ((height - ph) % sh or (width - pw) % sw)
        note = "; the odd last row/column is dropped" if dropped else ""
        return f"{size} ({self.verb} each {ph}x{pw} block{note}); depth unchanged"

    def explain_params(self, input_shape: Shape) -> str:
        return "0: pooling has nothing to learn"

    def describe(self) -> str:
        ph, pw = self.pool_size
        return f"{self.keras_type}({ph}x{pw})"

    def field_window(self, input_shape: Shape) -> Window | None:
        (ph, pw), (sh, sw) = self.pool_size, self.strides  # type: ignore[misc]
        pads = (0, 0)
        if self.padding == "same":
            pads = (same_padding(input_shape[0], ph, sh)[0], same_padding(input_shape[1], pw, sw)[0])
        return self.pool_size, self.strides, pads  # type: ignore[return-value]

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """pool_size, strides, padding."""
        kc.channels_last(config)
        return cls(
            config.get("pool_size", (2, 2)),
            strides=config.get("strides"),
            padding=str(config.get("padding", "valid")).lower(),
            name=kc.layer_name(config),
        )

    def keras_config(self) -> dict[str, Any]:
        return {
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),  # type: ignore[arg-type]
            "padding": self.padding,
            "data_format": "channels_last",
        }


@register
@dataclass(frozen=True)
class MaxPooling2D(_Pooling2D):
    """Max pooling: keeps the largest value of every window (2x2 quarters the image)."""

    keras_type: ClassVar[str] = "MaxPooling2D"
    keras_aliases: ClassVar[tuple[str, ...]] = ("MaxPool2D",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("MaxPool",)
    verb: ClassVar[str] = "keeps the largest of"


@register
@dataclass(frozen=True)
class AveragePooling2D(_Pooling2D):
    """Average pooling: keeps the mean of every window."""

    keras_type: ClassVar[str] = "AveragePooling2D"
    keras_aliases: ClassVar[tuple[str, ...]] = ("AvgPool2D",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("AveragePool",)
    verb: ClassVar[str] = "averages"


@dataclass(frozen=True)
class _GlobalPooling2D(Layer):
    """Shared arithmetic of global pooling: one number per channel."""

    receptive: ClassVar[str] = "window"  # one window over the whole map when kept as 1x1
    journey: ClassVar[str] = "none"
    ending: ClassVar[str] = "output"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (EditorField("keepdims", "bool"),)
    editor_default: ClassVar[dict[str, Any]] = {}
    verb: ClassVar[str] = "pools"

    keepdims: bool = False

    def output_shape(self, input_shape: Shape) -> Shape:
        depth = self.require_volume(input_shape)[2]
        return (1, 1, depth) if self.keepdims else (depth,)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, depth = self.require_volume(input_shape)
        kept = "1x1x" if self.keepdims else ""
        return f"{kept}{depth}: the {self.verb} of each {height}x{width} map, one per channel"

    def explain_params(self, input_shape: Shape) -> str:
        return "0: pooling has nothing to learn"

    def field_window(self, input_shape: Shape) -> Window | None:
        if not self.keepdims:
            return None  # a flat vector: every pixel, no map
        return (input_shape[0], input_shape[1]), (1, 1), (0, 0)

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """One value per channel (keepdims)."""
        kc.channels_last(config)
        return cls(keepdims=bool(config.get("keepdims", False)), name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"keepdims": self.keepdims, "data_format": "channels_last"}


@register
@dataclass(frozen=True)
class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each whole feature map."""

    keras_type: ClassVar[str] = "GlobalAveragePooling2D"
    keras_aliases: ClassVar[tuple[str, ...]] = ("GlobalAvgPool2D",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("GlobalAveragePool", "ReduceMean")
    verb: ClassVar[str] = "mean"


@register
@dataclass(frozen=True)
class GlobalMaxPooling2D(_GlobalPooling2D):
    """The largest value of each whole feature map."""

    keras_type: ClassVar[str] = "GlobalMaxPooling2D"
    keras_aliases: ClassVar[tuple[str, ...]] = ("GlobalMaxPool2D",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("GlobalMaxPool", "ReduceMax")
    verb: ClassVar[str] = "largest value"
