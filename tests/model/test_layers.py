"""Layer arithmetic against Keras's own numbers (hand-computed from Keras's formulas)."""

import pytest

from convlens.errors import ConvlensError
from convlens.model.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    layer_from_config,
)


@pytest.mark.parametrize(
    ("layer", "input_shape", "output_shape", "params"),
    [
        # The lesson's CNN, layer by layer (Keras's published summary).
        (Conv2D(64, (3, 3), activation="relu"), (28, 28, 1), (26, 26, 64), 640),
        (MaxPooling2D(2, 2), (26, 26, 64), (13, 13, 64), 0),
        (Conv2D(64, (3, 3), activation="relu"), (13, 13, 64), (11, 11, 64), 36_928),
        (MaxPooling2D(2, 2), (11, 11, 64), (5, 5, 64), 0),
        (Flatten(), (5, 5, 64), (1600,), 0),
        (Dense(128, activation="relu"), (1600,), (128,), 204_928),
        (Dense(10, activation="softmax"), (128,), (10,), 1_290),
        # LeNet-5 on 32x32x1: the lesson's 5x5, 6-deep example gives 28x28x6.
        (Conv2D(6, (5, 5)), (32, 32, 1), (28, 28, 6), 156),
        (AveragePooling2D(2), (28, 28, 6), (14, 14, 6), 0),
        (Conv2D(16, (5, 5)), (14, 14, 6), (10, 10, 16), 2_416),
        # padding="same" with strides, odd sizes: out = ceil(in / stride).
        (Conv2D(8, (3, 3), strides=2, padding="same"), (28, 28, 3), (14, 14, 8), 224),
        (Conv2D(8, (3, 3), strides=2, padding="same"), (27, 27, 3), (14, 14, 8), 224),
        (Conv2D(8, 3, strides=(2, 3), padding="same"), (27, 28, 1), (14, 10, 8), 80),
        (Conv2D(4, (5, 3), padding="same"), (7, 9, 2), (7, 9, 4), 124),
        # valid with strides: floor((in - k) / s) + 1.
        (Conv2D(8, (3, 3), strides=2), (27, 27, 3), (13, 13, 8), 224),
        (Conv2D(8, (4, 2), strides=(3, 1)), (10, 10, 1), (3, 9, 8), 72),
        (Conv2D(8, (3, 3), use_bias=False), (28, 28, 3), (26, 26, 8), 216),
        # RGB input.
        (Conv2D(16, (5, 5)), (32, 32, 3), (28, 28, 16), 1_216),
        (Conv2D(32, (3, 3)), (64, 48, 3), (62, 46, 32), 896),
        # Pooling: floor rounding, "same", overlapping windows.
        (MaxPooling2D(2), (7, 7, 3), (3, 3, 3), 0),
        (MaxPooling2D(2, padding="same"), (11, 11, 64), (6, 6, 64), 0),
        (MaxPooling2D(3, strides=2), (13, 13, 8), (6, 6, 8), 0),
        (AveragePooling2D((2, 3)), (9, 9, 2), (4, 3, 2), 0),
        # Dense directly after Flatten of any volume.
        (Flatten(), (7, 7, 32), (1568,), 0),
        (Dense(5), (1568,), (5,), 7_845),
        (Dense(5, use_bias=False), (1568,), (5,), 7_840),
        (Dropout(0.25), (13, 13, 64), (13, 13, 64), 0),
        (BatchNormalization(), (13, 13, 64), (13, 13, 64), 256),
        (BatchNormalization(), (128,), (128,), 512),
    ],
)
def test_output_shape_and_params_equal_keras(layer, input_shape, output_shape, params):
    assert layer.output_shape(input_shape) == output_shape
    assert layer.param_count(input_shape) == params


def test_batch_normalization_counts_half_as_trainable():
    assert BatchNormalization().trainable_count((5, 5, 64)) == 128


@pytest.mark.parametrize(
    ("layer", "input_shape", "shape_text", "params_text"),
    [
        (Conv2D(64, (3, 3)), (28, 28, 1), "26x26: 28 - 3 + 1", "640 = 64 x (3 x 3 x 1) + 64"),
        (MaxPooling2D(2, 2), (11, 11, 64), "5x5: floor(11 / 2)", "0"),
        (Flatten(), (5, 5, 64), "1,600 = 5 x 5 x 64", "0"),
        (Dense(128), (1600,), "128 units", "204,928 = 1,600 x 128 + 128"),
        (Conv2D(8, 3, strides=2, padding="same"), (27, 27, 3), "14x14: ceil(27 / 2)", "224 = 8 x"),
        (Conv2D(8, 3, strides=2), (27, 27, 3), "13x13: floor((27 - 3) / 2) + 1", "224"),
        (BatchNormalization(), (5, 5, 64), "unchanged", "256 = 4 x 64"),
    ],
)
def test_explanations_show_the_formula(layer, input_shape, shape_text, params_text):
    assert layer.explain_shape(input_shape).startswith(shape_text)
    assert layer.explain_params(input_shape).startswith(params_text)


def test_the_lesson_reasons_are_spelled_out():
    assert "needs a neighbour on every side" in Conv2D(64, (3, 3)).explain_shape((28, 28, 1))
    assert "odd last row/column is dropped" in MaxPooling2D(2, 2).explain_shape((11, 11, 64))


def test_keras_positional_arguments():
    conv = Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1))
    assert (conv.filters, conv.kernel_size, conv.activation) == (64, (3, 3), "relu")
    assert conv.input_shape == (28, 28, 1)
    pool = MaxPooling2D(2, 2)
    assert (pool.pool_size, pool.strides) == ((2, 2), (2, 2))
    assert MaxPooling2D(3).strides == (3, 3)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Conv2D(5, (5, 5), name="c").output_shape((3, 3, 1)),
            "5x5 kernel but its input is only 3x3x1",
        ),
        (lambda: MaxPooling2D(4).output_shape((3, 3, 2)), "leaves nothing"),
        (lambda: Conv2D(-1), "filters must be a positive integer"),
        (lambda: Conv2D(4, (0, 3)), "kernel_size must be at least 1"),
        (lambda: Conv2D(4, 3, padding="full"), "unknown padding 'full'"),
        (lambda: Conv2D(4, 3, activation="swish2"), "unknown activation 'swish2'"),
        (lambda: Dense(10).output_shape((5, 5, 64)), "add Flatten() before it"),
        (lambda: Conv2D(4, 3).output_shape((1600,)), "needs an image volume"),
        (lambda: Dropout(1.5), "rate must be in [0, 1)"),
        (lambda: layer_from_config({"type": "Conv3D"}), "unknown layer type 'Conv3D'"),
        (
            lambda: layer_from_config({"type": "Dense", "units": 3, "unitz": 4}),
            "no argument 'unitz'",
        ),
        (
            lambda: layer_from_config({"type": "Conv2D", "filters": 4, "kernel_size": "big"}),
            "kernel_size",
        ),
        (lambda: layer_from_config(["Dense"]), "must be an object"),
    ],
)
def test_bad_layers_are_refused_with_one_sentence(build, message):
    with pytest.raises(ConvlensError, match=None) as caught:
        build()
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and text.endswith(".")


def test_config_round_trips():
    layer = Conv2D(8, (5, 3), strides=2, padding="same", activation="relu", use_bias=False)
    config = layer.config()
    assert config["type"] == "Conv2D" and config["kernel_size"] == [5, 3]
    assert layer_from_config(config) == layer
