"""convlens export: ONNX and TorchScript files that give convlens's own probabilities.

A run directory is made without training (random weights, non-zero biases) so
the checks are fast: the exported files must load in onnxruntime and torch.jit,
match ``predict_proba`` to 1e-5 at any batch size, carry the summary's shapes
and Keras names (what Netron shows), record their metadata, and fail cleanly.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from synthetic import pattern_images

from convlens.cli import export
from convlens.cli.main import main
from convlens.interop.export import FORMATS, export_run, read_metadata
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.model.sequential import Sequential
from convlens.model.weights import save_model
from convlens.runs.directory import write_metrics
from convlens.runs.evaluate import predict_proba
from convlens.runs.loading import load_run

TOLERANCE = 1e-5
CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat")

# Every layer type, "same" padding with odd sizes, RGB input, a final softmax of 3 classes.
MIXED = {
    "name": "mixed",
    "input_shape": [15, 13, 3],
    "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
         "padding": "same", "activation": "elu"},
        {"type": "BatchNormalization"},
        {"type": "AveragePooling2D", "pool_size": [2, 2], "strides": [2, 2], "padding": "same"},
        {"type": "MaxPooling2D", "pool_size": [2, 2], "strides": [1, 1], "padding": "same"},
        {"type": "Conv2D", "filters": 5, "kernel_size": [2, 2], "padding": "same",
         "activation": "tanh"},
        {"type": "Flatten"},
        {"type": "Dropout", "rate": 0.3},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
}  # fmt: skip


# No final softmax: the export gives the last layer's outputs, as convlens does.
LINEAR = {
    "name": "linear",
    "input_shape": [8, 6, 1],
    "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 4, "activation": "sigmoid"}],
}


def make_run(directory: Path, model: Sequential, seed: int = 0) -> Path:
    """A run directory with random weights, non-zero biases and BatchNorm statistics."""
    network = build_network(model, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*network.parameters(), *network.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator).abs())
    directory.mkdir(parents=True)
    save_model(directory, model, network)
    write_metrics(directory, {"test_accuracy": 0.0})
    return directory


def nchw(images: np.ndarray) -> np.ndarray:
    """The documented preprocessing: uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    return np.ascontiguousarray((images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2))


def onnx_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the test machine's cores are shared
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_probabilities(path: Path, inputs: np.ndarray) -> np.ndarray:
    return onnx_session(path).run(None, {"images": inputs})[0]


def load_torchscript(path: Path, extra: dict[str, str] | None = None) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch.jit.load is deprecated upstream
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), _extra_files=extra if extra is not None else {})


def torchscript_probabilities(path: Path, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return load_torchscript(path)(torch.from_numpy(inputs)).numpy()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    model = preset("seed-cnn").with_output_units(len(CLASSES)).with_class_names(CLASSES)
    return make_run(tmp_path_factory.mktemp("export") / "seed-cnn", model)


@pytest.fixture(scope="module")
def sample(run_dir) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, C) and convlens's probabilities for them."""
    images, _ = pattern_images(40, classes=len(CLASSES), seed=3)
    run = load_run(run_dir)
    return images, predict_proba(run.network, images, run.model.input_shape)


@pytest.fixture(scope="module")
def onnx_file(run_dir) -> Path:
    assert main(["export", "--run", str(run_dir), "--format", "onnx"]) == 0
    return run_dir / "model.onnx"


@pytest.fixture(scope="module")
def torchscript_file(run_dir) -> Path:
    assert main(["export", "--run", str(run_dir), "--format", "torchscript"]) == 0
    return run_dir / "model.torchscript.pt"


# ---------------------------------------------------------------- same probabilities


def test_onnx_gives_convlens_probabilities(onnx_file, sample):
    images, expected = sample
    got = onnx_probabilities(onnx_file, nchw(images))
    difference = float(np.abs(got - expected).max())
    assert difference <= TOLERANCE, f"ONNX max abs difference {difference:.2e}"
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # softmax is in the graph


def test_torchscript_gives_convlens_probabilities(torchscript_file, sample):
    images, expected = sample
    got = torchscript_probabilities(torchscript_file, nchw(images))
    assert float(np.abs(got - expected).max()) <= TOLERANCE


@pytest.mark.parametrize("batch", [1, 17])
def test_batch_size_is_free(onnx_file, torchscript_file, sample, batch):
    images, expected = sample
    inputs = nchw(images[:batch])
    for got in (
        onnx_probabilities(onnx_file, inputs),
        torchscript_probabilities(torchscript_file, inputs),
    ):
        assert got.shape == (batch, len(CLASSES))
        assert float(np.abs(got - expected[:batch]).max()) <= TOLERANCE


@pytest.mark.parametrize("config, output", [(MIXED, "probabilities"), (LINEAR, "outputs")])
def test_every_layer_type_exports_the_same(tmp_path, config, output):
    model = Sequential.from_config(config)
    run_dir = make_run(tmp_path / model.name, model, seed=1)
    shape = (9, *model.input_shape)
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    expected = predict_proba(load_run(run_dir).network, images, model.input_shape)
    onnx_path = export_run(run_dir, "onnx").path
    script_path = export_run(run_dir, "torchscript").path
    for got in (
        onnx_probabilities(onnx_path, nchw(images)),
        torchscript_probabilities(script_path, nchw(images)),
    ):
        assert float(np.abs(got - expected).max()) <= TOLERANCE
    proto = onnx.load(str(onnx_path))
    assert [v.name for v in proto.graph.output] == [output]
    assert read_metadata(script_path)["output_name"] == output
    check_shapes_match_summary(proto, model)


# ---------------------------------------------------------------- what Netron shows


def nchw_shape(keras_shape: tuple[int, ...]) -> list[int]:
    """Keras's (H, W, C) as ONNX's (C, H, W); a vector stays as it is."""
    if len(keras_shape) == 3:
        height, width, channels = keras_shape
        return [channels, height, width]
    return list(keras_shape)


def tensor_dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def check_shapes_match_summary(proto: onnx.ModelProto, model: Sequential) -> None:
    """Each layer's output tensor, named after the layer, has the summary's shape.

    Checked twice: the shapes the exporter recorded (what Netron shows) and the
    shapes ONNX's own inference derives from the graph alone.
    """
    recorded = {v.name: tensor_dims(v) for v in [*proto.graph.value_info, *proto.graph.output]}
    stripped = onnx.ModelProto()
    stripped.CopyFrom(proto)
    del stripped.graph.value_info[:]
    inferred_model = onnx.shape_inference.infer_shapes(stripped, strict_mode=True)
    graph = inferred_model.graph
    inferred = {v.name: tensor_dims(v) for v in [*graph.value_info, *graph.output]}
    output = proto.graph.output[0].name
    for index, row in enumerate(model.rows):
        if row.layer.keras_type == "Dropout":
            continue  # an identity at inference: the exporter leaves no node for it
        name = output if index == len(model.rows) - 1 else row.name
        assert recorded[name] == ["batch", *nchw_shape(row.output_shape)], row.name
        batch, *rest = inferred[name]
        assert isinstance(batch, str) and rest == nchw_shape(row.output_shape), row.name


def test_onnx_shapes_match_the_summary(onnx_file, run_dir):
    check_shapes_match_summary(onnx.load(str(onnx_file)), load_run(run_dir).model)


def test_onnx_graph_is_named_after_the_keras_layers(onnx_file):
    proto = onnx.load(str(onnx_file))
    onnx.checker.check_model(proto, full_check=True)
    assert [node.name for node in proto.graph.node] == [
        "conv2d/Conv", "conv2d/Relu", "max_pooling2d/MaxPool",
        "conv2d_1/Conv", "conv2d_1/Relu", "max_pooling2d_1/MaxPool",
        "flatten/Transpose", "flatten/Reshape",
        "dense/Gemm", "dense/Relu", "dense_1/Gemm", "dense_1/Softmax",
    ]  # fmt: skip
    weights = {tensor.name for tensor in proto.graph.initializer}
    assert {"conv2d.weight", "conv2d.bias", "dense_1.weight", "dense_1.bias"} <= weights
    assert [v.name for v in proto.graph.input] == ["images"]
    assert [v.name for v in proto.graph.output] == ["probabilities"]
    assert tensor_dims(proto.graph.input[0]) == ["batch", 1, 28, 28]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


# ---------------------------------------------------------------- metadata


def test_metadata_travels_in_both_files(onnx_file, torchscript_file):
    expected = {
        "model": "seed-cnn",
        "input_name": "images",
        "input_shape": ["N", 1, 28, 28],
        "input_dtype": "float32",
        "output_name": "probabilities",
        "output_shape": ["N", len(CLASSES)],
        "class_names": list(CLASSES),
    }
    for path in (onnx_file, torchscript_file):
        metadata = read_metadata(path)
        assert {k: metadata[k] for k in expected} == expected
        assert "divided by 255" in metadata["preprocessing"]
    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert json.loads(props["convlens.class_names"]) == list(CLASSES)
    extra = {"convlens.json": ""}
    load_torchscript(torchscript_file, extra)
    assert json.loads(extra["convlens.json"])["class_names"] == list(CLASSES)


def test_export_prints_what_the_file_expects(run_dir, tmp_path, capsys):
    out = tmp_path / "elsewhere.pt"
    assert (
        main(["export", "--run", str(run_dir), "--format", "torchscript", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "(N, 1, 28, 28)" in printed and "Trouser" in printed
    assert out.is_file()


def test_the_command_offers_the_formats_export_writes():
    assert export.FORMAT_CHOICES == FORMATS


def test_default_run_is_the_latest(run_dir, tmp_path, monkeypatch):
    make_run(tmp_path / "runs" / "only", preset("seed-dnn"))
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--format", "torchscript"]) == 0
    assert (tmp_path / "runs" / "only" / "model.torchscript.pt").is_file()


# ---------------------------------------------------------------- errors


def exit_status(argv: list[str]) -> int:
    """``convlens`` run in-process; a usage error (argparse) exits through SystemExit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def no_temporary_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "case, message",
    [
        ("no weights", "no weights.safetensors"),
        ("unknown format", "invalid choice: 'tflite'"),
        ("missing directory", "cannot write"),
        ("out is a directory", "is a directory"),
    ],
)
def test_errors_exit_2_with_one_sentence(run_dir, tmp_path, capsys, case, message):
    argv = {
        "no weights": ["--run", str(tmp_path), "--format", "onnx"],
        "unknown format": ["--run", str(run_dir), "--format", "tflite"],
        "missing directory": ["--run", str(run_dir), "--format", "onnx",
                              "--out", str(tmp_path / "missing" / "m.onnx")],
        "out is a directory": ["--run", str(run_dir), "--format", "onnx", "--out", str(tmp_path)],
    }[case]  # fmt: skip
    assert exit_status(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.endswith(".")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file(run_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous export")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    assert (
        main(["export", "--run", str(run_dir), "--format", "torchscript", "--out", str(out)]) == 2
    )
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"the previous export"
    assert no_temporary_files(tmp_path)


def test_a_test_time_flip_model_exports_its_mirror_average(tmp_path):
    model = Sequential.from_config({**MIXED, "test_time_flip": True})  # as model.json says it
    run_dir = make_run(tmp_path / "flip", model, seed=2)
    images = np.random.default_rng(1).integers(
        0, 256, size=(12, *model.input_shape), dtype=np.uint8
    )
    network = load_run(run_dir).network
    assert network.test_time_flip
    expected = predict_proba(network, images, model.input_shape)
    network.test_time_flip = False
    alone = predict_proba(network, images, model.input_shape)
    assert float(np.abs(alone - expected).max()) > 1e-3  # the mirror changes the answer
    for fmt, read in (("onnx", onnx_probabilities), ("torchscript", torchscript_probabilities)):
        got = read(export_run(run_dir, fmt).path, nchw(images))
        assert float(np.abs(got - expected).max()) <= TOLERANCE, fmt
