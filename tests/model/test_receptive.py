"""Receptive fields from the formula equal those found by perturbing one input pixel (torch)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from convlens.model.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
    ReLU,
    Rescaling,
    ZeroPadding2D,
)
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.model.sequential import Sequential


def strided_model() -> Sequential:
    """Stride-2 and "same" convolutions, odd sizes, padded average pooling, a 5x3 kernel."""
    return Sequential(
        [
            Conv2D(3, (3, 3), strides=(2, 2), padding="same", input_shape=(27, 23, 2)),
            Conv2D(3, (5, 3), padding="same", activation="relu"),
            BatchNormalization(),
            AveragePooling2D(3, strides=2, padding="same"),
            Dropout(0.2),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(4, activation="softmax"),
        ]
    )


def relu_lenet5() -> Sequential:
    """LeNet-5's geometry with ReLU: tanh would saturate at 1.0 under all-positive weights."""
    layers = [
        replace(layer, activation="relu")
        if getattr(layer, "activation", "softmax") == "tanh"
        else layer
        for layer in preset("lenet5").layers
    ]
    return Sequential(layers)


def padded_model() -> Sequential:
    """The layers imported models bring: Rescaling, uneven ZeroPadding2D, activation layers,
    global pooling that keeps a 1x1 map."""
    return Sequential(
        [
            Rescaling(0.5, input_shape=(23, 23, 1)),
            ZeroPadding2D(((2, 1), (0, 3))),
            Conv2D(3, (3, 3), strides=(2, 2)),
            ReLU(),
            Activation("sigmoid"),
            MaxPooling2D(2, 2),
            GlobalAveragePooling2D(keepdims=True),
            Flatten(),
            Dense(4, activation="softmax"),
        ]
    )


MODELS = {
    "seed-cnn": lambda: preset("seed-cnn"),
    "lenet5": relu_lenet5,
    "best": lambda: preset("best"),
    "strided": strided_model,
    "padded": padded_model,
}


def positive_network(spec: Sequential) -> torch.nn.Module:
    """Every weight at least 0.5 and every bias 0.1: a brighter input pixel raises every
    value it reaches, so max pooling cannot hide it and ReLU never cuts it."""
    network = build_network(spec, seed=0).eval()
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if name.endswith("bias"):
                parameter.fill_(0.1)
            else:
                parameter.copy_(0.5 + parameter.abs())
    return network


def outputs(network: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every layer's output, layer by layer (unfused)."""
    found = {}
    for name, module in network.named_children():
        x = module(x)
        found[name] = x
    return found


def changed_positions(spec: Sequential, network, pixel: tuple[int, int]) -> dict[str, np.ndarray]:
    """For each layer with maps, which output pixels change when one input pixel brightens."""
    height, width, channels = spec.input_shape
    x = torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(1))
    bright = x.clone()
    bright[0, :, pixel[0], pixel[1]] += 50.0
    with torch.no_grad():
        before, after = outputs(network, x), outputs(network, bright)
    return {
        name: (after[name] != before[name]).any(dim=1)[0].numpy()
        for name in before
        if before[name].dim() == 4
    }


def predicted_positions(field, pixel: tuple[int, int], shape: tuple[int, ...], image_shape):
    """Output pixels whose field (from the formula) holds ``pixel``."""
    grid = np.zeros(shape[:2], bool)
    for i in range(shape[0]):
        for j in range(shape[1]):
            top, left, bottom, right = field.window(i, j, image_shape)
            grid[i, j] = top <= pixel[0] < bottom and left <= pixel[1] < right
    return grid


@pytest.mark.parametrize("name", ["seed-cnn", "lenet5", "best", "strided", "padded"])
@pytest.mark.parametrize("pixel", [(0, 0), (13, 9), (20, 22)])
def test_fields_equal_the_outputs_one_pixel_changes(name: str, pixel: tuple[int, int]) -> None:
    spec = MODELS[name]()
    network = positive_network(spec)
    changed = changed_positions(spec, network, pixel)
    fields = spec.receptive_fields()
    rows = {row.name: row for row in spec.rows}
    assert changed, name
    for layer, grid in changed.items():
        expected = predicted_positions(
            fields[layer], pixel, rows[layer].output_shape, spec.input_shape
        )
        np.testing.assert_array_equal(grid, expected, err_msg=f"{name} {layer} {pixel}")


def test_the_lesson_cnn_fields_read_as_the_issue_says() -> None:
    fields = preset("seed-cnn").receptive_fields()
    assert fields["conv2d"].size == (3, 3) and fields["conv2d"].jump == (1, 1)
    assert fields["conv2d_1"].size == (8, 8) and fields["conv2d_1"].jump == (2, 2)
    assert fields["conv2d_1"].why.startswith("8x8 of the input: 4 + (3 - 1) x 2")
    assert fields["max_pooling2d_1"].size == (10, 10) and fields["max_pooling2d_1"].jump == (4, 4)
    assert fields["flatten"] is None and fields["dense_1"] is None


def test_summary_json_gains_fields_and_jumps() -> None:
    layers = preset("seed-cnn").summary_dict()["layers"]
    assert layers[2]["receptive_field"] == [8, 8] and layers[2]["jump"] == [2, 2]
    assert layers[4]["receptive_field"] is None
