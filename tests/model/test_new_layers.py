"""The layers added for imported models, everywhere a layer goes without Keras installed:
hand-written model JSON, the summary, training, the journey, ONNX export (onnxruntime as oracle).
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import onnxscript  # noqa: F401  (the ONNX export needs it: a broken install fails here)
import pytest
import torch
from synthetic import pattern_dataset, write_run

from convlens.data.datasets import Dataset, Split
from convlens.inspect.journey import journey, journey_layers
from convlens.interop.export import export_bytes
from convlens.model.network import images_to_tensor
from convlens.model.sequential import Sequential
from convlens.runs.loading import load_run
from convlens.training.recipes import TrainConfig
from convlens.training.train import fit

MODEL_JSON = {
    "name": "every-new-layer",
    "input_shape": [28, 28, 1],
    "input_scale": 1.0,
    "layers": [
        {"type": "Rescaling", "scale": 0.00392156862745098, "offset": -0.5},
        {"type": "ZeroPadding2D", "padding": [[1, 2], [0, 1]]},
        {"type": "Conv2D", "filters": 6, "kernel_size": [3, 3], "strides": [2, 2]},
        {"type": "BatchNormalization", "epsilon": 1e-5},
        {"type": "ReLU", "max_value": 6.0},
        {"type": "AveragePooling2D", "pool_size": [3, 3], "strides": [2, 2], "padding": "same"},
        {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3], "padding": "same"},
        {"type": "Activation", "activation": "swish"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 10},
        {"type": "Softmax"},
    ],
}


@pytest.fixture(scope="module")
def model() -> Sequential:
    return Sequential.from_config(json.loads(json.dumps(MODEL_JSON)))


def test_model_json_round_trips_and_the_summary_explains_every_layer(model):
    again = Sequential.from_config(model.config())
    assert again.config() == model.config() and again.input_scale == 1.0
    text = model.summary_text()
    assert "31x29: rows 28 + 1 + 2, columns 28 + 0 + 1" in text
    assert "8: the mean of each 8x7 map, one per channel" in text
    assert "pixels 0..255 multiplied by 1 first" in text
    assert [row.output_shape for row in model.rows][-3:] == [(8,), (10,), (10,)]


def shades(count: int, seed: int) -> Split:
    """Three classes told apart by brightness alone (the global pooling keeps no position)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.integers(0, 70, (count, 28, 28, 1)) + 80 * labels[:, None, None, None]
    return Split(images.astype(np.uint8), labels.astype(np.int64))


def test_the_model_trains(model):
    """Gradients flow through every new layer: training accuracy climbs far past chance (1/3).

    (The test accuracy may not yet: BatchNormalization's running statistics, Keras's
    momentum 0.99, are far from settled after 30 steps; it is checked against the
    network's own predictions instead.)
    """
    dataset = Dataset(
        "shades", shades(300, 0), shades(150, 1), ("dark", "grey", "light"), source="generated"
    )
    config = TrainConfig(
        epochs=3, batch_size=32, seed=0, learning_rate=1e-2, ema_decay=0, keep_fraction=1.0
    )
    three = json.loads(json.dumps(MODEL_JSON))
    three["layers"][-2]["units"] = 3  # the Dense before the Softmax
    result = fit(Sequential.from_config(three), dataset, config)
    assert result.history.epochs[-1].train_accuracy > 0.7
    assert result.network.final_softmax
    with torch.no_grad():
        inputs = images_to_tensor(dataset.test.images, model.input_shape, model.input_scale)
        said = result.network(inputs).argmax(1)
    assert result.test.accuracy == pytest.approx(
        float((said.numpy() == dataset.test.labels).mean())
    )


def test_the_journey_shows_the_activation_layers_after_the_first_conv(model, tmp_path):
    rows = journey_layers(model)
    assert [row.layer.keras_type for row in rows] == [
        "Conv2D",
        "ReLU",
        "AveragePooling2D",
        "Conv2D",
        "Activation",
    ]
    run = load_run(write_run(tmp_path / "run", model, tuple("abcdefghij")))
    images = pattern_dataset(4, 4).test.images[:2]
    followed = journey(run, images, filter_index=1)
    assert followed.outputs.shape == (2, 10)
    np.testing.assert_allclose(followed.outputs.sum(axis=1), 1.0, atol=1e-5)


def test_onnx_export_of_the_new_layers_computes_what_convlens_does(model, tmp_path):
    run = load_run(write_run(tmp_path / "run", model, tuple("abcdefghij")))
    session = ort.InferenceSession(export_bytes(run, "onnx"), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    x = pixels.astype(np.float32).transpose(0, 3, 1, 2) * np.float32(run.model.input_scale)
    np.testing.assert_allclose(session.run(None, {"images": x})[0], run.predict(pixels), atol=1e-5)


def test_attribution_and_portraits_read_pixels_at_the_runs_input_scale(model):
    from convlens.inspect.attribution import model_tensor

    raw = model_tensor(model, np.full((1, 28, 28, 1), 255, np.uint8))
    assert float(raw.max()) == 255.0  # this model's input scale is 1: raw pixels
