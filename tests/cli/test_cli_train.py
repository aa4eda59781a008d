"""`convlens train` as a new user meets it: what it says when stopped, resumed or asked oddly."""

from __future__ import annotations

import json

import pytest
from synthetic import pattern_dataset, save_png, write_idx_dataset

from convlens.cli.main import main
from convlens.cli.progress import TrainingProgress
from convlens.runs.directory import partial_path
from convlens.training.train import TrainingInterrupted, kept_epochs


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
