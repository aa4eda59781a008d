"""Activations by forward hooks, the journey's choices, learned filters: shapes and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from synthetic import pattern_images

from convlens.errors import ConvlensError
from convlens.inspect import journey
from convlens.model.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.model.sequential import Sequential

CLASSES = tuple(f"class {i}" for i in range(10))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return pattern_images(5, seed=3)[0]  # uint8 (5, 28, 28, 1)


def built(model: Sequential) -> tuple[Sequential, torch.nn.Module]:
    network = build_network(model, seed=0)
    network.eval()
    return model, network


def normalised_model() -> Sequential:
    """Batch normalisation and dropout, which behave differently in training."""
    return Sequential(
        [
            Conv2D(8, (3, 3), padding="same", use_bias=False, input_shape=(28, 28, 1)),
            BatchNormalization(),
            Conv2D(8, (3, 3), activation="relu"),
            MaxPooling2D(2, 2),
            Flatten(),
            Dropout(0.3),
            Dense(10, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("name", ["seed-cnn", "seed-dnn", "lenet5", "single-conv", "normalised"])
def test_every_layer_has_the_shape_the_summary_predicts(name: str, images: np.ndarray) -> None:
    model, network = built(normalised_model() if name == "normalised" else preset(name))
    maps = journey.activations((model, network), images)
    assert list(maps) == [row.name for row in model.rows]
    for row in model.rows:
        assert maps[row.name].shape == (len(images), *row.output_shape), row.name
        assert maps[row.name].dtype == np.float32


def test_hooks_see_each_layers_own_output_in_one_pass(images: np.ndarray) -> None:
    model, network = built(preset("seed-cnn"))
    calls = []
    network.register_forward_pre_hook(lambda module, inputs: calls.append(inputs[0].shape))
    maps = journey.activations((model, network), images)
    assert len(calls) == 1  # one forward pass for every layer
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        conv = F.relu(network.conv2d.linear(x))  # (N, 64, 26, 26), ReLU before pooling
        pooled = F.max_pool2d(conv, 2)
    np.testing.assert_allclose(maps["conv2d"], conv.permute(0, 2, 3, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(maps["max_pooling2d"], pooled.permute(0, 2, 3, 1), atol=1e-6)
    np.testing.assert_allclose(maps["dense_1"].sum(axis=1), 1.0, atol=1e-5)  # softmax
    assert maps["conv2d"].min() >= 0  # ReLU's output, not the convolution's


def test_hooks_are_removed_and_the_mode_restored(images: np.ndarray) -> None:
    model, network = built(normalised_model())
    network.train()
    first = journey.activations((model, network), images, ["dropout"])["dropout"]
    again = journey.activations((model, network), images, ["dropout"])["dropout"]
    np.testing.assert_array_equal(first, again)  # eval mode: dropout off
    assert network.training
    assert all(not module._forward_hooks for module in network.modules())


def test_chosen_layers_only_and_a_run_like_object(images: np.ndarray) -> None:
    model, network = built(preset("seed-cnn"))

    class FakeRun:
        pass

    run = FakeRun()
    run.model, run.network = model, network
    maps = journey.activations(run, images[:2], layers=["conv2d_1", "flatten"])
    assert {k: v.shape for k, v in maps.items()} == {
        "conv2d_1": (2, 11, 11, 64),
        "flatten": (2, 1600),
    }
    alone = journey.activations(network, images[:2], layers="conv2d_1")  # a Network alone
    np.testing.assert_array_equal(alone["conv2d_1"], maps["conv2d_1"])


def test_bad_layers_and_images_end_in_one_sentence(images: np.ndarray) -> None:
    pair = built(preset("seed-cnn"))
    with pytest.raises(ConvlensError, match="no layer 'conv3'; choose one of conv2d, "):
        journey.activations(pair, images, ["conv3"])
    with pytest.raises(ConvlensError, match="must be uint8"):
        journey.activations(pair, images.astype(np.float32))
    with pytest.raises(TypeError):
        journey.activations(pair[0], images)  # a spec alone has no weights


def test_journey_takes_one_filter_after_every_conv_and_pool(images: np.ndarray) -> None:
    pair = built(preset("seed-cnn"))
    seen = journey.journey(pair, images[:3], 5)
    names = [row.name for row in seen.rows]
    assert names == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"] == list(seen.maps)
    shapes = [m.shape for m in seen.maps.values()]
    assert shapes == [(3, 26, 26), (3, 13, 13), (3, 11, 11), (3, 5, 5)]
    full = journey.activations(pair, images[:3], ["conv2d_1", "dense_1"])
    np.testing.assert_array_equal(seen.maps["conv2d_1"], full["conv2d_1"][..., 5])
    np.testing.assert_array_equal(seen.outputs, full["dense_1"])  # (3, 10) probabilities


def test_filter_numbers_are_checked_against_every_layers_depth() -> None:
    rows = journey.journey_layers(preset("seed-cnn"))
    journey.check_filter(63, rows)
    with pytest.raises(ConvlensError) as error:
        journey.check_filter(70, rows)
    assert str(error.value) == "filter 70 is past conv2d's 64 filters; choose 0..63."
    with pytest.raises(ConvlensError, match="numbered from 0, choose 0..63"):
        journey.check_filter(-1, rows)
    lenet = journey.journey_layers(preset("lenet5"))  # 6 then 16 filters
    with pytest.raises(ConvlensError, match="past conv2d's 6 filters; choose 0..5"):
        journey.check_filter(6, lenet)


def test_a_model_without_convolutions_has_no_journey(images: np.ndarray) -> None:
    pair = built(preset("seed-dnn"))
    with pytest.raises(ConvlensError, match="no Conv2D or pooling layer"):
        journey.journey(pair, images, 0)
    with pytest.raises(ConvlensError, match="has no Conv2D layer"):
        journey.learned_filters(pair)


def test_learned_filters_in_keras_layout() -> None:
    model = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(12, 12, 3)),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    pair = built(model)
    row, kernels = journey.learned_filters(pair)
    assert row.name == "conv2d" and kernels.shape == (3, 3, 3, 4)
    weight = pair[1].conv2d.weight.detach().numpy()  # (filters, in, kh, kw)
    np.testing.assert_array_equal(kernels[:, :, 2, 1], weight[1, 2])
    with pytest.raises(
        ConvlensError, match="not a Conv2D layer of this model; choose one of conv2d"
    ):
        journey.learned_filters(pair, "dense")


def test_feature_maps_of_one_layer(images: np.ndarray) -> None:
    pair = built(preset("seed-cnn"))
    row, maps = journey.feature_maps(pair, images[0], "max_pooling2d")
    assert row.output_shape == (13, 13, 64) and maps.shape == (13, 13, 64)
    with pytest.raises(ConvlensError, match="dense outputs 128 numbers, not maps; choose"):
        journey.feature_maps(pair, images[0], "dense")


def test_classes_by_name_or_number() -> None:
    assert journey.class_index("class 3", CLASSES) == 3
    assert journey.class_index("CLASS 3", CLASSES) == 3
    assert journey.class_index("7", CLASSES) == 7
    for bad in ("Sandals", "10", "-1"):
        with pytest.raises(ConvlensError, match=f"unknown class '{bad}'; choose a name or number"):
            journey.class_index(bad, CLASSES)


def test_images_are_chosen_by_class_or_index() -> None:
    labels = np.array([9, 2, 9, 1, 9, 9])
    assert journey.choose_images(labels, CLASSES).tolist() == [0, 2, 4]  # class of image 0
    assert journey.choose_images(labels, CLASSES, "2", 1).tolist() == [1]
    assert journey.choose_images(labels, CLASSES, indices=[5, 3]).tolist() == [5, 3]
    with pytest.raises(ConvlensError, match="has 1 images of class 1, fewer than the 3"):
        journey.choose_images(labels, CLASSES, 1, 3)
    with pytest.raises(
        ConvlensError, match="image index 6 is outside the 6 test images; choose 0..5"
    ):
        journey.choose_images(labels, CLASSES, indices=[6])
    with pytest.raises(ConvlensError, match="give one or the other"):
        journey.choose_images(labels, CLASSES, "2", indices=[1])
