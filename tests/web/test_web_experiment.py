"""The model editor's and the comparison's routes through the server's test client.

Summaries are checked against Keras's published counts for the lesson's CNN
(16 filters: 160 and 2,320), errors against the layer they name; the
comparison against the run directories' own files, and each run's prediction
against the run's torch network run here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from synthetic import pattern_dataset, tiny_cnn, write_idx_dataset, write_run

from convlens.model.presets import preset
from convlens.runs.directory import write_history
from convlens.runs.loading import load_run
from convlens.web.app import create_app

CLASSES = tuple(str(i) for i in range(10))


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_idx_dataset(data / "mnist", pattern_dataset(60, 120))
    root = tmp_path_factory.mktemp("runs")
    dense = write_run(root / "dense", preset("seed-dnn"), CLASSES)
    write_history(dense, [{"epoch": 1, "train_loss": 0.5, "test_accuracy": 0.8}])
    metrics = json.loads((dense / "metrics.json").read_text())
    metrics.update(
        seconds=12.5, per_class_accuracy={name: 0.1 * i for i, name in enumerate(CLASSES)}
    )
    (dense / "metrics.json").write_text(json.dumps(metrics))
    time.sleep(0.01)
    write_run(root / "tiny", tiny_cnn(), CLASSES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(data))
        yield root


@pytest.fixture(scope="module")
def client(runs_root) -> TestClient:
    return TestClient(create_app(runs_root), base_url="http://127.0.0.1")


def seed_cnn(filters: int = 64) -> dict:
    model = preset("seed-cnn").config()
    for layer in model["layers"]:
        layer.pop("name")
        if layer["type"] == "Conv2D":
            layer["filters"] = filters
    return model


def test_the_summary_of_an_edited_model_has_kerass_numbers(client) -> None:
    body = client.post("/api/models/summary", json={"model": seed_cnn(16)}).json()
    params = [layer["params"] for layer in body["layers"]]
    assert params[:3] == [160, 0, 2320]  # Keras: 16x(3x3x1)+16, 16x(3x3x16)+16
    assert body["total_params"] == sum(params)
    assert body["layers"][2]["keras_shape"] == "(None, 11, 11, 16)"
    assert "2,320 = 16 x (3 x 3 x 16) + 16" in body["layers"][2]["params_why"]
    assert [layer["name"] for layer in body["model"]["layers"]][:3] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
    ]
    lesson = client.post("/api/models/summary", json={"model": seed_cnn()}).json()
    assert lesson["total_params"] == 243_786


@pytest.mark.parametrize(
    ("edit", "layer", "words"),
    [
        (lambda layers: layers.pop(4), 4, "add Flatten() before it"),  # Dense without Flatten
        (lambda layers: layers[2].update(kernel_size=[15, 15]), 2, "15x15 kernel"),
        (lambda layers: layers[0].update(filters=0), 0, "positive integer"),
        (lambda layers: layers[1].update(type="Pool"), 1, "unknown layer type"),
        (lambda layers: layers[5].update(wings=2), 5, "no argument 'wings'"),
        (lambda layers: layers.__delitem__(slice(5, None)), 4, "a classifier ends with Dense"),
    ],
)
def test_a_broken_model_names_the_layer_at_fault(client, edit, layer, words) -> None:
    model = seed_cnn()
    edit(model["layers"])
    answer = client.post("/api/models/summary", json={"model": model})
    assert answer.status_code == 400
    assert answer.json()["layer"] == layer and words in answer.json()["error"]


def test_a_model_without_layers_is_one_sentence_without_a_layer(client) -> None:
    answer = client.post("/api/models/summary", json={"model": {"input_shape": [28, 28, 1]}})
    assert answer.status_code == 400 and "layer" not in answer.json()


def test_presets_and_a_runs_model(client) -> None:
    presets = client.get("/api/models/presets").json()
    assert {"seed-cnn", "seed-dnn", "lenet5"} <= set(presets)
    assert presets["seed-cnn"]["model"] == preset("seed-cnn").config()
    tiny = client.get("/api/runs/tiny/model").json()
    assert tiny == load_run(client.app.state.explorer.runs.directories()["tiny"]).model.config()
    assert client.get("/api/runs/nope/model").status_code == 404


def test_compare_reads_the_run_directories(client) -> None:
    body = client.get("/api/compare", params=[("run", "tiny"), ("run", "dense")]).json()
    tiny, dense = body["runs"]
    assert (tiny["name"], dense["name"]) == ("tiny", "dense")
    assert tiny["total_params"] == tiny_cnn().total_params
    assert dense["total_params"] == 101_770 and dense["seconds"] == 12.5
    assert dense["history"] == [{"epoch": 1.0, "train_loss": 0.5, "test_accuracy": 0.8}]
    assert dense["per_class_accuracy"] == pytest.approx([0.1 * i for i in range(10)])
    assert tiny["per_class_accuracy"] == [None] * 10  # not measured
    assert client.get("/api/compare", params={"run": "nope"}).status_code == 404


def test_the_same_image_through_each_run(client) -> None:
    pixels = pattern_dataset(60, 120).test.images[3]
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0]).save(buffer, format="PNG")
    image = client.post("/api/images", content=buffer.getvalue()).json()["id"]
    body = client.post(
        "/api/compare/predict", json={"runs": ["tiny", "dense"], "image": image, "invert": "no"}
    ).json()
    for answer in body["predictions"]:
        run = load_run(client.app.state.explorer.runs.directories()[answer["run"]])
        x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            expected = torch.softmax(run.network(x), 1)[0].numpy()
        got = [p["probability"] for p in answer["probabilities"]]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert answer["predicted"]["index"] == int(expected.argmax())


def info(name: str, model: str, dataset: str) -> dict:
    return {"name": name, "model": model, "dataset": dataset}


def test_the_default_pair_is_the_lessons_cnn_and_its_baseline_on_one_dataset() -> None:
    """Issue 22, item 2: the newest seed-cnn (on a folder) was paired with a Fashion-MNIST one."""
    from convlens.web.compare import default_pair

    runs = [  # newest first, as /api/info lists them
        info("cnn-shapes", "seed-cnn", "shapes"),
        info("lenet-fashion", "lenet5", "fashion-mnist"),
        info("cnn-fashion", "seed-cnn", "fashion-mnist"),
        info("dnn-fashion", "seed-dnn", "fashion-mnist"),
    ]
    assert default_pair(runs) == ["cnn-fashion", "dnn-fashion"]
    # No such pair: the newest run and the newest of its dataset, else the newest two.
    assert default_pair(runs[:2] + [info("x", "x", "shapes")]) == ["cnn-shapes", "x"]
    assert default_pair(runs[:2]) == ["cnn-shapes", "lenet-fashion"]
    assert default_pair(runs[:1]) == ["cnn-shapes"] and default_pair([]) == []


def test_the_default_pair_route(client) -> None:
    assert client.get("/api/compare/default").json() == {"runs": ["tiny", "dense"]}


def test_no_verdict_where_the_label_is_not_among_a_runs_classes(client, tmp_path) -> None:
    """A test image of a folder labelled "circle" is neither right nor wrong for an MNIST run."""
    explorer = client.app.state.explorer
    pixels = pattern_dataset(60, 120).test.images[3]
    own = explorer.images.add(pixels, "test image 3", label="7", test_index=3)
    foreign = explorer.images.add(pixels[::-1].copy(), "test image 5", label="circle", test_index=5)
    answers = {}
    for image in (foreign, own):
        body = client.post(
            "/api/compare/predict", json={"runs": ["tiny", "dense"], "image": image.id}
        ).json()
        answers[image.label] = body["predictions"]
    assert [p["correct"] for p in answers["circle"]] == [None, None]
    for p in answers["7"]:
        assert p["correct"] == (p["predicted"]["name"] == "7")
