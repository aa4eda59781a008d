"""Test-time flip inside the model: the best preset on Fashion-MNIST predicts from each
image and its mirror, in every command, because the model (not the command) says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from synthetic import pattern_dataset, write_idx_dataset

from convlens.errors import ConvlensError
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.model.sequential import Sequential, format_summary
from convlens.training.plan import plan_training


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("idx"), pattern_dataset(120, 40))


def test_the_best_recipe_mirrors_fashion_mnist_only(idx_dir: Path) -> None:
    best = plan_training("best", "fashion-mnist", idx_dir)
    assert best.model.test_time_flip and best.config.flip_augment
    digits = plan_training("best", "mnist", idx_dir)  # a mirrored 7 is not a 7
    assert not digits.model.test_time_flip and not digits.config.flip_augment
    lesson = plan_training("seed-cnn", "fashion-mnist", idx_dir)
    assert not lesson.model.test_time_flip and not lesson.config.flip_augment


def test_the_flag_travels_in_the_model_json_and_summary() -> None:
    model = preset("seed-cnn").with_test_time_flip(True)
    config = json.loads(json.dumps(model.config()))
    assert config["test_time_flip"] is True
    again = Sequential.from_config(config)
    assert again.test_time_flip and again.with_class_names(tuple("abcdefghij")).test_time_flip
    assert "test_time_flip" not in preset("seed-cnn").config()  # the lesson's file unchanged
    assert "predicts from each image and its mirror" in format_summary(model)
    assert model.summary_dict()["test_time_flip"] is True
    with pytest.raises(ConvlensError, match='"test_time_flip" in a model file must be true'):
        Sequential.from_config({**config, "test_time_flip": "yes"})


def test_eval_averages_the_logits_and_training_does_not() -> None:
    network = build_network(preset("seed-cnn").with_test_time_flip(True), seed=0)
    x = torch.rand(5, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    plain = build_network(preset("seed-cnn"), seed=0)
    plain.eval()
    with torch.no_grad():
        own, mirror = plain(x), plain(x.flip(3))
        network.train()
        assert torch.equal(network(x), own)
        network.eval()
        torch.testing.assert_close(network(x), (own + mirror) / 2)


def test_forward_hooks_see_only_the_images_own_pass() -> None:
    network = build_network(preset("seed-cnn").with_test_time_flip(True), seed=0).eval()
    seen: list[torch.Tensor] = []
    handle = network.conv2d.register_forward_hook(lambda m, i, out: seen.append(out))
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        network(x)
    handle.remove()
    assert len(seen) == 1
    with torch.no_grad():
        torch.testing.assert_close(seen[0], network.conv2d(x))


def test_every_command_scores_a_mirrored_run_as_training_did(idx_dir, tmp_path, capsys) -> None:
    from convlens.cli.main import main

    run = tmp_path / "best"
    arguments = ["train", "--model", "best", "--dataset", "fashion-mnist", "--data-dir"]
    assert main([*arguments, str(idx_dir), "--epochs", "2", "--quiet", "--out", str(run)]) == 0
    assert "predicts from each image and its mirror" in capsys.readouterr().out
    assert json.loads((run / "model.json").read_text())["test_time_flip"] is True
    trained = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    assert main(["evaluate", "--run", str(run), "--data-dir", str(idx_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == trained
