"""The preset models by name: the lesson's CNN and dense baseline, LeNet-5, the
MNIST exercise and the most accurate preset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convlens.errors import ConvlensError
from convlens.model.files import read_spec
from convlens.model.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPooling2D,
)
from convlens.model.sequential import Sequential


def _seed_cnn() -> list[Layer]:
    return [
        Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2, 2),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]


def _seed_dnn() -> list[Layer]:
    return [
        Flatten(input_shape=(28, 28, 1)),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]


def _lenet5() -> list[Layer]:
    # LeCun et al. 1998 on 32x32x1: 5x5 filters, 6 then 16 deep, average pooling, tanh.
    return [
        Conv2D(6, (5, 5), activation="tanh", input_shape=(32, 32, 1)),
        AveragePooling2D(2, 2),
        Conv2D(16, (5, 5), activation="tanh"),
        AveragePooling2D(2, 2),
        Flatten(),
        Dense(120, activation="tanh"),
        Dense(84, activation="tanh"),
        Dense(10, activation="softmax"),
    ]


def _single_conv() -> list[Layer]:
    # The lesson's MNIST exercise: one convolution and one pooling layer.
    return [
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]


def _best() -> list[Layer]:
    # convlens's most accurate preset for 28x28 grayscale in 15 minutes on a 2-core CPU
    # (see BENCHMARKS.md): twice the lesson's width at the top, batch normalisation
    # after every convolution, three pooling stages, dropout before and after Dense(256).
    return [
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Conv2D(64, (3, 3), activation="relu", padding="same"),
        BatchNormalization(),
        Conv2D(64, (3, 3), activation="relu", padding="same"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Conv2D(128, (3, 3), activation="relu", padding="same"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Flatten(),
        Dropout(0.3),
        Dense(256, activation="relu"),
        Dropout(0.3),
        Dense(10, activation="softmax"),
    ]


@dataclass(frozen=True)
class Preset:
    """A named model: its layers, one line saying what it is, and the recipe it trains with."""

    name: str
    layers: Callable[[], list[Layer]]
    description: str
    recipe: str = "fast"  # a recipe name (training/recipes.py) unless --recipe says otherwise


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("seed-cnn", _seed_cnn, "the lesson's CNN: two Conv2D(64, 3x3) + MaxPooling2D(2, 2) blocks"),
        Preset("seed-dnn", _seed_dnn, "the lesson's dense-only baseline: Flatten, Dense(128), Dense(10)"),
        Preset("lenet5", _lenet5, "LeNet-5 on 32x32x1: 5x5 filters, 6 then 16 deep, average pooling"),
        Preset("single-conv", _single_conv, "the MNIST exercise: one Conv2D(32, 3x3) and one pooling"),
        Preset(
            "best",
            _best,
            "the most accurate preset: four Conv2D with batch normalisation, dropout",
            recipe="best",
        ),
    )
}


def preset(name: str) -> Sequential:
    """The named preset model (seed-cnn, seed-dnn, lenet5, single-conv, best)."""
    if name not in PRESETS:
        raise ConvlensError(
            f"unknown model {name!r}; use a preset ({', '.join(PRESETS)}) or a model JSON file."
        )
    return Sequential(PRESETS[name].layers(), name=name)


def resolve_model(name_or_path: str) -> Sequential:
    """A preset by name, or a model JSON file by path."""
    if name_or_path in PRESETS:
        return preset(name_or_path)
    if name_or_path.endswith(".json") or Path(name_or_path).is_file():
        return read_spec(name_or_path)
    return preset(name_or_path)  # raises the "unknown model" sentence
