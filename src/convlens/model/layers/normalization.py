"""BatchNormalization: each channel normalised, then scaled and shifted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import Layer, Shape, dims, fmt, register


@register
@dataclass(frozen=True)
class BatchNormalization(Layer):
    """Normalises each channel by batch statistics, then scales (gamma) and shifts (beta)."""

    keras_type: ClassVar[str] = "BatchNormalization"
    receptive: ClassVar[str] = "pixelwise"
    journey: ClassVar[str] = "none"
    ending: ClassVar[str] = "passes"
    keras_weights: ClassVar[tuple[str, ...]] = ("gamma", "beta", "moving_mean", "moving_variance")
    onnx_ops: ClassVar[tuple[str, ...]] = ("BatchNormalization",)

    momentum: float = 0.99
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.momentum < 1 or self.epsilon <= 0:
            raise ConvlensError(
                "BatchNormalization needs 0 <= momentum < 1 and epsilon > 0; "
                f"got momentum={self.momentum!r}, epsilon={self.epsilon!r}."
            )

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def param_count(self, input_shape: Shape) -> int:
        return 4 * input_shape[-1]

    def trainable_count(self, input_shape: Shape) -> int:
        return 2 * input_shape[-1]

    def explain_shape(self, input_shape: Shape) -> str:
        return f"unchanged ({dims(input_shape)}): each channel normalised"

    def explain_params(self, input_shape: Shape) -> str:
        depth = input_shape[-1]
        return (
            f"{fmt(4 * depth)} = 4 x {depth}: gamma and beta are trained, "
            f"the moving mean and variance are not"
        )

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """BatchNormalization over the channels, with the file's epsilon and momentum."""
        name = kc.layer_name(config)
        axis = kc.one_axis(config)
        if axis not in (-1, 3, 1):  # 1 is the last axis of a flat (N, units) input
            raise kc.refuse(name, f"normalises axis {axis!r}", "normalise the last axis")
        if not (config.get("center", True) and config.get("scale", True)):
            raise kc.refuse(name, "has center or scale turned off", "keep both on")
        if config.get("renorm") or config.get("virtual_batch_size") or config.get("synchronized"):
            raise kc.refuse(name, "uses batch renormalisation or virtual batches")
        return cls(
            momentum=float(config.get("momentum", 0.99)),
            epsilon=float(config.get("epsilon", 1e-3)),
            name=name,
        )

    def keras_config(self) -> dict[str, Any]:
        return {
            "axis": -1,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": True,
            "scale": True,
        }

    def keras_weight_shapes(self, input_shape: Shape) -> list[Shape]:
        return [(input_shape[-1],)] * 4  # gamma, beta, moving_mean, moving_variance

    def torch_from_keras(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        gamma, beta, mean, variance = arrays
        return {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": variance}

    def keras_from_torch(self, state: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [state["weight"], state["bias"], state["running_mean"], state["running_var"]]
