"""Every registered layer type has every facet, and each facet works, against independent oracles.

One test per facet, parametrized over ``LAYER_TYPES``: a type added to the
registry without its torch module, receptive-field rule, journey role,
editor controls, Keras reader and writer or ONNX reading fails here, by
name. Keras itself (torch backend) is the oracle of the Keras writer; the
torch network is the oracle of every import.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402

from convlens.errors import ConvlensError  # noqa: E402
from convlens.inspect.journey import journey_layers  # noqa: E402
from convlens.interop.export import export_bytes  # noqa: E402
from convlens.interop.importing import build_imported  # noqa: E402
from convlens.interop.keras_export import keras_bytes  # noqa: E402
from convlens.interop.keras_layers import KERAS_NAMES, layer_from_keras  # noqa: E402
from convlens.interop.onnx_ops import OP_READERS  # noqa: E402
from convlens.interop.reading import read_model_file  # noqa: E402
from convlens.model.layers import (  # noqa: E402
    EDITOR_KINDS,
    ENDINGS,
    JOURNEY_ROLES,
    LAYER_TYPES,
    RECEPTIVE_RULES,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    layer_from_config,
    layer_type,
)
from convlens.model.modules import MODULES  # noqa: E402
from convlens.model.network import build_network, count_parameters  # noqa: E402
from convlens.model.sequential import Sequential  # noqa: E402
from convlens.model.weights import save_model  # noqa: E402
from convlens.runs.directory import write_metrics  # noqa: E402
from convlens.runs.evaluate import predict_proba  # noqa: E402
from convlens.runs.loading import load_run  # noqa: E402

TYPES = sorted(LAYER_TYPES)
INPUT = (10, 10, 2)


def example(name: str) -> Layer:
    """A layer of type ``name`` with the arguments the editor gives a new one."""
    cls = LAYER_TYPES[name]
    return layer_from_config({"type": name, **cls.editor_default})


def model_around(layer: Layer) -> Sequential:
    """Conv2D, ``layer`` (after Flatten when it needs a flat input), then a softmax classifier."""
    conv = Conv2D(3, (3, 3), activation="relu", input_shape=INPUT)
    volume = conv.output_shape(INPUT)
    try:
        shape = layer.output_shape(volume)
        layers = [conv, layer]
    except ConvlensError:  # Dense and friends read a flat vector
        layers = [conv, Flatten(), layer]
        shape = layer.output_shape((int(np.prod(volume)),))
    if len(shape) != 1:
        layers.append(Flatten())
    return Sequential([*layers, Dense(4, activation="softmax")], name=f"with-{layer.keras_type}")


def randomised_run(directory: Path, model: Sequential):
    """A run of ``model`` whose every weight and statistic is random (a mixed-up layout shows)."""
    network = build_network(model, seed=0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, value in network.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.rand(value.shape, generator=generator)
            value.copy_(noise + 0.5 if "running_var" in key else (noise - 0.5) * 0.8)
    model = model.with_class_names(("a", "b", "c", "d"))
    directory.mkdir(parents=True)
    save_model(directory, model, network)
    write_metrics(directory, {"model": model.name, "dataset": "generated"})
    return load_run(directory)


def pixels(count: int = 3) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (count, *INPUT), dtype=np.uint8)


# ---------------------------------------------------------------- the facets are there


@pytest.mark.parametrize("name", TYPES)
def test_every_facet_is_declared(name):
    cls = LAYER_TYPES[name]
    assert cls.keras_type == name
    assert cls.receptive in RECEPTIVE_RULES
    assert cls.journey in JOURNEY_ROLES
    assert cls.ending in ENDINGS
    assert name in MODULES, f"{name} has no torch module in model/modules.py"
    arguments = {f.name for f in dataclasses.fields(cls)}
    for field in cls.editor_fields:
        assert field.kind in EDITOR_KINDS and field.name in arguments
    assert cls.from_keras.__func__ is not Layer.from_keras.__func__, f"{name} reads no Keras config"
    assert all(KERAS_NAMES[alias] is cls for alias in (name, *cls.keras_aliases))
    assert cls.onnx_ops, f"{name} names no ONNX operator it is read from"
    assert all(op in OP_READERS for op in cls.onnx_ops)


@pytest.mark.parametrize("name", TYPES)
def test_a_new_layer_from_the_editor_builds_with_keras_parameter_counts(name):
    layer = example(name)
    model = model_around(layer)
    network = build_network(model, seed=0)
    assert count_parameters(network) == model.total_params
    inputs = torch.zeros(2, INPUT[2], *INPUT[:2])
    assert tuple(network.eval()(inputs).shape) == (2, 4)
    model.receptive_fields()  # every rule applies
    journey_layers(model)  # every role applies


# ---------------------------------------------------------------- Keras writes and reads


@pytest.mark.parametrize("name", TYPES)
def test_keras_loads_the_export_and_predicts_what_convlens_does(name, tmp_path):
    run = randomised_run(tmp_path / "run", model_around(example(name)))
    path = tmp_path / "model.keras"
    path.write_bytes(keras_bytes(run))
    loaded = keras.models.load_model(path)
    images = pixels()
    expected = run.predict(images)
    got = np.asarray(loaded.predict(images.astype("float32") / 255.0, verbose=0))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert loaded.count_params() == run.model.total_params
    assert name in [type(layer).__name__ for layer in loaded.layers]


@pytest.mark.parametrize("name", TYPES)
def test_the_keras_export_reads_back_to_the_same_model(name, tmp_path):
    run = randomised_run(tmp_path / "run", model_around(example(name)))
    path = tmp_path / "model.keras"
    path.write_bytes(keras_bytes(run))
    imported = read_model_file(path)
    assert [r.layer.keras_type for r in imported.model.rows] == [
        r.layer.keras_type for r in run.model.rows
    ]
    network = build_imported(imported)
    images = pixels()
    got = predict_proba(network, images, imported.model.input_shape)
    np.testing.assert_allclose(got, run.predict(images), atol=1e-5)


# ---------------------------------------------------------------- ONNX writes and reads


@pytest.mark.parametrize("name", TYPES)
def test_the_onnx_export_reads_back_computing_the_same(name, tmp_path):
    run = randomised_run(tmp_path / "run", model_around(example(name)))
    path = tmp_path / "model.onnx"
    path.write_bytes(export_bytes(run, "onnx"))
    imported = read_model_file(path)
    network = build_imported(imported)
    images = pixels()
    got = predict_proba(network, images, imported.model.input_shape)
    np.testing.assert_allclose(got, run.predict(images), atol=1e-5)


# ---------------------------------------------------------------- unknown types


def test_an_unknown_layer_type_is_one_sentence_everywhere():
    with pytest.raises(ConvlensError, match="unknown layer type 'Conv3D'; use one of Conv2D"):
        layer_type("Conv3D")
    with pytest.raises(ConvlensError, match="unknown layer type 'Conv3D'"):
        layer_from_config({"type": "Conv3D"})
    with pytest.raises(ConvlensError, match="'Conv3D', which convlens does not have"):
        layer_from_keras({"class_name": "Conv3D", "config": {"name": "c"}}, keras2=False)


def test_a_registered_type_missing_a_facet_fails_with_a_sentence_not_a_none():
    @dataclasses.dataclass(frozen=True)
    class Blur(Layer):  # not registered: built only to see each lookup refuse it
        keras_type = "Blur"
        receptive = "smudge"
        journey = "sometimes"
        ending = "maybe"

        def output_shape(self, input_shape):
            return input_shape

        def explain_shape(self, input_shape):
            return "unchanged"

    from convlens.model.modules import layer_module
    from convlens.model.receptive import INPUT_FIELD, next_field

    with pytest.raises(ConvlensError, match="Blur has no torch module"):
        layer_module(Blur(), INPUT, final=False)
    with pytest.raises(ConvlensError, match="Blur has no receptive-field rule"):
        next_field(INPUT_FIELD, Blur(), INPUT)
    with pytest.raises(ConvlensError, match="Blur does not say whether a classifier may end"):
        Sequential([Flatten(input_shape=(2, 2, 1)), Dense(2), Blur()])


def test_the_page_reads_every_layer_type_and_attribution_method_from_the_api(tmp_path):
    from fastapi.testclient import TestClient

    from convlens.inspect.methods import METHODS
    from convlens.web.app import create_app

    client = TestClient(create_app(tmp_path))
    types = client.get("/api/models/layer-types").json()
    assert list(types) == list(LAYER_TYPES)
    for name, body in types.items():
        assert body["new"]["type"] == name
        layer_from_config(body["new"])  # a new layer the editor adds is valid
        assert [f["name"] for f in body["fields"]] == [f.name for f in LAYER_TYPES[name].editor_fields]
    from convlens.inspect.attribution import COMPUTE

    assert list(COMPUTE) == list(METHODS)  # every method described is computed, and back
    methods = client.get("/api/attribution/methods").json()
    assert [m["name"] for m in methods] == list(METHODS)
    assert [m["signed"] for m in methods] == [m.signed for m in METHODS.values()]
