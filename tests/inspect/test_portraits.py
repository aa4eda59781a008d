"""Filter portraits: top test patches against a brute-force search, synthesis, choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import pattern_images, tiny_cnn

from convlens.errors import ConvlensError
from convlens.inspect import journey, portraits
from convlens.model.network import build_network


@pytest.fixture(scope="module")
def model():
    spec = tiny_cnn()
    network = build_network(spec, seed=2)
    with torch.no_grad():
        for module in network.modules():
            if getattr(module, "bias", None) is not None:
                module.bias.uniform_(-0.1, 0.2)
    return spec, network.eval()


def test_top_patches_equal_a_brute_force_search(model) -> None:
    images = pattern_images(70, seed=5)[0]
    found = portraits.top_patches(model, images, "conv2d_1", [0, 2, 3], count=4)
    maps = journey.activations(model, images, ["conv2d_1"])["conv2d_1"]  # (N, 11, 11, 4)
    field = model[0].receptive_fields()["conv2d_1"]
    for row, k in enumerate([0, 2, 3]):
        best = maps[..., k].reshape(len(images), -1).max(1)
        order = sorted(range(len(images)), key=lambda i: (-best[i], i))[:4]
        assert list(found.indices[row]) == order
        np.testing.assert_allclose(found.values[row], best[order], rtol=1e-5, atol=1e-6)
        for column, index in enumerate(order):
            place = np.unravel_index(np.argmax(maps[index, :, :, k]), (11, 11))
            assert tuple(found.windows[row, column]) == field.window(*place, (28, 28, 1))
    assert found.field.size == (8, 8)


def test_synthesis_raises_the_filter_above_its_start_and_repeats(model) -> None:
    filters = [0, 1, 2, 3]
    made = portraits.synthesise(model, "conv2d_1", filters, steps=40, seed=3)
    assert made.shape == (4, 28, 28, 1) and made.dtype == np.uint8
    np.testing.assert_array_equal(made, portraits.synthesise(model, "conv2d_1", filters, 40, 3))
    grey = np.full_like(made, 128)
    random = pattern_images(4, seed=9)[0]
    for measure in (portraits.objective, portraits.mean_activation):
        reached = measure(model, made, "conv2d_1", filters)
        strict = measure is portraits.objective  # a filter that cannot fire stays at 0
        for start in (grey, random):
            before = measure(model, start, "conv2d_1", filters)
            assert np.all(reached > before) if strict else np.all(reached >= before)
    assert portraits.mean_activation(model, made, "conv2d_1", filters).max() > 0


def test_default_layer_is_the_last_convolution(model) -> None:
    assert portraits.portrait_layer(model[0], None).name == "conv2d_1"


@pytest.mark.parametrize(
    ("text", "expected"), [(None, [0, 1, 2, 3]), ("1-2", [1, 2]), ("3,0,3", [3, 0]), ("2", [2])]
)
def test_filter_lists_parse(text, expected) -> None:
    assert portraits.parse_filters(text, 4) == expected


@pytest.mark.parametrize(
    ("text", "words"), [("0-9", "outside"), ("a-b", "not a list"), ("-1", "not a list")]
)
def test_bad_filter_lists_end_in_one_sentence(text, words) -> None:
    with pytest.raises(ConvlensError, match=words):
        portraits.parse_filters(text, 4)


def test_a_flat_layer_has_no_portrait(model) -> None:
    with pytest.raises(ConvlensError, match="not maps"):
        portraits.portrait_layer(model[0], "dense")
