"""`convlens train` as a new user meets it: what it says when stopped, resumed or asked oddly."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from synthetic import pattern_dataset, save_png, write_idx_dataset

from convlens.cli.main import main
from convlens.cli.progress import TrainingProgress
from convlens.runs.directory import partial_path
from convlens.training.train import TrainingInterrupted, kept_epochs
from convlens.web.app import create_app


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), pattern_dataset(160, 40))


def train_args(mnist_dir, out, *extra):
    return (
        "train", "--dataset", "mnist", "--data-dir", mnist_dir, "--model", "seed-dnn",
        "--batch-size", "32", "--quiet", "--out", out, *extra,
    )  # fmt: skip


def ctrl_c_in_epoch(monkeypatch, stopped: int) -> None:
    """Ctrl-C arrives during the first batch of epoch ``stopped``."""

    def on_batch_end(self, epoch, batch, loss, accuracy) -> None:
        if epoch == stopped:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingProgress, "on_batch_end", on_batch_end)


def test_ctrl_c_before_the_first_epoch_says_nothing_was_kept(
    capsys, monkeypatch, mnist_dir, tmp_path
):
    ctrl_c_in_epoch(monkeypatch, 1)
    out = tmp_path / "run"
    code, _, err = run(capsys, *train_args(mnist_dir, out, "--epochs", "2"))
    assert code == 130
    assert "nothing was kept" in err and "`convlens train --resume` has nothing to resume" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not partial_path(out).exists()  # and indeed nothing is


def test_ctrl_c_after_the_first_epoch_says_epoch_1_is_kept(
    capsys, monkeypatch, mnist_dir, tmp_path
):
    ctrl_c_in_epoch(monkeypatch, 2)
    out = tmp_path / "run"
    code, _, err = run(capsys, *train_args(mnist_dir, out, "--epochs", "3"))
    assert code == 130
    assert "interrupted after epoch 1 of 3: epoch 1 is kept;" in err and "1-1" not in err
    assert f"continue with `convlens train --resume {out}`" in err
    assert (partial_path(out) / "checkpoint.safetensors").is_file()


def test_ctrl_c_while_a_resumed_run_loads_keeps_it_waiting(
    capsys, monkeypatch, mnist_dir, tmp_path
):
    ctrl_c_in_epoch(monkeypatch, 2)
    out = tmp_path / "run"
    assert run(capsys, *train_args(mnist_dir, out, "--epochs", "3"))[0] == 130

    def interrupted_load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("convlens.data.datasets.load", interrupted_load)
    code, _, err = run(capsys, "train", "--resume", out, "--quiet")
    assert code == 130 and "nothing was kept" not in err
    assert f"it waits as it was; continue with `convlens train --resume {out}`" in err
    assert (partial_path(out) / "checkpoint.safetensors").is_file()


def test_kept_epochs_reads_as_english() -> None:
    assert kept_epochs(1) == "epoch 1 is kept"
    assert kept_epochs(3) == "epochs 1-3 are kept"
    said = str(TrainingInterrupted("runs/x", 1))
    assert "epoch 1 is kept" in said and "`convlens train --resume runs/x`" in said


def folder_of_shapes(root, per_class: int = 6):
    """Three classes of small grey pictures, no train/ and test/: a split is recorded."""
    dataset = pattern_dataset(3 * per_class, 3, classes=3, seed=4)
    pictures = zip(dataset.train.images, dataset.train.labels, strict=True)
    for index, (image, label) in enumerate(pictures):
        save_png(root / ["circle", "square", "star"][label] / f"{index}.png", image[4:24, 2:26])
    return root


def test_epochs_given_on_a_small_folder_are_said_to_be_kept(capsys, tmp_path):
    folder = folder_of_shapes(tmp_path / "shapes")
    out = tmp_path / "run"
    argv = ("train", "--dataset", folder, "--model", "seed-dnn", "--quiet", "--out", out)
    code, said, err = run(capsys, *argv, "--epochs", "2")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    steps = 2 * -(-metrics["train_images"] // metrics["config"]["batch_size"])
    assert metrics["epochs"] == 2 and steps < 600
    assert f"small dataset: 2 epochs as given ({steps} steps; without --epochs the recipe" in said
    assert "at least 600 steps" not in said


@pytest.mark.parametrize("seed", ["-5", str(2**31)])
def test_a_seed_out_of_range_is_refused_by_the_command_as_by_the_page(
    capsys, mnist_dir, tmp_path, seed
):
    out = tmp_path / "run"
    code, said, err = run(capsys, *train_args(mnist_dir, out, "--seed", seed))
    assert code == 2 and said == "" and not out.exists()
    assert (
        f"the seed must be a whole number from 0 to 2,147,483,647, like 0 or 42; got {seed}." in err
    )
    page = TestClient(create_app(tmp_path / "runs"), base_url="http://127.0.0.1")
    answer = page.post(
        "/api/jobs", json={"model": "seed-dnn", "dataset": "mnist", "seed": int(seed)}
    )
    assert answer.status_code == 400 and answer.json()["error"] in err  # the same sentence
    assert run(capsys, *train_args(mnist_dir, tmp_path / "ok", "--seed", str(2**31 - 1)))[0] == 0


def test_a_missing_gpu_is_said_before_the_banner_or_any_data(
    capsys, monkeypatch, mnist_dir, tmp_path
):
    def no_reading(*args, **kwargs):
        raise AssertionError("the data was read before the device was checked")

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("convlens.data.datasets.load", no_reading)
    code, said, err = run(capsys, *train_args(mnist_dir, tmp_path / "run", "--device", "cuda"))
    assert code == 2 and said == ""  # no banner
    assert (
        err
        == "convlens: error: --device cuda was asked for but no CUDA GPU is available; use cpu.\n"
    )
