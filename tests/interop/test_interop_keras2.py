"""tf.keras 2.x .h5 files (the lesson's era) imported without TensorFlow.

The fixtures in tests/fixtures/keras2 are layout-faithful, not made by
TensorFlow (it is not installed): tests/fixtures/make_keras2_h5.py writes the
tf.keras 2.x HDF5 layout with h5py, and the expected outputs beside them come
from Keras 3 running the same architecture with the same weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convlens.interop.importing import import_model
from convlens.interop.reading import read_model_file
from convlens.runs.loading import load_run

FIXTURES = Path(__file__).parents[1] / "fixtures" / "keras2"
STEMS = ["lesson_cnn_tfkeras2", "old_sequential_tfkeras2", "functional_bn_tfkeras2"]


@pytest.mark.parametrize("stem", STEMS)
def test_tf_keras_2_h5_predicts_what_keras_computes(stem, tmp_path):
    expected = np.load(FIXTURES / f"{stem}.npz")
    result = import_model(FIXTURES / f"{stem}.h5", out=tmp_path / "run")
    run = load_run(result.path)
    got = run.predict(expected["images"])
    np.testing.assert_allclose(got, expected["outputs"], atol=1e-5, rtol=0)
    assert run.model.total_params == int(expected["params"])
    source = result.metrics["imported_from"]
    assert source["format"] == "keras-h5" and source["keras_version"] == "2.15.0"
    assert source["backend"] == "tensorflow"


def test_the_lesson_cnn_keeps_its_keras_2_names_and_shapes():
    model = read_model_file(FIXTURES / "lesson_cnn_tfkeras2.h5").model
    assert [row.name for row in model.rows] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
        "max_pooling2d_1",
        "flatten",
        "dense",
        "dense_1",
    ]
    assert [row.output_shape for row in model.rows][:2] == [(26, 26, 8), (13, 13, 8)]
    assert model.input_shape == (28, 28, 1) and model.input_scale == 1 / 255


def test_a_keras_zip_whose_weight_groups_carry_the_layer_names_reads_them(tmp_path):
    """A writer that names layers/<group> after the layer, without "name" attributes."""
    import io
    import zipfile

    import h5py
    from synthetic import tiny_cnn, write_run

    from convlens.interop.keras_export import keras_bytes
    from convlens.model.sequential import Sequential

    config = tiny_cnn().config()
    for index, layer in enumerate(config["layers"]):
        layer["name"] = f"layer_{5 - index}"  # names unlike Keras's class-numbered groups
    model = Sequential.from_config(config)
    run = load_run(write_run(tmp_path / "run", model, tuple("abcdefghij")))
    with zipfile.ZipFile(io.BytesIO(keras_bytes(run))) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    source = h5py.File(io.BytesIO(members["model.weights.h5"]), "r")
    rewritten = io.BytesIO()
    with h5py.File(rewritten, "w") as h5:
        for group_name in source["layers"]:
            name = source[f"layers/{group_name}/vars"].attrs["name"]
            target = h5.create_group(f"layers/{name}/vars")  # by layer name, no attribute
            for key, dataset in source[f"layers/{group_name}/vars"].items():
                target.create_dataset(key, data=dataset[()])
    members["model.weights.h5"] = rewritten.getvalue()
    path = tmp_path / "by-name.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    imported = load_run(import_model(path, out=tmp_path / "imported").path)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    np.testing.assert_allclose(imported.predict(pixels), run.predict(pixels), atol=1e-6)
