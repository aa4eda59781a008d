"""What a training run will be: the model fitted to the data, the data, the recipe.

`convlens train` and the explorer's training jobs both start here, so a run
trained from the page is the run the command line would have trained. A preset
is a recipe for a model, not a fixed input: on a folder of your own images it
is built for their size and colour (folders.profile) and their number of
classes; a model file is taken as written and the images are read at its
input. The recipe is scaled to the dataset by optimiser steps (train.for_dataset).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from convlens.data import datasets
from convlens.data.datasets import Dataset
from convlens.errors import ConvlensError
from convlens.model.presets import PRESETS, resolve_model
from convlens.model.sequential import Sequential
from convlens.training.recipes import TrainConfig, default_recipe, for_dataset, recipe_config

COLORS = {"grayscale": 1, "rgb": 3}


@dataclass(frozen=True)
class TrainingPlan:
    """A model ready for its dataset, the dataset, the scaled recipe, and why the input is so."""

    model: Sequential
    dataset: Dataset
    config: TrainConfig
    input_why: str  # e.g. "32x32x3: your images' size; colour, your images' colour"


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """``--input-size`` "H,W" (or "N" for a square) as (height, width); None stays None."""
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        size = tuple(int(part) for part in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ConvlensError(
            f"input size {text!r} is not a height and width; give two positive numbers like 32,32."
        )
    return size  # type: ignore[return-value]


def color_channels(color: str | None) -> int | None:
    """``--color`` grayscale|rgb as a channel count; None stays None (chosen from the images)."""
    if color is None:
        return None
    if color not in COLORS:
        raise ConvlensError(f"unknown colour {color!r}; use grayscale or rgb.")
    return COLORS[color]


def plan_training(
    model: str | Sequential = "seed-cnn",
    dataset: str = "fashion-mnist",
    data_dir: str | Path | None = None,
    *,
    recipe: str | None = None,
    input_size: tuple[int, int] | None = None,
    color: str | None = None,
    train_images: int | None = None,
    fit: bool = False,
    **overrides: object,
) -> TrainingPlan:
    """The model, data and recipe of a new training run, as `convlens train` does it.

    ``model``: a preset name, a model JSON path or a Sequential. ``dataset``:
    fashion-mnist, mnist or a folder. ``input_size``/``color`` override the
    size and colour a preset gets from a folder. ``train_images``: train on the
    first that many training images only (the recipe is scaled to them). ``fit``:
    a Sequential is fitted to the data as a preset is (the explorer's editor sends
    a preset, or a lesson's exercise made from one, as a model JSON).
    ``overrides`` are TrainConfig fields (None means the recipe's); given epochs
    are kept as they are.
    """
    name = model if isinstance(model, str) else model.name
    spec = resolve_model(model) if isinstance(model, str) else model
    is_preset = (isinstance(model, str) and model in PRESETS) or fit
    channels = color_channels(color)
    if not is_preset and (input_size or channels):
        raise ConvlensError(
            "--input-size and --color choose a preset's input; a model file states its own "
            "input_shape: change that instead."
        )
    config = recipe_config(recipe or default_recipe(name), **overrides)
    loaded, why = _load_for(spec, dataset, data_dir, is_preset, input_size, channels)
    loaded = loaded.with_train_images(train_images)
    if is_preset:
        spec = spec.with_input_shape(loaded.image_shape).with_output_units(loaded.num_classes)
    scaled = for_dataset(
        config, len(loaded.train), epochs_given=overrides.get("epochs") is not None
    )
    if scaled.mirrors and loaded.mirror_symmetric:
        # Trained on mirrors, the model predicts from each image and its mirror (+0.3 points
        # on Fashion-MNIST for the best preset); saved in its model.json, so every command agrees.
        spec = spec.with_test_time_flip(True)
        scaled = replace(scaled, flip_augment=True)
    return TrainingPlan(spec, replace(loaded, input_why=why), scaled, why)


def _load_for(
    spec: Sequential,
    dataset: str,
    data_dir: str | Path | None,
    is_preset: bool,
    input_size: tuple[int, int] | None,
    channels: int | None,
) -> tuple[Dataset, str]:
    """The dataset read for ``spec``, and the sentence saying why it has its shape."""
    height, width, depth = spec.input_shape
    is_folder = str(dataset).strip().lower() not in datasets.SOURCES
    if is_folder and is_preset:  # the images choose, never below the preset's own size
        loaded = datasets.load(
            dataset, data_dir, image_size=input_size, channels=channels, minimum=(height, width)
        )
        return loaded, loaded.input_why
    size = input_size or (height, width)
    loaded = datasets.load(dataset, data_dir, image_size=size, channels=channels or depth)
    if is_folder:
        shape = "x".join(str(n) for n in loaded.image_shape)
        return loaded, f"{shape}: the model file's input_shape"
    return loaded, _named_why(dataset, loaded.image_shape, asked=bool(input_size or channels))


def _named_why(dataset: str, shape: tuple[int, ...], asked: bool) -> str:
    """Why Fashion-MNIST or MNIST is read at ``shape`` (``asked``: --input-size or --color)."""
    if shape == (28, 28, 1):
        return f"28x28x1: {dataset}'s own images"
    fitted = "padded" if min(shape[:2]) >= 28 else "resized"
    gray = ", gray repeated to RGB" if shape[2] == 3 else ""
    how = "as asked" if asked else "the model's input"
    return f"{'x'.join(str(n) for n in shape)}: {how}; {dataset}'s 28x28x1 images {fitted}{gray}"


@dataclass(frozen=True)
class PlannedInput:
    """What a new run's images will be on a dataset: their shape, the classes, and why."""

    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    why: str


def planned_input(
    model: Sequential, dataset: str, data_dir: str | Path | None = None, *, fit: bool = False
) -> PlannedInput:
    """The input and classes ``plan_training(model, dataset, fit=fit)`` would give, and why.

    Fashion-MNIST and MNIST are answered without reading them; a folder is read
    as training would read it (its colour is known once its images are decoded).
    """
    key = str(dataset).strip().lower()
    if key in datasets.SOURCES:
        shape = model.input_shape  # a preset keeps its own input on them, as a model file does
        names = tuple(datasets.SOURCES[key].class_names)
        return PlannedInput(shape, names, _named_why(dataset, shape, asked=False))
    loaded, why = _load_for(model, dataset, data_dir, fit, None, None)
    return PlannedInput(loaded.image_shape, tuple(loaded.class_names), why)
