"""POST /api/models: an uploaded Keras or ONNX file becomes a run the explorer shows at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from fastapi.testclient import TestClient

from convlens.data import datasets
from convlens.data.datasets import Dataset, Split
from convlens.interop.importing import import_model
from convlens.runs.loading import load_run
from convlens.web import your_model
from convlens.web.app import create_app

KERAS2 = Path(__file__).parents[1] / "fixtures" / "keras2"


@pytest.fixture
def client(tmp_path) -> TestClient:
    return TestClient(create_app(tmp_path / "runs"), base_url="http://127.0.0.1")


def post_model(client: TestClient, content: bytes, name: str, **params) -> object:
    return client.post("/api/models", content=content, headers={"X-Filename": name}, params=params)


def test_an_uploaded_h5_becomes_a_run_with_a_journey(client, tmp_path):
    answer = post_model(client, (KERAS2 / "lesson_cnn_tfkeras2.h5").read_bytes(), "lesson.h5")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    name = body["run"]["name"]
    assert body["source"]["keras_version"] == "2.15.0" and body["total_params"] == 7426
    listed = {run["name"]: run for run in client.get("/api/info").json()["runs"]}
    assert listed[name]["imported_from"] == "lesson.h5 (keras-h5 2.15.0)"
    summary = client.get(f"/api/runs/{name}").json()
    assert [layer["name"] for layer in summary["layers"]][:2] == ["conv2d", "max_pooling2d"]
    expected = np.load(KERAS2 / "lesson_cnn_tfkeras2.npz")
    run = load_run(tmp_path / "runs" / name)
    np.testing.assert_allclose(run.predict(expected["images"]), expected["outputs"], atol=1e-5)


@pytest.mark.parametrize(
    "name, content, status, words",
    [
        ("notes.txt", b"hello", 400, "not a .keras, .h5 or .onnx file"),
        ("model.keras", b"PK\x03\x04 not really a zip", 400, "damaged or truncated"),
        ("model.keras", b"not a zip at all", 400, "neither a Keras 3 .keras"),
        ("model.onnx", b"", 400, "empty"),
    ],
)
def test_refused_uploads_answer_one_sentence_and_leave_nothing(
    client, tmp_path, name, content, status, words
):
    answer = post_model(client, content, name)
    assert answer.status_code == status and words in answer.json()["error"]
    runs = tmp_path / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []


def test_a_lambda_layer_upload_is_refused(client, tmp_path):
    path = tmp_path / "lambda.h5"
    shutil.copy(KERAS2 / "lesson_cnn_tfkeras2.h5", path)
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        config["config"]["layers"][2] = {
            "class_name": "Lambda",
            "config": {"name": "lambda", "function": ["4wEAAAAAAAAA", None, None]},
        }
        h5.attrs["model_config"] = json.dumps(config).encode()
    answer = post_model(client, path.read_bytes(), "lambda.h5")
    assert answer.status_code == 400 and "Lambda" in answer.json()["error"]


def test_an_upload_over_the_limit_is_refused_with_413(client, monkeypatch):
    monkeypatch.setattr(your_model, "MAX_MODEL_UPLOAD_BYTES", 1000)
    answer = post_model(client, b"\0" * 5000, "big.keras")
    assert answer.status_code == 413 and "limit" in answer.json()["error"]


def test_a_dataset_names_the_classes_and_scores_the_model(client, tmp_path, monkeypatch):
    from synthetic import pattern_dataset, write_idx_dataset

    # A test split on which the model is right 28 times in 40 by construction (its own
    # answers as labels, 12 of them changed), and a train split where it is at chance:
    # the accuracy shown must be the test split's, as run.predict answers it.
    lesson = tmp_path / "lesson.h5"
    lesson.write_bytes((KERAS2 / "lesson_cnn_tfkeras2.h5").read_bytes())
    probe = load_run(import_model(lesson, root=tmp_path / "probe").path)
    made = pattern_dataset(30, 40)
    answers = probe.predict(made.test.images).argmax(axis=1)
    labels = answers.copy()
    labels[:12] = (answers[:12] + 1) % 10
    data = tmp_path / "data"
    write_idx_dataset(
        data / "mnist",
        Dataset("mnist", made.train, Split(made.test.images, labels), made.class_names, "generated"),
    )
    monkeypatch.setenv("CONVLENS_DATA", str(data))
    answer = post_model(client, lesson.read_bytes(), "lesson.h5", dataset="mnist")
    assert answer.status_code == 200, answer.text
    run = answer.json()["run"]
    assert run["dataset"] == "mnist"
    test = datasets.load("mnist").test
    predicted = load_run(tmp_path / "runs" / run["name"]).predict(test.images)
    expected = float(np.mean(predicted.argmax(axis=1) == test.labels))
    assert expected == pytest.approx(28 / 40)
    assert run["test_accuracy"] == pytest.approx(expected, abs=1e-9)
