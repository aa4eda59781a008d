"""Hostile model files for `convlens import`: truncated, mutated, bombs, absurd sizes.

The property, as in test_fuzz.py: any file ends in a run or in one ConvlensError
sentence, within 2 s, and a refused file leaves no run directory behind. Files
declaring huge sizes (zip members, HDF5 datasets, parameters, ONNX
initializers) are refused before anything that size is allocated (traced
peak under 50 MB).
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from test_fuzz import FUZZ, HUGE_PEAK_BYTES, edits, flip_bytes, tiny_model

from convlens.errors import ConvlensError
from convlens.interop.export import export_bytes
from convlens.interop.importing import import_model
from convlens.interop.keras_export import keras_bytes
from convlens.interop.reading import read_model_file
from convlens.model.network import build_network
from convlens.model.weights import save_model
from convlens.runs.loading import load_run

KERAS2_LESSON = Path(__file__).parents[1] / "fixtures" / "keras2" / "lesson_cnn_tfkeras2.h5"


def outcome(call: Callable[[], Any]) -> str:
    """Run ``call``: "ok" if it returns, "refused" on ConvlensError; any other exception fails.

    How long a case takes is measured in benchmarks/parsers.py, never asserted here.
    """
    try:
        call()
        result = "ok"
    except ConvlensError as exc:
        assert str(exc).strip() and "\n" not in str(exc), "one sentence, one line"
        result = "refused"
    return result


def peak_bytes(call: Callable[[], Any]) -> tuple[str, int]:
    """``outcome(call)`` and the peak of Python-traced memory while it ran (bytes)."""
    tracemalloc.start()
    try:
        result = outcome(call)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """A good file of each format: .keras (convlens's writer), .h5 (tf.keras 2 layout), .onnx."""
    directory = tmp_path_factory.mktemp("seed-run")
    model = tiny_model()
    save_model(directory, model, build_network(model, seed=0))
    (directory / "metrics.json").write_text("{}")
    run = load_run(directory)
    files = {".keras": keras_bytes(run), ".h5": KERAS2_LESSON.read_bytes()}
    files[".onnx"] = export_bytes(run, "onnx")
    return files


def attempt(tmp_path: Path, suffix: str, payload: bytes) -> str:
    """Import ``payload`` as a model file: 'ok' or 'refused'; a refusal writes nothing."""
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / f"model{suffix}"
    path.write_bytes(payload)
    result = outcome(lambda: import_model(path, out=folder / "run"))
    if result == "refused":
        assert sorted(p.name for p in folder.iterdir()) == [path.name], "a refusal left files"
    return result


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".onnx"])
def test_good_seeds_import(seeds, suffix, tmp_path):
    assert attempt(tmp_path, suffix, seeds[suffix]) == "ok"


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".onnx"])
@pytest.mark.parametrize("keep", [0, 1, 10, 100, 0.25, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(seeds, suffix, keep, tmp_path):
    payload = seeds[suffix]
    cut = payload[: int(len(payload) * keep) if isinstance(keep, float) else keep]
    assert attempt(tmp_path, suffix, cut) == "refused"


@pytest.mark.parametrize("keep", [10, 0.25, 0.5, 0.9, 0.999])
def test_a_truncated_keras_archive_is_called_damaged_or_truncated(seeds, keep, tmp_path):
    payload = seeds[".keras"]
    path = tmp_path / "cut.keras"
    path.write_bytes(payload[: int(len(payload) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ConvlensError) as refused:
        read_model_file(path)
    assert "the file is damaged or truncated" in str(refused.value)
    assert "neither a Keras 3 .keras archive" not in str(refused.value)


@FUZZ
@given(data=st.data(), changes=edits, cut=st.integers(0, 64))
def test_mutated_files_end_in_a_run_or_a_sentence(seeds, tmp_path, data, changes, cut):
    suffix = data.draw(st.sampled_from([".keras", ".h5", ".onnx"]))
    attempt(tmp_path, suffix, flip_bytes(seeds[suffix], changes, cut))


@FUZZ
@given(payload=st.binary(max_size=2048), suffix=st.sampled_from([".keras", ".h5", ".onnx"]))
def test_random_bytes_are_refused(tmp_path, payload, suffix):
    assert attempt(tmp_path, suffix, payload) == "refused"


# ---------------------------------------------------------------- .keras zip bombs


def _keras_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_a_zip_bomb_config_is_refused_by_its_declared_size(tmp_path):
    bomb = _keras_zip({"config.json": b" " * (64 << 20), "model.weights.h5": b""})
    assert len(bomb) < 1 << 20
    path = tmp_path / "bomb.keras"
    path.write_bytes(bomb)
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES


def test_a_zip_member_lying_about_its_size_is_refused_without_reading_it_all(tmp_path):
    bomb = bytearray(_keras_zip({"config.json": b" " * (64 << 20)}))
    central = bomb.rfind(b"PK\x01\x02")
    struct.pack_into("<I", bomb, central + 24, 100)  # declares 100 bytes uncompressed
    local = bomb.find(b"PK\x03\x04")
    struct.pack_into("<I", bomb, local + 22, 100)
    path = tmp_path / "liar.keras"
    path.write_bytes(bytes(bomb))
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES


def test_a_zip_of_a_million_declared_gigabytes_is_refused(seeds, tmp_path):
    bomb = bytearray(seeds[".keras"])
    central = bomb.rfind(b"PK\x01\x02")
    struct.pack_into("<I", bomb, central + 24, 0xFFFFFFF0)
    path = tmp_path / "huge.keras"
    path.write_bytes(bytes(bomb))
    with pytest.raises(ConvlensError):
        read_model_file(path)


# ---------------------------------------------------------------- JSON


def test_deep_json_is_refused(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    path = tmp_path / "deep.keras"
    path.write_bytes(_keras_zip({"config.json": deep.encode(), "model.weights.h5": b""}))
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES
    path = tmp_path / "deep.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = ('{"a":' * 10_000 + "1" + "}" * 10_000).encode()
    with pytest.raises(ConvlensError, match="nests"):
        read_model_file(path)


def _keras2_config() -> dict:
    with h5py.File(KERAS2_LESSON) as h5:
        return json.loads(h5.attrs["model_config"])


def _copy_h5(tmp_path: Path, config: dict, replace: dict[str, tuple] | None = None) -> Path:
    """The Keras 2 fixture with another model_config and some datasets replaced by shapes."""
    path = tmp_path / "edited.h5"
    shutil.copy(KERAS2_LESSON, path)
    with h5py.File(path, "r+") as h5:
        h5.attrs["model_config"] = json.dumps(config).encode()
        for name, shape in (replace or {}).items():
            del h5[name]
            h5.create_dataset(name, shape=shape, dtype="f4", chunks=(1,) * len(shape))
    return path


def test_a_config_declaring_a_billion_units_is_refused_before_building(tmp_path):
    config = _keras2_config()
    config["config"]["layers"][-2]["config"]["units"] = 1_000_000_000
    path = _copy_h5(tmp_path, config)
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES


def test_hdf5_datasets_with_absurd_shapes_are_refused_before_reading(tmp_path):
    absurd = (100_000, 100_000, 100, 100)
    path = _copy_h5(tmp_path, _keras2_config(), {"model_weights/conv2d/conv2d/kernel:0": absurd})
    assert path.stat().st_size < 1 << 20
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES


def test_an_hdf5_link_to_another_file_is_refused(tmp_path):
    path = _copy_h5(tmp_path, _keras2_config())
    with h5py.File(path, "r+") as h5:
        del h5["model_weights/dense"]
        h5["model_weights/dense"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(ConvlensError, match="another file"):
        read_model_file(path)


# ---------------------------------------------------------------- ONNX


def _onnx_with_initializer(dims: list[int], raw: bytes) -> bytes:
    tensor = TensorProto(name="k", data_type=TensorProto.FLOAT, raw_data=raw)
    tensor.dims.extend(dims)  # written by hand: onnx's helper refuses such a lie
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "k"], ["c"]), helper.make_node("Flatten", ["c"], ["y"])],
        "giant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 18])],
        [tensor],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize(
    "dims, raw",
    [
        ([100_000, 100_000, 3, 3], b""),  # 90 billion numbers declared, none stored
        ([2, 1, 3, 3], b"\0" * 4),  # 18 declared, 1 stored
        ([2, 1, 3, 3], b"\0" * 4000),  # 18 declared, 1,000 stored
    ],
)
def test_onnx_initializers_whose_size_lies_are_refused(dims, raw, tmp_path):
    path = tmp_path / "giant.onnx"
    path.write_bytes(_onnx_with_initializer(dims, raw))
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES
    np.testing.assert_equal(path.stat().st_size < 1 << 20, True)


def test_a_shape_computation_claiming_a_huge_tensor_is_refused(tmp_path):
    huge = numpy_helper.from_array(np.array([1 << 40], np.int64), "n")
    nodes = [
        helper.make_node("ConstantOfShape", ["n"], ["zeros"]),
        helper.make_node("Pad", ["x", "zeros"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 5, 5])],
        [huge],
    )
    path = tmp_path / "bomb.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES


def test_a_weights_member_far_larger_than_the_model_is_refused_before_unpacking(seeds, tmp_path):
    with zipfile.ZipFile(io.BytesIO(seeds[".keras"])) as archive:
        config = archive.read("config.json")
    bomb = _keras_zip({"config.json": config, "model.weights.h5": b"\0" * (80 << 20)})
    assert len(bomb) < 1 << 20
    path = tmp_path / "weights-bomb.keras"
    path.write_bytes(bomb)
    result, peak = peak_bytes(lambda: read_model_file(path))
    assert result == "refused" and peak < HUGE_PEAK_BYTES
