"""Filter portraits: what one filter of a layer responds to.

Two views, as the Deep Visualization Toolbox drew them:

- ``top_patches``: the test images that excite each filter most, from one
  pass over the test set. An image's response is the largest value of the
  filter's map over its positions; the patch is that position's receptive
  field on the input (receptive.py), the only pixels that value depends on.
- ``synthesise``: an input made to maximise the filter's mean activation, by
  gradient ascent from a grey image with a little noise, with the usual
  regularisation: random jitter (the image is rolled by up to JITTER pixels
  before each step and rolled back) and a small Gaussian blur every
  BLUR_EVERY steps, so that the result is a pattern, not high-frequency
  noise. For a Conv2D the objective adds PRE_WEIGHT x the mean before the
  activation, so a filter whose ReLU starts at 0 everywhere (no gradient)
    still climbs. On the lesson CNN's conv2d_1 (a 6-epoch run), of the 54
  filters some test image wakes, 52 synthesised inputs reach a higher mean
  activation than the test image exciting the filter most.
  Seeded and bounded in steps; pixels stay inside the range the model's
  preprocessing gives for 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from convlens.errors import ConvlensError
from convlens.inspect import journey
from convlens.inspect.attribution import last_conv, model_tensor
from convlens.model.modules import KerasConv2d
from convlens.model.network import Network
from convlens.model.receptive import ReceptiveField
from convlens.model.sequential import LayerRow, Sequential

BATCH = 500  # test images per forward pass
STEPS = 128  # gradient ascent steps
PRE_WEIGHT = 0.1  # share of the pre-activation mean in the objective
LEARNING_RATE = 0.05  # per step, on the 0..1 scale, of the gradient's own scale
JITTER = 2  # pixels
BLUR_EVERY = 4  # steps
BLUR_SIGMA = 0.5  # pixels


@dataclass(frozen=True)
class TopPatches:
    """Each filter's most exciting test images, strongest first."""

    layer: str
    filters: list[int]  # the filter numbers (from 0)
    indices: np.ndarray  # int64 (F, K): test image positions
    values: np.ndarray  # float32 (F, K): the filter's largest response in each image
    windows: np.ndarray  # int64 (F, K, 4): (top, left, bottom, right) of the patch, ends excluded
    field: ReceptiveField


def portrait_layer(spec: Sequential, layer: str | None) -> LayerRow:
    """The layer to portray: ``layer`` (it must output maps) or the last Conv2D."""
    if layer is not None:
        return journey.spatial_row(spec, layer)
    return last_conv(spec, "there are no filters to portray; use a convolutional run")


def parse_filters(text: str | None, depth: int, default: int = 16) -> list[int]:
    """Filter numbers from "0-15", "3,5,9" or "4" (default: the first ``default``), checked."""
    if text is None:
        return list(range(min(default, depth)))
    chosen: list[int] = []
    for part in str(text).split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high) if high else int(low)
        except ValueError:
            raise ConvlensError(
                f"--filters {text!r} is not a list of numbers; write it like 0-15 or 3,5,9."
            ) from None
        if not 0 <= first <= last < depth:
            raise ConvlensError(
                f"--filters {text!r} is outside the layer's {depth} filters; choose within "
                f"0-{depth - 1}."
            )
        chosen.extend(range(first, last + 1))
    return list(dict.fromkeys(chosen))


def _parts(model: Any) -> tuple[Network, Sequential]:
    network, spec = journey.unpack_model(model)
    if spec is None:
        raise TypeError("portraits need the model's spec: pass a Run or a (Sequential, Network)")
    return network, spec


def forward_to(
    network: Network, layer: str, x: torch.Tensor, before_activation: bool = False
) -> torch.Tensor:
    """The output of ``layer`` (N, C, h, w), running the network only that far, unfused.

    ``before_activation``: a Conv2D's output before its activation.
    """
    for name, module in network.named_children():
        if name == layer:
            linear = before_activation and isinstance(module, KerasConv2d)
            return module.linear(x) if linear else module(x)
        x = module(x)
    raise ConvlensError(f"the model has no layer {layer!r}.")


def strongest(model: Any, images: np.ndarray, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image and filter, the largest map value and where: float32 (N, C), int64 (N, C)."""
    network, spec = _parts(model)
    maxima, places = [], []
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(images), BATCH):
                maps = forward_to(network, layer, model_tensor(spec, images[start : start + BATCH]))
                value, place = maps.flatten(2).max(dim=2)  # (n, C) over h * w positions
                maxima.append(value.float().numpy())
                places.append(place.numpy())
    finally:
        network.train(was_training)
    return np.concatenate(maxima), np.concatenate(places).astype(np.int64)


def top_patches(
    model: Any, images: np.ndarray, layer: str | None = None, filters=None, count: int = 6
) -> TopPatches:
    """The ``count`` images of ``images`` (uint8 (N, H, W, C)) exciting each filter most.

    One pass over the images; ``filters`` a list of numbers (default the first
    16) or None. Ties keep the earlier image.
    """
    _, spec = _parts(model)
    row = portrait_layer(spec, layer)
    chosen = list(filters) if filters is not None else parse_filters(None, row.output_shape[-1])
    if count < 1:
        raise ConvlensError(f"the number of top images must be at least 1, not {count}.")
    batch = journey.as_image_batch(images)
    maxima, places = strongest(model, batch, row.name)
    field = spec.receptive_fields()[row.name]
    width = row.output_shape[1]
    indices = np.stack([np.argsort(-maxima[:, k], kind="stable")[:count] for k in chosen])
    values = np.take_along_axis(maxima[:, chosen].T, indices, axis=1)
    windows = np.array(
        [
            [field.window(*divmod(int(places[i, k]), width), spec.input_shape) for i in row_]
            for k, row_ in zip(chosen, indices, strict=True)
        ],
        dtype=np.int64,
    )
    return TopPatches(row.name, chosen, indices.astype(np.int64), values, windows, field)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of (N, C, H, W), 3 taps, borders replicated."""
    taps = torch.exp(-torch.tensor([1.0, 0.0, 1.0]) / (2 * sigma**2))
    taps = (taps / taps.sum()).to(x.dtype)
    channels = x.shape[1]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = F.conv2d(padded, taps.view(1, 1, 3, 1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, taps.view(1, 1, 1, 3).repeat(channels, 1, 1, 1), groups=channels)


def synthesise(
    model: Any, layer: str | None, filters: Sequence[int], steps: int = STEPS, seed: int = 0
) -> np.ndarray:
    """Inputs maximising each filter's mean activation: uint8 (F, H, W, C), one per filter.

    Gradient ascent (normalised steps of LEARNING_RATE) with jitter and blur,
    all filters at once; the same ``seed`` gives the same pictures.
    """
    network, spec = _parts(model)
    row = portrait_layer(spec, layer)
    if not 1 <= steps <= 2000:
        raise ConvlensError(f"the number of steps must be 1..2000, not {steps}.")
    height, width, channels = spec.input_shape
    low = model_tensor(spec, np.zeros((1, height, width, channels), np.uint8))
    high = model_tensor(spec, np.full((1, height, width, channels), 255, np.uint8))
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(len(filters), channels, height, width, generator=generator)
    x = (low + (high - low) * (0.5 + 0.1 * (noise - 0.5))).contiguous()
    picks = torch.tensor(list(filters))
    was_training = network.training
    network.eval()
    try:
        for step in range(steps):
            x = _ascent_step(network, row.name, x, picks, generator, low, high)
            if (step + 1) % BLUR_EVERY == 0:
                x = torch.minimum(torch.maximum(_blur(x, BLUR_SIGMA), low), high)
    finally:
        network.train(was_training)
    scaled = ((x - low) / (high - low).clamp_min(1e-12)).clamp(0, 1)
    return (scaled.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def _ascent_step(network, layer, x, picks, generator, low, high) -> torch.Tensor:
    """One jittered gradient ascent step on each image's filter mean."""
    dy, dx = (int(v) for v in torch.randint(-JITTER, JITTER + 1, (2,), generator=generator))
    shifted = torch.roll(x, (dy, dx), dims=(2, 3)).detach().requires_grad_(True)
    score = _objective(network, layer, shifted, picks).sum()
    (grad,) = torch.autograd.grad(score, shifted)
    grad = torch.roll(grad, (-dy, -dx), dims=(2, 3))
    scale = grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    stepped = x + LEARNING_RATE * (high - low) * grad / scale
    return torch.minimum(torch.maximum(stepped, low), high).detach()


def _objective(network: Network, layer: str, x: torch.Tensor, picks: torch.Tensor):
    """Per image k: mean of filter picks[k]'s map, plus PRE_WEIGHT x its mean before activation."""
    pre = forward_to(network, layer, x, before_activation=True)  # (F, C, h, w)
    module = dict(network.named_children())[layer]
    post = module.act(pre) if isinstance(module, KerasConv2d) and module.act is not None else pre
    rows = torch.arange(len(picks))
    return post[rows, picks].mean(dim=(1, 2)) + PRE_WEIGHT * pre[rows, picks].mean(dim=(1, 2))


def objective(model: Any, images: np.ndarray, layer: str, filters: Sequence[int]) -> np.ndarray:
    """What ``synthesise`` maximises, for uint8 image k and filter k: float32 (F,)."""
    network, spec = _parts(model)
    was_training = network.training
    network.eval()
    with torch.inference_mode():
        found = _objective(network, layer, model_tensor(spec, images), torch.tensor(list(filters)))
    network.train(was_training)
    return found.float().numpy()


def mean_activation(model: Any, images: np.ndarray, layer: str, filters: Sequence[int]):
    """Each image's mean activation of its own filter: float32 (F,), image k for filter k."""
    network, spec = _parts(model)
    was_training = network.training
    with torch.inference_mode():
        maps = forward_to(network.eval(), layer, model_tensor(spec, images))
    network.train(was_training)
    return maps[torch.arange(len(filters)), torch.tensor(list(filters))].mean(dim=(1, 2)).numpy()
