"""Accuracy, per-class accuracy, confusion matrix and predictions of a trained network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from convlens.data.datasets import Split
from convlens.model.network import Network, pixels_to_tensor, scale_pixels
from convlens.runs.display import evaluation_html

# Inference batch: 128 keeps the first layer's maps (128 x 64 x 26 x 26 floats) in cache.
# Measured on the 10,000 test images: 1,790 img/s at batch 1000, 2,449 at 128, 2,418 at 64.
EVAL_BATCH = 128


@dataclass(frozen=True)
class Evaluation:
    """How a network does on one split."""

    accuracy: float
    loss: float
    per_class_accuracy: np.ndarray  # (classes,) float64; NaN for a class with no images
    confusion: np.ndarray  # (classes, classes) int64: rows true class, columns predicted
    predictions: np.ndarray  # (N,) int64
    probabilities: np.ndarray  # (N, classes) float32

    def as_dict(self, class_names: tuple[str, ...]) -> dict:
        """JSON-ready: accuracy, loss, per-class accuracy by name, confusion rows."""
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class_accuracy": {
                name: (None if np.isnan(acc) else float(acc))
                for name, acc in zip(class_names, self.per_class_accuracy, strict=True)
            },
            "confusion_matrix": self.confusion.tolist(),
        }

    def __repr__(self) -> str:
        return (
            f"Evaluation(accuracy {self.accuracy:.4f}, loss {self.loss:.4f}, "
            f"{len(self.predictions):,} images)"
        )

    def _repr_html_(self) -> str:
        """In a notebook: accuracy, loss and the confusion matrix, shaded by row."""
        return evaluation_html(self.accuracy, self.loss, self.confusion)


@torch.inference_mode()
def predict_logits(
    network: Network, images: torch.Tensor, batch_size: int = EVAL_BATCH, flip: bool = False
) -> torch.Tensor:
    """Logits (N, classes), on the CPU, for an image tensor (N, C, H, W), in eval mode.

    ``images`` are the network's input (float) or pixels (uint8, from
    ``pixels_to_tensor``), scaled batch by batch by the network's input scale so
    a whole split is never held as floats. ``flip``: test-time augmentation,
    the mean of the logits of each image and its mirror image (left-right).
    """
    was_training = network.training
    device = next(network.parameters()).device  # batches go where the network is (CPU or GPU)
    network.eval()
    try:
        if len(images) == 0:  # the network's own (0, classes) answer
            return _batch_logits(network, images, device, flip).cpu()
        return _fill_logits(network, images, device, batch_size, flip).cpu()
    finally:
        network.train(was_training)


def _fill_logits(
    network: Network, images: torch.Tensor, device: torch.device, batch_size: int, flip: bool
) -> torch.Tensor:
    """Logits of a non-empty split, batch by batch, into one block allocated once
    where the network is (on a GPU, one copy to the host at the end, not one a batch).

    Collecting per-batch tensors and joining them at the end left freed holes
    between the first convolution's maps that the heap could not give back:
    peak memory of ``convlens train`` grew by 100-300 MiB in some test
    evaluations (issue 24; BENCHMARKS.md, goal 6).
    """
    logits_of_all = torch.empty(0)  # replaced once the first batch tells the class count
    for start in range(0, len(images), batch_size):
        logits = _batch_logits(network, images[start : start + batch_size], device, flip)
        if start == 0:
            logits_of_all = logits.new_empty((len(images), logits.shape[1]))
        logits_of_all[start : start + len(logits)] = logits
        del logits  # freed before the next batch's maps are allocated
    return logits_of_all


def _batch_logits(
    network: Network, pixels_or_input: torch.Tensor, device: torch.device, flip: bool
) -> torch.Tensor:
    """Logits of one batch, where the network is; with ``flip``, averaged with its mirror's."""
    batch = pixels_or_input.to(device)
    if batch.dtype == torch.uint8:
        batch = scale_pixels(batch, network.input_scale)
    logits = network(batch)
    if flip:
        logits = (logits + network(batch.flip(3))) / 2
    return logits


def predict_proba(network: Network, images: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Class probabilities (N, classes) float32 for uint8 images (N, H, W, C)."""
    logits = predict_logits(network, pixels_to_tensor(images, input_shape))
    probs = torch.softmax(logits, dim=1) if network.final_softmax else logits
    return probs.float().numpy()


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts (classes, classes): entry [t, p] is how many of class t were predicted p."""
    flat = labels.astype(np.int64) * classes + predictions.astype(np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def evaluate_tensors(
    network: Network, images: torch.Tensor, labels: torch.Tensor, classes: int, flip: bool = False
) -> Evaluation:
    """Evaluate on tensors: images (N, C, H, W) (uint8 pixels or float input), labels (N,) int64."""
    logits = predict_logits(network, images, flip=flip).float().cpu()
    labels = labels.cpu()
    loss = float(F.cross_entropy(logits, labels))
    predictions = logits.argmax(dim=1).numpy()
    truth = labels.numpy()
    confusion = confusion_matrix(truth, predictions, classes)
    per_class_total = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / per_class_total
    probs = torch.softmax(logits, dim=1) if network.final_softmax else logits
    return Evaluation(
        accuracy=float((predictions == truth).mean()),
        loss=loss,
        per_class_accuracy=per_class,
        confusion=confusion,
        predictions=predictions,
        probabilities=probs.float().numpy(),
    )


def evaluate(
    network: Network, split: Split, input_shape: tuple[int, ...], classes: int
) -> Evaluation:
    """Evaluate a network on a split of uint8 images (N, H, W, C) and int64 labels."""
    images = pixels_to_tensor(split.images, input_shape)
    labels = torch.from_numpy(np.ascontiguousarray(split.labels, dtype=np.int64))
    return evaluate_tensors(network, images, labels, classes)
