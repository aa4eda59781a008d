"""Layer specs, named and parametrised as in Keras, that know their arithmetic.

Each spec is a frozen dataclass. Given its input shape (H, W, C) or (N,) it
returns its output shape, its parameter count, and one sentence that explains
each by its formula, e.g. Conv2D(64, (3, 3)) on 28x28x1: 26 = 28 - 3 + 1 and
640 = 64 x (3 x 3 x 1) + 64. Numbers equal Keras's for every valid combination.
No torch import: a summary needs no deep learning framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

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


def _pair(value: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    """Normalise Keras's int-or-pair arguments to a (rows, cols) tuple of positive ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in pair):
        raise ConvlensError(f"{what} must be an integer or a pair of integers, not {value!r}.")
    if min(pair) < 1:
        raise ConvlensError(f"{what} must be at least 1, not {value!r}; use a positive size.")
    return pair  # type: ignore[return-value]


def _activation(name: str | None) -> str:
    name = "linear" if name is None else name
    if name not in ACTIVATIONS:
        raise ConvlensError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}.")
    return name


def _padding(name: str) -> str:
    if name not in PADDINGS:
        raise ConvlensError(f"unknown padding {name!r}; use 'valid' or 'same'.")
    return name


def _fmt(n: int) -> str:
    return f"{n:,}"


def _dims(shape: Shape) -> str:
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


def _window_formula(size: int, window: int, stride: int, padding: str, pooling: bool) -> str:
    """The right-hand side of one axis's output length, as the lesson writes it: 28 - 3 + 1."""
    if padding == "same":
        return f"{size} (same)" if stride == 1 else f"ceil({size} / {stride})"
    if pooling and window == stride:
        return f"floor({size} / {stride})"
    if stride == 1:
        return f"{size} - {window} + 1"
    return f"floor(({size} - {window}) / {stride}) + 1"


def _size_formula(out: Shape, rows: str, cols: str) -> str:
    """'26x26: 28 - 3 + 1', or both axes spelled out when they differ."""
    if rows == cols:
        return f"{out[0]}x{out[1]}: {rows}"
    return f"{out[0]}x{out[1]}: rows {rows}, columns {cols}"


def _neighbours(count: int) -> str:
    return "a neighbour" if count == 1 else f"{count} neighbours"


@dataclass(frozen=True)
class Layer:
    """Base of all layer specs: a Keras layer's name, arguments and arithmetic."""

    keras_type: ClassVar[str] = "Layer"
    name: str | None = field(default=None, kw_only=True)
    input_shape: tuple[int, ...] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.input_shape is not None:  # JSON gives lists; specs hold tuples
            object.__setattr__(self, "input_shape", tuple(self.input_shape))

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
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        if values.get("name") is None:
            values.pop("name")
        if values.get("input_shape") is None:
            values.pop("input_shape")
        return {"type": self.keras_type, **values}

    def describe(self) -> str:
        """The layer as a person would write it in Keras, e.g. Conv2D(64, (3, 3), relu)."""
        return self.keras_type

    def _require_volume(self, input_shape: Shape) -> tuple[int, int, int]:
        if len(input_shape) != 3:
            raise ConvlensError(
                f"{self.label()} needs an image volume (height, width, channels) but its input is "
                f"{_dims(input_shape)}; put it before Flatten or Dense."
            )
        return input_shape  # type: ignore[return-value]

    def label(self) -> str:
        """The layer's name if it has one, else its type (for error messages)."""
        return f"{self.name} ({self.keras_type})" if self.name else self.keras_type


@dataclass(frozen=True)
class Conv2D(Layer):
    """A 2-D convolution: ``filters`` kernels of ``kernel_size`` slid over the input."""

    keras_type: ClassVar[str] = "Conv2D"
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
        object.__setattr__(self, "kernel_size", _pair(self.kernel_size, "Conv2D kernel_size"))
        object.__setattr__(self, "strides", _pair(self.strides, "Conv2D strides"))
        object.__setattr__(self, "padding", _padding(self.padding))
        object.__setattr__(self, "activation", _activation(self.activation))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, _ = self._require_volume(input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "valid" and (kh > height or kw > width):
            raise ConvlensError(
                f"{self.label()} has a {kh}x{kw} kernel but its input is only "
                f"{_dims(input_shape)}; use a kernel of at most {height}x{width}, "
                f"padding='same', or remove a pooling layer before it."
            )
        out_h = window_output(height, kh, sh, self.padding)
        out_w = window_output(width, kw, sw, self.padding)
        return (out_h, out_w, self.filters)

    def param_count(self, input_shape: Shape) -> int:
        kh, kw = self.kernel_size
        return self.filters * kh * kw * input_shape[-1] + (self.filters if self.use_bias else 0)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self._require_volume(input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        rows = _window_formula(height, kh, sh, self.padding, pooling=False)
        cols = _window_formula(width, kw, sw, self.padding, pooling=False)
        size = _size_formula(self.output_shape(input_shape), rows, cols)
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
        total = _fmt(self.param_count(input_shape))
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


@dataclass(frozen=True)
class _Pooling2D(Layer):
    """Shared arithmetic of max and average pooling."""

    pool_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] | None = None
    padding: str = "valid"
    verb: ClassVar[str] = "pools"

    def __post_init__(self) -> None:
        super().__post_init__()
        kind = self.keras_type
        object.__setattr__(self, "pool_size", _pair(self.pool_size, f"{kind} pool_size"))
        strides = self.pool_size if self.strides is None else self.strides
        object.__setattr__(self, "strides", _pair(strides, f"{kind} strides"))
        object.__setattr__(self, "padding", _padding(self.padding))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, depth = self._require_volume(input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides  # type: ignore[misc]
        out_h = window_output(height, ph, sh, self.padding)
        out_w = window_output(width, pw, sw, self.padding)
        if out_h < 1 or out_w < 1:
            raise ConvlensError(
                f"{self.label()} with a {ph}x{pw} window leaves nothing of its "
                f"{_dims(input_shape)} input; use a window of at most {height}x{width} "
                f"or padding='same'."
            )
        return (out_h, out_w, depth)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self._require_volume(input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides  # type: ignore[misc]
        rows = _window_formula(height, ph, sh, self.padding, pooling=True)
        cols = _window_formula(width, pw, sw, self.padding, pooling=True)
        size = _size_formula(self.output_shape(input_shape), rows, cols)
        dropped = self.padding == "valid" and ((height - ph) % sh or (width - pw) % sw)
        note = "; the odd last row/column is dropped" if dropped else ""
        return f"{size} ({self.verb} each {ph}x{pw} block{note}); depth unchanged"

    def explain_params(self, input_shape: Shape) -> str:
        return "0: pooling has nothing to learn"

    def describe(self) -> str:
        ph, pw = self.pool_size
        return f"{self.keras_type}({ph}x{pw})"


@dataclass(frozen=True)
class MaxPooling2D(_Pooling2D):
    """Max pooling: keeps the largest value of every window (2x2 quarters the image)."""

    keras_type: ClassVar[str] = "MaxPooling2D"
    verb: ClassVar[str] = "keeps the largest of"


@dataclass(frozen=True)
class AveragePooling2D(_Pooling2D):
    """Average pooling: keeps the mean of every window."""

    keras_type: ClassVar[str] = "AveragePooling2D"
    verb: ClassVar[str] = "averages"


@dataclass(frozen=True)
class Flatten(Layer):
    """Lays a volume out as one vector, in Keras's (row, column, channel) order."""

    keras_type: ClassVar[str] = "Flatten"

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def explain_shape(self, input_shape: Shape) -> str:
        product = " x ".join(str(n) for n in input_shape)
        return f"{_fmt(math.prod(input_shape))} = {product}: every value in one row"


@dataclass(frozen=True)
class Dense(Layer):
    """A fully connected layer: every input joined to each of ``units`` outputs."""

    keras_type: ClassVar[str] = "Dense"
    units: int = 10
    activation: str = "linear"
    use_bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.units, int) or isinstance(self.units, bool) or self.units < 1:
            raise ConvlensError(f"Dense units must be a positive integer, not {self.units!r}.")
        object.__setattr__(self, "activation", _activation(self.activation))

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ConvlensError(
                f"{self.label()} needs a flat vector but its input is {_dims(input_shape)}; "
                f"add Flatten() before it."
            )
        return (self.units,)

    def param_count(self, input_shape: Shape) -> int:
        return input_shape[0] * self.units + (self.units if self.use_bias else 0)

    def explain_shape(self, input_shape: Shape) -> str:
        return f"{self.units} units"

    def explain_params(self, input_shape: Shape) -> str:
        total = _fmt(self.param_count(input_shape))
        if not self.use_bias:
            return f"{total} = {_fmt(input_shape[0])} x {self.units}: one weight per connection"
        return (
            f"{total} = {_fmt(input_shape[0])} x {self.units} + {self.units}: "
            f"a weight from every input to every unit, plus one bias per unit"
        )

    def describe(self) -> str:
        act = "" if self.activation == "linear" else f", {self.activation}"
        return f"Dense({self.units}{act})"


@dataclass(frozen=True)
class Dropout(Layer):
    """Zeroes a random fraction ``rate`` of its inputs while training; identity otherwise."""

    keras_type: ClassVar[str] = "Dropout"
    rate: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.rate, (int, float)) or not 0 <= self.rate < 1:
            raise ConvlensError(f"Dropout rate must be in [0, 1), not {self.rate!r}.")

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def explain_shape(self, input_shape: Shape) -> str:
        return f"unchanged ({_dims(input_shape)}): dropout only zeroes {self.rate:.0%} in training"

    def describe(self) -> str:
        return f"Dropout({self.rate:g})"


@dataclass(frozen=True)
class BatchNormalization(Layer):
    """Normalises each channel by batch statistics, then scales (gamma) and shifts (beta)."""

    keras_type: ClassVar[str] = "BatchNormalization"
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
        return f"unchanged ({_dims(input_shape)}): each channel normalised"

    def explain_params(self, input_shape: Shape) -> str:
        depth = input_shape[-1]
        return (
            f"{_fmt(4 * depth)} = 4 x {depth}: gamma and beta are trained, "
            f"the moving mean and variance are not"
        )


@dataclass(frozen=True)
class SameShapeLayer(Layer):
    """A layer that maps every value on its own (or per position): the shape stays."""

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def explain_shape(self, input_shape: Shape) -> str:
        return f"unchanged ({_dims(input_shape)}): {self.what_it_does()}"

    def what_it_does(self) -> str:
        """The phrase after 'unchanged (shape):' in the summary."""
        raise NotImplementedError


@dataclass(frozen=True)
class Rescaling(SameShapeLayer):
    """Multiplies every value by ``scale`` and adds ``offset`` (Keras's Rescaling(1./255))."""

    keras_type: ClassVar[str] = "Rescaling"
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for what, value in (("scale", self.scale), ("offset", self.offset)):
            if not _finite_number(value):
                raise ConvlensError(
                    f"Rescaling {what} must be one finite number, not {value!r}; "
                    f"convlens does not take a value per channel."
                )

    def what_it_does(self) -> str:
        return f"each value x becomes x x {self.scale:.6g} + {self.offset:.6g}"

    def describe(self) -> str:
        return f"Rescaling({self.scale:.6g}, offset={self.offset:.6g})"


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Activation(SameShapeLayer):
    """Applies an activation function to every value, as a layer of its own."""

    keras_type: ClassVar[str] = "Activation"
    activation: str = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "activation", _activation(self.activation))

    def what_it_does(self) -> str:
        if self.activation in ("softmax", "log_softmax"):
            return f"{self.activation} over the last axis"
        return f"{self.activation} applied to every value"

    def describe(self) -> str:
        return f"Activation({self.activation})"


@dataclass(frozen=True)
class ReLU(SameShapeLayer):
    """Keras's ReLU layer: max(x, 0), optionally capped, leaky or thresholded."""

    keras_type: ClassVar[str] = "ReLU"
    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = self.max_value is None or (_finite_number(self.max_value) and self.max_value >= 0)
        ok = ok and _finite_number(self.negative_slope) and self.negative_slope >= 0
        if not (ok and _finite_number(self.threshold) and self.threshold >= 0):
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


@dataclass(frozen=True)
class Softmax(SameShapeLayer):
    """Softmax over the last axis: the values of each position become probabilities."""

    keras_type: ClassVar[str] = "Softmax"
    axis: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.axis != -1:
            raise ConvlensError(
                f"Softmax over axis {self.axis!r} is not supported; convlens takes axis=-1 only."
            )

    def what_it_does(self) -> str:
        return "softmax over the last axis (the values sum to 1)"


@dataclass(frozen=True)
class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around an image volume: ((top, bottom), (left, right))."""

    keras_type: ClassVar[str] = "ZeroPadding2D"
    padding: tuple[tuple[int, int], tuple[int, int]] = ((1, 1), (1, 1))

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "padding", _zero_padding(self.padding))

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, depth = self._require_volume(input_shape)
        (top, bottom), (left, right) = self.padding
        return (height + top + bottom, width + left + right, depth)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, _ = self._require_volume(input_shape)
        (top, bottom), (left, right) = self.padding
        out = self.output_shape(input_shape)
        rows, cols = f"{height} + {top} + {bottom}", f"{width} + {left} + {right}"
        return f"{_size_formula(out, rows, cols)} (zeros added around the border); depth unchanged"

    def config(self) -> dict[str, Any]:
        values = super().config()
        values["padding"] = [list(pair) for pair in self.padding]
        return values

    def describe(self) -> str:
        (top, bottom), (left, right) = self.padding
        return f"ZeroPadding2D(({top}, {bottom}), ({left}, {right}))"


def _zero_padding(value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's ZeroPadding2D padding: n, (rows, cols) or ((top, bottom), (left, right))."""

    def count(n: Any) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConvlensError(
                f"ZeroPadding2D padding must be non-negative integers, not {value!r}."
            )
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
        f"ZeroPadding2D padding must be n, (rows, cols) or ((top, bottom), (left, right)), "
        f"not {value!r}."
    )


@dataclass(frozen=True)
class _GlobalPooling2D(Layer):
    """Shared arithmetic of global pooling: one number per channel."""

    keepdims: bool = False
    verb: ClassVar[str] = "pools"

    def output_shape(self, input_shape: Shape) -> Shape:
        depth = self._require_volume(input_shape)[2]
        return (1, 1, depth) if self.keepdims else (depth,)

    def explain_shape(self, input_shape: Shape) -> str:
        height, width, depth = self._require_volume(input_shape)
        kept = "1x1x" if self.keepdims else ""
        return f"{kept}{depth}: the {self.verb} of each {height}x{width} map, one per channel"

    def explain_params(self, input_shape: Shape) -> str:
        return "0: pooling has nothing to learn"


@dataclass(frozen=True)
class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each whole feature map."""

    keras_type: ClassVar[str] = "GlobalAveragePooling2D"
    verb: ClassVar[str] = "mean"


@dataclass(frozen=True)
class GlobalMaxPooling2D(_GlobalPooling2D):
    """The largest value of each whole feature map."""

    keras_type: ClassVar[str] = "GlobalMaxPooling2D"
    verb: ClassVar[str] = "largest value"


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.keras_type: cls
    for cls in (
        Conv2D,
        MaxPooling2D,
        AveragePooling2D,
        Flatten,
        Dense,
        Dropout,
        BatchNormalization,
        Rescaling,
        Activation,
        ReLU,
        Softmax,
        ZeroPadding2D,
        GlobalAveragePooling2D,
        GlobalMaxPooling2D,
    )
}


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Build a layer spec from Keras-style JSON: {"type": "Conv2D", "filters": 64, ...}."""
    if not isinstance(config, dict) or "type" not in config:
        raise ConvlensError(f'each layer must be an object with a "type"; got {config!r}.')
    kind = config["type"]
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise ConvlensError(f"unknown layer type {kind!r}; use one of {', '.join(LAYER_TYPES)}.")
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
