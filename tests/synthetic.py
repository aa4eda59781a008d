"""Small generated data for tests: learnable image classes and IDX files.

Tests must not depend on the real Fashion-MNIST; these stand in for it.
"""

from __future__ import annotations

import copy
import gzip
import struct
from pathlib import Path

import numpy as np

from convlens.data.datasets import Dataset, Split
from convlens.model.network import build_network
from convlens.model.sequential import Sequential
from convlens.model.weights import save_model
from convlens.runs.directory import write_history, write_metrics
from convlens.training.callbacks import Callback


def pattern_images(count: int, classes: int = 10, size: int = 28, seed: int = 0):
    """uint8 images (count, size, size, 1) and labels: class k is a bright block in cell k."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=count)
    images = rng.integers(0, 60, size=(count, size, size, 1)).astype(np.uint8)
    cell = size // 4
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 4)
        jitter = rng.integers(0, 3, size=2)
        top, left = row * cell + jitter[0], col * cell + jitter[1]
        images[index, top : top + cell - 2, left : left + cell - 2, 0] = 230
    return images, labels.astype(np.int64)


def pattern_dataset(train: int = 600, test: int = 200, classes: int = 10, seed: int = 0) -> Dataset:
    """A learnable Dataset of pattern_images, named like MNIST's classes."""
    x_train, y_train = pattern_images(train, classes, seed=seed)
    x_test, y_test = pattern_images(test, classes, seed=seed + 1)
    return Dataset(
        name="patterns",
        train=Split(x_train, y_train),
        test=Split(x_test, y_test),
        class_names=tuple(str(i) for i in range(classes)),
        source="generated",
    )


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_dataset(directory: Path, dataset: Dataset, compress: bool = True) -> Path:
    """Write a Dataset as the four MNIST-named IDX files in ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": dataset.train.images[..., 0],
        "train-labels-idx1-ubyte": dataset.train.labels.astype(np.uint8),
        "t10k-images-idx3-ubyte": dataset.test.images[..., 0],
        "t10k-labels-idx1-ubyte": dataset.test.labels.astype(np.uint8),
    }
    for stem, array in parts.items():
        data = idx_bytes(array)
        if compress:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return directory


def tiny_cnn(classes: int = 10):
    """A small CNN (6 then 4 filters): every layer kind of the lesson's, fast to run."""
    from convlens.model.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from convlens.model.sequential import Sequential

    return Sequential(
        [
            Conv2D(6, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(2, 2),
            Conv2D(4, (3, 3), activation="relu"),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(classes, activation="softmax"),
        ],
        name="tiny-cnn",
    )


def write_run(directory: Path, model, class_names: tuple[str, ...], dataset: str = "mnist") -> Path:
    """An untrained run directory as `convlens train` lays it out (seeded weights, no training)."""
    from convlens.model.weights import save_model
    from convlens.runs.directory import write_metrics

    model = model.with_class_names(class_names)
    directory.mkdir(parents=True)
    save_model(directory, model, build_network(model, seed=0))
    write_metrics(
        directory,
        {"model": model.name, "test_accuracy": 0.5, "epochs": 1, "dataset": dataset},
    )
    return directory


def save_png(path: Path, pixels: np.ndarray) -> Path:
    """Write uint8 (H, W), (H, W, 1) or (H, W, 3) pixels as a PNG, making its folder."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    array = pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


# Red and green of the same ITU-R 601 luma: a grayscale copy cannot tell them apart.
RED = (220, 80, 80)
GREEN = (60, 165, 60)  # luma 121.6 -> 122, as red's 121.9 -> 122


def colour_folder(root: Path, per_class: int, size: int = 16, seed: int = 0) -> Path:
    """A folder of two classes, red and green squares on grey noise, told apart by colour alone."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", max(per_class // 2, 2))):
        for name, colour in (("red", RED), ("green", GREEN)):
            for k in range(count):
                image = np.repeat(rng.integers(80, 130, (size, size, 1)), 3, axis=2)
                side = size // 3
                top, left = rng.integers(0, size - side, 2)
                image[top : top + side, left : left + side] = colour
                save_png(root / split / name / f"{k}.png", image.astype(np.uint8))
    return root


SHAPE_CLASSES = ("circle", "square", "triangle")


def shapes_folder(root: Path, per_class: int = 8, sizes=(40, 48, 56), seed: int = 0) -> Path:
    """A new user's folder: 3 classes of colour shapes, PNGs of mixed sizes (median 48x48).

    One subfolder per class and no train/test split: a test split is held out and recorded.
    """
    rng = np.random.default_rng(seed)
    for name in SHAPE_CLASSES:
        for k in range(per_class):
            side = sizes[k % len(sizes)]
            rows, cols = np.mgrid[0:side, 0:side] / side - 0.5
            if name == "circle":
                inside = rows**2 + cols**2 < 0.12
            elif name == "square":
                inside = (abs(rows) < 0.3) & (abs(cols) < 0.3)
            else:
                inside = (rows > -0.3) & (rows < 0.3) & (abs(cols) < (rows + 0.3) / 2)
            image = np.empty((side, side, 3), dtype=np.uint8)
            image[:] = rng.integers(180, 255, 3)  # a light background of its own colour
            image[inside] = rng.integers(0, 140, 3)
            save_png(root / name / f"{k}.png", image)
    return root


class Snapshots(Callback):
    """A callback keeping a copy of every epoch's snapshot (the state holds live tensors)."""

    def __init__(self) -> None:
        self.states: list = []

    def on_snapshot(self, state) -> None:
        self.states.append(copy.deepcopy(state))


# Class names of make_run's runs: the first tests that a report escapes what it shows.
REPORT_CLASSES = ("<script>alert('x')</script>", *(f"class {i}" for i in range(1, 9)), "Ankle boot")


def make_run(directory: Path, model: Sequential, seconds: float = 13.0) -> Path:
    """An untrained run directory as `convlens train` lays it out (no training)."""
    model = model.with_class_names(REPORT_CLASSES)
    directory.mkdir(parents=True)
    save_model(directory, model, build_network(model, seed=0))
    write_history(
        directory,
        [
            {
                "epoch": e,
                "train_loss": 2.0 / e,
                "train_accuracy": 0.3 * e,
                "test_loss": 2.1 / e,
                "test_accuracy": 0.28 * e,
                "seconds": seconds / 2,
                "learning_rate": 0.001,
            }
            for e in (1, 2)
        ],
    )
    write_metrics(
        directory,
        {
            "test_accuracy": 0.56,
            "epochs": 2,
            "seconds": seconds,
            "seconds_per_epoch": seconds / 2,
            "images_per_second": 123.0,
            "dataset": "mnist",
            "total_params": model.total_params,
            "config": {"label_smoothing": 0.1, "recipe": "fast"},
            "threads": 2,
        },
    )
    return directory
