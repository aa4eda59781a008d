"""Layer types, one class each, registered by their Keras names (see base.py).

Importing this package registers every type; ``LAYER_TYPES`` maps each
Keras name to its class and ``layer_type(name)`` looks one up.
"""

# Imported in the lesson's order, which is the registry's (and the editor's) order.
# ruff: noqa: I001
from convlens.model.layers.conv import Conv2D
from convlens.model.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from convlens.model.layers.core import Dense, Dropout, Flatten
from convlens.model.layers.normalization import BatchNormalization
from convlens.model.layers.activations import Activation, ReLU, Rescaling, Softmax
from convlens.model.layers.padding import ZeroPadding2D
from convlens.model.layers.cropping import Cropping2D
from convlens.model.layers.base import (
    ACTIVATIONS,
    EDITOR_KINDS,
    ENDINGS,
    JOURNEY_ROLES,
    LAYER_TYPES,
    PADDINGS,
    RECEPTIVE_RULES,
    EditorField,
    Layer,
    SameShapeLayer,
    Shape,
    layer_from_config,
    layer_type,
    same_padding,
    window_output,
)

__all__ = [
    "ACTIVATIONS",
    "EDITOR_KINDS",
    "ENDINGS",
    "JOURNEY_ROLES",
    "LAYER_TYPES",
    "PADDINGS",
    "RECEPTIVE_RULES",
    "Activation",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Cropping2D",
    "Dense",
    "Dropout",
    "EditorField",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Layer",
    "MaxPooling2D",
    "ReLU",
    "Rescaling",
    "SameShapeLayer",
    "Shape",
    "Softmax",
    "ZeroPadding2D",
    "layer_from_config",
    "layer_type",
    "same_padding",
    "window_output",
]
