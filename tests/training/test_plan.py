"""Your own images: presets built for a folder's size and colour, recipes scaled by steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from synthetic import colour_folder, pattern_dataset, save_png, write_idx_dataset

from convlens.cli.main import main
from convlens.data.datasets import load
from convlens.errors import ConvlensError
from convlens.training.callbacks import Callback
from convlens.training.plan import parse_input_size, plan_training
from convlens.training.recipes import RECIPES, for_dataset, total_steps
from convlens.training.train import TrainingInterrupted, find_resumable, train_to_run


def gray_folder(root: Path, sizes: list[tuple[int, int]], per_class: int = 3) -> Path:
    """Two classes of grayscale PNGs, image k of each at sizes[k % len(sizes)]."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for k in range(per_class):
            shape = sizes[k % len(sizes)]
            save_png(root / name / f"{k}.png", rng.integers(0, 256, shape).astype(np.uint8))
    return root


def test_a_preset_takes_an_rgb_folders_size_and_colour(tmp_path: Path) -> None:
    root = colour_folder(tmp_path / "colour", per_class=3, size=32)
    plan = plan_training("seed-cnn", str(root))
    assert plan.model.input_shape == (32, 32, 3) and plan.dataset.image_shape == (32, 32, 3)
    assert plan.input_why == "32x32x3: your images' size and colour"
    conv = plan.model.rows[0]
    assert conv.params == 64 * (3 * 3 * 3) + 64  # Keras's count for Conv2D(64, 3x3) on RGB
    assert plan.model.num_classes == 2 and plan.model.rows[-1].params == 128 * 2 + 2


def test_mixed_sizes_take_the_median_and_lenet5_its_minimum(tmp_path: Path) -> None:
    root = gray_folder(tmp_path / "mixed", [(30, 40), (50, 60), (40, 50)])
    plan = plan_training("seed-cnn", str(root))
    assert plan.model.input_shape == (40, 50, 1)
    assert plan.input_why.startswith("40x50x1: the median of your images' 3 sizes")
    tiny = gray_folder(tmp_path / "tiny", [(8, 8)])
    assert plan_training("lenet5", str(tiny)).model.input_shape == (32, 32, 1)
    assert plan_training("seed-cnn", str(tiny)).model.input_shape == (28, 28, 1)


def test_input_size_and_colour_can_be_overridden(tmp_path: Path) -> None:
    root = colour_folder(tmp_path / "colour", per_class=3, size=32)
    plan = plan_training("seed-cnn", str(root), input_size=(28, 28), color="grayscale")
    assert plan.model.input_shape == (28, 28, 1)
    assert plan.input_why == "28x28x1: the size asked for; grayscale as asked"
    assert parse_input_size("32,48") == (32, 48) and parse_input_size("40") == (40, 40)
    with pytest.raises(ConvlensError, match="is not a height and width"):
        parse_input_size("big")
    with pytest.raises(ConvlensError, match="a model file states its own input_shape"):
        spec = tmp_path / "m.json"
        spec.write_text(json.dumps(plan.model.config()))
        plan_training(str(spec), str(root), color="rgb")


def test_fashion_mnist_shapes_stay_the_lessons(tmp_path: Path) -> None:
    mnist = write_idx_dataset(tmp_path / "mnist", pattern_dataset(100, 20))
    plan = plan_training("seed-cnn", "mnist", mnist)
    assert plan.model.input_shape == (28, 28, 1) and plan.model.total_params == 243_786
    assert plan.input_why == "28x28x1: mnist's own images"
    padded = plan_training("lenet5", "mnist", mnist)
    assert padded.input_why == "32x32x1: the model's input; mnist's 28x28x1 images padded"


def test_the_recipe_scales_by_steps_not_epochs() -> None:
    fast = RECIPES["fast"]
    lesson_sized = for_dataset(fast, 60_000)  # Fashion-MNIST: as the recipe always was
    assert (lesson_sized.epochs, lesson_sized.select_from_epoch) == (6, 2)
    small = for_dataset(fast, 1_348)  # 22 steps an epoch
    assert (
        total_steps(small, 1_348, 64)
        >= fast.min_steps
        > total_steps(small.__class__(**{**small.__dict__, "epochs": small.epochs - 1}), 1_348, 64)
    )
    assert small.select_from_epoch > small.epochs  # never selects: every image every epoch
    assert small.shift_augment == 1 and lesson_sized.shift_augment == 0  # shifts only small data
    assert for_dataset(fast, 1_348, epochs_given=True).epochs == fast.epochs
    assert for_dataset(RECIPES["lesson"], 500) == RECIPES["lesson"]  # the lesson stays exact


def test_a_colour_only_task_is_learned_and_grayscale_cannot(tmp_path: Path, capsys) -> None:
    root = colour_folder(tmp_path / "colour", per_class=40, size=28)
    base = ["train", "--dataset", str(root), "--epochs", "25", "--quiet", "--threads", "2"]
    assert main([*base, "--out", str(tmp_path / "rgb")]) == 0
    printed = capsys.readouterr().out
    assert "input 28x28x3: your images' size and colour" in printed
    assert main([*base, "--color", "grayscale", "--out", str(tmp_path / "gray")]) == 0
    colour = json.loads((tmp_path / "rgb" / "metrics.json").read_text())
    gray = json.loads((tmp_path / "gray" / "metrics.json").read_text())
    assert colour["test_accuracy"] >= 0.95  # 40 test images
    assert gray["test_accuracy"] <= 0.75  # same luma: chance is 0.5
    assert colour["input_why"] == "28x28x3: your images' size and colour"


def test_a_recorded_split_is_what_evaluate_tests_on(tmp_path: Path, capsys) -> None:
    root = gray_folder(tmp_path / "flat", [(12, 12)], per_class=10)
    run = tmp_path / "run"
    args = ["train", "--dataset", str(root), "--epochs", "1", "--quiet", "--out", str(run)]
    assert main(args) == 0
    assert "test split: 4 images held out (20% of each class, seed 0)" in capsys.readouterr().out
    split = json.loads((run / "split.json").read_text())
    assert len(split["test_files"]) == 4 and split["seed"] == 0
    # new images in the folder change a fresh split, but not the run's recorded one
    for k in range(10, 16):
        save_png(root / "a" / f"{k}.png", np.zeros((12, 12), np.uint8))
    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert sum(evaluated["confusion_matrix"][0]) + sum(evaluated["confusion_matrix"][1]) == 4
    (root / split["test_files"][0]).unlink()
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "was in the run's test split but is not in the folder" in capsys.readouterr().err


def test_summary_says_what_a_folder_chose(tmp_path: Path, capsys) -> None:
    root = colour_folder(tmp_path / "colour", per_class=3, size=24)
    assert main(["summary", "--dataset", str(root), "--no-explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("input 28x28x3: your images' size (24x24) raised to the model's")
    assert 'Model: "seed-cnn"  input: (28, 28, 3)' in out


def test_help_lists_commands_in_the_lessons_order(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = [
        name
        for name in (
            "summary",
            "train",
            "evaluate",
            "predict",
            "inspect",
            "report",
            "convolve",
            "explain-pixel",
            "explore",
            "export",
        )
        if name in out
    ]
    positions = [out.index(f"    {name}") for name in listed]
    assert positions == sorted(positions) and len(listed) == 10
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "best" in capsys.readouterr().out


def test_an_interrupted_folder_run_resumes_from_another_folder(tmp_path, monkeypatch, capsys):
    """Resumed from elsewhere, a folder run ends with the uninterrupted run's weights and reasons."""
    root = gray_folder(tmp_path / "pictures", [(30, 30), (34, 34)], per_class=6)
    monkeypatch.chdir(tmp_path)
    plan = plan_training("seed-dnn", "pictures", epochs=2)
    assert plan.input_why.startswith("32x32x1: the median of your images' 2 sizes")
    whole, _ = train_to_run(plan.model, plan.dataset, plan.config, out=tmp_path / "whole")

    class StopAfterTheFirst(Callback):
        def on_epoch_end(self, record) -> bool:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train_to_run(
            plan.model,
            plan.dataset,
            plan.config,
            out=tmp_path / "run",
            callbacks=[StopAfterTheFirst()],
        )
    resumable = find_resumable(tmp_path / "run")
    assert resumable.dataset == str(root.resolve()) == load("pictures").location
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(tmp_path / "run"), "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out
    resumed, uninterrupted = (
        load_file(tmp_path / "run" / "weights.safetensors"),
        load_file(whole / "weights.safetensors"),
    )
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["input_why"] == plan.input_why  # not "the size asked for; ... as asked"
    assert json.loads((whole / "split.json").read_text()) == json.loads(
        (tmp_path / "run" / "split.json").read_text()
    )
