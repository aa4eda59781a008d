"""The model subcommands end to end: summary, train, evaluate, predict, and their errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from synthetic import pattern_dataset, write_idx_dataset

from convlens.cli.main import main
from convlens.runs.loading import load_run
from convlens.web.app import create_app


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    """Generated MNIST-format IDX files (MNIST itself is not available offline)."""
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), pattern_dataset(600, 200))


@pytest.fixture(scope="module")
def trained_run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "small"
    code = main(
        [
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--lr",
            "0.003",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_summary_prints_the_explained_table(capsys):
    code, out, _ = run(capsys, "summary")
    assert code == 0
    assert "Layer (type)" in out and "Output Shape" in out and "Param #" in out
    assert "(None, 26, 26, 64)" in out and "26x26: 28 - 3 + 1" in out
    assert "5x5: floor(11 / 2)" in out and "1,600 = 5 x 5 x 64" in out
    assert "640 = 64 x (3 x 3 x 1) + 64" in out and "Total params: 243,786" in out


def test_summary_json(capsys):
    code, out, _ = run(capsys, "summary", "--model", "seed-dnn", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["total_params"] == 101_770
    assert [layer["output_shape"] for layer in summary["layers"]] == [
        [None, 784],
        [None, 128],
        [None, 10],
    ]
    assert {"name", "type", "output_shape", "params"} <= set(summary["layers"][0])


def test_train_writes_a_run_that_learns(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["dataset"] == "mnist"
    assert metrics["test_accuracy"] > 0.5  # chance is 0.1
    assert metrics["config"]["ema_decay"] == 0.99  # the fast recipe's weight average
    assert metrics["config"]["keep_fraction"] == pytest.approx(1 / 3)  # selective backprop
    assert (trained_run / "weights.safetensors").is_file()
    history = (trained_run / "history.csv").read_text().splitlines()
    trained = [int(row.split(",")[-1]) for row in history[1:]]
    # 600 images at batch 32 are 19 steps an epoch: selection waits until 900 steps are
    # behind (epoch 49), so both epochs train on every image (train.for_dataset)
    assert metrics["config"]["select_from_epoch"] == 49
    assert history[0].endswith(",images") and trained == [metrics["train_images"]] * 2
    assert metrics["input_why"] == "28x28x1: mnist's own images"


def test_a_bad_ema_decay_is_refused_before_training(capsys, mnist_dir, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--quiet"]
    code, _, err = run(capsys, *args, "--ema", "1.5", "--out", str(out))
    assert code == 2 and "EMA decay must be in [0, 1), like 0.999 (0 turns it off)" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_bad_keep_fraction_is_refused_before_training(capsys, mnist_dir, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--quiet"]
    code, _, err = run(capsys, *args, "--keep", "0", "--out", str(out))
    assert code == 2 and "keep fraction must be in (0, 1], like 0.33" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_evaluate_reports_per_class_accuracy_and_confusion(capsys, trained_run, mnist_dir):
    code, out, _ = run(capsys, "evaluate", "--run", str(trained_run), "--data-dir", str(mnist_dir))
    assert code == 0
    assert "test accuracy" in out and "per-class accuracy" in out and "confusion matrix" in out
    code, out, _ = run(
        capsys, "evaluate", "--run", str(trained_run), "--data-dir", str(mnist_dir), "--json"
    )
    report = json.loads(out)
    assert np.array(report["confusion_matrix"]).sum() == 200
    assert set(report["per_class_accuracy"]) == {str(i) for i in range(10)}


def test_predict_classifies_image_files(capsys, trained_run, tmp_path):
    dataset = pattern_dataset(10, 10, seed=5)
    paths = []
    for index in range(3):
        path = tmp_path / f"image{index}.png"
        big = np.kron(dataset.test.images[index, :, :, 0], np.ones((4, 4), np.uint8))  # 112x112
        Image.fromarray(big).save(path)
        paths.append(str(path))
    code, out, _ = run(capsys, "predict", *paths, "--run", str(trained_run), "--json")
    results = json.loads(out)
    assert code == 0 and len(results) == 3
    assert all(abs(sum(c["probability"] for c in r["top"]) - 1) < 0.5 for r in results)
    hits = sum(
        r["top"][0]["index"] == int(y) for r, y in zip(results, dataset.test.labels, strict=False)
    )
    assert hits >= 2
    code, out, _ = run(capsys, "predict", paths[0], "--run", str(trained_run), "--invert")
    assert code == 0 and out.startswith(paths[0])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "--model", "resnet"], "unknown model 'resnet'"),
        (["train", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "--dataset", "/nonexistent/folder"], "unknown dataset"),
        (["evaluate", "--run", "/nonexistent/run"], "does not exist"),
        (["predict", "nothing.png", "--run", "/nonexistent/run"], "does not exist"),
        (["summary", "--bogus"], "unrecognized arguments"),
    ],
)
def test_errors_exit_2_with_one_sentence(capsys, argv, message):
    code, out, err = run(capsys, *argv) if argv[1] != "--bogus" else (None, "", "")
    if code is None:
        with pytest.raises(SystemExit) as caught:
            main(argv)
        code, err = caught.value.code, capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_missing_dataset_names_every_place_and_the_fix(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("convlens.data.datasets.SYSTEM_DATA_ROOT", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVLENS_DATA", raising=False)

    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr("convlens.data.datasets._download", offline)
    code, _, err = run(capsys, "train", "--dataset", "fashion-mnist", "--out", str(tmp_path / "r"))
    assert code == 2
    assert "apt-get install" in err and str(tmp_path / "cache") in err
    assert not (tmp_path / "r").exists()


def test_predict_names_the_file_that_is_not_an_image(capsys, trained_run, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is text")
    code, _, err = run(capsys, "predict", str(bad), "--run", str(trained_run))
    assert code == 2 and str(bad) in err


def test_evaluate_refuses_a_run_without_weights(capsys, trained_run, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((trained_run / "model.json").read_text())
    code, _, err = run(capsys, "evaluate", "--run", str(broken))
    assert code == 2 and "no weights.safetensors" in err


def test_unwritable_out_is_refused_before_training(capsys, mnist_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(
        capsys,
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(blocker / "run"),
        "--quiet",
    )
    assert code == 2 and "cannot write the run directory" in err


def test_the_installed_command_prints_no_traceback(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(
        '{"input_shape": [3, 3, 1], "layers": [{"type": "Conv2D", "filters": 2, '
        '"kernel_size": 5}, {"type": "Flatten"}, {"type": "Dense", "units": 2}]}'
    )
    done = subprocess.run(
        [sys.executable, "-m", "convlens", "summary", "--model", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("convlens: error: ") and "Traceback" not in done.stderr
    assert "conv2d (Conv2D) has a 5x5 kernel but its input is only 3x3x1" in done.stderr


def test_train_on_a_folder_of_your_own_images(capsys, tmp_path):
    dataset = pattern_dataset(90, 30, classes=3, seed=2)
    for split, part in (("train", dataset.train), ("test", dataset.test)):
        for index, (image, label) in enumerate(zip(part.images, part.labels, strict=True)):
            folder = tmp_path / "shapes" / split / ["circle", "square", "star"][label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.dstack([image[..., 0]] * 3)).save(folder / f"{index}.png")
    out = tmp_path / "run"
    code, stdout, _ = run(
        capsys,
        "train",
        "--dataset",
        str(tmp_path / "shapes"),
        "--epochs",
        "1",
        "--model",
        "seed-dnn",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0, stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["circle", "square", "star"]
    assert json.loads((out / "model.json").read_text())["layers"][-1]["units"] == 3


def test_evaluate_and_predict_take_a_device(capsys, trained_run, mnist_dir, tmp_path):
    code, out, _ = run(
        capsys,
        "evaluate",
        "--run",
        str(trained_run),
        "--data-dir",
        str(mnist_dir),
        "--device",
        "cpu",
        "--json",
    )
    assert code == 0 and json.loads(out)["accuracy"] > 0.5
    code, _, err = run(capsys, "predict", "x.png", "--run", str(trained_run), "--device", "tpu")
    assert code == 2 and "unknown device 'tpu'" in err


def test_the_best_preset_uses_its_recipe_and_learns(capsys, mnist_dir, tmp_path):
    out = tmp_path / "best"
    argv = ["train", "--model", "best", "--dataset", "mnist", "--data-dir", str(mnist_dir)]
    code, printed, _ = run(capsys, *argv, "--epochs", "2", "--out", str(out), "--quiet")
    assert code == 0 and "recipe best" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "best" and metrics["test_accuracy"] > 0.5


@pytest.mark.parametrize("top", ["0", "-2"])
def test_predict_top_below_one_is_a_sentence(capsys, trained_run, tmp_path, top):
    path = tmp_path / "image.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(path)
    code, out, err = run(capsys, "predict", str(path), "--run", str(trained_run), "--top", top)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"--top {top} would show no class" in err and "1 or more" in err


def why_lines(text: str) -> list[str]:
    """The summary's lines from the first layer's row to the closing rule."""
    lines = text.splitlines()
    return lines[3 : len(lines) - 4]


@pytest.mark.parametrize("columns", [100, 140])
def test_summary_fits_the_terminal_and_the_why_wraps_under_itself(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = run(capsys, "summary")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= columns
    why_column = out.splitlines()[1].index("Why")
    for line in why_lines(out):
        if line.startswith(" "):  # a label under the last, or its text wrapped under itself
            text_at = len(line) - len(line.lstrip())
            assert text_at in (why_column, why_column + 7), line
    monkeypatch.delenv("COLUMNS")
    _, whole, _ = run(capsys, "summary")  # not a terminal: one explanation per line
    assert " ".join(" ".join(why_lines(out)).split()) == " ".join(
        " ".join(why_lines(whole)).split()
    )
    assert max(len(line) for line in whole.splitlines()) > columns


def test_a_narrow_terminal_puts_the_why_under_each_row(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    code, out, _ = run(capsys, "summary")
    lines = out.splitlines()
    assert code == 0 and lines[3].rstrip().endswith("640")  # the row alone
    assert lines[4].startswith("  shape  26x26: 28 - 3 + 1")
    assert all(len(line) <= 72 for line in lines if not line.startswith(("=", "Layer")))


def test_predict_inverts_a_dark_on_light_picture_as_the_explorer_does(
    capsys, trained_run, tmp_path
):
    """The run learned light blocks on black: the same picture dark on white reads as it would."""
    dataset = pattern_dataset(10, 10, seed=5)
    light_on_dark = dataset.test.images[0]  # (28, 28, 1): the run's own kind of picture
    dark_on_light = tmp_path / "dark-on-light.png"
    Image.fromarray(255 - light_on_dark[:, :, 0]).save(dark_on_light)
    loaded = load_run(trained_run)
    expected = loaded.predict(light_on_dark[None])[0]  # the oracle: the run on its own kind
    as_is = loaded.predict((255 - light_on_dark)[None])[0]
    code, out, _ = run(capsys, "predict", str(dark_on_light), "--run", str(trained_run), "--json")
    [result] = json.loads(out)
    assert code == 0 and result["inverted"] is True
    assert {c["index"]: c["probability"] for c in result["top"]} == pytest.approx(
        {int(k): float(expected[k]) for k in np.argsort(-expected)[:3]}, abs=1e-6
    )
    code, out, _ = run(capsys, "predict", str(dark_on_light), "--run", str(trained_run))
    assert out.strip().endswith(
        "(inverted first: its border is light; the model was trained on light shapes on black; "
        "--no-invert keeps it as it is)"
    )
    code, out, _ = run(
        capsys, "predict", str(dark_on_light), "--run", str(trained_run), "--no-invert", "--json"
    )
    [kept] = json.loads(out)
    assert kept["inverted"] is False
    assert kept["top"][0]["probability"] == pytest.approx(float(as_is.max()), abs=1e-6)
    code, out, _ = run(capsys, "predict", str(dark_on_light), "--run", str(trained_run), "--invert")
    assert "(inverted first, as asked)" in out


def test_a_folder_of_pictures_says_which_were_inverted(capsys, trained_run, tmp_path):
    dataset = pattern_dataset(10, 10, seed=5)
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(dataset.test.images[0, :, :, 0]).save(folder / "a-light-on-dark.png")
    Image.fromarray(255 - dataset.test.images[1, :, :, 0]).save(folder / "b-dark-on-light.png")
    out = tmp_path / "predictions.csv"
    code, said, _ = run(
        capsys, "predict", str(folder), "--run", str(trained_run), "--out", str(out)
    )
    rows = out.read_text().splitlines()
    assert code == 0 and rows[0].startswith("path,predicted,probability,inverted,")
    assert [row.split(",")[3] for row in rows[1:]] == ["no", "yes"]
    assert "1 of them were inverted first" in said and "--no-invert" in said


@pytest.mark.parametrize(("border", "inverted"), [(140, True), (115, False)])
def test_the_command_and_the_page_invert_by_one_rule(
    capsys, trained_run, tmp_path, border, inverted
):
    """A grey border either side of mid-grey: the page's journey and predict decide alike."""
    pixels = np.full((28, 28), border, np.uint8)
    pixels[8:20, 8:20] = 255 - border
    path = tmp_path / "grey.png"
    Image.fromarray(pixels).save(path)
    code, out, _ = run(capsys, "predict", str(path), "--run", str(trained_run), "--json")
    assert code == 0 and json.loads(out)[0]["inverted"] is inverted
    page = TestClient(create_app(trained_run.parent, run=trained_run), base_url="http://127.0.0.1")
    uploaded = page.post("/api/images", content=path.read_bytes(), headers={"X-Filename": "g.png"})
    journey = page.post(
        "/api/journey", json={"run": trained_run.name, "image": uploaded.json()["id"]}
    ).json()
    assert journey["inverted"] is inverted
