"""The torch module of each layer type, by Keras name (MODULES): Keras's arithmetic in torch.

Tensors are NCHW inside (held in channels_last memory); each module computes
what its Keras layer computes: "same" padding with the odd pixel at the
bottom/right, Glorot-uniform kernels and zero biases, Flatten in Keras's
(row, column, channel) order, Keras's activations. model/network.py builds a
Network from these; the spec side of each type is in model/layers/.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from convlens.errors import ConvlensError
from convlens.model.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Cropping2D,
    Dense,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Layer,
    MaxPooling2D,
    ReLU,
    Rescaling,
    Shape,
    ZeroPadding2D,
    same_padding,
)


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0  # Keras 3's hard_sigmoid (and torch's hardsigmoid)


# Keras's activations, computed as Keras computes them. Tensors are NCHW (or (N, units)),
# so Keras's last axis, the channels, is dim 1 here.
ACTIVATION_FUNCTIONS = {
    "linear": None,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "elu": F.elu,
    "gelu": F.gelu,  # Keras's "gelu" is the exact one (approximate=False)
    "softmax": lambda x: torch.softmax(x, dim=1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=1),
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "relu6": F.relu6,
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # Keras's default negative_slope
    "mish": F.mish,
    "exponential": torch.exp,
}


def _padding_pairs(input_shape: Shape, window: tuple[int, int], strides: tuple[int, int]):
    """Keras "same" padding as F.pad's (left, right, top, bottom)."""
    top, bottom = same_padding(input_shape[0], window[0], strides[0])
    left, right = same_padding(input_shape[1], window[1], strides[1])
    return (left, right, top, bottom)


class KerasConv2d(nn.Conv2d):
    """nn.Conv2d with Keras's "same" padding (extra row/column at the bottom/right) and activation."""

    def __init__(self, spec: Conv2D, input_shape: Shape, activation: str) -> None:
        pads = (0, 0, 0, 0)
        if spec.padding == "same":
            pads = _padding_pairs(input_shape, spec.kernel_size, spec.strides)
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        super().__init__(
            input_shape[-1],
            spec.filters,
            spec.kernel_size,
            stride=spec.strides,
            padding=(pads[2], pads[0]) if symmetric else 0,
            bias=spec.use_bias,
        )
        self.pre_pad = None if symmetric else pads
        self.activation_name = activation
        self.act = ACTIVATION_FUNCTIONS[activation]
        nn.init.xavier_uniform_(self.weight)  # Keras's glorot_uniform: same fans for conv kernels
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution before its activation: (N, C, H, W) -> (N, filters, H_out, W_out)."""
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return x if self.act is None else self.act(x)


class KerasPool2d(nn.Module):
    """Max or average pooling with Keras's floor rounding and "same" padding."""

    def __init__(
        self, spec: MaxPooling2D | AveragePooling2D, input_shape: Shape, mode: str
    ) -> None:
        super().__init__()
        self.mode = mode  # "max" or "avg"
        self.window = spec.pool_size
        self.strides = spec.strides
        pads = (0, 0, 0, 0)
        if spec.padding == "same":
            pads = _padding_pairs(input_shape, spec.pool_size, spec.strides)
        self.pads = pads if any(pads) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads is None:
            pool = F.max_pool2d if self.mode == "max" else F.avg_pool2d
            return pool(x, self.window, self.strides)
        if self.mode == "max":
            return F.max_pool2d(F.pad(x, self.pads, value=float("-inf")), self.window, self.strides)
        # Keras averages only the real pixels of a padded window.
        sums = F.avg_pool2d(F.pad(x, self.pads), self.window, self.strides, divisor_override=1)
        ones = torch.ones_like(x[:1, :1])
        counts = F.avg_pool2d(F.pad(ones, self.pads), self.window, self.strides, divisor_override=1)
        return sums / counts


class KerasFlatten(nn.Module):
    """Flatten in Keras's (row, column, channel) order: (N, C, H, W) -> (N, H*W*C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x
        # With channels_last memory this permute is free: the data already lies as NHWC.
        return x.permute(0, 2, 3, 1).flatten(1)


class KerasDense(nn.Linear):
    """nn.Linear with Keras's initialisation (Glorot uniform, zero bias) and activation."""

    def __init__(self, spec: Dense, input_shape: Shape, activation: str) -> None:
        super().__init__(input_shape[0], spec.units, bias=spec.use_bias)
        self.act = ACTIVATION_FUNCTIONS[activation]
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)  # (N, units)
        return x if self.act is None else self.act(x)


def _batch_norm(spec: BatchNormalization, input_shape: Shape) -> nn.Module:
    # Keras's momentum m keeps m of the old statistic; torch's momentum is the new share.
    cls = nn.BatchNorm2d if len(input_shape) == 3 else nn.BatchNorm1d
    return cls(input_shape[-1], eps=spec.epsilon, momentum=1.0 - spec.momentum)


class KerasActivation(nn.Module):
    """An Activation layer (or a Softmax layer): one function applied to every value."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation_name = activation
        self.act = ACTIVATION_FUNCTIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.act is None else self.act(x)


class KerasReLU(nn.Module):
    """Keras's ReLU layer, term by term as keras.activations.relu computes it."""

    def __init__(self, spec: ReLU) -> None:
        super().__init__()
        self.max_value = spec.max_value
        self.negative_slope = float(spec.negative_slope)
        self.threshold = float(spec.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        negative = F.relu(self.threshold - x) if self.negative_slope else None
        y = x * (x > self.threshold).to(x.dtype) if self.threshold else F.relu(x)
        if self.max_value is not None:
            y = torch.clamp(y, 0.0, float(self.max_value))
        if negative is not None:
            y = y - self.negative_slope * negative
        return y


class KerasRescaling(nn.Module):
    """x * scale + offset, as Keras's Rescaling layer."""

    def __init__(self, spec: Rescaling) -> None:
        super().__init__()
        self.scale, self.offset = float(spec.scale), float(spec.offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class KerasZeroPadding2d(nn.Module):
    """ZeroPadding2D: ((top, bottom), (left, right)) rows and columns of zeros."""

    def __init__(self, spec: ZeroPadding2D) -> None:
        super().__init__()
        (top, bottom), (left, right) = spec.padding
        self.pads = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class KerasCropping2d(nn.Module):
    """Cropping2D: ((top, bottom), (left, right)) rows and columns cut off."""

    def __init__(self, spec: Cropping2D) -> None:
        super().__init__()
        (self.top, self.bottom), (self.left, self.right) = spec.cropping

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        return x[:, :, self.top : height - self.bottom, self.left : width - self.right]


class KerasGlobalPool2d(nn.Module):
    """GlobalAveragePooling2D / GlobalMaxPooling2D: one value per channel."""

    def __init__(self, spec: GlobalAveragePooling2D | GlobalMaxPooling2D, mode: str) -> None:
        super().__init__()
        self.mode = mode  # "max" or "avg"
        self.keepdims = bool(spec.keepdims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "max":
            return torch.amax(x, dim=(2, 3), keepdim=self.keepdims)
        return torch.mean(x, dim=(2, 3), keepdim=self.keepdims)


def ends_in_softmax(layer: Layer) -> bool:
    """Whether the model's last layer is a softmax (Dense(..., softmax), Activation, Softmax)."""
    return layer.output_activation() == "softmax"


Builder = Callable[[Layer, Shape, str], nn.Module]  # (spec, its input shape, its activation)

# Each layer type's torch module, by its Keras name (the registry's torch facet).
MODULES: dict[str, Builder] = {
    "Conv2D": KerasConv2d,
    "MaxPooling2D": lambda spec, shape, _: KerasPool2d(spec, shape, "max"),
    "AveragePooling2D": lambda spec, shape, _: KerasPool2d(spec, shape, "avg"),
    "GlobalAveragePooling2D": lambda spec, _shape, _act: KerasGlobalPool2d(spec, "avg"),
    "GlobalMaxPooling2D": lambda spec, _shape, _act: KerasGlobalPool2d(spec, "max"),
    "Flatten": lambda _spec, _shape, _act: KerasFlatten(),
    "Dense": KerasDense,
    "Dropout": lambda spec, _shape, _act: nn.Dropout(spec.rate),
    "BatchNormalization": lambda spec, shape, _: _batch_norm(spec, shape),
    "Rescaling": lambda spec, _shape, _act: KerasRescaling(spec),
    "Activation": lambda _spec, _shape, act: KerasActivation(act),
    "ReLU": lambda spec, _shape, _act: KerasReLU(spec),
    "Softmax": lambda _spec, _shape, act: KerasActivation(act),
    "ZeroPadding2D": lambda spec, _shape, _act: KerasZeroPadding2d(spec),
    "Cropping2D": lambda spec, _shape, _act: KerasCropping2d(spec),
}


def layer_module(layer: Layer, input_shape: Shape, final: bool) -> nn.Module:
    """The torch module for one spec; the final layer's softmax is left to the loss."""
    activation = layer.output_activation()
    if final and activation == "softmax":
        activation = "linear"
    build = MODULES.get(layer.keras_type)
    if build is None:
        raise ConvlensError(
            f"{layer.keras_type} has no torch module; add one to MODULES in convlens/model/modules.py."
        )
    return build(layer, input_shape, activation)


