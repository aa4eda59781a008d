"""Reading Keras's layer configs: what every layer type's ``from_keras`` uses.

Keras 3 and Keras 2 (tf.keras) spell a layer's config almost alike; these
helpers read a value or refuse, in one sentence naming the layer, any
option convlens does not compute the way Keras does. File formats (.keras,
.h5) are read in convlens.interop; this module sees one config dict.
"""

from __future__ import annotations

from typing import Any

from convlens.errors import ConvlensError
from convlens.model.layers.base import ACTIVATIONS

Config = dict[str, Any]


def refuse(layer: str, what: str, fix: str = "convlens cannot read this model") -> ConvlensError:
    """The sentence for a Keras layer convlens cannot read: "layer 'x' <what>; <fix>."."""
    return ConvlensError(f"layer {layer!r} {what}; {fix}.")


def layer_name(config: Config) -> str:
    """The layer's name in the file, or one sentence saying the file is damaged."""
    name = config.get("name")
    if not isinstance(name, str):
        raise ConvlensError(
            f"a layer in the file has no usable name ({name!r}); the file is damaged."
        )
    return name


def require(config: Config, key: str, allowed: tuple[Any, ...], default: Any) -> None:
    """Refuse an option whose value convlens does not compute (e.g. data_format)."""
    value = config.get(key, default)
    value = tuple(value) if isinstance(value, list) else value
    if value not in allowed:
        raise refuse(layer_name(config), f"has {key}={value!r}, which convlens does not support")


def channels_last(config: Config) -> None:
    """Refuse a layer that reads its images channels first."""
    require(config, "data_format", ("channels_last", None), "channels_last")


def one_axis(config: Config, default: int = -1) -> Any:
    """A config's axis, [axis] read as axis."""
    axis = config.get("axis", default)
    return axis[0] if isinstance(axis, list) and len(axis) == 1 else axis


def activation_name(value: Any, layer: str, keras2: bool) -> str:
    """A Keras activation as convlens names it ("relu", ...); anything else is refused."""
    if isinstance(value, dict):  # a serialised function: {"class_name": "function", "config": "relu"}
        value = (
            value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
        )
    if value is None:
        return "linear"
    if keras2 and value == "hard_sigmoid":  # tf.keras 2: clip(0.2 x + 0.5); Keras 3: relu6(x + 3) / 6
        raise refuse(layer, "uses tf.keras 2's hard_sigmoid", "replace it by another activation")
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise refuse(
            layer,
            f"uses the activation {value!r}, which convlens does not have",
            f"use one of {', '.join(ACTIVATIONS)}",
        )
    return value
