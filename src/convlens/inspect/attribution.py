"""Why a prediction: which input pixels raised one class's score (attribution maps).

``attribute(run, images, method, target=None, layer=None)`` returns one float32
map (N, H, W) per uint8 image (N, H, W, C), at the input's size, where a
higher value means more evidence for ``target`` (default: the class the model
predicts). The score explained is always the target class's logit, the
network's output before the softmax. The methods are Captum's (PyTorch's own
interpretability library), computed here without importing it (its import
took 0.6 s after every training run, and its occlusion builds each patch's
mask one by one); the tests hold every map equal to Captum's to 1e-5:

- ``gradcam``: Grad-CAM (Selvaraju et al. 2017) on a layer with maps (the
  last Conv2D by default): each map weighted by the mean gradient of the score
  over it, summed, negative parts cut to 0 (``layer_gradcam``: captum's
  LayerGradCam, which the tests hold it equal to, computed without importing
  captum, so the report after training does not pay its 0.6 s import), then
  brought to the input's size by linear interpolation between the centres of
  the map pixels' receptive fields (receptive.py): a plain resize of the
  lesson's 11x11 conv2d_1 map to 28x28 would shift it by up to 3 pixels.
- ``saliency``: the input gradient (Simonyan et al. 2014), d score / d pixel,
  summed over the colour channels (the score's slope as the pixel brightens).
  Signed: red where brightening the pixel would raise the score, blue where it
  would lower it. (Simonyan's |gradient| measures sensitivity, not evidence
  for the class: on Fashion-MNIST deleting its top 10% pixels lowered the
  class's probability less than deleting random ones; see BENCHMARKS.md.)
- ``integrated-gradients``: the gradient averaged along the straight path from
  a black image (the datasets' background, 0) to the image, times the
  difference (Sundararajan et al. 2017), IG_STEPS Gauss-Legendre steps, summed
  over channels. Its maps add up to score(image) - score(black); the part they
  miss is the convergence delta, returned by ``explain``.
- ``occlusion``: a square patch of black slid over the image (the lesson's
  sliding filter turned into an explanation; Zeiler & Fergus 2014): each
  pixel gets the mean drop of the score over the patch positions covering it.
  The patch covers every channel; it steps by the stride, the last step
  cut at the border so every pixel is covered. Default patch and stride: see
  ``occlusion_window``.

Pixels are preprocessed exactly as for prediction (``model_tensor``), so the
gradients are taken with respect to the model's real input (0..1 for runs
trained here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convlens.errors import ConvlensError
from convlens.inspect import journey, methods
from convlens.inspect.methods import METHODS, check_method
from convlens.model.layers import Conv2D
from convlens.model.network import Network, images_to_tensor
from convlens.model.receptive import ReceptiveField
from convlens.model.sequential import LayerRow, Sequential

IG_STEPS = 32  # Gauss-Legendre nodes; completeness error on the lesson CNN: see BENCHMARKS.md
IG_BATCH = 256  # path points evaluated at once
OCCLUSION_BATCH = 128  # occluded copies evaluated at once
TARGET = Sequence[int] | int | str | None


@dataclass(frozen=True)
class Attribution:
    """Maps for a batch of images and what they explain."""

    method: str
    maps: np.ndarray  # float32 (N, H, W): higher = more evidence for the target
    targets: np.ndarray  # int64 (N,): the class each map explains
    probabilities: np.ndarray  # float32 (N, classes): the model's answer for each image
    layer: str | None = None  # Grad-CAM's layer
    delta: np.ndarray | None = None  # integrated gradients: sum(map) - (score(x) - score(black))
    note: str = ""  # what was computed, in one phrase (patch, steps, baseline)
    cells: str = ""  # Grad-CAM's cell (its layer's receptive field) or the occlusion patch, "8x8"

    def meaning(self, class_name: str) -> str:
        """What the map's values are, in one sentence: the legend under its colours."""
        return methods.meaning(self.method, class_name, self.cells)


def model_tensor(spec: Sequential, images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> the network's input tensor, preprocessed as for prediction."""
    return images_to_tensor(images, spec.input_shape, spec.input_scale)  # the run's scale


def black_like(spec: Sequential, inputs: torch.Tensor) -> torch.Tensor:
    """A black image (uint8 0) as the network reads it, shaped like ``inputs``."""
    height, width, channels = spec.input_shape
    black = model_tensor(spec, np.zeros((1, height, width, channels), dtype=np.uint8))
    return black.expand_as(inputs).contiguous()


@dataclass(frozen=True)
class Settings:
    """What a method may use besides the inputs: Grad-CAM's layer, IG's steps, occlusion's window."""

    row: LayerRow | None = None
    steps: int = IG_STEPS
    patch: int | None = None
    stride: int | None = None
    # Occlusion's scores of every class for every occluded copy, kept across calls on the
    # same images (explain_targets): the copies do not depend on the class explained.
    occluded: dict[str, torch.Tensor] | None = None


# (maps (N, H, W), delta or None, note) from network, spec, inputs, targets and settings
Compute = Callable[[Network, Sequential, torch.Tensor, list[int], Settings], tuple[Any, Any, str]]


def last_conv(
    spec: Sequential,
    lacking: str = "Grad-CAM has no maps to weigh; "
    "use --method saliency, integrated-gradients or occlusion",
) -> LayerRow:
    """The last Conv2D's summary row (Grad-CAM's and the portraits' default layer).

    A model without one is refused: "... has no Conv2D layer, so ``lacking``."
    """
    convs = [row for row in spec.rows if isinstance(row.layer, Conv2D)]
    if not convs:
        raise ConvlensError(f"the model {spec.name} has no Conv2D layer, so {lacking}.")
    return convs[-1]


def gradcam_layer(spec: Sequential, layer: str | None) -> LayerRow:
    """The layer Grad-CAM reads: ``layer`` (which must output maps) or the last Conv2D."""
    return last_conv(spec) if layer is None else journey.spatial_row(spec, layer)


def occlusion_window(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """Default occlusion (patch, stride): a patch of 1/7 the shorter side (4 on 28x28), stride half."""
    patch = max(2, round(min(input_shape[:2]) / 7))
    return patch, max(1, patch // 2)


def occlusion_settings(
    input_shape: tuple[int, ...], patch: int | None, stride: int | None
) -> tuple[int, int]:
    """The occlusion (patch, stride) used: as asked, else ``occlusion_window``'s; stride half
    the patch when only the patch is given."""
    default_patch, default_stride = occlusion_window(input_shape)
    if patch is None:
        return default_patch, default_stride if stride is None else stride
    return patch, max(1, patch // 2) if stride is None else stride


def check_targets(target: TARGET, count: int, class_names: Sequence[str]) -> np.ndarray | None:
    """The class of each image's map: int64 (count,), or None for the predicted class."""
    if target is None:
        return None
    if isinstance(target, (int, np.integer, str)):
        chosen = [target] * count
    else:
        chosen = list(target)
        if len(chosen) != count:
            raise ConvlensError(
                f"{len(chosen)} target classes were given for {count} images; give one per image."
            )
    classes = len(class_names)
    out = []
    for value in chosen:
        if isinstance(value, (int, np.integer)) and not 0 <= int(value) < classes:
            raise ConvlensError(
                f"class {int(value)} is out of range: the model has {classes} classes, "
                f"numbered 0..{classes - 1}."
            )
        out.append(journey.class_index(value, class_names))
    return np.asarray(out, dtype=np.int64)


def _network_parts(model: Any) -> tuple[Network, Sequential]:
    network, spec = journey.unpack_model(model)
    if spec is None:
        raise TypeError("attribution needs the model's spec: pass a Run or a (Sequential, Network)")
    return network, spec


def _class_names(spec: Sequential) -> tuple[str, ...]:
    return spec.class_names or tuple(str(i) for i in range(spec.num_classes))


def explain(
    model: Any,
    images: np.ndarray,
    method: str,
    target: TARGET = None,
    layer: str | None = None,
    *,
    steps: int = IG_STEPS,
    patch: int | None = None,
    stride: int | None = None,
    occluded: dict[str, torch.Tensor] | None = None,
) -> Attribution:
    """Attribution maps with what they explain (see the module docstring for each method).

    ``model`` is a Run or a (Sequential, Network) pair; ``images`` uint8
    (N, H, W, C); ``target`` a class number or name for every image, one per
    image, or None for each image's predicted class; ``layer`` Grad-CAM's
    layer; ``steps`` integrated gradients' steps; ``patch``/``stride``
    occlusion's square window (default ``occlusion_window``); ``occluded``: a
    dict shared by calls on the same images (see ``explain_targets``).
    """
    network, spec = _network_parts(model)
    chosen_method = METHODS[check_method(method)]
    compute = COMPUTE[chosen_method.name]
    if layer is not None and not chosen_method.reads_layer:
        raise ConvlensError(f"--layer chooses Grad-CAM's layer; {method} reads the input pixels.")
    row = gradcam_layer(spec, layer) if chosen_method.reads_layer else None
    batch = journey.as_image_batch(images)
    targets = check_targets(target, len(batch), _class_names(spec))
    inputs = model_tensor(spec, batch)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            logits = network(inputs)
        chosen = logits.argmax(1) if targets is None else torch.from_numpy(targets)
        settings = Settings(row, steps, patch, stride, occluded)
        maps, delta, note = compute(network, spec, inputs, chosen.tolist(), settings)
    finally:
        network.train(was_training)
    return Attribution(
        method=method,
        maps=maps.detach().float().contiguous().numpy().copy(),
        targets=chosen.numpy().astype(np.int64),
        probabilities=torch.softmax(logits, 1).float().numpy(),
        layer=None if row is None else row.name,
        delta=None if delta is None else delta.detach().float().numpy(),
        note=note,
        cells=_cells(spec, chosen_method.name, row, patch, stride),
    )


def explain_targets(
    model: Any, images: np.ndarray, method: str, targets: Sequence[TARGET]
) -> list[Attribution]:
    """``explain`` of the same images toward each of ``targets`` (each as explain's target).

    Occlusion evaluates its occluded copies once for all of them (the report's
    mistakes, toward the wrong and the true class, pay half); the other methods
    are computed once per target.
    """
    occluded: dict[str, torch.Tensor] = {}
    return [explain(model, images, method, target, occluded=occluded) for target in targets]


def _cells(spec: Sequential, method: str, row: LayerRow | None, patch, stride) -> str:
    """Grad-CAM's cell (the receptive field of ``row``) or the occlusion patch, as "8x8"."""
    if row is not None:
        height, width = spec.receptive_fields()[row.name].size
        return f"{height}x{width}"
    if method == "occlusion":
        patch, _ = occlusion_settings(spec.input_shape, patch, stride)
        return f"{patch}x{patch}"
    return ""


def attribute(
    model: Any,
    images: np.ndarray,
    method: str,
    target: TARGET = None,
    layer: str | None = None,
) -> np.ndarray:
    """float32 (N, H, W) maps at the input's size: higher = more evidence for ``target``.

    The maps of ``explain`` with its default settings; ``target`` defaults to
    the predicted class.
    """
    return explain(model, images, method, target, layer).maps


def _gradcam_method(network, spec, inputs, target, settings: Settings):
    row = settings.row
    note = f"Grad-CAM on {row.name} (each pixel of its maps sees {_dims(row, spec)})"
    return _gradcam(network, spec, inputs, target, row), None, note


def _saliency(network, spec, inputs, target, settings: Settings):
    grads = score_gradients(network, inputs.clone(), target)
    return grads.sum(1), None, "gradient of the score, summed over channels"


def score_gradients(network: Network, points: torch.Tensor, target: Sequence[int]) -> torch.Tensor:
    """d score / d input (N, C, H, W): each point's ``target`` logit's gradient (target repeats
    over the points when they are several paths' points stacked)."""
    chosen = torch.as_tensor(list(target))
    chosen = chosen.repeat(len(points) // len(chosen)).view(-1, 1)
    with torch.enable_grad():
        points = points.detach().requires_grad_(True)
        scores = network(points).gather(1, chosen)
        (grads,) = torch.autograd.grad(scores.sum(), points)
    return grads


def _integrated_gradients(network, spec, inputs, target, settings: Settings):
    steps = settings.steps
    if not 1 <= steps <= 1024:
        raise ConvlensError(f"integrated gradients' steps must be 1..1024, not {steps}.")
    baseline = black_like(spec, inputs)
    difference = inputs - baseline
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.from_numpy((nodes + 1) / 2).float()  # Gauss-Legendre on [0, 1], as captum's
    shares = torch.from_numpy(weights / 2).float()
    total = torch.zeros_like(inputs)
    per_pass = max(1, IG_BATCH // len(inputs))
    for start in range(0, steps, per_pass):
        alpha = alphas[start : start + per_pass].view(-1, 1, 1, 1, 1)
        points = (baseline.unsqueeze(0) + alpha * difference.unsqueeze(0)).flatten(0, 1)
        grads = score_gradients(network, points, target).view(len(alpha), *inputs.shape)
        total += (shares[start : start + per_pass].view(-1, 1, 1, 1, 1) * grads).sum(0)
    maps = total * difference
    chosen = torch.as_tensor(list(target)).view(-1, 1)
    with torch.no_grad():
        ends = network(inputs).gather(1, chosen) - network(baseline).gather(1, chosen)
    delta = maps.sum((1, 2, 3)) - ends[:, 0]
    note = f"{steps} steps from a black image, summed over channels"
    return maps.sum(1), delta, note


def _gradcam(network: Network, spec: Sequential, inputs: torch.Tensor, target, row: LayerRow):
    """Grad-CAM on ``row``'s layer, negative parts cut, placed on the input (N, H, W)."""
    cams = layer_gradcam(network, row.name, inputs, target)  # (N, 1, h, w)
    field = spec.receptive_fields()[row.name]
    rows = centre_weights(field, 0, cams.shape[2], spec.input_shape[0])
    cols = centre_weights(field, 1, cams.shape[3], spec.input_shape[1])
    return torch.einsum("yi,nij,xj->nyx", rows, cams[:, 0].detach().float(), cols)


def layer_gradcam(
    network: Network, layer: str, inputs: torch.Tensor, target: Sequence[int]
) -> torch.Tensor:
    """Grad-CAM's cells (N, 1, h, w) on ``layer``: its maps weighted by the mean gradient of
    each image's target score over them, summed, negative parts cut to 0.

    What captum's LayerGradCam computes (the tests hold the two equal), without its
    0.6 s import, which the report's mistakes gallery paid after every training run.
    """
    module = dict(network.named_children())[layer]
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            scores = network(inputs).gather(1, torch.as_tensor(target).view(-1, 1))
            (gradients,) = torch.autograd.grad(scores.sum(), captured[0])
    finally:
        handle.remove()
    maps = captured[0].detach()
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    return (weights * maps).sum(dim=1, keepdim=True).clamp_min(0)


def centre_weights(field: ReceptiveField, axis: int, cells: int, pixels: int) -> torch.Tensor:
    """(pixels, cells) weights of linear interpolation from the cells' field centres.

    Input pixel y takes the two cells whose field centres surround it, each
    weighted by nearness; pixels before the first centre or past the last
    take that cell's value.
    """
    centres = np.array([field.centre(i, axis) for i in range(cells)])
    eye = np.eye(cells)
    weights = np.stack([np.interp(np.arange(pixels), centres, eye[i]) for i in range(cells)], 1)
    return torch.from_numpy(weights.astype(np.float32))


def _occlusion(network, spec, inputs, target, settings: Settings):
    """Occlusion maps (N, H, W): the score's mean drop when a black patch covers each pixel."""
    patch, stride = occlusion_settings(spec.input_shape, settings.patch, settings.stride)
    height, width, _ = spec.input_shape
    if not (1 <= patch <= min(height, width) and 1 <= stride <= patch):
        raise ConvlensError(
            f"the occlusion patch must be 1..{min(height, width)} pixels and its stride 1..patch, "
            f"not patch {patch}, stride {stride}."
        )
    masks = occlusion_masks(height, width, patch, stride)
    baseline = black_like(spec, inputs)
    drops = occlusion_drops(network, inputs, baseline, masks, target, settings.occluded)
    maps = torch.einsum("np,phw->nhw", drops, masks) / masks.sum(0)
    return maps, None, f"black {patch}x{patch} patch, stride {stride}"


def occlusion_masks(height: int, width: int, patch: int, stride: int) -> torch.Tensor:
    """float32 (P, H, W): 1 inside each patch position, every ``stride`` pixels from the
    top left, the last one cut at the border so that every pixel is covered (captum's windows)."""
    tops = range(0, stride * -(-(height - patch) // stride) + 1, stride)
    lefts = range(0, stride * -(-(width - patch) // stride) + 1, stride)
    masks = torch.zeros(len(tops) * len(lefts), height, width)
    for k, (top, left) in enumerate((t, lf) for t in tops for lf in lefts):
        masks[k, top : top + patch, left : left + patch] = 1
    return masks


def occlusion_drops(
    network: Network,
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    masks: torch.Tensor,
    target: Sequence[int],
    occluded: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """(N, P): each image's target score minus its score with patch p set to the baseline.

    The occluded copies are evaluated OCCLUSION_BATCH at a time, as captum's
    ``perturbations_per_eval`` does, in one forward pass per chunk of patches.
    Every class's scores are kept in ``occluded`` when given, and taken from it
    when it has them (the same images, patches and network).
    """
    scores = occluded if occluded is not None else {}
    if "before" not in scores:
        scores["before"], scores["after"] = occluded_scores(network, inputs, baseline, masks)
    chosen = torch.as_tensor(list(target)).view(-1, 1)
    before = scores["before"].gather(1, chosen)
    after = scores["after"].gather(2, chosen.view(-1, 1, 1).expand(-1, len(masks), 1))[..., 0]
    return before - after


def occluded_scores(
    network: Network, inputs: torch.Tensor, baseline: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every class's scores: (N, K) of the images, (N, P, K) with patch p set to the baseline."""
    count, positions = len(inputs), len(masks)
    per_pass = max(1, OCCLUSION_BATCH // count)
    with torch.inference_mode():
        before = network(inputs).float()
        after = torch.empty(count, positions, before.shape[1])
        for start in range(0, positions, per_pass):
            mask = masks[start : start + per_pass, None].unsqueeze(0)  # (1, p, 1, H, W)
            copies = inputs.unsqueeze(1) * (1 - mask) + baseline.unsqueeze(1) * mask
            after[:, start : start + mask.shape[1]] = network(copies.flatten(0, 1)).view(
                count, mask.shape[1], -1
            )
    return before, after


def _dims(row: LayerRow, spec: Sequential) -> str:
    field = spec.receptive_fields()[row.name]
    return f"{field.size[0]}x{field.size[1]} input pixels"


# Each method's computation, by the name METHODS (inspect/methods.py) describes it under.
COMPUTE: dict[str, Compute] = {
    "gradcam": _gradcam_method,
    "saliency": _saliency,
    "integrated-gradients": _integrated_gradients,
    "occlusion": _occlusion,
}


def top_classes(probabilities: np.ndarray, class_names: Sequence[str], count: int = 3):
    """The ``count`` likeliest classes of one image: [(name, probability)], likeliest first."""
    order = np.argsort(-probabilities, kind="stable")[:count]
    return [(class_names[int(k)], float(probabilities[int(k)])) for k in order]
