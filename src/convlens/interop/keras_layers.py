"""Keras layer configs -> convlens layer specs, and Keras weights -> torch tensors.

One small function per Keras layer type: it reads the layer's config (Keras 3
and Keras 2 / tf.keras spell them almost alike) and returns the convlens spec,
refusing in one sentence any option convlens does not compute the way Keras
does. ``keras_weight_shapes`` says which arrays a layer stores and their
shapes, so a file's tensors are checked before they are read, and
``to_torch_state`` lays them out for network.py's modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.layers import (
    ACTIVATIONS,
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
    Rescaling,
    Shape,
    Softmax,
    ZeroPadding2D,
)

if TYPE_CHECKING:
    from convlens.model.sequential import Sequential

Config = dict[str, Any]


def _refuse(layer: str, what: str, fix: str = "convlens cannot read this model") -> ConvlensError:
    return ConvlensError(f"layer {layer!r} {what}; {fix}.")


def _name(config: Config) -> str:
    name = config.get("name")
    if not isinstance(name, str):
        raise ConvlensError(
            f"a layer in the file has no usable name ({name!r}); the file is damaged."
        )
    return name


def _require(config: Config, key: str, allowed: tuple[Any, ...], default: Any) -> None:
    """Refuse an option whose value convlens does not compute (e.g. data_format)."""
    value = config.get(key, default)
    value = tuple(value) if isinstance(value, list) else value
    if value not in allowed:
        raise _refuse(_name(config), f"has {key}={value!r}, which convlens does not support")


def activation_name(value: Any, layer: str, keras2: bool) -> str:
    """A Keras activation as convlens names it ("relu", ...); anything else is refused."""
    if isinstance(
        value, dict
    ):  # a serialised function: {"class_name": "function", "config": "relu"}
        value = (
            value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
        )
    if value is None:
        return "linear"
    if (
        keras2 and value == "hard_sigmoid"
    ):  # tf.keras 2: clip(0.2 x + 0.5); Keras 3: relu6(x + 3) / 6
        raise _refuse(layer, "uses tf.keras 2's hard_sigmoid", "replace it by another activation")
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise _refuse(
            layer,
            f"uses the activation {value!r}, which convlens does not have",
            f"use one of {', '.join(ACTIVATIONS)}",
        )
    return value


def _channels_last(config: Config) -> None:
    _require(config, "data_format", ("channels_last", None), "channels_last")


def conv2d(config: Config, keras2: bool) -> Layer:
    """Conv2D: filters, kernel_size, strides, padding, activation, use_bias."""
    _channels_last(config)
    _require(config, "dilation_rate", ((1, 1), 1), (1, 1))
    _require(config, "groups", (1,), 1)
    return Conv2D(
        config.get("filters"),
        config.get("kernel_size"),
        strides=config.get("strides", (1, 1)),
        padding=str(config.get("padding", "valid")).lower(),
        activation=activation_name(config.get("activation"), _name(config), keras2),
        use_bias=bool(config.get("use_bias", True)),
        name=_name(config),
    )


def dense(config: Config, keras2: bool) -> Layer:
    """Dense: units, activation, use_bias."""
    return Dense(
        config.get("units"),
        activation=activation_name(config.get("activation"), _name(config), keras2),
        use_bias=bool(config.get("use_bias", True)),
        name=_name(config),
    )


def _pooling(cls: type[MaxPooling2D] | type[AveragePooling2D]) -> Callable[[Config, bool], Layer]:
    def pooling(config: Config, keras2: bool) -> Layer:
        _channels_last(config)
        return cls(
            config.get("pool_size", (2, 2)),
            strides=config.get("strides"),
            padding=str(config.get("padding", "valid")).lower(),
            name=_name(config),
        )

    pooling.__doc__ = f"{cls.keras_type}: pool_size, strides, padding."
    return pooling


def _global_pooling(
    cls: type[GlobalAveragePooling2D] | type[GlobalMaxPooling2D],
) -> Callable[[Config, bool], Layer]:
    def pooling(config: Config, keras2: bool) -> Layer:
        _channels_last(config)
        return cls(keepdims=bool(config.get("keepdims", False)), name=_name(config))

    pooling.__doc__ = f"{cls.keras_type}: one value per channel (keepdims)."
    return pooling


def flatten(config: Config, keras2: bool) -> Layer:
    """Flatten: Keras's (row, column, channel) order, as convlens's."""
    _channels_last(config)
    return Flatten(name=_name(config))


def dropout(config: Config, keras2: bool) -> Layer:
    """Dropout: rate (identity when predicting)."""
    return Dropout(float(config.get("rate", 0.5)), name=_name(config))


def batch_normalization(config: Config, keras2: bool) -> Layer:
    """BatchNormalization over the channels, with the file's epsilon and momentum."""
    axis = config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, 3, 1):  # 1 is the last axis of a flat (N, units) input
        raise _refuse(_name(config), f"normalises axis {axis!r}", "normalise the last axis")
    if not (config.get("center", True) and config.get("scale", True)):
        raise _refuse(_name(config), "has center or scale turned off", "keep both on")
    if config.get("renorm") or config.get("virtual_batch_size") or config.get("synchronized"):
        raise _refuse(_name(config), "uses batch renormalisation or virtual batches")
    return BatchNormalization(
        momentum=float(config.get("momentum", 0.99)),
        epsilon=float(config.get("epsilon", 1e-3)),
        name=_name(config),
    )


def rescaling(config: Config, keras2: bool) -> Layer:
    """Rescaling: x * scale + offset."""
    return Rescaling(config.get("scale", 1.0), config.get("offset", 0.0), name=_name(config))


def activation(config: Config, keras2: bool) -> Layer:
    """Activation: one function applied to every value."""
    name = _name(config)
    return Activation(activation_name(config.get("activation"), name, keras2), name=name)


def relu(config: Config, keras2: bool) -> Layer:
    """ReLU: max_value, negative_slope, threshold."""
    return ReLU(
        max_value=config.get("max_value"),
        negative_slope=config.get("negative_slope", 0.0),
        threshold=config.get("threshold", 0.0),
        name=_name(config),
    )


def leaky_relu(config: Config, keras2: bool) -> Layer:
    """LeakyReLU (Keras 3 negative_slope, Keras 2 alpha; 0.3 by default): a ReLU with a slope."""
    slope = config.get("negative_slope", config.get("alpha", 0.3))
    return ReLU(negative_slope=slope, name=_name(config))


def elu(config: Config, keras2: bool) -> Layer:
    """The ELU layer with alpha 1: Activation("elu")."""
    if config.get("alpha", 1.0) != 1.0:
        raise _refuse(_name(config), "is an ELU with alpha other than 1", "use alpha=1")
    return Activation("elu", name=_name(config))


def spatial_dropout(config: Config, keras2: bool) -> Layer:
    """SpatialDropout2D: like Dropout, nothing when predicting."""
    return Dropout(float(config.get("rate", 0.5)), name=_name(config))


def softmax(config: Config, keras2: bool) -> Layer:
    """Softmax over the last axis."""
    axis = config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis != -1:
        raise _refuse(_name(config), f"takes the softmax over axis {axis!r}", "use axis=-1")
    return Softmax(name=_name(config))


def zero_padding2d(config: Config, keras2: bool) -> Layer:
    """ZeroPadding2D: ((top, bottom), (left, right))."""
    _channels_last(config)
    return ZeroPadding2D(config.get("padding", (1, 1)), name=_name(config))


LAYER_READERS: dict[str, Callable[[Config, bool], Layer]] = {
    "Conv2D": conv2d,
    "Convolution2D": conv2d,
    "Dense": dense,
    "MaxPooling2D": _pooling(MaxPooling2D),
    "MaxPool2D": _pooling(MaxPooling2D),
    "AveragePooling2D": _pooling(AveragePooling2D),
    "AvgPool2D": _pooling(AveragePooling2D),
    "GlobalAveragePooling2D": _global_pooling(GlobalAveragePooling2D),
    "GlobalAvgPool2D": _global_pooling(GlobalAveragePooling2D),
    "GlobalMaxPooling2D": _global_pooling(GlobalMaxPooling2D),
    "GlobalMaxPool2D": _global_pooling(GlobalMaxPooling2D),
    "Flatten": flatten,
    "Dropout": dropout,
    "BatchNormalization": batch_normalization,
    "Rescaling": rescaling,
    "Activation": activation,
    "ReLU": relu,
    "LeakyReLU": leaky_relu,
    "ELU": elu,
    "SpatialDropout2D": spatial_dropout,
    "Softmax": softmax,
    "ZeroPadding2D": zero_padding2d,
}

REFUSED = {
    "Lambda": "is a Lambda layer, whose Python code convlens never runs",
    "TFOpLambda": "is a TensorFlow operation recorded as code, which convlens never runs",
    "Add": "merges branches (Add), and convlens reads single-chain models only",
    "Concatenate": "merges branches (Concatenate), and convlens reads single-chain models only",
}


def _is_custom(entry: Config) -> bool:
    """A class registered by user code (registered_name "package>Conv2D") or from elsewhere."""
    module, registered = entry.get("module"), entry.get("registered_name")
    foreign = isinstance(module, str) and not module.startswith(("keras", "tf_keras"))
    return foreign or (registered is not None and registered != entry.get("class_name"))


def layer_from_keras(entry: Any, keras2: bool) -> Layer:
    """The convlens spec of one Keras layer entry {"class_name", "config"}, or one sentence."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConvlensError(
            "a layer entry in the model config is not an object; the file is damaged."
        )
    kind, config = entry.get("class_name"), entry["config"]
    name = config.get("name", "?")
    if kind in REFUSED:
        raise _refuse(name, REFUSED[kind], "rebuild the model from built-in layers")
    reader = LAYER_READERS.get(kind) if isinstance(kind, str) else None
    if reader is None or _is_custom(entry):
        raise _refuse(
            name,
            f"is a {kind!r}, which convlens does not have (its layers: "
            f"{', '.join(sorted(set(LAYER_READERS)))})",
            "rebuild the model from those layers",
        )
    try:
        return reader(config, keras2)
    except ConvlensError as exc:
        raise ConvlensError(f"layer {name!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise _refuse(name, f"has an argument convlens cannot read ({exc})") from None


# ---------------------------------------------------------------- weights


def keras_snake(name: str) -> str:
    """Keras's to_snake_case: MaxPooling2D -> max_pooling2d, ReLU -> re_lu."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_weight_paths(model: Sequential) -> dict[str, str]:
    """Each layer's group under model.weights.h5's layers/, as Keras 3 names them.

    Keras 3 names the group after the layer's class, numbered in the model's
    order (dense, dense_1, ...), not after the layer's own name.
    """
    paths: dict[str, str] = {}
    counts: dict[str, int] = {}
    for row in model.rows:
        stem = keras_snake(row.layer.keras_type)
        count = counts.get(stem, 0)
        counts[stem] = count + 1
        paths[row.name] = stem if count == 0 else f"{stem}_{count}"
    return paths


def keras_weight_shapes(layer: Layer, input_shape: Shape) -> list[tuple[int, ...]]:
    """The arrays Keras stores for a layer, in Keras's order, with their shapes."""
    if isinstance(layer, Conv2D):
        kh, kw = layer.kernel_size
        shapes = [(kh, kw, input_shape[-1], layer.filters)]
        return shapes + ([(layer.filters,)] if layer.use_bias else [])
    if isinstance(layer, Dense):
        shapes = [(input_shape[0], layer.units)]
        return shapes + ([(layer.units,)] if layer.use_bias else [])
    if isinstance(layer, BatchNormalization):
        return [(input_shape[-1],)] * 4  # gamma, beta, moving_mean, moving_variance
    return []


WEIGHT_ORDER = {
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def keras_order(layer: Layer, weight_names: list[str]) -> list[int]:
    """Positions of a layer's stored arrays in Keras's order, by their names when they say it.

    "conv2d/kernel:0", "sequential/conv2d/bias" end in the variable's role; when
    every name does, the roles decide the order; otherwise the stored order stands.
    """
    roles = [name.rsplit("/", 1)[-1].split(":", 1)[0] for name in weight_names]
    wanted = WEIGHT_ORDER.get(layer.keras_type, ())[: len(roles)]
    if sorted(roles) == sorted(wanted) and len(set(roles)) == len(roles):
        return [roles.index(role) for role in wanted]
    return list(range(len(weight_names)))


def to_torch_state(name: str, layer: Layer, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Keras's arrays for one layer as network.py's state dict entries (float32)."""
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    if isinstance(layer, Conv2D):  # (kh, kw, in, out) -> (out, in, kh, kw)
        state = {f"{name}.weight": arrays[0].transpose(3, 2, 0, 1)}
    elif isinstance(layer, Dense):  # (in, out) -> (out, in)
        state = {f"{name}.weight": arrays[0].T}
    elif isinstance(layer, BatchNormalization):
        gamma, beta, mean, variance = arrays
        return {
            f"{name}.weight": gamma,
            f"{name}.bias": beta,
            f"{name}.running_mean": mean,
            f"{name}.running_var": variance,
        }
    else:
        return {}
    if len(arrays) > 1:
        state[f"{name}.bias"] = arrays[1]
    return state
