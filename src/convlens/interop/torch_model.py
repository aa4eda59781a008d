"""A torch ``nn.Sequential`` in memory read into a convlens spec and weights (NCHW -> NHWC).

One small function per torch module class (TORCH_READERS), matched by exact
class, so a subclass with its own ``forward`` is never mistaken for its base:
Conv2d (padding as Keras's "same" where it is that, else a ZeroPadding2D
before a "valid" Conv2D), MaxPool2d, AvgPool2d, adaptive pooling to 1x1,
BatchNorm2d/1d (running statistics: the module in eval mode), ZeroPad2d,
the activations Keras has (folded into the Conv2D or Dense before them, as
Keras writes Conv2D(..., activation="relu")), Flatten, Linear, Dropout,
Identity; nested nn.Sequential chains are walked in order.

Layouts: convlens's torch modules are NCHW inside, so convolution kernels
keep torch's (out, in, kh, kw); the one place the layouts meet is Flatten:
torch flattens (channel, row, column), Keras (row, column, channel), so the
Linear after a Flatten gets its weight columns permuted and computes the
same outputs. Anything else (a custom module, a residual block, a branch) is
one sentence naming the module and its class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from convlens.errors import ConvlensError
from convlens.interop import limits
from convlens.interop.keras import ImportedModel
from convlens.model.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Layer,
    MaxPooling2D,
    ReLU,
    Softmax,
    ZeroPadding2D,
    same_padding,
)
from convlens.model.sequential import DEFAULT_INPUT_SCALE, Sequential

# torch activation modules -> Keras's activation names (their arguments checked in _activation)
ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.ReLU6: "relu6",
    nn.Softplus: "softplus",
    nn.Softsign: "softsign",
    nn.SELU: "selu",
    nn.Mish: "mish",
    nn.Hardsigmoid: "hard_sigmoid",
    nn.Hardswish: "hard_swish",
}


@dataclass
class TorchChain:
    """The walk's state: the layers so far, their weights, the current tensor's Keras shape."""

    shape: tuple[int, ...]  # (H, W, C) or (F,)
    layers: list[Layer] = field(default_factory=list)
    weights: list[dict[str, np.ndarray]] = field(default_factory=list)
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) torch flattened as (C, H, W)
    last_module: str = ""  # the class of the module read before this one

    def add(self, layer: Layer, weights: dict[str, np.ndarray] | None = None) -> None:
        """Append a layer (and its weights in network.py's names, without the layer prefix)."""
        self.shape = layer.output_shape(self.shape)
        self.layers.append(layer)
        self.weights.append(weights or {})


def refuse(where: str, module: nn.Module, what: str) -> ConvlensError:
    """One sentence naming the module, its class, what convlens cannot read and the way out."""
    return ConvlensError(
        f"module {where!r} ({type(module).__name__}) {what}; convlens reads nn.Sequential "
        f"chains of {', '.join(sorted(n.__name__ for n in TORCH_READERS))}."
    )


def _array(tensor: torch.Tensor | None, where: str) -> np.ndarray:
    """A parameter or buffer as float32, refused when it is not finite."""
    values = np.asarray(tensor.detach().to("cpu", torch.float32).numpy(), dtype=np.float32)
    if not np.isfinite(values).all():
        raise ConvlensError(f"{where} holds NaN or infinite numbers; the module is not usable.")
    return values.copy()


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _image(where: str, module: nn.Module, chain: TorchChain) -> tuple[int, int, int]:
    if len(chain.shape) != 3:
        raise refuse(where, module, f"takes an image, but it is given {chain.shape[0]} features")
    return chain.shape  # type: ignore[return-value]


def _padding(
    hw: tuple[int, int], window: tuple[int, int], strides: tuple[int, int], pads: tuple[int, int]
) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """torch's symmetric pads as Keras's "valid" or "same" where they are that, else the pairs."""
    if pads == (0, 0):
        return "valid"
    same = tuple(same_padding(hw[i], window[i], strides[i]) for i in range(2))
    pairs = ((pads[0], pads[0]), (pads[1], pads[1]))
    return "same" if same == pairs else pairs


def conv2d(where: str, module: nn.Conv2d, chain: TorchChain) -> None:
    """Conv2d -> [ZeroPadding2D] + Conv2D; the kernel keeps torch's (out, in, kh, kw)."""
    height, width, channels = _image(where, module, chain)
    if module.groups != 1 or _pair(module.dilation) != (1, 1):
        raise refuse(where, module, "is grouped or dilated")
    if module.padding_mode != "zeros":
        raise refuse(where, module, f"pads with {module.padding_mode!r}, not zeros")
    if module.in_channels != channels:
        raise refuse(where, module, f"takes {module.in_channels} channels but is given {channels}")
    window, strides = _pair(module.kernel_size), _pair(module.stride)
    if module.padding == "same":  # torch: stride 1, the odd pixel at the bottom/right as Keras
        padding: Any = "same"
    elif module.padding == "valid":
        padding = "valid"
    else:
        padding = _padding((height, width), window, strides, _pair(module.padding))
    if isinstance(padding, tuple):
        chain.add(ZeroPadding2D(padding))
        padding = "valid"
    arrays = {"weight": _array(module.weight, f"{where}.weight")}
    if module.bias is not None:
        arrays["bias"] = _array(module.bias, f"{where}.bias")
    layer = Conv2D(
        module.out_channels, window, strides=strides, padding=padding, use_bias="bias" in arrays
    )
    chain.add(layer, arrays)


def pool2d(where: str, module: nn.MaxPool2d | nn.AvgPool2d, chain: TorchChain) -> None:
    """MaxPool2d / AvgPool2d (floor rounding) -> MaxPooling2D / AveragePooling2D."""
    height, width, _ = _image(where, module, chain)
    window = _pair(module.kernel_size)
    strides = _pair(module.stride if module.stride is not None else module.kernel_size)
    is_max = isinstance(module, nn.MaxPool2d)
    if module.ceil_mode:
        raise refuse(where, module, "rounds its output size up (ceil_mode=True)")
    if is_max and (_pair(module.dilation) != (1, 1) or module.return_indices):
        raise refuse(where, module, "is dilated or returns indices")
    if not is_max and module.divisor_override is not None:
        raise refuse(where, module, "divides by a fixed divisor_override")
    padding = _padding((height, width), window, strides, _pair(module.padding))
    if isinstance(padding, tuple):
        if is_max:
            raise refuse(where, module, "pads its windows in a way Keras cannot ('same' only)")
        if not module.count_include_pad:
            raise refuse(where, module, "averages padded windows over the real pixels only")
        chain.add(ZeroPadding2D(padding))  # the zeros count, as torch counts them
        padding = "valid"
    elif padding == "same" and not is_max and module.count_include_pad:
        top, left = _pair(module.padding)
        chain.add(ZeroPadding2D(((top, top), (left, left))))
        padding = "valid"
    cls = MaxPooling2D if is_max else AveragePooling2D
    chain.add(cls(window, strides=strides, padding=padding))


def adaptive_pool(
    where: str, module: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d, chain: TorchChain
) -> None:
    """AdaptiveAvgPool2d(1) / AdaptiveMaxPool2d(1) -> global pooling keeping (1, 1, C)."""
    _image(where, module, chain)
    if _pair(module.output_size) != (1, 1):
        raise refuse(where, module, f"pools to {module.output_size}, not to one pixel")
    if isinstance(module, nn.AdaptiveMaxPool2d) and module.return_indices:
        raise refuse(where, module, "returns indices")
    is_max = isinstance(module, nn.AdaptiveMaxPool2d)
    chain.add((GlobalMaxPooling2D if is_max else GlobalAveragePooling2D)(keepdims=True))


def batch_norm(where: str, module: nn.BatchNorm2d | nn.BatchNorm1d, chain: TorchChain) -> None:
    """BatchNorm2d (an image's channels) or BatchNorm1d (features): its running statistics."""
    size = chain.shape[-1]
    image = isinstance(module, nn.BatchNorm2d)
    if image != (len(chain.shape) == 3) or module.num_features != size:
        raise refuse(where, module, f"normalises {module.num_features} values of a {chain.shape}")
    if not module.track_running_stats or module.running_mean is None:
        raise refuse(where, module, "keeps no running statistics (track_running_stats=False)")
    if not image and chain.flattened_from is not None:
        raise refuse(where, module, "normalises the flattened image before a Linear reads it")
    ones, zeros = torch.ones(size), torch.zeros(size)
    weights = {
        "weight": _array(module.weight if module.affine else ones, f"{where}.weight"),
        "bias": _array(module.bias if module.affine else zeros, f"{where}.bias"),
        "running_mean": _array(module.running_mean, f"{where}.running_mean"),
        "running_var": _array(module.running_var, f"{where}.running_var"),
    }
    momentum = module.momentum if module.momentum is not None else 0.1
    layer = BatchNormalization(momentum=1.0 - momentum, epsilon=float(module.eps))
    chain.add(layer, weights)


def zero_pad(where: str, module: nn.ZeroPad2d, chain: TorchChain) -> None:
    """ZeroPad2d (left, right, top, bottom) -> ZeroPadding2D ((top, bottom), (left, right))."""
    _image(where, module, chain)
    left, right, top, bottom = (int(n) for n in module.padding)
    if min(left, right, top, bottom) < 0:
        raise refuse(where, module, "crops (negative padding)")
    chain.add(ZeroPadding2D(((top, bottom), (left, right))))


def activation(where: str, module: nn.Module, chain: TorchChain) -> None:
    """An activation module: the Conv2D's or Dense's before it, or a layer of its own."""
    name = ACTIVATIONS[type(module)]
    checks = {
        nn.ELU: lambda m: m.alpha == 1.0,
        nn.GELU: lambda m: m.approximate == "none",
        nn.Softplus: lambda m: m.beta == 1.0,
    }
    if not checks.get(type(module), lambda m: True)(module):
        raise refuse(where, module, "has arguments Keras's activation of that name does not")
    last = chain.layers[-1] if chain.layers else None
    fuses = chain.last_module in ("Conv2d", "Linear")
    if isinstance(last, (Conv2D, Dense)) and last.activation == "linear" and fuses:
        chain.layers[-1] = replace(last, activation=name)
    else:
        chain.add(Activation(name))


def leaky_relu(where: str, module: nn.LeakyReLU, chain: TorchChain) -> None:
    """LeakyReLU(negative_slope) -> ReLU(negative_slope=...)."""
    chain.add(ReLU(negative_slope=float(module.negative_slope)))


def softmax(where: str, module: nn.Softmax | nn.LogSoftmax, chain: TorchChain) -> None:
    """Softmax / LogSoftmax over the channels (dim 1), or the features of a flat vector."""
    rank = len(chain.shape) + 1
    if module.dim is None or module.dim % rank != 1:
        raise refuse(where, module, f"takes it over dim {module.dim}, not dim 1")
    name = "softmax" if isinstance(module, nn.Softmax) else "log_softmax"
    last = chain.layers[-1] if chain.layers else None
    if isinstance(last, Dense) and last.activation == "linear" and chain.last_module == "Linear":
        chain.layers[-1] = replace(last, activation=name)
    elif name == "softmax" and len(chain.shape) == 3:
        chain.add(Softmax())
    else:
        chain.add(Activation(name))


def flatten(where: str, module: nn.Flatten, chain: TorchChain) -> None:
    """Flatten(start_dim=1): Keras's Flatten; the next Linear's columns are permuted for it."""
    if module.start_dim != 1 or module.end_dim != -1:
        raise refuse(
            where, module, f"flattens dims {module.start_dim}..{module.end_dim}, not 1..-1"
        )
    if len(chain.shape) == 3:
        chain.flattened_from = chain.shape  # type: ignore[assignment]
        chain.add(Flatten())


def linear(where: str, module: nn.Linear, chain: TorchChain) -> None:
    """Linear -> Dense; after a Flatten of an image its columns follow Keras's order."""
    if len(chain.shape) != 1:
        raise refuse(where, module, f"multiplies an image of shape {chain.shape}; flatten it first")
    if module.in_features != chain.shape[0]:
        raise refuse(
            where, module, f"takes {module.in_features} features but is given {chain.shape[0]}"
        )
    weight = _array(module.weight, f"{where}.weight")  # (out, in), as network.py holds it
    if chain.flattened_from is not None:
        height, width, channels = chain.flattened_from
        # Keras's column (h, w, c) is torch's column (c, h, w).
        order = np.arange(height * width * channels).reshape(channels, height, width)
        weight = np.ascontiguousarray(weight[:, order.transpose(1, 2, 0).reshape(-1)])
        chain.flattened_from = None
    arrays = {"weight": weight}
    if module.bias is not None:
        arrays["bias"] = _array(module.bias, f"{where}.bias")
    chain.add(Dense(module.out_features, use_bias="bias" in arrays), arrays)


def dropout(where: str, module: nn.Dropout | nn.Dropout2d, chain: TorchChain) -> None:
    """Dropout / Dropout2d: kept as Dropout (nothing when predicting)."""
    chain.add(Dropout(min(float(module.p), 0.99)))


def identity(where: str, module: nn.Identity, chain: TorchChain) -> None:
    """Identity: nothing."""


TORCH_READERS: dict[type[nn.Module], Callable[[str, Any, TorchChain], None]] = {
    nn.Conv2d: conv2d,
    nn.MaxPool2d: pool2d,
    nn.AvgPool2d: pool2d,
    nn.AdaptiveAvgPool2d: adaptive_pool,
    nn.AdaptiveMaxPool2d: adaptive_pool,
    nn.BatchNorm2d: batch_norm,
    nn.BatchNorm1d: batch_norm,
    nn.ZeroPad2d: zero_pad,
    **{cls: activation for cls in ACTIVATIONS},
    nn.LeakyReLU: leaky_relu,
    nn.Softmax: softmax,
    nn.LogSoftmax: softmax,
    nn.Flatten: flatten,
    nn.Linear: linear,
    nn.Dropout: dropout,
    nn.Dropout2d: dropout,
    nn.Identity: identity,
}


def chain_of(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """The modules of a (nested) nn.Sequential in the order its forward calls them."""
    for name, child in module.named_children():
        where = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            yield from chain_of(child, f"{where}.")
        else:
            yield where, child


def keras_input_shape(input_shape: Any, module: nn.Module) -> tuple[int, int, int]:
    """torch's (C, H, W) (or (H, W) for one channel) as convlens's (H, W, C), checked."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) == 2:
        shape = (1, *shape)
    ok = len(shape) == 3 and all(
        isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 4096 for n in shape
    )
    if not ok:
        raise ConvlensError(
            f"input_shape {input_shape!r} is not an image's (channels, height, width); give it as "
            f"torch's tensors have it, like (1, 28, 28)."
        )
    channels, height, width = shape
    first = next((m for _, m in chain_of(module) if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels != channels and first.in_channels == shape[2]:
        raise ConvlensError(
            f"input_shape {tuple(input_shape)} puts the channels last, but torch's tensors are "
            f"(channels, height, width): give {(shape[2], shape[0], shape[1])}."
        )
    return height, width, channels


def read_torch_module(
    module: nn.Module, input_shape: Any, name: str | None = None
) -> ImportedModel:
    """The spec and weights of an ``nn.Sequential`` chain (see the module's docstring)."""
    if not isinstance(module, nn.Module):
        raise ConvlensError(
            f"from_torch takes a torch nn.Sequential, not a {type(module).__name__}; for a Keras "
            f"model use convlens.from_keras."
        )
    if type(module) is not nn.Sequential:
        raise ConvlensError(
            f"{type(module).__name__} is a module of its own whose forward convlens cannot read "
            f"(it may branch or run any code); convlens reads nn.Sequential chains: put its "
            f"layers in nn.Sequential(...) if they run one after another."
        )
    shape = keras_input_shape(input_shape, module)
    chain = TorchChain(shape)
    for where, child in chain_of(module):
        reader = TORCH_READERS.get(type(child))
        if reader is None:
            raise refuse(
                where,
                child,
                "is not a layer convlens knows (a module of its own, such as a residual block, "
                "may branch or run any code)",
            )
        reader(where, child, chain)
        chain.last_module = type(child).__name__
    if not chain.layers:
        raise ConvlensError("the nn.Sequential is empty; there is nothing to read.")
    return _imported(chain, shape, name or "torch", module)


def _imported(
    chain: TorchChain, shape: tuple[int, int, int], name: str, module: nn.Module
) -> ImportedModel:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:60] or "torch"
    try:
        model = Sequential(chain.layers, shape, safe, input_scale=DEFAULT_INPUT_SCALE)
    except ConvlensError as exc:
        raise ConvlensError(f"the nn.Sequential cannot be read as a model: {exc}") from None
    limits.check_parameters(model.total_params, "the nn.Sequential")
    state = {
        f"{row.name}.{key}": value
        for row, weights in zip(model.rows, chain.weights, strict=True)
        for key, value in weights.items()
    }
    source = {
        "format": "torch-in-memory",
        "module": type(module).__name__,
        "torch": torch.__version__,
    }
    return ImportedModel(model, state, source)
