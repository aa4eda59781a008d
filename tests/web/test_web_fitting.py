"""A preset or an exercise from the editor trains on your folder as the CLI plans it (issue 22, 1).

`convlens explore --dataset FOLDER` (3 classes of colour shapes, PNGs of mixed
sizes): the editor's untouched seed-cnn, or its 16-filters exercise, is
planned for the folder exactly as `convlens train --model seed-cnn --dataset
FOLDER` plans it (48x48x3, Dense(3)); the summary shows those shapes for the
chosen dataset; a model that cannot fit the data is a 400 before anything
starts, naming its last layer, never a failed job or a silent grayscale.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file
from synthetic import SHAPE_CLASSES, pattern_dataset, shapes_folder, tiny_cnn, write_idx_dataset

from convlens.cli.main import main
from convlens.model.presets import preset
from convlens.web.app import create_app
from convlens.web.job_process import job_threads

WAIT_SECONDS = 240


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "mnist", pattern_dataset(60, 20))
    shapes_folder(root / "shapes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(root))
        yield root


@pytest.fixture
def client(tmp_path, data) -> TestClient:
    app = create_app(tmp_path / "runs", dataset=data / "shapes")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
        app.state.jobs.shutdown()


def editor_model(name: str = "seed-cnn") -> dict:
    """A preset's model JSON as the editor holds it: layer names and class names left out."""
    model = preset(name).config()
    for layer in model["layers"]:
        layer.pop("name", None)
    model.pop("class_names", None)
    return model


def sixteen_filters() -> dict:
    """The lesson's exercise as editor.js makes it from seed-cnn."""
    model = editor_model()
    model["name"] = "seed-cnn-16"
    for layer in model["layers"]:
        if layer["type"] == "Conv2D":
            layer["filters"] = 16
    return model


def summary(client, model: dict, dataset: str | None, fit: bool) -> tuple[int, dict]:
    answer = client.post("/api/models/summary", json={"model": model, "dataset": dataset, "fit": fit})
    return answer.status_code, answer.json()


def test_the_summary_shows_a_preset_fitted_to_the_chosen_dataset(client) -> None:
    status, body = summary(client, editor_model(), "shapes", True)
    assert status == 200, body
    assert body["input_shape"] == [48, 48, 3] == body["fitted_shape"]
    assert body["layers"][-1]["output_shape"] == [3]
    assert body["classes"] == list(SHAPE_CLASSES)
    assert body["input_why"].startswith("48x48x3: the median of your images' 3 sizes")
    assert body["layers"][0]["params"] == 64 * (3 * 3 * 3) + 64  # colour: three channels
    # The same model on MNIST: the preset's own 28x28x1 and ten classes.
    status, body = summary(client, editor_model(), "mnist", True)
    assert status == 200 and body["input_shape"] == [28, 28, 1]
    assert body["layers"][-1]["output_shape"] == [10] and body["total_params"] == 243786
    # Without a dataset: the model as written (what `convlens summary` prints).
    status, body = summary(client, editor_model(), None, False)
    assert body["input_shape"] == [28, 28, 1] and body["input_why"] is None


def test_a_model_taken_as_written_must_fit_the_classes(client) -> None:
    status, body = summary(client, editor_model(), "shapes", False)
    assert status == 400
    assert body["layer"] == 6 and "change the last layer to Dense(3)" in body["error"]
    written = editor_model()
    written["layers"][-1]["units"] = 3
    status, body = summary(client, written, "shapes", False)
    assert status == 200 and body["input_shape"] == [28, 28, 1]
    assert body["fitted_shape"] == [48, 48, 3]  # what fitting would read: the page says so
    assert "input_shape" in body["input_why"]


def test_a_model_that_cannot_fit_is_refused_before_anything_starts(client, tmp_path) -> None:
    """The job the issue saw fail after its 202: now a 400, and nothing is started or written."""
    for request, words in [
        ({"model": tiny_cnn().config(), "dataset": "shapes"}, "Dense(3)"),
        ({"model": editor_model(), "dataset": "shapes"}, "Dense(3)"),
        # Fitted to 48x48 still, a 49x49 kernel does not fit: named beside its layer.
        (
            {
                "model": {**editor_model(), "layers": [{"type": "Conv2D", "filters": 4,
                          "kernel_size": [49, 49]}, *editor_model()["layers"][1:]]},
                "dataset": "shapes",
                "fit": True,
            },
            "49x49 kernel",
        ),
    ]:
        answer = client.post("/api/jobs", json={**request, "epochs": 1})
        assert answer.status_code == 400, answer.text
        assert words in answer.json()["error"]
    assert client.get("/api/jobs").json()["current"] is None
    assert not (tmp_path / "runs").exists()


def wait_final(client, job: str) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish")


def test_the_editors_preset_trains_on_the_folder_exactly_as_the_cli(client, tmp_path, data) -> None:
    answer = client.post(
        "/api/jobs",
        json={"model": editor_model(), "fit": True, "dataset": "shapes", "epochs": 1, "seed": 4},
    )
    assert answer.status_code == 202, answer.text
    status = wait_final(client, answer.json()["id"])
    assert status["state"] == "done", status
    page_run = tmp_path / "runs" / status["run"]
    cli_run = tmp_path / "cli-run"
    assert main(
        ["train", "--model", "seed-cnn", "--dataset", str(data / "shapes"), "--epochs", "1",
         "--seed", "4", "--threads", str(job_threads()), "--quiet", "--out", str(cli_run)]
    ) == 0
    spec = json.loads((page_run / "model.json").read_text())
    assert spec == json.loads((cli_run / "model.json").read_text())
    assert spec["input_shape"] == [48, 48, 3] and spec["layers"][-1]["units"] == 3
    page_metrics = json.loads((page_run / "metrics.json").read_text())
    cli_metrics = json.loads((cli_run / "metrics.json").read_text())
    for key in ("input_why", "class_names", "split"):
        assert page_metrics.get(key) == cli_metrics.get(key), key
    cli_metrics["config"]["threads"] = None  # the job sets its threads itself
    assert page_metrics["config"] == cli_metrics["config"]
    page_weights = load_file(page_run / "weights.safetensors")
    cli_weights = load_file(cli_run / "weights.safetensors")
    for name, tensor in cli_weights.items():
        assert torch.equal(page_weights[name], tensor), name


def test_the_sixteen_filters_exercise_is_fitted_too(client) -> None:
    status, body = summary(client, sixteen_filters(), "shapes", True)
    assert status == 200 and body["input_shape"] == [48, 48, 3]
    assert body["layers"][0]["params"] == 16 * 27 + 16 and body["layers"][-1]["output_shape"] == [3]
    answer = client.post(
        "/api/jobs", json={"model": sixteen_filters(), "fit": True, "dataset": "shapes", "epochs": 1}
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()["id"]
    assert wait_final(client, job)["state"] == "done"
