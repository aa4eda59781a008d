"""Keras 3 models for the interop tests, built on the torch backend (KERAS_BACKEND=torch).

Each builder returns a model whose weights are random (BatchNormalization's
moving statistics too), so an import that mixes up a transpose, an order or an
epsilon shows in the outputs.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Random weights everywhere; variances positive."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = tuple(weight.shape)
            if "variance" in weight.name:
                values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
            elif len(shape) > 1:  # a kernel: Glorot-like spread keeps logits moderate
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, 1.5 / np.sqrt(fan_in), shape).astype("float32"))
            else:
                values.append(rng.normal(0, 0.3, shape).astype("float32"))
        if values:
            layer.set_weights(values)
    return model


def lesson_cnn() -> keras.Model:
    """The lesson's Fashion-MNIST CNN, as the lesson writes it."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def dense_baseline() -> keras.Model:
    """The lesson's dense-only baseline, on (28, 28) images without a channel axis as it has."""
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def lenet5() -> keras.Model:
    """LeNet-5 on 32x32x1: tanh, average pooling."""
    return keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            layers.Conv2D(6, 5, activation="tanh"),
            layers.AveragePooling2D(2),
            layers.Conv2D(16, 5, activation="tanh"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dense(120, activation="tanh"),
            layers.Dense(84, activation="tanh"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def batch_normalised() -> keras.Model:
    """Conv, BN (own epsilon), stride-2 'same' convolution, BN on a flat vector, dropout."""
    return keras.Sequential(
        [
            keras.Input((15, 15, 1)),
            layers.Conv2D(8, 3, padding="same", use_bias=False),
            layers.BatchNormalization(epsilon=1e-5, momentum=0.9),
            layers.Activation("relu"),
            layers.Conv2D(8, 3, strides=2, padding="same", activation="elu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Flatten(),
            layers.Dense(16, activation="gelu"),
            layers.BatchNormalization(),
            layers.Dropout(0.3),
            layers.Dense(5, activation="softmax"),
        ]
    )


def rgb() -> keras.Model:
    """An RGB model that scales its own pixels, ending in logits (no softmax).

    21x21 makes the "same" average pooling pad symmetrically: for an odd pixel, Keras's torch
    backend and TensorFlow disagree (test_layers_keras checks TensorFlow's rule by hand).
    """
    return keras.Sequential(
        [
            keras.Input((21, 21, 3)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(6, 3, activation="relu"),
            layers.AveragePooling2D(3, strides=2, padding="same"),
            layers.Flatten(),
            layers.Dense(4),
        ]
    )


def new_layers() -> keras.Model:
    """Every layer convlens gained for imported models, as a functional single chain."""
    inputs = keras.Input((17, 17, 3))
    x = layers.Rescaling(2.0 / 255, offset=-1.0)(inputs)
    x = layers.ZeroPadding2D(((1, 2), (0, 3)))(x)
    x = layers.Conv2D(6, 3, strides=2, padding="same")(x)
    x = layers.ReLU(max_value=4.0, negative_slope=0.1, threshold=0.2)(x)
    x = layers.Conv2D(6, 3, padding="same", activation="swish")(x)
    x = layers.Activation("selu")(x)
    x = layers.Conv2D(8, 2, activation="softplus")(x)
    x = layers.ReLU()(x)
    x = layers.Activation("tanh")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(6, activation="sigmoid")(x)
    x = layers.Dense(3)(x)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs, name="new_layers")


def global_max() -> keras.Model:
    """LeakyReLU, SpatialDropout2D and ELU layers; global max pooling, Activation('softmax')."""
    return keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            layers.Conv2D(4, 3, activation="relu6"),
            layers.LeakyReLU(),
            layers.SpatialDropout2D(0.1),
            layers.Conv2D(3, 3, activation="hard_sigmoid"),
            layers.ELU(),
            layers.GlobalMaxPooling2D(),
            layers.Activation("softmax"),
        ]
    )


MODELS = {
    "lesson-cnn": lesson_cnn,
    "dense-baseline": dense_baseline,
    "lenet5": lenet5,
    "batch-normalised": batch_normalised,
    "rgb": rgb,
    "new-layers": new_layers,
    "global-max": global_max,
}


def images(model: keras.Model, count: int = 6, seed: int = 1) -> np.ndarray:
    """Random uint8 images (N, H, W, C) at the model's input size (C = 1 when it has none)."""
    shape = tuple(model.input_shape[1:])
    shape = (*shape, 1) if len(shape) == 2 else shape
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


def keras_predict(model: keras.Model, pixels: np.ndarray, scale: float) -> np.ndarray:
    """Keras's own outputs for uint8 images preprocessed as the run says (pixels x scale)."""
    x = pixels.astype("float32") * np.float32(scale)
    x = x.reshape((len(x), *model.input_shape[1:]))  # (N, 28, 28) for a model without channels
    return np.asarray(model.predict(x, verbose=0))
