"""Keras 3 files (made by Keras 3 itself, torch backend) imported as runs: outputs equal Keras's.

The oracle is keras.Model.predict on the same file's model; parameter counts
and every layer's output shape are compared with Keras's. Exported .keras
files are loaded back by keras.models.load_model and must predict the same.
"""

from __future__ import annotations

import json
import zipfile

import keras_models  # Keras is the oracle: a broken install fails here, never skips
import numpy as np
import pytest

from convlens.cli.main import main
from convlens.errors import ConvlensError
from convlens.interop.export import export_run
from convlens.interop.importing import import_model
from convlens.interop.reading import read_model_file
from convlens.model.sequential import DEFAULT_INPUT_SCALE
from convlens.runs.loading import load_run

keras = keras_models.keras

TOLERANCE = 1e-5


_SAVED: dict[str, tuple] = {}


def _saved(name: str, tmp_path_factory) -> tuple:
    """(name, keras model, {suffix: path}): the test model saved as .keras and .h5, once."""
    if name not in _SAVED:
        model = keras_models.randomize(keras_models.MODELS[name](), seed=len(name))
        folder = tmp_path_factory.mktemp(name)
        paths = {suffix: folder / f"{name}{suffix}" for suffix in (".keras", ".h5")}
        for path in paths.values():
            model.save(path)
        _SAVED[name] = (name, model, paths)
    return _SAVED[name]


@pytest.fixture(params=sorted(keras_models.MODELS))
def saved(request, tmp_path_factory):
    """Each test model, saved as .keras and .h5."""
    return _saved(request.param, tmp_path_factory)


@pytest.fixture
def lesson_cnn(tmp_path_factory):
    """The lesson's CNN, saved as .keras and .h5."""
    return _saved("lesson-cnn", tmp_path_factory)


@pytest.fixture
def bn_model(tmp_path_factory):
    """The batch-normalised model, saved as .keras and .h5."""
    return _saved("batch-normalised", tmp_path_factory)


def _layer_shapes(model) -> list[tuple]:
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return [tuple(layer.output.shape) for layer in layers]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_imported_run_predicts_what_keras_predicts(saved, suffix, tmp_path):
    name, model, paths = saved
    result = import_model(paths[suffix], out=tmp_path / "run")
    run = load_run(result.path)
    first = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)][0]
    starts_with_rescaling = isinstance(first, keras.layers.Rescaling)
    scale = 1.0 if starts_with_rescaling else DEFAULT_INPUT_SCALE
    assert run.model.input_scale == scale
    pixels = keras_models.images(model)
    expected = keras_models.keras_predict(model, pixels, scale)
    got = run.predict(pixels)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    assert run.model.total_params == model.count_params()
    ours = [(None, *row.output_shape) for row in run.model.rows]
    assert ours[1:] == _layer_shapes(model)[1:]  # the first may gain the channel axis (28, 28, 1)
    assert ours[0] == _layer_shapes(model)[0] or ours[0] == (*_layer_shapes(model)[0], 1)
    source = result.metrics["imported_from"]
    assert source["file"] == paths[suffix].name and len(source["sha256"]) == 64
    assert source["keras_version"] == keras.__version__


def test_exported_keras_file_loads_in_keras_and_predicts_the_same(saved, tmp_path):
    name, model, paths = saved
    run = load_run(import_model(paths[".keras"], out=tmp_path / "run").path)
    exported = export_run(run.path, "keras", tmp_path / "back.keras")
    back = keras.models.load_model(exported.path)
    pixels = keras_models.images(model, seed=3)
    scaled = pixels.astype("float32") * np.float32(run.model.input_scale)
    np.testing.assert_allclose(
        back.predict(scaled, verbose=0), run.predict(pixels), atol=TOLERANCE, rtol=0
    )  # the exported model takes (N, H, W, C), the channel axis included
    assert back.count_params() == run.model.total_params


def test_summary_of_a_keras_file_needs_no_run(saved, capsys):
    name, model, paths = saved
    assert main(["summary", "--model", str(paths[".h5"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_params"] == model.count_params()
    names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [layer["name"] for layer in summary["layers"]] == names


def test_input_scale_and_classes_can_be_given(lesson_cnn, tmp_path):
    name, model, paths = lesson_cnn
    names = ",".join(f"c{i}" for i in range(10))
    result = import_model(
        paths[".keras"], tmp_path / "run", classes=tuple(names.split(",")), input_scale=1.0
    )
    run = load_run(result.path)
    assert run.class_names == tuple(names.split(",")) and run.model.input_scale == 1.0
    pixels = keras_models.images(model)
    expected = keras_models.keras_predict(model, pixels, 1.0)
    np.testing.assert_allclose(run.predict(pixels), expected, atol=TOLERANCE, rtol=0)


def test_cli_import_writes_a_run_every_command_reads(bn_model, tmp_path, capsys, monkeypatch):
    name, model, paths = bn_model
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "imported"
    assert main(["import", str(paths[".keras"]), "--out", str(out), "--classes", "a,b,c,d,e"]) == 0
    printed = capsys.readouterr().out
    assert "Total params" in printed and str(out) in printed
    assert main(["summary", "--run", str(out)]) == 0
    assert main(["export", "--run", str(out), "--format", "onnx"]) == 0
    assert (out / "model.onnx").is_file()


def test_a_wrong_class_count_is_refused_and_leaves_nothing(lesson_cnn, tmp_path):
    name, model, paths = lesson_cnn
    with pytest.raises(ConvlensError, match="Dense"):
        import_model(paths[".keras"], tmp_path / "run", classes=("a", "b"))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- refused models


def _save(model, path):
    model.save(path)
    return path


def test_a_branching_model_is_refused_with_one_sentence(tmp_path):
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    b = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    x = keras.layers.Add()([a, b])
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(x)
    path = _save(keras.Model(inputs, outputs), tmp_path / "branch.keras")
    with pytest.raises(ConvlensError, match="single-chain"):
        read_model_file(path)


def test_a_lambda_layer_is_refused_without_running_it(tmp_path, capsys):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    path = _save(model, tmp_path / "lambda.keras")
    code = main(["import", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Lambda" in err and "never runs" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_an_unknown_layer_is_named(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.UpSampling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    path = _save(model, tmp_path / "upsampling.h5")
    with pytest.raises(ConvlensError, match="UpSampling2D"):
        read_model_file(path)


def test_a_dilated_convolution_is_refused(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, dilation_rate=2),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ConvlensError, match="dilation_rate"):
        read_model_file(_save(model, tmp_path / "dilated.keras"))


def test_the_keras_file_is_a_zip_keras_writes(saved):
    name, model, paths = saved
    with zipfile.ZipFile(paths[".keras"]) as archive:
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(archive.namelist())
