"""Layers that map every value on its own: Rescaling, Activation, ReLU, Softmax."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from convlens.errors import ConvlensError
from convlens.model.layers import keras_config as kc
from convlens.model.layers.base import (
    EditorField,
    Layer,
    SameShapeLayer,
    check_activation,
    finite_number,
    register,
)


@register
@dataclass(frozen=True)
class Rescaling(SameShapeLayer):
    """Multiplies every value by ``scale`` and adds ``offset`` (Keras's Rescaling(1./255))."""

    keras_type: ClassVar[str] = "Rescaling"
    journey: ClassVar[str] = "none"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (
        EditorField("scale", "float"),
        EditorField("offset", "float"),
    )
    editor_default: ClassVar[dict[str, Any]] = {"scale": 1.0, "offset": 0.0}
    onnx_ops: ClassVar[tuple[str, ...]] = ("Mul", "Add")

    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for what, value in (("scale", self.scale), ("offset", self.offset)):
            if not finite_number(value):
                raise ConvlensError(
                    f"Rescaling {what} must be one finite number, not {value!r}; "
                    f"convlens does not take a value per channel."
                )

    def what_it_does(self) -> str:
        return f"each value x becomes x x {self.scale:.6g} + {self.offset:.6g}"

    def describe(self) -> str:
        return f"Rescaling({self.scale:.6g}, offset={self.offset:.6g})"

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Rescaling: x * scale + offset."""
        return cls(config.get("scale", 1.0), config.get("offset", 0.0), name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset}


@register
@dataclass(frozen=True)
class Activation(SameShapeLayer):
    """Applies an activation function to every value, as a layer of its own."""

    keras_type: ClassVar[str] = "Activation"
    keras_aliases: ClassVar[tuple[str, ...]] = ("ELU",)
    journey: ClassVar[str] = "after_conv"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (EditorField("activation", "activation"),)
    editor_default: ClassVar[dict[str, Any]] = {"activation": "relu"}
    onnx_ops: ClassVar[tuple[str, ...]] = ("Relu", "Tanh", "Sigmoid", "Elu")

    activation: str = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "activation", check_activation(self.activation))

    def what_it_does(self) -> str:
        if self.activation in ("softmax", "log_softmax"):
            return f"{self.activation} over the last axis"
        return f"{self.activation} applied to every value"

    def describe(self) -> str:
        return f"Activation({self.activation})"

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Activation: one function applied to every value; the ELU layer with alpha 1."""
        name = kc.layer_name(config)
        if class_name == "ELU":
            if config.get("alpha", 1.0) != 1.0:
                raise kc.refuse(name, "is an ELU with alpha other than 1", "use alpha=1")
            return cls("elu", name=name)
        return cls(kc.activation_name(config.get("activation"), name, keras2), name=name)

    def keras_config(self) -> dict[str, Any]:
        return {"activation": self.activation}


@register
@dataclass(frozen=True)
class ReLU(SameShapeLayer):
    """Keras's ReLU layer: max(x, 0), optionally capped, leaky or thresholded."""

    keras_type: ClassVar[str] = "ReLU"
    keras_aliases: ClassVar[tuple[str, ...]] = ("LeakyReLU",)
    journey: ClassVar[str] = "after_conv"
    editor_fields: ClassVar[tuple[EditorField, ...]] = (
        EditorField("max_value", "float?"),
        EditorField("negative_slope", "float"),
        EditorField("threshold", "float"),
    )
    editor_default: ClassVar[dict[str, Any]] = {}
    onnx_ops: ClassVar[tuple[str, ...]] = ("Relu",)  # with its default arguments

    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = self.max_value is None or (finite_number(self.max_value) and self.max_value >= 0)
        ok = ok and finite_number(self.negative_slope) and self.negative_slope >= 0
        if not (ok and finite_number(self.threshold) and self.threshold >= 0):
            raise ConvlensError(
                "ReLU needs max_value >= 0 (or none), negative_slope >= 0 and threshold >= 0, "
                f"as Keras does; got {self.max_value!r}, {self.negative_slope!r}, {self.threshold!r}."
            )

    def what_it_does(self) -> str:
        phrase = (
            "negative values become 0"
            if self.negative_slope == 0
            else (f"values below the threshold are multiplied by {self.negative_slope:g}")
        )
        if self.max_value is not None:
            phrase += f", values above {self.max_value:g} become {self.max_value:g}"
        return phrase

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """ReLU: max_value, negative_slope, threshold; LeakyReLU (Keras 3 negative_slope,
        Keras 2 alpha; 0.3 by default): a ReLU with a slope."""
        name = kc.layer_name(config)
        if class_name == "LeakyReLU":
            return cls(negative_slope=config.get("negative_slope", config.get("alpha", 0.3)), name=name)
        return cls(
            max_value=config.get("max_value"),
            negative_slope=config.get("negative_slope", 0.0),
            threshold=config.get("threshold", 0.0),
            name=name,
        )

    def keras_config(self) -> dict[str, Any]:
        return {
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


@register
@dataclass(frozen=True)
class Softmax(SameShapeLayer):
    """Softmax over the last axis: the values of each position become probabilities."""

    keras_type: ClassVar[str] = "Softmax"
    journey: ClassVar[str] = "none"
    onnx_ops: ClassVar[tuple[str, ...]] = ("Softmax",)

    axis: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.axis != -1:
            raise ConvlensError(
                f"Softmax over axis {self.axis!r} is not supported; convlens takes axis=-1 only."
            )

    def what_it_does(self) -> str:
        return "softmax over the last axis (the values sum to 1)"

    def output_activation(self) -> str:
        return "softmax"

    @classmethod
    def from_keras(cls, class_name: str, config: kc.Config, keras2: bool) -> Layer:
        """Softmax over the last axis."""
        axis = kc.one_axis(config)
        if axis != -1:
            raise kc.refuse(kc.layer_name(config), f"takes the softmax over axis {axis!r}", "use axis=-1")
        return cls(name=kc.layer_name(config))

    def keras_config(self) -> dict[str, Any]:
        return {"axis": -1}
