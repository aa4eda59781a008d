"""ONNX files from torch.onnx.export (both exporters) and hand-built graphs, imported as runs.

Oracles: the torch module that was exported (torch.onnx.export of random chain
CNNs: stride 2 with padding, BatchNorm folded or kept, no final softmax), and
onnxruntime for hand-built graphs (asymmetric pads, MatMul + Add) that torch
does not write.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from torch import nn

from convlens.cli.main import main
from convlens.errors import ConvlensError
from convlens.interop.importing import import_model
from convlens.interop.reading import read_model_file
from convlens.runs.loading import load_run, load_test_split
from convlens.views.report import write_run_report


def strided_bn_cnn() -> nn.Module:
    """Stride 2 with padding 1, BatchNorm, max and average pooling, logits out."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(6 * 3 * 3, 5),
    )


def lesson_like_cnn() -> nn.Module:
    """The lesson's CNN in PyTorch (narrower), ending in logits."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(8, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(8 * 5 * 5, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def rgb_cnn() -> nn.Module:
    """RGB, asymmetric zero padding, counted-pad average pooling, global pooling, sigmoid."""
    return nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)),
        nn.Conv2d(3, 6, 5, stride=2, padding=2),
        nn.BatchNorm2d(6),
        nn.ELU(),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(6, 4, 3, padding=1, bias=False),
        nn.Sigmoid(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
        nn.Softmax(dim=1),
    )


class ViewCnn(nn.Module):
    """Flattens with x.view(x.size(0), -1): the TorchScript exporter computes that shape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.dense = nn.Linear(4 * 7 * 7, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.dense(x.contiguous().view(x.size(0), -1))


MODELS = {
    "strided-bn": (strided_bn_cnn, (1, 28, 28)),
    "lesson-like": (lesson_like_cnn, (1, 28, 28)),
    "rgb": (rgb_cnn, (3, 19, 19)),
    "view": (ViewCnn, (1, 14, 14)),
}


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.weight.normal_(1, 0.3)
                layer.bias.normal_(0, 0.3)
                layer.running_mean.normal_(0, 0.3)
                layer.running_var.uniform_(0.5, 1.5)
    return module.eval()


def _export(module: nn.Module, shape, path, dynamo: bool) -> None:
    example = torch.rand(2, *shape)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(
                module,
                (example,),
                path,
                input_names=["x"],
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
        else:
            torch.onnx.export(
                module,
                (example,),
                path,
                input_names=["x"],
                dynamo=False,
                dynamic_axes={"x": {0: "batch"}},
            )


def _pixels(shape, seed=0) -> np.ndarray:
    channels, height, width = shape
    return np.random.default_rng(seed).integers(0, 256, (5, height, width, channels), np.uint8)


def _torch_outputs(module: nn.Module, pixels: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().float() / 255
        return module(x).numpy()


def _file_parameters(path) -> int:
    model = onnx.load(str(path))  # the data file beside it too
    return sum(
        int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT
    )


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript-exporter"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_exported_onnx_predicts_what_torch_computes(name, dynamo, tmp_path):
    make, shape = MODELS[name]
    module = _randomise(make(), seed=len(name))
    path = tmp_path / f"{name}.onnx"
    _export(module, shape, path, dynamo)
    run = load_run(import_model(path, out=tmp_path / "run").path)
    pixels = _pixels(shape)
    got = run.predict(pixels)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _torch_outputs(module, pixels), atol=1e-5, rtol=0)
    assert run.model.total_params == _file_parameters(path)
    assert run.model.input_shape == (shape[1], shape[2], shape[0])


def test_an_imported_onnx_run_walks_through_every_command(tmp_path, capsys, monkeypatch):
    from synthetic import pattern_dataset, write_idx_dataset

    module = _randomise(lesson_like_cnn(), seed=3)
    path = tmp_path / "lesson.onnx"
    _export(module, (1, 28, 28), path, dynamo=True)
    data = write_idx_dataset(tmp_path / "mnist", pattern_dataset(60, 40))
    out = tmp_path / "run"
    argv = ["import", str(path), "--out", str(out), "--dataset", "mnist", "--data-dir", str(data)]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert (out / "report.html").is_file()
    report = (out / "report.html").read_text()
    assert "journey" in report and "Imported from lesson.onnx (onnx, pytorch" in report
    monkeypatch.chdir(tmp_path)
    common = ["--run", str(out), "--dataset", "mnist", "--data-dir", str(data)]
    assert main(["inspect", *common, "--out", str(tmp_path / "journey.png")]) == 0
    assert (tmp_path / "journey.png").is_file()
    assert main(["evaluate", *common]) == 0
    assert main(["summary", "--model", str(path)]) == 0
    assert "zero_padding2d" not in capsys.readouterr().out  # padding 0: nothing added


# ---------------------------------------------------------------- hand-built graphs


def _graph_model(nodes, initializers, input_shape, output_shape) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "hand_built",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *output_shape])],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _onnxruntime_outputs(model: onnx.ModelProto, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("pads", [[0, 0, 1, 1], [1, 0, 2, 1], [1, 1, 1, 1]])
def test_asymmetric_conv_pads_and_matmul_add(pads, tmp_path):
    rng = np.random.default_rng(sum(pads))
    weights = {
        "k": rng.normal(0, 0.3, (3, 1, 3, 3)).astype(np.float32),
        "b": rng.normal(0, 0.3, (3,)).astype(np.float32),
        "shape": np.array([-1, 0], np.int64),
    }
    conv = helper.make_node("Conv", ["x", "k", "b"], ["c"], pads=pads, strides=[2, 2])
    height = (10 + pads[0] + pads[2] - 3) // 2 + 1
    width = (10 + pads[1] + pads[3] - 3) // 2 + 1
    weights["shape"][1] = 3 * height * width
    weights["w"] = rng.normal(0, 0.3, (3 * height * width, 4)).astype(np.float32)
    weights["bias"] = rng.normal(0, 0.3, (4,)).astype(np.float32)
    nodes = [
        conv,
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["y"]),
    ]
    model = _graph_model(nodes, weights, [1, 10, 10], [4])
    path = tmp_path / "hand.onnx"
    path.write_bytes(model.SerializeToString())
    imported = read_model_file(path)
    kinds = [row.layer.keras_type for row in imported.model.rows]
    same = pads == [0, 0, 1, 1]  # Keras's "same" for 10 pixels, stride 2: the odd one after
    assert kinds[0] == ("Conv2D" if same else "ZeroPadding2D")
    run = load_run(import_model(path, out=tmp_path / "run").path)
    pixels = _pixels((1, 10, 10))
    np.testing.assert_allclose(
        run.predict(pixels), _onnxruntime_outputs(model, pixels), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(
    ("merge", "does"),
    [
        (helper.make_node("Add", ["a", "b"], ["y"], name="residual_add"), "a residual connection"),
        (
            helper.make_node("Concat", ["a", "b"], ["y"], axis=1, name="join"),
            "joins the branches side by side (a concatenation)",
        ),
    ],
    ids=["Add", "Concat"],
)
def test_a_merging_onnx_graph_is_refused_naming_its_merge(tmp_path, merge, does):
    weights = {"k": np.ones((2, 1, 3, 3), np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["a"], name="conv"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["r"], ["b"], name="gate"),
        merge,
    ]
    out = [2, 4, 4] if merge.op_type == "Add" else [4, 4, 4]
    path = tmp_path / "branch.onnx"
    path.write_bytes(_graph_model(nodes, weights, [1, 6, 6], out).SerializeToString())
    with pytest.raises(ConvlensError) as refused:
        read_model_file(path)
    said = str(refused.value)
    assert f"merges again at its {merge.op_type} node {merge.name!r}, which" in said
    assert does in said and "branches at tensor 'a'" in said and "single-chain" in said


@pytest.mark.parametrize("dynamo", [False, True])
def test_a_residual_block_exported_by_torch_is_refused_naming_its_add(tmp_path, dynamo):
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x)) + x

    path = tmp_path / "residual.onnx"
    _export(nn.Sequential(Residual(), nn.Flatten(), nn.Linear(36, 3)), (1, 6, 6), path, dynamo)
    with pytest.raises(ConvlensError, match=r"merges again at its Add node '[^']+', which adds"):
        read_model_file(path)


def test_an_unknown_operator_is_named(tmp_path):
    nodes = [helper.make_node("LRN", ["x"], ["y"], size=3)]
    path = tmp_path / "lrn.onnx"
    path.write_bytes(_graph_model(nodes, {}, [1, 6, 6], [1, 6, 6]).SerializeToString())
    with pytest.raises(ConvlensError, match="LRN"):
        read_model_file(path)


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    weights = {"k": np.ones((2, 1, 3, 3), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"]), helper.make_node("Flatten", ["c"], ["y"])]
    model = _graph_model(nodes, weights, [1, 5, 5], [18])
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "72")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "external.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ConvlensError, match="own folder"):
        read_model_file(path)


def test_a_folder_dataset_names_the_classes_and_scores_an_imported_rgb_model(tmp_path):
    module = _randomise(rgb_cnn(), seed=5)
    path = tmp_path / "rgb.onnx"
    _export(module, (3, 19, 19), path, dynamo=True)
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "fox"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 256, (19, 19, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / name / f"{index}.png")
    result = import_model(
        path, out=tmp_path / "run", dataset=str(tmp_path / "pets"), finish=write_run_report
    )
    run = load_run(result.path)
    assert run.class_names == ("cat", "dog", "fox")
    test = load_test_split(run)  # the recorded split the import scored
    said = run.predict(test.images).argmax(1)
    assert result.metrics["test_accuracy"] == pytest.approx(float((said == test.labels).mean()))
    assert len(test) > 0
    assert result.metrics["data_source"] == str((tmp_path / "pets").resolve())
    assert (result.path / "report.html").is_file()


def test_batch_normalization_and_global_max_pool_nodes(tmp_path):
    rng = np.random.default_rng(7)
    weights = {
        "k": rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32),
        "gamma": rng.normal(1, 0.3, (4,)).astype(np.float32),
        "beta": rng.normal(0, 0.3, (4,)).astype(np.float32),
        "mean": rng.normal(0, 0.3, (4,)).astype(np.float32),
        "var": rng.uniform(0.5, 1.5, (4,)).astype(np.float32),
        "w": rng.normal(0, 0.5, (4, 3)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["b"], epsilon=1e-3
        ),
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalMaxPool", ["p"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w"], ["y"]),
    ]
    model = _graph_model(nodes, weights, [3, 8, 8], [3])
    path = tmp_path / "bn.onnx"
    path.write_bytes(model.SerializeToString())
    run = load_run(import_model(path, out=tmp_path / "run").path)
    kinds = [row.layer.keras_type for row in run.model.rows]
    assert kinds == [
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "MaxPooling2D",
        "GlobalMaxPooling2D",
        "Flatten",
        "Dense",
    ]
    pixels = _pixels((3, 8, 8))
    np.testing.assert_allclose(
        run.predict(pixels), _onnxruntime_outputs(model, pixels), atol=1e-5, rtol=0
    )
