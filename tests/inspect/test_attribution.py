"""Attribution maps checked against independent computations on small hand-built networks.

Saliency against torch.autograd, integrated gradients against completeness
(the map adds up to score(x) - score(black)), occlusion against a brute-force
loop, Grad-CAM against a network whose answer is known by construction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convlens.errors import ConvlensError
from convlens.inspect import attribution, methods
from convlens.model.layers import Conv2D, Dense, Flatten, MaxPooling2D
from convlens.model.network import build_network
from convlens.model.sequential import Sequential

CLASSES = ("zero", "one", "two")


def small_model(channels: int) -> tuple[Sequential, torch.nn.Module]:
    """A random little CNN on 10x10 images with ``channels`` channels, three classes."""
    spec = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(10, 10, channels)),
            MaxPooling2D(2, 2),
            Conv2D(3, (2, 2), activation="tanh"),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        class_names=CLASSES,
    )
    network = build_network(spec, seed=4)
    with torch.no_grad():  # biases away from 0 so ReLU is not trivially dead
        for module in network.modules():
            if getattr(module, "bias", None) is not None:
                module.bias.uniform_(-0.2, 0.4)
    return spec, network.eval()


def images(count: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 10, 10, channels), dtype=np.uint8)


def logits(network: torch.nn.Module, batch: np.ndarray) -> torch.Tensor:
    """The network's scores, from pixels divided by 255 as the lesson does (independently)."""
    x = torch.from_numpy(batch.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    return network(x)


@pytest.mark.parametrize("channels", [1, 3])
def test_saliency_is_the_autograd_gradient_of_the_target_logit(channels: int) -> None:
    spec, network = small_model(channels)
    batch = images(4, channels)
    targets = [0, 2, 1, 2]
    maps = attribution.attribute((spec, network), batch, "saliency", target=targets)
    x = torch.from_numpy(batch.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    x.requires_grad_(True)
    scores = network(x)[torch.arange(4), torch.tensor(targets)].sum()
    (grad,) = torch.autograd.grad(scores, x)
    expected = grad.sum(1).numpy()  # signed, summed over the channels
    assert maps.shape == (4, 10, 10) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("channels", [1, 3])
def test_integrated_gradients_add_up_to_the_score_difference(channels: int) -> None:
    spec, network = small_model(channels)
    batch = images(3, channels, seed=1)
    found = attribution.explain((spec, network), batch, "integrated-gradients", steps=64)
    with torch.no_grad():
        scores = logits(network, batch)
        black = logits(network, np.zeros_like(batch))
    chosen = torch.from_numpy(found.targets)
    difference = (scores - black)[torch.arange(3), chosen].numpy()
    sums = found.maps.reshape(3, -1).sum(1)
    # The integration error is the reported delta (checked against our own forward passes)
    # and, with 64 steps on this kinked ReLU/max-pool/tanh network, under 3% of the difference.
    np.testing.assert_allclose(sums - difference, found.delta, atol=1e-4)
    assert np.all(np.abs(sums - difference) <= 0.03 * np.abs(difference))
    assert list(found.targets) == scores.argmax(1).tolist()  # default: the predicted class


@pytest.mark.parametrize("channels", [1, 3])
def test_occlusion_equals_a_brute_force_loop(channels: int) -> None:
    spec, network = small_model(channels)
    batch = images(2, channels, seed=2)
    patch, stride, target = 3, 2, 1
    found = attribution.explain(
        (spec, network), batch, "occlusion", target=target, patch=patch, stride=stride
    )
    with torch.no_grad():
        base = logits(network, batch)[:, target]
        total = np.zeros((2, 10, 10))
        count = np.zeros((10, 10))
        # Windows every ``stride`` pixels; the last is cut at the border so every pixel is covered.
        starts = [k * stride for k in range(-(-(10 - patch) // stride) + 1)]
        for top in starts:
            for left in starts:
                covered = batch.copy()
                covered[:, top : top + patch, left : left + patch, :] = 0
                drop = (base - logits(network, covered)[:, target]).numpy()
                total[:, top : top + patch, left : left + patch] += drop[:, None, None]
                count[top : top + patch, left : left + patch] += 1
    expected = np.where(count > 0, total / np.maximum(count, 1), 0)
    np.testing.assert_allclose(found.maps, expected, rtol=1e-4, atol=1e-5)


def square_model() -> tuple[Sequential, torch.nn.Module]:
    """One filter fires only inside a bright square (all nine pixels bright); class 1 reads it."""
    spec = Sequential(
        [
            Conv2D(2, (3, 3), activation="relu", input_shape=(16, 16, 1)),
            Flatten(),
            Dense(2, activation="softmax"),
        ],
        class_names=("nothing", "square"),
    )
    network = build_network(spec, seed=0)
    conv, dense = network.conv2d, network.dense
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0] = 1.0
        conv.bias[0] = -8.5  # fires only when all nine pixels are near white
        dense.weight.zero_()
        dense.bias.zero_()
        dense.weight[1, 0::2] = 1.0  # class 1 sums filter 0's map (Keras order: row, col, ch)
    return spec, network.eval()


def test_gradcam_lights_the_bright_square() -> None:
    spec, network = square_model()
    image = np.zeros((1, 16, 16, 1), dtype=np.uint8)
    image[0, 9:14, 3:8] = 255  # a 5x5 square, off-centre
    maps = attribution.attribute((spec, network), image, "gradcam", target="square")[0]
    inside = np.zeros((16, 16), bool)
    inside[9:14, 3:8] = True
    assert maps.shape == (16, 16)
    assert inside[np.unravel_index(np.argmax(maps), maps.shape)]
    assert maps[inside].mean() > 10 * maps[~inside].mean()


def test_every_method_runs_on_three_channels_and_fits_the_input() -> None:
    spec, network = small_model(3)
    batch = images(2, 3)
    for method in methods.METHODS:
        maps = attribution.attribute((spec, network), batch, method)
        assert maps.shape == (2, 10, 10) and maps.dtype == np.float32, method
        assert np.isfinite(maps).all(), method


def test_gradcam_defaults_to_the_last_convolution() -> None:
    spec, network = small_model(1)
    found = attribution.explain((spec, network), images(1, 1), "gradcam")
    assert found.layer == "conv2d_1"
    assert attribution.explain((spec, network), images(1, 1), "gradcam", layer="conv2d").layer == (
        "conv2d"
    )


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"method": "lime"}, "unknown attribution method"),
        ({"method": "saliency", "target": 3}, "out of range"),
        ({"method": "saliency", "target": "cat"}, "unknown class"),
        ({"method": "gradcam", "layer": "dense"}, "not maps"),
        ({"method": "gradcam", "layer": "flatten"}, "not maps"),
        ({"method": "gradcam", "layer": "nope"}, "no layer"),
        ({"method": "saliency", "layer": "conv2d"}, "Grad-CAM's layer"),
    ],
)
def test_bad_choices_end_in_one_sentence(kwargs: dict, words: str) -> None:
    spec, network = small_model(1)
    with pytest.raises(ConvlensError, match=words):
        attribution.explain((spec, network), images(1, 1), **kwargs)


def test_a_dense_only_model_has_no_gradcam() -> None:
    spec = Sequential([Flatten(input_shape=(10, 10, 1)), Dense(3, activation="softmax")])
    with pytest.raises(ConvlensError, match="no Conv2D"):
        attribution.explain((spec, build_network(spec, seed=0)), images(1, 1), "gradcam")


def deep_square_model() -> tuple[Sequential, torch.nn.Module]:
    """The square detector, then max pooling and a second convolution that averages it."""
    spec = Sequential(
        [
            Conv2D(1, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(2, 2),
            Conv2D(1, (3, 3), activation="relu"),
            Flatten(),
            Dense(2, activation="softmax"),
        ],
        class_names=("nothing", "square"),
    )
    network = build_network(spec, seed=0)
    with torch.no_grad():
        network.conv2d.weight.fill_(1.0)
        network.conv2d.bias.fill_(-8.5)
        network.conv2d_1.weight.fill_(1.0 / 9)
        network.conv2d_1.bias.zero_()
        network.dense.weight.zero_()
        network.dense.bias.zero_()
        network.dense.weight[1] = 1.0
    return spec, network.eval()


def test_gradcam_on_a_pooled_layer_peaks_on_the_square_wherever_it_is() -> None:
    """conv2d_1's 11x11 map sits on the input by its cells' 8x8 fields (centres 3.5 + 2i):
    its peak is inside a 5x5 square at every position on a 2-pixel grid (a plain bilinear
    resize of 11 to 28 pixels misses 23 of these 144)."""
    spec, network = deep_square_model()
    for top in range(0, 24, 2):
        for left in range(0, 24, 2):
            image = np.zeros((1, 28, 28, 1), dtype=np.uint8)
            image[0, top : top + 5, left : left + 5] = 255
            maps = attribution.attribute((spec, network), image, "gradcam", target=1)[0]
            assert maps[top : top + 5, left : left + 5].max() >= maps.max() - 1e-7, (top, left)


@pytest.mark.parametrize(("layer", "flip"), [("conv2d", False), ("max_pooling2d", False), ("conv2d_1", True)])
def test_gradcam_cells_equal_captums_layer_gradcam(layer, flip):
    from captum.attr import LayerGradCam  # the oracle

    spec, network = small_model(2)
    network.test_time_flip = flip  # the mirror's pass adds to the score, not to the maps
    inputs = attribution.model_tensor(spec, images(5, 2))
    targets = [0, 1, 2, 1, 0]
    module = dict(network.named_children())[layer]
    expected = LayerGradCam(network, module).attribute(
        inputs.clone().requires_grad_(True), target=targets, relu_attributions=True
    )
    got = attribution.layer_gradcam(network, layer, inputs, targets)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)
    assert got.abs().sum() > 0  # a map with something in it


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", ["saliency", "integrated-gradients", "occlusion"])
def test_maps_equal_captums(method: str, channels: int) -> None:
    """convlens computes these three without importing captum (0.6 s after every training
    run); captum's own Saliency, IntegratedGradients and Occlusion are the oracle."""
    from captum.attr import IntegratedGradients, Occlusion, Saliency  # the oracle

    spec, network = small_model(channels)
    batch = images(5, channels, seed=7)
    targets = [0, 2, 1, 2, 0]
    found = attribution.explain((spec, network), batch, method, target=targets, steps=16)
    x = torch.from_numpy(batch.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    black = torch.zeros_like(x)
    if method == "saliency":
        expected = Saliency(network).attribute(x.requires_grad_(True), target=targets, abs=False)
    elif method == "integrated-gradients":
        expected, delta = IntegratedGradients(network).attribute(
            x, black, target=targets, n_steps=16, return_convergence_delta=True
        )
        np.testing.assert_allclose(found.delta, delta.detach().numpy(), rtol=1e-4, atol=1e-5)
    else:
        expected = Occlusion(network).attribute(
            x, (channels, 3, 3), strides=(channels, 2, 2), baselines=black, target=targets
        )[:, :1]  # the patch covers every channel: each channel's map is the same
        found = attribution.explain(
            (spec, network), batch, method, target=targets, patch=3, stride=2
        )
    np.testing.assert_allclose(
        found.maps, expected.detach().sum(1).numpy(), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("method", ["occlusion", "saliency"])
def test_explaining_several_targets_at_once_equals_one_call_each(method: str) -> None:
    """explain_targets shares occlusion's occluded copies between the classes; the maps,
    targets and probabilities are those of separate explain calls."""
    spec, network = small_model(3)
    batch = images(4, 3, seed=9)
    targets = ([0, 1, 2, 0], [2, 2, 0, 1], 1)
    together = attribution.explain_targets((spec, network), batch, method, targets)
    for target, found in zip(targets, together, strict=True):
        alone = attribution.explain((spec, network), batch, method, target)
        np.testing.assert_allclose(found.maps, alone.maps, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(found.targets, alone.targets)
        np.testing.assert_array_equal(found.probabilities, alone.probabilities)
