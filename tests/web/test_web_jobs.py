"""Training jobs from the explorer: the HTTP contract, events, cancel, and a stopped server.

Jobs run in their own process (spawn), on generated IDX files found through
CONVLENS_DATA (the child inherits the environment), with a tiny CNN; a
finished job must be the run directory `convlens train` writes, and an
interrupted one must resume with `convlens train --resume`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from synthetic import pattern_dataset, save_png, tiny_cnn, write_idx_dataset

from convlens.cli.main import main
from convlens.model.presets import preset
from convlens.runs.directory import CHECKPOINT_FILE, is_run, partial_path, read_history
from convlens.training.train import find_resumable
from convlens.web.app import create_app
from convlens.web.job_process import job_threads, kept_message
from convlens.web.server import serve_in_thread

FINAL = ("done", "failed", "cancelled")
WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Generated MNIST-named IDX files (300 train, 100 test) and a 3-class image folder (20 each)."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "mnist", pattern_dataset(300, 100, seed=2))
    folder = root / "shapes"
    rng = np.random.default_rng(0)
    for name in ("circle", "square", "star"):
        (folder / name).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 256, (12, 12), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(root))
        yield root


@pytest.fixture
def server(tmp_path, data_root):
    """A live explorer whose jobs may also use the 3-class folder; its runs folder."""
    runs = tmp_path / "runs"
    app = create_app(runs, dataset=data_root / "shapes")
    url, stop = serve_in_thread(app)
    try:
        yield url.rstrip("/"), runs, app.state.jobs
    finally:
        app.state.jobs.shutdown()
        stop()


def call(url: str, method: str, path: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def events(url: str, job: str, until=None, last_id: int | None = None) -> list[tuple[str, dict]]:
    """The job's Server-Sent Events (parsed) until the stream ends or ``until(kind, data)``."""
    headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    request = urllib.request.Request(f"{url}/api/jobs/{job}/events", headers=headers)
    found, kind = [], None
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                found.append((kind, data))
                if until is not None and until(kind, data):
                    break
    return found


def wait_final(url: str, job: str) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        status = call(url, "GET", f"/api/jobs/{job}")[1]
        if status["state"] in FINAL:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish: {status}")


def one_sentence(status: int, body: dict, expected: int) -> str:
    assert status == expected, body
    message = body["error"]
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    return message


def tiny_json() -> dict:
    return tiny_cnn().config()


def test_a_job_trains_streams_its_events_and_writes_an_ordinary_run(server) -> None:
    url, runs, _ = server
    status, created = call(
        url, "POST", "/api/jobs", {"model": tiny_json(), "dataset": "mnist", "epochs": 1, "seed": 3}
    )
    assert status == 202, created
    found = events(url, created["id"])
    kinds = [kind for kind, _ in found]
    assert kinds[-1] == "state" and found[-1][1]["state"] == "done"
    assert {"started", "watching", "progress", "point", "epoch", "snapshot"} <= set(kinds)
    snapshots = [data for kind, data in found if kind == "snapshot"]
    assert len(snapshots) >= 2  # before the first step and after the epoch
    first, last = snapshots[0]["filters"], snapshots[-1]["filters"]
    assert first["layer"] == "conv2d" and first["grid"]["count"] == 6
    assert first["grid"]["png"] != last["grid"]["png"]  # the filters learned
    assert snapshots[-1]["maps"]["grid"]["count"] == 6
    progress = next(data for kind, data in found if kind == "progress")
    assert progress["images_per_second"] > 0 and progress["seconds_left"] >= 0
    points = [data for kind, data in found if kind == "point"]
    assert [p["step"] for p in points] == sorted(p["step"] for p in points)
    assert points[-1]["step"] == 5  # 300 images in batches of 64
    assert {p["keep"] for p in points} == {1.0}  # epoch 1 trains on every image

    final = call(url, "GET", f"/api/jobs/{created['id']}")[1]
    assert final["state"] == "done" and final["run"] == created["run"] and final["epoch"] == 1
    run = runs / created["run"]
    assert is_run(run) and (run / "report.html").is_file() and (run / "figures").is_dir()
    written = read_history(run)
    assert [row["test_accuracy"] for row in written] == pytest.approx(
        [row["test_accuracy"] for row in final["history"]]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist" and metrics["config"]["seed"] == 3
    assert created["run"] in [r["name"] for r in call(url, "GET", "/api/info")[1]["runs"]]

    # The same files, of the same form, as `convlens train` writes.
    model_file = runs.parent / "tiny.json"
    model_file.write_text(json.dumps(tiny_json()))
    cli_run = runs.parent / "cli-run"
    main(
        [
            "train",
            "--model",
            str(model_file),
            "--dataset",
            "mnist",
            "--epochs",
            "1",
            "--seed",
            "3",
            "--quiet",
            "--out",
            str(cli_run),
        ]
    )
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in cli_run.iterdir())
    assert set(metrics) == set(json.loads((cli_run / "metrics.json").read_text()))

    # Replay: a page that connects after the end gets the compacted story, ending in "done".
    replayed = events(url, created["id"])
    assert replayed[-1][1]["state"] == "done"
    assert sum(kind == "snapshot" for kind, _ in replayed) == 1  # only the latest is kept
    assert events(url, created["id"], last_id=10**6) == []  # nothing after the end


def test_a_second_job_while_one_runs_is_409_and_bad_input_is_refused_first(server) -> None:
    url, runs, manager = server
    for body, status, words in [
        ({"model": "no-such-model", "dataset": "mnist"}, 400, "unknown model"),
        ({"model": tiny_json(), "dataset": "cifar"}, 400, "unknown dataset"),
        ({"model": tiny_json(), "dataset": "mnist", "recipe": "slow"}, 400, "unknown recipe"),
        (
            {
                "model": {"input_shape": [28, 28, 1], "layers": [{"type": "Dense", "units": 10}]},
                "dataset": "mnist",
            },
            400,
            "add Flatten() before it",
        ),
        (
            {
                "model": {
                    **tiny_json(),
                    "layers": tiny_json()["layers"][:-1] + [{"type": "Dense", "units": 3}],
                },
                "dataset": "mnist",
            },
            400,
            "Dense(10)",
        ),
        ({"model": "seed-cnn", "dataset": "mnist", "epochs": 0}, 422, '"Epochs" must be at least 1'),
    ]:
        code, answer = call(url, "POST", "/api/jobs", body)
        assert words in one_sentence(code, answer, status)
    assert manager.current() is None and not runs.exists()  # nothing started

    status, first = call(
        url, "POST", "/api/jobs", {"model": tiny_json(), "dataset": "mnist", "epochs": 50}
    )
    assert status == 202
    code, answer = call(url, "POST", "/api/jobs", {"model": "seed-cnn", "dataset": "mnist"})
    assert "already training" in one_sentence(code, answer, 409)
    info = call(url, "GET", "/api/jobs")[1]
    assert info["current"]["id"] == first["id"] and "shapes" in info["datasets"]
    assert call(url, "DELETE", f"/api/jobs/{first['id']}")[1]["state"] == "cancelled"
    assert call(url, "GET", "/api/jobs")[1]["current"] is None


def test_cancel_stops_the_job_as_ctrl_c_and_leaves_a_resumable_run(server, data_root) -> None:
    url, runs, manager = server
    _, created = call(
        url, "POST", "/api/jobs", {"model": tiny_json(), "dataset": "mnist", "epochs": 60}
    )
    events(url, created["id"], until=lambda kind, data: kind == "epoch" and data["epoch"] >= 2)
    status, answer = call(url, "DELETE", f"/api/jobs/{created['id']}")
    assert status == 200 and answer["state"] == "cancelled", answer
    # The answer comes once the job has ended: its process stopped on the interrupt by
    # itself (exit 0 after saving), not killed for being stuck.
    process = manager.get(created["id"]).process
    assert not process.is_alive() and process.exitcode == 0, process.exitcode
    assert "--resume" in answer["message"] and answer["run"] is None
    run = runs / created["run"]
    assert not run.exists() and (partial_path(run) / CHECKPOINT_FILE).is_file()
    assert created["run"] not in [r["name"] for r in call(url, "GET", "/api/info")[1]["runs"]]
    resumable = find_resumable(run)
    assert resumable.state.epoch >= 2 and resumable.config.epochs == 60
    assert call(url, "DELETE", f"/api/jobs/{created['id']}")[1]["state"] == "cancelled"

    # Cancelled before the first epoch ends: nothing is kept.
    _, early = call(url, "POST", "/api/jobs", {"model": "seed-cnn", "dataset": "mnist"})
    events(url, early["id"], until=lambda kind, _: kind == "started")
    answer = call(url, "DELETE", f"/api/jobs/{early['id']}")[1]
    assert answer["state"] == "cancelled" and "nothing was kept" in answer["message"]
    assert not partial_path(runs / early["run"]).exists() and not (runs / early["run"]).exists()


def test_a_model_that_cannot_learn_the_folders_classes_is_refused_before_it_starts(
    server,
) -> None:
    url, runs, manager = server
    # A model JSON is taken as written: Dense(10) cannot learn the folder's 3 classes.
    code, answer = call(url, "POST", "/api/jobs", {"model": tiny_json(), "dataset": "shapes"})
    assert "change the last layer to Dense(3)" in one_sentence(code, answer, 400)
    assert manager.current() is None and not runs.exists()
    # A preset fits its last layer to the folder's classes and trains.
    _, preset_job = call(
        url, "POST", "/api/jobs", {"model": "single-conv", "dataset": "shapes", "epochs": 1}
    )
    assert wait_final(url, preset_job["id"])["state"] == "done"
    metrics = json.loads((runs / preset_job["run"] / "metrics.json").read_text())
    assert metrics["class_names"] == ["circle", "square", "star"]


def test_a_failing_job_gives_its_sentence(server, tmp_path) -> None:
    """The folder checked when the job was asked for changes before the job reads it."""
    url, runs, manager = server
    folder = tmp_path / "changing"
    for name in ("a", "b"):
        for i in range(3):
            save_png(folder / name / f"{i}.png", np.full((12, 12), 40 * i, dtype=np.uint8))
    manager.datasets["changing"] = str(folder)  # as `convlens explore --dataset` would offer it
    request = {"model": "single-conv", "dataset": "changing", "epochs": 1}
    manager.fitter.fit(preset("single-conv"), "changing", fit=True)  # the page's editor asked
    (folder / "a" / "0.png").write_bytes(b"no longer a picture")
    _, created = call(url, "POST", "/api/jobs", request)
    status = wait_final(url, created["id"])
    assert status["state"] == "failed"
    assert "is not an image" in status["error"] and status["error"].endswith(".")
    assert events(url, created["id"])[-1][1]["error"] == status["error"]
    assert not any(runs.iterdir()) if runs.exists() else True


def test_unknown_job_is_404(server) -> None:
    url, _, _ = server
    for method, path in [("GET", "/api/jobs/nope"), ("DELETE", "/api/jobs/nope")]:
        code, answer = call(url, method, path)
        assert "no job" in one_sentence(code, answer, 404)


def test_jobs_are_in_the_openapi_description(server) -> None:
    url, _, _ = server
    paths = call(url, "GET", "/api/openapi.json")[1]["paths"]
    assert {"post", "get"} <= set(paths["/api/jobs"])
    assert {"get", "delete"} <= set(paths["/api/jobs/{job_id}"])
    assert "text/event-stream" in json.dumps(paths["/api/jobs/{job_id}/events"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def watch_quietly(url: str, job: str) -> None:
    """Follow a job's events until the stream ends, however it ends."""
    with contextlib.suppress(OSError, ValueError):
        events(url, job)


STOPPED_JOB = {"model": tiny_json(), "dataset": "mnist", "epochs": 40, "seed": 5}


@pytest.fixture(scope="module")
def uninterrupted_job(tmp_path_factory, data_root) -> dict[str, torch.Tensor]:
    """The weights of STOPPED_JOB trained from the page without a stop."""
    runs = tmp_path_factory.mktemp("uninterrupted")
    app = create_app(runs)
    url, stop = serve_in_thread(app)
    try:
        _, created = call(url.rstrip("/"), "POST", "/api/jobs", STOPPED_JOB)
        assert wait_final(url.rstrip("/"), created["id"])["state"] == "done"
    finally:
        app.state.jobs.shutdown()
        stop()
    return load_file(runs / created["run"] / "weights.safetensors")


@pytest.mark.parametrize("how", ["ctrl-c", "terminate"])
def test_stopping_the_server_mid_job_leaves_a_resumable_run(
    tmp_path, data_root, uninterrupted_job, how
) -> None:
    """`convlens explore` stopped (Ctrl-C in its terminal, or SIGTERM) while a job trains:
    it says where the run is and how to resume it, and the resumed run is the one an
    uninterrupted job writes, weight for weight."""
    runs, port = tmp_path / "runs", free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convlens",
            "explore",
            "--runs-dir",
            str(runs),
            "--no-browser",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                call(url, "GET", "/api/jobs")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
        _, created = call(url, "POST", "/api/jobs", STOPPED_JOB)
        events(url, created["id"], until=lambda kind, data: kind == "epoch")
        watching = threading.Thread(target=watch_quietly, args=(url, created["id"]), daemon=True)
        watching.start()  # a page following the job keeps its stream open
        if how == "ctrl-c":  # the terminal sends SIGINT to the whole process group
            os.killpg(server.pid, signal.SIGINT)
        else:
            server.send_signal(signal.SIGTERM)
        said, errors = server.communicate(timeout=60)
        assert b"Traceback" not in errors, errors.decode()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    watching.join(10)
    assert not watching.is_alive()
    run = runs / created["run"]
    assert (partial_path(run) / CHECKPOINT_FILE).is_file() and not run.exists()
    saved = find_resumable(run).state.epoch
    assert saved >= 1
    # The terminal says where the resumable run is (issue 22, item 12).
    assert f"convlens train --resume {run}`" in said.decode(), said.decode()
    # The resumed part trains with the job's threads, as the first part did.
    resumed = subprocess.run(
        [sys.executable, "-m", "convlens", "train", "--resume", str(run), "--quiet"],
        env={**env, "OMP_NUM_THREADS": str(job_threads())},
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 2,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert is_run(run) and len(read_history(run)) == STOPPED_JOB["epochs"]
    weights = load_file(run / "weights.safetensors")
    assert weights.keys() == uninterrupted_job.keys()
    for name, tensor in weights.items():
        assert torch.equal(tensor, uninterrupted_job[name]), name


def test_explore_refuses_a_dataset_that_is_not_a_folder(tmp_path, capsys) -> None:
    assert main(["explore", "--dataset", str(tmp_path / "nope"), "--no-browser"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_what_a_cancel_keeps_is_said_in_words() -> None:
    assert "epoch 1 is kept" in kept_message(1, 5, "runs/x")
    assert "epochs 1-3 are kept" in kept_message(3, 5, "runs/x")
    assert kept_message(3, 5, "runs/x").endswith("`convlens train --resume runs/x`.")
