"""Inside a trained model: intermediate activations and learned filters.

``activations`` runs images through the network once, in eval mode, with a
forward hook on every layer asked for, and returns each layer's output in
Keras's layout: (N, H, W, C) for image-shaped layers, (N, F) for flat ones.
Hooked layers run unfused (see network.Network), so each hook sees its own
layer's output, exactly the value the summary's shapes describe.

Filters are numbered from 0, as the channel axis of the maps is: filter 1 is
the second map of a layer, as in the lesson's notebook (CONVOLUTION_NUMBER = 1).
Each layer numbers its own filters: filter 1 of conv2d_1 is a different
filter from filter 1 of conv2d, fed by all 64 of conv2d's maps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convlens.errors import ConvlensError
from convlens.model.layers import JOURNEY_ROLES, Conv2D
from convlens.model.network import Network, images_to_tensor
from convlens.model.sequential import LayerRow, Sequential


def unpack_model(model: Any) -> tuple[Network, Sequential | None]:
    """The network (and spec, when known) behind a run, a (spec, network) pair or a network."""
    if isinstance(model, Network):
        return model, None
    if isinstance(model, tuple) and len(model) == 2:
        spec, network = model
        if isinstance(spec, Sequential) and isinstance(network, Network):
            return network, spec
    network, spec = getattr(model, "network", None), getattr(model, "model", None)
    if isinstance(network, Network) and isinstance(spec, Sequential):
        return network, spec
    raise TypeError(
        "pass a trained model as a Run (runs.load_run), a (Sequential, Network) pair or a "
        f"Network, not {type(model).__name__}"
    )


def as_image_batch(images: np.ndarray) -> np.ndarray:
    """uint8 images as (N, H, W, C); a single (H, W) or (N, H, W) gray stack gains axes."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ConvlensError(
            f"images must be uint8 on 0..255, like the dataset's, not {images.dtype}; "
            "convert them with np.uint8 first."
        )
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise ConvlensError(
            f"images must be a non-empty stack (N, H, W, C), not shape {images.shape}."
        )
    return images


def _chosen_layers(network: Network, layers: Iterable[str] | None) -> list[str]:
    """Layer names to capture, in network order; unknown names end in one sentence."""
    names = [name for name, _ in network.named_children()]
    if layers is None:
        return names
    wanted = [layers] if isinstance(layers, str) else list(layers)
    for name in wanted:
        if name not in names:
            raise ConvlensError(
                f"the model has no layer {name!r}; choose one of {', '.join(names)}."
            )
    return [name for name in names if name in wanted]


def _keras_layout(output: torch.Tensor) -> np.ndarray:
    """A layer's output as float32 NumPy: (N, C, H, W) -> (N, H, W, C); (N, F) unchanged."""
    if output.dim() == 4:
        output = output.permute(0, 2, 3, 1)
    return output.detach().float().contiguous().numpy().copy()


def activations(
    model: Any, images: np.ndarray, layers: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Every (or each named) layer's output for uint8 ``images`` (N, H, W, C), in one pass.

    ``model`` is a Run (runs.load_run), a (Sequential, Network) pair, or a
    Network (the images must then already fit its input). Returns
    {layer name: float32 array}, in layer order: (N, H, W, C) for image-shaped
    layers (Keras's layout), (N, F) for flat ones. The final layer holds class
    probabilities when the model ends in softmax, as Keras shows it; for a
    model with test-time flip it holds the model's answer (the mean over the
    image and its mirror), every other layer the image's own pass. The
    network runs in eval mode (dropout off, batch norm on its moving
    statistics); its mode and hooks are restored afterwards.
    """
    network, spec = unpack_model(model)
    batch = as_image_batch(images)
    input_shape = spec.input_shape if spec is not None else tuple(batch.shape[1:])
    tensor = images_to_tensor(batch, input_shape, network.input_scale)  # (N, C, H, W) float
    names = _chosen_layers(network, layers)
    captured: dict[str, torch.Tensor] = {}
    modules = dict(network.named_children())
    handles = [
        modules[name].register_forward_hook(
            lambda _module, _inputs, output, name=name: captured.__setitem__(name, output)
        )
        for name in names
    ]
    was_training = network.training
    try:
        network.eval()
        with torch.inference_mode():
            answer = network(tensor)
    finally:
        for handle in handles:
            handle.remove()
        network.train(was_training)
    last = next(reversed(modules))
    if last in captured:  # the network's answer: with test-time flip, over both passes
        captured[last] = torch.softmax(answer, dim=1) if network.final_softmax else answer
    return {name: _keras_layout(captured[name]) for name in names}


def journey_layers(model: Sequential) -> list[LayerRow]:
    """The summary rows of every Conv2D and pooling layer, in order: the journey's columns.

    Each layer type's ``journey`` role decides (model/layers/base.py): "stage" layers
    (Conv2D, pooling) always show; "after_conv" layers (ZeroPadding2D, Activation,
    ReLU) join once a Conv2D has run and while they output maps (a Keras model often
    writes Conv2D, then ReLU as a layer of its own); before it they would hold the
    input's one or three channels only.
    """
    rows, seen_conv = [], False
    for row in model.rows:
        role = row.layer.journey
        if role not in JOURNEY_ROLES:
            raise ConvlensError(
                f"{row.layer.keras_type} has no journey role ({role!r}); give its class one of "
                f"{', '.join(JOURNEY_ROLES)}."
            )
        seen_conv = seen_conv or isinstance(row.layer, Conv2D)
        later = seen_conv and role == "after_conv" and len(row.output_shape) == 3
        if role == "stage" or later:
            rows.append(row)
    return rows


def check_journey(model: Sequential) -> list[LayerRow]:
    """The journey's rows; a model without Conv2D or pooling layers ends in one sentence."""
    rows = journey_layers(model)
    if not rows:
        raise ConvlensError(
            f"the model {model.name} has no Conv2D or pooling layer, so there is no journey "
            "to show; inspect a run of a convolutional model."
        )
    return rows


def check_filter(filter_index: int, rows: Sequence[LayerRow]) -> None:
    """Refuse a filter number that some layer in ``rows`` does not have (numbered from 0)."""
    depth = min(row.output_shape[-1] for row in rows)
    if filter_index < 0:
        raise ConvlensError(
            f"filter {filter_index} is negative; filters are numbered from 0, choose 0..{depth - 1}."
        )
    for row in rows:
        have = row.output_shape[-1]
        if filter_index >= have:
            what = "filters" if isinstance(row.layer, Conv2D) else "maps"
            raise ConvlensError(
                f"filter {filter_index} is past {row.name}'s {have} {what}; choose 0..{depth - 1}."
            )


@dataclass(frozen=True)
class Journey:
    """One filter followed through a model, for a few images, from one forward pass."""

    rows: list[LayerRow]  # the Conv2D and pooling layers, in order
    maps: dict[str, np.ndarray]  # {layer name: float32 (N, H_layer, W_layer)}
    outputs: np.ndarray  # float32 (N, classes): the final layer (probabilities after softmax)


def journey(model: Any, images: np.ndarray, filter_index: int) -> Journey:
    """One filter's map after every Conv2D and pooling layer, for each image.

    ``model`` is a Run or a (Sequential, Network) pair; ``images`` uint8
    (N, H, W, C). Returns a Journey: the layers' summary rows, the
    ``filter_index`` channel (from 0) of each one's output, and the model's
    output for each image, all captured in one forward pass. A model without
    such layers, or a filter past a layer's depth, ends in one sentence.
    """
    network, spec = unpack_model(model)
    if spec is None:
        raise TypeError("journey needs the model's spec: pass a Run or a (Sequential, Network)")
    rows = check_journey(spec)
    check_filter(filter_index, rows)
    last = spec.rows[-1].name
    captured = activations((spec, network), images, [*(row.name for row in rows), last])
    maps = {row.name: captured[row.name][..., filter_index] for row in rows}
    return Journey(rows, maps, captured[last])


def spatial_row(model: Sequential, layer: str) -> LayerRow:
    """The summary row of ``layer``, which must output a stack of maps (H, W, C)."""
    rows = {row.name: row for row in model.rows}
    spatial = [row.name for row in model.rows if len(row.output_shape) == 3]
    if layer not in rows:
        raise ConvlensError(
            f"the model has no layer {layer!r}; choose one of {', '.join(spatial) or 'none'}."
        )
    if layer not in spatial:
        raise ConvlensError(
            f"{layer} outputs {rows[layer].output_shape[0]} numbers, not maps; choose a layer "
            f"with maps: {', '.join(spatial) or 'this model has none'}."
        )
    return rows[layer]


def feature_maps(model: Any, image: np.ndarray, layer: str) -> tuple[LayerRow, np.ndarray]:
    """Every map of one layer for one uint8 image (H, W, C): its row and float32 (H', W', C')."""
    network, spec = unpack_model(model)
    if spec is None:
        raise TypeError(
            "feature_maps needs the model's spec: pass a Run or a (Sequential, Network)"
        )
    row = spatial_row(spec, layer)
    return row, activations((spec, network), image[None], [layer])[layer][0]


def first_conv(model: Sequential) -> LayerRow:
    """The summary row of the first Conv2D layer; a model without one ends in one sentence."""
    for row in model.rows:
        if isinstance(row.layer, Conv2D):
            return row
    raise ConvlensError(
        f"the model {model.name} has no Conv2D layer, so it has no filters to show; "
        "inspect a run of a convolutional model."
    )


def learned_filters(model: Any, layer: str | None = None) -> tuple[LayerRow, np.ndarray]:
    """A Conv2D layer's kernels (default: the first Conv2D) in Keras's layout.

    Returns the layer's summary row and float32 (kh, kw, in_channels, filters):
    [:, :, c, k] is filter k's weights on input channel c.
    """
    network, spec = unpack_model(model)
    if spec is None:
        raise TypeError("learned_filters needs the model's spec: pass a Run or a pair")
    if layer is None:
        row = first_conv(spec)
    else:
        row = next((r for r in spec.rows if r.name == layer), None)
        convs = [r.name for r in spec.rows if isinstance(r.layer, Conv2D)]
        if row is None or not isinstance(row.layer, Conv2D):
            raise ConvlensError(
                f"{layer!r} is not a Conv2D layer of this model; choose one of "
                f"{', '.join(convs) or 'none (the model has no Conv2D)'}."
            )
    weight = dict(network.named_children())[row.name].weight  # (filters, in, kh, kw)
    return row, weight.detach().float().permute(2, 3, 1, 0).contiguous().numpy().copy()


def class_index(choice: str | int, class_names: Sequence[str]) -> int:
    """A class given by name (case-insensitive) or number (from 0) -> its number."""
    text = str(choice).strip()
    lowered = [name.lower() for name in class_names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(class_names):
        return int(text)
    listing = ", ".join(f"{i} {name}" for i, name in enumerate(class_names))
    raise ConvlensError(f"unknown class {text!r}; choose a name or number: {listing}.")


def images_of_class(labels: np.ndarray, index: int, count: int, class_name: str) -> np.ndarray:
    """The positions (int64 (count,)) of the first ``count`` images labelled ``index``."""
    found = np.flatnonzero(np.asarray(labels) == index)
    if count < 1:
        raise ConvlensError(f"--images must be at least 1, not {count}.")
    if len(found) < count:
        raise ConvlensError(
            f"the test split has {len(found)} images of {class_name}, fewer than the {count} "
            f"asked for; ask for at most {len(found)}."
        )
    return found[:count].astype(np.int64)


def check_image_indices(indices: Sequence[int], available: int) -> np.ndarray:
    """Image positions checked against the test split's size: int64 (len(indices),)."""
    for index in indices:
        if not 0 <= index < available:
            raise ConvlensError(
                f"image index {index} is outside the {available:,} test images; "
                f"choose 0..{available - 1}."
            )
    return np.asarray(indices, dtype=np.int64)


def choose_images(
    labels: np.ndarray,
    class_names: Sequence[str],
    class_choice: str | int | None = None,
    count: int = 3,
    indices: Sequence[int] = (),
    fewer_ok: bool = False,
) -> np.ndarray:
    """Test images to inspect: positions int64 (n,) into the test split.

    ``indices`` picks them by position; otherwise the first ``count`` images
    of ``class_choice`` (a name or number; default: the class of test image 0,
    which for Fashion-MNIST gives the lesson's three ankle boots 0, 23, 28).
    ``fewer_ok``: a class with fewer test images gives them all (a small folder's
    report) instead of the sentence asking for fewer.
    """
    if indices:
        if class_choice is not None:
            raise ConvlensError(
                "--class and --image-index both choose images; give one or the other."
            )
        return check_image_indices(indices, len(labels))
    if len(labels) == 0:
        raise ConvlensError("the test split has no images; give a dataset with test images.")
    chosen = int(labels[0]) if class_choice is None else class_index(class_choice, class_names)
    if fewer_ok:
        count = min(count, int((np.asarray(labels) == chosen).sum()))
    return images_of_class(labels, chosen, count, class_names[chosen])
