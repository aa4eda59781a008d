"""Flatten, Dense and Dropout: the lesson's classifier on top of the convolutions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import (
    EditorField,
    Layer,
    Shape,
    check_activation,
    dims,
    fmt,
    register,
)


@register
@dataclass(frozen=True)
class Flatten(Layer):
    """Lays a volume out as one vector, in Keras's (row, column, channel) order."""

    keras_type: ClassVar[str] = "Flatten"
    receptive: ClassVar[str] = "flat"
    journey: ClassVar[str] = "none"
    ending: ClassVar[str] = "passes"
    onnx_ops: ClassVar[tuple[str, ...]] = ("Flatten", "Reshape", "Transpose")

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def explain_shape(self, input_shape: Shape) -> str:
        product = " x ".join(str(n) for n in input_shape)
        return f"{fmt(math.prod(input_shape))} = {product}: every value in one row"

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Flatten: Keras's (row, column, channel) order, as convlens's."""
        kc.channels_last(config)
        return cls(name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"data_format": "channels_last"}


@register
@dataclass(frozen=True)
class Dense(Layer):
    """A fully connected layer: every input joined to each of ``units`` outputs."""

    keras_type: ClassVar[str] = "Dense"
    receptive: ClassVar[str] = "flat"
    journey: ClassVar[str] = "none"
    ending: ClassVar[str] = "output"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (
        EditorField("units", "int"),
        EditorField("activation", "activation"),
    )
    editor_default: ClassVar[dict[str, Any]] = {"units": 128, "activation": "relu"}
    keras_weights: ClassVar[tuple[str, ...]] = ("kernel", "bias")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Gemm", "MatMul", "Add")

    units: int = 10
    activation: str = "linear"
    use_bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.units, int) or isinstance(self.units, bool) or self.units < 1:
            raise ConvlensError(f"Dense units must be a positive integer, not {self.units!r}.")
        object.__setattr__(self, "activation", check_activation(self.activation))

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ConvlensError(
                f"{self.label()} needs a flat vector but its input is {dims(input_shape)}; "
                f"add Flatten() before it."
            )
        return (self.units,)

    def param_count(self, input_shape: Shape) -> int:
        return input_shape[0] * self.units + (self.units if self.use_bias else 0)

    def explain_shape(self, input_shape: Shape) -> str:
        return f"{self.units} units"

    def explain_params(self, input_shape: Shape) -> str:
        total = fmt(self.param_count(input_shape))
        if not self.use_bias:
            return f"{total} = {fmt(input_shape[0])} x {self.units}: one weight per connection"
        return (
            f"{total} = {fmt(input_shape[0])} x {self.units} + {self.units}: "
            f"a weight from every input to every unit, plus one bias per unit"
        )

    def describe(self) -> str:
        act = "" if self.activation == "linear" else f", {self.activation}"
        return f"Dense({self.units}{act})"

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Dense: units, activation, use_bias."""
        name = kc.layer_name(config)
        return cls(
            config.get("units"),
            activation=kc.activation_name(config.get("activation"), name, keras2),
            use_bias=bool(config.get("use_bias", True)),
            name=name,
        )

    def keras_config(self) -> dict[str, Any]:
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias}

    def keras_weight_shapes(self, input_shape: Shape) -> list[Shape]:
        shapes: list[Shape] = [(input_shape[0], self.units)]
        return shapes + ([(self.units,)] if self.use_bias else [])

    def torch_from_keras(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        state = {"weight": arrays[0].T}  # (in, out) -> (out, in)
        return state | ({"bias": arrays[1]} if len(arrays) > 1 else {})

    def keras_from_torch(self, state: dict[str, np.ndarray]) -> list[np.ndarray]:
        arrays = [state["weight"].T]  # (out, in) -> (in, out)
        return arrays + ([state["bias"]] if self.use_bias else [])


@register
@dataclass(frozen=True)
class Dropout(Layer):
    """Zeroes a random fraction ``rate`` of its inputs while training; identity otherwise."""

    keras_type: ClassVar[str] = "Dropout"
    keras_aliases: ClassVar[tuple[str, ...]] = ("SpatialDropout2D",)
    receptive: ClassVar[str] = "pixelwise"
    journey: ClassVar[str] = "none"
    ending: ClassVar[str] = "passes"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (EditorField("rate", "float"),)
    editor_default: ClassVar[dict[str, Any]] = {"rate": 0.3}
    onnx_ops: ClassVar[tuple[str, ...]] = ("Dropout", "Identity")  # nothing when predicting

    rate: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.rate, (int, float)) or not 0 <= self.rate < 1:
            raise ConvlensError(f"Dropout rate must be in [0, 1), not {self.rate!r}.")

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def explain_shape(self, input_shape: Shape) -> str:
        return f"unchanged ({dims(input_shape)}): dropout only zeroes {self.rate:.0%} in training"

    def describe(self) -> str:
        return f"Dropout({self.rate:g})"

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Dropout and SpatialDropout2D: rate (nothing when predicting)."""
        return cls(float(config.get("rate", 0.5)), name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"rate": self.rate}
