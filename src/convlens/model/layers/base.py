"""What every layer type shares, and the registry of layer types by Keras name.

A layer type is one class, registered with ``@register`` under the name
Keras gives it (``Conv2D``, ``MaxPooling2D``, ...). The class holds
everything about the type that needs no torch and no file format:

- the spec: a frozen dataclass with Keras's argument names, checked in the
  constructor, that knows its output shape and parameter count for an input
  and one sentence explaining each by its formula;
- ``receptive``: how it changes the field one pixel sees (model/receptive.py);
- ``journey``: whether the journey of an image shows its maps (inspect/journey.py);
- ``ending``: whether a classifier may end with it (model/sequential.py);
- ``editor_fields`` and ``editor_default``: the explorer editor's controls;
- Keras: ``keras_aliases``, ``from_keras`` (a config dict to a spec),
  ``keras_config`` (the spec as Keras's config), ``keras_weights`` (the
  variables Keras stores) and the NumPy layouts between Keras and torch;
- ``onnx_ops``: the ONNX operators that read back into this type.

Its torch module is the entry of the same name in model/modules.py. A test
walks ``LAYER_TYPES`` and fails when a type lacks any of these. Looking up
a type that is not registered is one ConvlensError sentence, never a None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConvlensError

Shape = tuple[int, ...]
# Keras's activation names (keras.activations) that convlens computes exactly as Keras does.
ACTIVATIONS = (
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "elu",
    "gelu",
    "selu",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "relu6",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "leaky_relu",
    "mish",
    "exponential",
    "log_softmax",
)
PADDINGS = ("valid", "same")

# The values each facet may take (the registry test checks every type against these).
RECEPTIVE_RULES = ("window", "pixelwise", "shift", "flat")
JOURNEY_ROLES = ("stage", "after_conv", "none")
ENDINGS = ("output", "passes", "no")
EDITOR_KINDS = ("int", "float", "float?", "pair", "pair?", "pairs", "bool", "activation", "padding")


def check_pair(value: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    """Normalise Keras's int-or-pair arguments to a (rows, cols) tuple of positive ints."""
    both = (value, value) if isinstance(value, int) else tuple(value)
    if len(both) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in both):
        raise ConvlensError(f"{what} must be an integer or a pair of integers, not {value!r}.")
    if min(both) < 1:
        raise ConvlensError(f"{what} must be at least 1, not {value!r}; use a positive size.")
    return both  # type: ignore[return-value]


def edge_pairs(value: Any, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's n, (rows, cols) or ((top, bottom), (left, right)) of non-negative counts."""

    def count(n: Any) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConvlensError(f"{what} must be non-negative integers, not {value!r}.")
        return n

    if isinstance(value, int) and not isinstance(value, bool):
        n = count(value)
        return ((n, n), (n, n))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            rows, cols = count(value[0]), count(value[1])
            return ((rows, rows), (cols, cols))
        if all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
            (top, bottom), (left, right) = value
            return ((count(top), count(bottom)), (count(left), count(right)))
    raise ConvlensError(
        f"{what} must be n, (rows, cols) or ((top, bottom), (left, right)), not {value!r}."
    )


def check_activation(name: str | None) -> str:
    """A Keras activation name convlens computes ("linear" for None), or one sentence."""
    name = "linear" if name is None else name
    if name not in ACTIVATIONS:
        raise ConvlensError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}.")
    return name


def check_padding(name: str) -> str:
    """'valid' or 'same', or one sentence."""
    if name not in PADDINGS:
        raise ConvlensError(f"unknown padding {name!r}; use 'valid' or 'same'.")
    return name


def finite_number(value: Any) -> bool:
    """Whether ``value`` is one finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(n: int) -> str:
    """1600 -> '1,600'."""
    return f"{n:,}"


def dims(shape: Shape) -> str:
    """(26, 26, 64) -> '26x26x64'."""
    return "x".join(str(n) for n in shape)


def window_output(size: int, window: int, stride: int, padding: str) -> int:
    """Keras's output length of a sliding window along one axis.

    valid: floor((size - window) / stride) + 1; same: ceil(size / stride).
    """
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow "same" padding along one axis: (before, after); after gets the odd one."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def window_formula(size: int, window: int, stride: int, padding: str, pooling: bool) -> str:
    """The right-hand side of one axis's output length, as the lesson writes it: 28 - 3 + 1."""
    if padding == "same":
        return f"{size} (same)" if stride == 1 else f"ceil({size} / {stride})"
    if pooling and window == stride:
        return f"floor({size} / {stride})"
    if stride == 1:
        return f"{size} - {window} + 1"
    return f"floor(({size} - {window}) / {stride}) + 1"


def size_formula(out: Shape, rows: str, cols: str) -> str:
    """'26x26: 28 - 3 + 1', or both axes spelled out when they differ."""
    if rows == cols:
        return f"{out[0]}x{out[1]}: {rows}"
    return f"{out[0]}x{out[1]}: rows {rows}, columns {cols}"


@dataclass(frozen=True)
class EditorField:
    """One control of the explorer's model editor: the argument and the kind of value."""

    name: str
    kind: str  # one of EDITOR_KINDS

    def as_dict(self) -> dict[str, Any]:
        """JSON for the page: {"name", "kind", "choices"?}."""
        choices = {"activation": ACTIVATIONS, "padding": PADDINGS}.get(self.kind)
        return {"name": self.name, "kind": self.kind, **({"choices": list(choices)} if choices else {})}


Window = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # window, strides, pads before


@dataclass(frozen=True)
class Layer:
    """Base of all layer specs: a Keras layer's name, arguments and arithmetic."""

    keras_type: ClassVar[str] = "Layer"
    keras_aliases: ClassVar[tuple[str, ...]] = ()  # other Keras class names read as this type
    receptive: ClassVar[str] = ""  # one of RECEPTIVE_RULES
    journey: ClassVar[str] = ""  # one of JOURNEY_ROLES
    ending: ClassVar[str] = ""  # one of ENDINGS
    editor_fields: ClassVar[tuple[EditorField, ...]] = ()
    editor_default: ClassVar[dict[str, Any]] = {}  # a new layer's arguments in the editor
    keras_weights: ClassVar[tuple[str, ...]] = ()  # the variables Keras stores, in its order
    onnx_ops: ClassVar[tuple[str, ...]] = ()  # ONNX operators read back into this type

    name: str | None = field(default=None, kw_only=True)
    input_shape: tuple[int, ...] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.input_shape is not None:  # JSON gives lists; specs hold tuples
            object.__setattr__(self, "input_shape", tuple(self.input_shape))

    # ---------------------------------------------------------------- the spec

    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape, without batch, for this input shape (no batch)."""
        raise NotImplementedError

    def param_count(self, input_shape: Shape) -> int:
        """How many numbers this layer holds (trainable and not), as Keras counts them."""
        return 0

    def trainable_count(self, input_shape: Shape) -> int:
        """How many of param_count are trained by gradient descent."""
        return self.param_count(input_shape)

    def explain_shape(self, input_shape: Shape) -> str:
        """One phrase explaining the output shape by its formula."""
        raise NotImplementedError

    def explain_params(self, input_shape: Shape) -> str:
        """One phrase explaining the parameter count by its formula."""
        return "0: nothing to learn"

    def config(self) -> dict[str, Any]:
        """Keras-style JSON config: {"type": ..., argument: value, ...} (no defaults omitted)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values = {k: _plain(v) for k, v in values.items()}
        if values.get("name") is None:
            values.pop("name")
        if values.get("input_shape") is None:
            values.pop("input_shape")
        return {"type": self.keras_type, **values}

    def describe(self) -> str:
        """The layer as a person would write it in Keras, e.g. Conv2D(64, (3, 3), relu)."""
        return self.keras_type

    def output_activation(self) -> str:
        """The function this layer applies last ("linear": none); a final softmax is the loss's."""
        return getattr(self, "activation", "linear")

    def label(self) -> str:
        """The layer's name if it has one, else its type (for error messages)."""
        return f"{self.name} ({self.keras_type})" if self.name else self.keras_type

    def require_volume(self, input_shape: Shape) -> tuple[int, int, int]:
        """The input as (height, width, channels), or the sentence saying it is flat."""
        if len(input_shape) != 3:
            raise ConvlensError(
                f"{self.label()} needs an image volume (height, width, channels) but its input is "
                f"{dims(input_shape)}; put it before Flatten or Dense."
            )
        return input_shape  # type: ignore[return-value]

    # ---------------------------------------------------------------- receptive fields

    def field_window(self, input_shape: Shape) -> Window | None:
        """receptive "window": (window, strides, padding before) on this input, or None (flat)."""
        return None

    def field_shift(self) -> tuple[int, int]:
        """receptive "shift": rows and columns added before the image (negative: removed)."""
        return (0, 0)

    # ---------------------------------------------------------------- Keras

    @classmethod
    def from_keras(cls, class_name: str, config: dict[str, Any], keras2: bool) -> Layer:
        """The spec of a Keras layer config (``class_name`` is this type or an alias)."""
        raise NotImplementedError

    def keras_config(self) -> dict[str, Any]:
        """The arguments of Keras 3's constructor for this layer (its config.json entry)."""
        return {}

    def keras_weight_shapes(self, input_shape: Shape) -> list[Shape]:
        """The shapes of the arrays Keras stores for this layer, in ``keras_weights`` order."""
        return []

    def torch_from_keras(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Keras's arrays as the torch module's state (keys without the layer's name)."""
        return {}

    def keras_from_torch(self, state: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The torch module's state (NumPy, keys without the layer's name) in Keras's layout."""
        return []


def _plain(value: Any) -> Any:
    """Tuples (nested too) as lists, for JSON."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class SameShapeLayer(Layer):
    """A layer that maps every value on its own (or per position): the shape stays."""

    receptive: ClassVar[str] = "pixelwise"
    ending: ClassVar[str] = "passes"

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def explain_shape(self, input_shape: Shape) -> str:
        return f"unchanged ({dims(input_shape)}): {self.what_it_does()}"

    def what_it_does(self) -> str:
        """The phrase after 'unchanged (shape):' in the summary."""
        raise NotImplementedError


# ---------------------------------------------------------------- the registry

LAYER_TYPES: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: add a layer type to LAYER_TYPES under its Keras name."""
    if cls.keras_type in LAYER_TYPES:
        raise RuntimeError(f"layer type {cls.keras_type} is registered twice")
    LAYER_TYPES[cls.keras_type] = cls
    return cls


def layer_type(name: Any) -> type[Layer]:
    """The registered layer type called ``name``, or one sentence listing the known ones."""
    cls = LAYER_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConvlensError(f"unknown layer type {name!r}; use one of {', '.join(LAYER_TYPES)}.")
    return cls


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Build a layer spec from Keras-style JSON: {"type": "Conv2D", "filters": 64, ...}."""
    if not isinstance(config, dict) or "type" not in config:
        raise ConvlensError(f'each layer must be an object with a "type"; got {config!r}.')
    kind = config["type"]
    cls = layer_type(kind)
    arguments = {k: v for k, v in config.items() if k != "type"}
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        raise ConvlensError(
            f"{kind} has no argument {unknown[0]!r}; its arguments are "
            f"{', '.join(sorted(allowed))}."
        )
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise ConvlensError(
            f"{kind} arguments are not valid ({exc}); check the model file."
        ) from None
