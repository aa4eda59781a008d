"""Datasets: the IDX reader, Fashion-MNIST and MNIST sources, image folders.

A Dataset is uint8 images (N, H, W, C), int64 labels and class names, split
into train and test. Nothing here imports torch: the training engine turns a
Dataset into tensors once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """One part of a dataset: images uint8 (N, H, W, C) and labels int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A labelled image dataset held in memory, with its train and test splits."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(n) for n in self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """How many classes the labels range over."""
        return len(self.class_names)
