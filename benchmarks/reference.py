"""The plain PyTorch version of the lesson, as a tutorial would write it: the reference.

NCHW tensors, nn.Sequential with nn.ReLU then nn.MaxPool2d, a DataLoader over
a TensorDataset with shuffling, Adam 1e-3, batch 32, cross-entropy. Nothing
from convlens is used here, so the benchmarks compare against an independent
implementation.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def lesson_model() -> nn.Module:
    """The lesson's CNN in plain PyTorch (243,786 parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 28, 28, 1) -> float (N, 1, 28, 28) / 255, int64 labels."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


@torch.no_grad()
def accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000, device: str = "cpu"
) -> float:
    """Test accuracy, batched, eval mode; each batch copied to ``device`` as a tutorial does."""
    model.eval()
    correct = sum(
        (model(x[i : i + batch].to(device)).argmax(1).cpu() == y[i : i + batch]).sum().item()
        for i in range(0, len(x), batch)
    )
    model.train()
    return correct / len(x)


def train_lesson(
    dataset, epochs: int = 5, seed: int = 0, on_epoch=None, device: str = "cpu"
) -> nn.Module:
    """Train the lesson's recipe (Adam 1e-3, batch 32); on_epoch(epoch, seconds, model) each epoch.

    On a GPU it does what the PyTorch tutorials do: the model on the device,
    each batch copied there from the DataLoader's host tensors.
    """
    torch.manual_seed(seed)
    model = lesson_model().to(device)
    x, y = to_tensors(dataset.train.images, dataset.train.labels)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()
        if on_epoch is not None:
            on_epoch(epoch, time.perf_counter() - started, model)
    return model
