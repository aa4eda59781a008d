"""Conv2D: ``filters`` kernels of ``kernel_size`` slid over the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import (
    EditorField,
    Layer,
    Shape,
    Window,
    check_activation,
    check_padding,
    check_pair,
    dims,
    fmt,
    register,
    same_padding,
    size_formula,
    window_formula,
    window_output,
)


def _neighbours(count: int) -> str:
    return "a neighbour" if count == 1 else f"{count} neighbours"


@register
@dataclass(frozen=True)
class Conv2D(Layer):
    """A 2-D convolution: ``filters`` kernels of ``kernel_size`` slid over the input."""

    keras_type: ClassVar[str] = "Conv2D"
    keras_aliases: ClassVar[tuple[str, ...]] = ("Convolution2D",)
    receptive: ClassVar[str] = "window"
    journey: ClassVar[str] = "stage"
    ending: ClassVar[str] = "no"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (
        EditorField("filters", "int"),
        EditorField("kernel_size", "pair"),
        EditorField("strides", "pair"),
        EditorField("padding", "padding"),
        EditorField("activation", "activation"),
    )
    editor_default: ClassVar[dict[str, Any]] = {
        "filters": 64,
        "kernel_size": [3, 3],
        "activation": "relu",
    }
    keras_weights: ClassVar[tuple[str, ...]] = ("kernel", "bias")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Conv",)

    filters: int = 32
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    activation: str = "linear"
    use_bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.filters, int) or isinstance(self.filters, bool) or self.filters < 1:
            raise ConvlensError(f"Conv2D filters must be a positive integer, not {self.filters!r}.")
        object.__setattr__(self, "kernel_size", check_pair(self.kernel_size, "Conv2D kernel_size"))
        object.__setattr__(self, "strides", check_pair(self.strides, "Conv2D strides"))
        object.__setattr__(self, "padding", check_padding(self.padding))
        object.__setattr__(self, "activation", check_activation(self.activation))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, _ = self.require_volume(input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "valid" and (kh > height or kw > width):
            raise ConvlensError(
                f"{self.label()} has a {kh}x{kw} kernel but its input is only "
                f"{dims(input_shape)}; use a kernel of at most {height}x{width}, "
                f"padding='same', or remove a pooling layer before it."
            )
        out_h = window_output(height, kh, sh, self.padding)
        out_w = window_output(width, kw, sw, self.padding)
        return (out_h, out_w, self.filters)

    def param_count(self, input_shape: Shape) -> int:
        kh, kw = self.kernel_size
        return self.filters * kh * kw * input_shape[-1] + (self.filters if self.use_bias else 0)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self.require_volume(input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        rows = window_formula(height, kh, sh, self.padding, pooling=False)
        cols = window_formula(width, kw, sw, self.padding, pooling=False)
        size = size_formula(self.output_shape(input_shape), rows, cols)
        if self.padding == "valid" and self.strides == (1, 1) and kh == kw and kh > 1:
            why = f"the {kh}x{kw} filter needs {_neighbours(kh // 2)} on every side"
        elif self.padding == "same":
            why = "'same' pads the border with zeros so the filter fits everywhere"
        else:
            why = f"the {kh}x{kw} filter steps {sh}x{sw} pixels at a time"
        return f"{size} ({why}); depth {self.filters} = one map per filter"

    def explain_params(self, input_shape: Shape) -> str:
        kh, kw = self.kernel_size
        depth = input_shape[-1]
        total = fmt(self.param_count(input_shape))
        if not self.use_bias:
            return f"{total} = {self.filters} x ({kh} x {kw} x {depth}): weights, no bias"
        return (
            f"{total} = {self.filters} x ({kh} x {kw} x {depth}) + {self.filters}: "
            f"each filter has {kh}x{kw}x{depth} weights and one bias"
        )

    def describe(self) -> str:
        kh, kw = self.kernel_size
        extras = [f"{kh}x{kw}"]
        if self.strides != (1, 1):
            extras.append(f"stride {self.strides[0]}x{self.strides[1]}")
        if self.padding != "valid":
            extras.append(self.padding)
        if self.activation != "linear":
            extras.append(self.activation)
        return f"Conv2D({self.filters}, {', '.join(extras)})"

    def field_window(self, input_shape: Shape) -> Window | None:
        pads = (0, 0)
        if self.padding == "same":
            (kh, kw), (sh, sw) = self.kernel_size, self.strides
            pads = (same_padding(input_shape[0], kh, sh)[0], same_padding(input_shape[1], kw, sw)[0])
        return self.kernel_size, self.strides, pads

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Conv2D: filters, kernel_size, strides, padding, activation, use_bias."""
        kc.channels_last(config)
        kc.require(config, "dilation_rate", ((1, 1), 1), (1, 1))
        kc.require(config, "groups", (1,), 1)
        name = kc.layer_name(config)
        return cls(
            config.get("filters"),
            config.get("kernel_size"),
            strides=config.get("strides", (1, 1)),
            padding=str(config.get("padding", "valid")).lower(),
            activation=kc.activation_name(config.get("activation"), name, keras2),
            use_bias=bool(config.get("use_bias", True)),
            name=name,
        )

    def keras_config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": [1, 1],
            "groups": 1,
            "activation": self.activation,
            "use_bias": self.use_bias,
        }

    def keras_weight_shapes(self, input_shape: Shape) -> list[Shape]:
        kh, kw = self.kernel_size
        shapes: list[Shape] = [(kh, kw, input_shape[-1], self.filters)]
        return shapes + ([(self.filters,)] if self.use_bias else [])

    def torch_from_keras(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        state = {"weight": arrays[0].transpose(3, 2, 0, 1)}  # (kh, kw, in, out) -> (out, in, kh, kw)
        return state | ({"bias": arrays[1]} if len(arrays) > 1 else {})

    def keras_from_torch(self, state: dict[str, np.ndarray]) -> list[np.ndarray]:
        arrays = [state["weight"].transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
        return arrays + ([state["bias"]] if self.use_bias else [])
