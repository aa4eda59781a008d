"""`convlens inspect` and `convlens report` end to end, `train` writing the report, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from synthetic import make_run, pattern_dataset, tiny_cnn, write_idx_dataset

from convlens.cli.main import main
from convlens.model.presets import preset


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), pattern_dataset(300, 200))


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory) -> Path:
    """A tiny CNN trained for one epoch by `convlens train`, which also writes the report."""
    root = tmp_path_factory.mktemp("runs")
    spec = root / "tiny.json"
    spec.write_text(json.dumps(tiny_cnn().config()))
    out = root / "tiny-run"
    code = main(
        [
            "train",
            "--model",
            str(spec),
            "--dataset",
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("dense") / "dense", preset("seed-dnn"))


def test_train_writes_the_report_and_figures_into_the_run(trained) -> None:
    text = (trained / "report.html").read_text(encoding="utf-8")
    assert "<title>convlens report: tiny-run</title>" in text  # the final name, not .partial
    assert text.count('src="data:image/png;base64,') == 8
    figures = {p.name for p in (trained / "figures").iterdir()}
    assert {
        "journey.png",
        "filters.png",
        "curves.png",
        "confusion.png",
        "mistakes_why.png",
    } <= figures
    assert not list(trained.parent.glob(".*partial"))


def test_inspect_draws_the_journey_grid(capsys, trained, mnist_dir, tmp_path) -> None:
    out = tmp_path / "journey.png"
    code, stdout, _ = run(
        capsys,
        "inspect",
        "--run",
        trained,
        "--data-dir",
        mnist_dir,
        "--class",
        "3",
        "--filter",
        "2",
        "--out",
        out,
    )
    assert code == 0
    assert "filter 2 through conv2d, max_pooling2d, conv2d_1, max_pooling2d_1" in stdout
    assert "(3)" in stdout and f"wrote {out}" in stdout
    with Image.open(out) as image:  # 3 rows; input + 4 layers, each with its colour bar
        assert image.size == (round(100 * (2.0 * 5 + 0.5 * 4)), round(100 * (2.0 * 3 + 0.6)))


def test_inspect_picks_images_by_index(capsys, trained, mnist_dir, tmp_path) -> None:
    out = tmp_path / "two.png"
    code, stdout, _ = run(
        capsys,
        "inspect",
        "--run",
        trained,
        "--data-dir",
        mnist_dir,
        "--image-index",
        "0",
        "--image-index",
        "5",
        "--scale",
        "row",
        "--out",
        out,
    )
    assert code == 0 and "test images 0 (" in stdout and ", 5 (" in stdout
    with Image.open(out) as image:
        assert image.size[1] == round(100 * (2.0 * 2 + 0.6))


def test_inspect_draws_every_map_of_a_layer(capsys, trained, mnist_dir, tmp_path) -> None:
    out = tmp_path / "maps.png"
    code, stdout, _ = run(
        capsys,
        "inspect",
        "--run",
        trained,
        "--data-dir",
        mnist_dir,
        "--layer",
        "conv2d",
        "--image-index",
        "0",
        "--out",
        out,
    )
    assert code == 0 and "every map of conv2d for test image 0" in stdout
    with Image.open(out) as image:  # 6 maps in one row, a colour bar
        assert image.size == (round(100 * (1.25 * 6 + 1.05)), round(100 * (1.25 + 0.6)))


def test_inspect_weights_needs_no_data(capsys, trained, tmp_path, monkeypatch) -> None:
    def no_data(*args, **kwargs):
        raise AssertionError("--weights must not read the dataset")

    monkeypatch.setattr("convlens.data.datasets.load", no_data)
    out = tmp_path / "filters.png"
    code, stdout, _ = run(capsys, "inspect", "--run", trained, "--weights", "--out", out)
    assert code == 0 and out.is_file()


def test_report_command_compares_two_runs(capsys, trained, dense_run, mnist_dir) -> None:
    code, stdout, _ = run(
        capsys, "report", "--run", trained, "--run", dense_run, "--data-dir", mnist_dir
    )
    compared = trained / "compare-dense.html"
    assert code == 0 and f"wrote {compared}" in stdout
    assert f"figures in {trained / 'figures'}/" in stdout
    text = compared.read_text(encoding="utf-8")
    assert "Comparison" in text and "seed-dnn" in text and "101,770" in text
    assert (trained / "figures" / "comparison.png").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--class", "Sandals"], "unknown class 'Sandals'; choose a name or number: 0 0, 1 1,"),
        (["--filter", "70"], "filter 70 is past conv2d's 6 filters; choose 0..3."),
        (["--filter", "5"], "filter 5 is past conv2d_1's 4 filters; choose 0..3."),
        (
            ["--image-index", "5000"],
            "image index 5000 is outside the 200 test images; choose 0..199.",
        ),
        (["--images", "0"], "--images must be at least 1, not 0."),
        (["--images", "500"], "fewer than the 500 asked for"),
        (["--layer", "dense"], "dense outputs 10 numbers, not maps; choose a layer with maps"),
        (["--layer", "conv9"], "the model has no layer 'conv9'"),
        (["--layer", "conv2d", "--filter", "1"], "--filter picks the journey's filter"),
        (["--class", "1", "--image-index", "2"], "give one or the other"),
    ],
)
def test_inspect_errors_exit_2_with_one_sentence(
    capsys, trained, mnist_dir, tmp_path, argv, message
) -> None:
    out = tmp_path / "never.png"
    code, stdout, err = run(
        capsys, "inspect", "--run", trained, "--data-dir", mnist_dir, *argv, "--out", out
    )
    assert code == 2 and message in err
    assert err.startswith("convlens: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and not out.exists()


def test_run_errors_exit_2(capsys, tmp_path, dense_run, trained) -> None:
    half = tmp_path / "half"
    half.mkdir()
    (half / "model.json").write_text(json.dumps(tiny_cnn().config()))
    out = tmp_path / "x.png"
    cases = [
        (
            ["inspect", "--run", half, "--out", out],
            "has no weights.safetensors; it is not a finished run",
        ),
        (["report", "--run", half], "has no weights.safetensors"),
        (["inspect", "--run", tmp_path / "missing", "--out", out], "does not exist; check --run"),
        (["inspect", "--run", dense_run, "--out", out], "no Conv2D or pooling layer"),
        (["inspect", "--run", dense_run, "--weights", "--out", out], "has no Conv2D layer"),
        (["inspect", "--run", trained, "--out", tmp_path / "x.txt"], "has no figure extension"),
        (["report", "--run", trained, "--filter", "70"], "filter 70 is past conv2d's 6 filters"),
        (["report", "--run", trained, "--out", tmp_path / "r.txt"], "is not an .html file"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
