"""The layers convlens gained for imported models, against Keras 3 and TensorFlow's rules.

Activations are compared with keras.activations itself; the "same" average
pooling corner (an odd padding pixel) with TensorFlow's rule written out in
NumPy, because Keras's torch backend does not follow it there.
"""

from __future__ import annotations

import keras_models  # Keras is the oracle: a broken install fails here, never skips
import numpy as np
import pytest
import torch

from convlens.errors import ConvlensError
from convlens.model.layers import (
    ACTIVATIONS,
    AveragePooling2D,
    Conv2D,
    Cropping2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    ReLU,
    ZeroPadding2D,
)
from convlens.model.modules import ACTIVATION_FUNCTIONS, KerasReLU, layer_module
from convlens.model.sequential import Sequential

keras = keras_models.keras


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_each_activation_computes_what_keras_computes(name):
    x = np.random.default_rng(0).normal(0, 3, (4, 7)).astype("float32")
    expected = np.asarray(keras.activations.get(name)(x))
    function = ACTIVATION_FUNCTIONS[name]
    got = x if function is None else function(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"max_value": 6.0},
        {"negative_slope": 0.1},
        {"threshold": 0.5},
        {"max_value": 2.0, "negative_slope": 0.2, "threshold": 0.3},
    ],
)
def test_relu_layer_matches_keras(arguments):
    x = np.random.default_rng(1).normal(0, 3, (2, 3, 5, 5)).astype("float32")
    expected = np.asarray(keras.layers.ReLU(**arguments)(x))
    got = KerasReLU(ReLU(**arguments))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def _tensorflow_same_average(x: np.ndarray, window: int, stride: int) -> np.ndarray:
    """TensorFlow's "same" average pooling of (H, W): extra padding at the end, real pixels only."""
    size = x.shape[0]
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    before = total // 2
    result = np.zeros((out, out), np.float64)
    for i in range(out):
        for j in range(out):
            r, c = i * stride - before, j * stride - before
            block = x[max(r, 0) : min(r + window, size), max(c, 0) : min(c + window, size)]
            result[i, j] = block.mean()
    return result


@pytest.mark.parametrize("size", [18, 19, 6])
def test_same_average_pooling_divides_by_the_real_pixels(size):
    x = np.random.default_rng(size).normal(0, 1, (size, size)).astype("float32")
    spec = AveragePooling2D(3, strides=2, padding="same")
    pool = layer_module(spec, (size, size, 1), final=False)
    got = pool(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, _tensorflow_same_average(x, 3, 2), atol=1e-6)
    assert got.shape == spec.output_shape((size, size, 1))[:2]


def test_new_layer_sentences_explain_their_numbers():
    padding = ZeroPadding2D(((1, 2), (0, 3)))
    assert padding.output_shape((17, 17, 3)) == (20, 20, 3)
    assert "20x20: rows 17 + 1 + 2, columns 17 + 0 + 3" in padding.explain_shape((17, 17, 3))
    pool = GlobalAveragePooling2D()
    assert pool.output_shape((5, 5, 8)) == (8,)
    assert pool.explain_shape((5, 5, 8)) == "8: the mean of each 5x5 map, one per channel"


@pytest.mark.parametrize("cropping", [1, (2, 0), ((1, 2), (0, 3)), ((0, 0), (4, 1))])
def test_cropping_shapes_and_values_are_kerass(cropping):
    spec = Cropping2D(cropping)
    x = np.random.default_rng(3).normal(0, 1, (2, 11, 9, 3)).astype("float32")
    expected = np.asarray(keras.layers.Cropping2D(cropping)(x))
    assert spec.output_shape((11, 9, 3)) == expected.shape[1:]
    module = layer_module(spec, (11, 9, 3), final=False)
    got = module(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got, expected)


def test_cropping_explains_its_shape_and_moves_the_receptive_field():
    spec = Cropping2D(((1, 2), (0, 3)))
    assert "8x6: rows 11 - 1 - 2, columns 9 - 0 - 3" in spec.explain_shape((11, 9, 3))
    model = Sequential(
        [Conv2D(2, (3, 3), input_shape=(13, 11, 1)), spec, Flatten(), Dense(2)], name="crop"
    )
    fields = model.receptive_fields()
    assert fields["cropping2d"].size == fields["conv2d"].size == (3, 3)
    assert fields["cropping2d"].start == (1, 0)  # output pixel 0 is conv2d's pixel (1, 0)
    with pytest.raises(ConvlensError, match="leaves nothing; crop less"):
        Cropping2D(((5, 6), (0, 0))).output_shape((11, 9, 3))
