"""convlens.train / import_model / evaluate: the commands' workflows as Python, returning runs."""

from __future__ import annotations

import pytest
from synthetic import pattern_dataset, write_idx_dataset

import convlens


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), pattern_dataset(600, 200))


def test_train_writes_the_run_the_command_writes_and_evaluate_reproduces_it(
    mnist_dir, tmp_path, capsys
):
    run = convlens.train("seed-dnn", "mnist", data_dir=mnist_dir, epochs=2, out=tmp_path / "run")
    assert run.path == tmp_path / "run"
    for name in ("model.json", "weights.safetensors", "history.csv", "metrics.json", "report.html"):
        assert (run.path / name).is_file(), name
    assert "epoch 2/2" in capsys.readouterr().err  # each epoch's line, as the command prints it
    evaluation = convlens.evaluate(run, data_dir=mnist_dir)
    assert evaluation.accuracy == pytest.approx(run.metrics["test_accuracy"], abs=1e-9)
    assert evaluation.accuracy > 0.5  # the patterns are easy; chance is 0.1


def test_import_model_makes_a_scored_run_with_its_report(mnist_dir, tmp_path):
    trained = convlens.train(
        "seed-dnn", "mnist", data_dir=mnist_dir, epochs=1, out=tmp_path / "t", verbose=False
    )
    keras_file = tmp_path / "model.keras"
    convlens.export(trained.path, "keras", keras_file)
    run = convlens.import_model(
        keras_file, dataset="mnist", data_dir=mnist_dir, out=tmp_path / "imported"
    )
    assert (run.path / "report.html").is_file()
    assert run.metrics["test_accuracy"] == pytest.approx(trained.metrics["test_accuracy"], abs=1e-9)
