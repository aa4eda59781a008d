"""`convlens predict DIR --out predictions.csv`: batches, skipped files, atomic CSV, exit codes."""

from __future__ import annotations

import csv
import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.cli.main import main
from convlens.model.layers import Conv2D, Dense, Flatten, MaxPooling2D
from convlens.model.network import build_network
from convlens.model.sequential import Sequential
from convlens.model.weights import save_model
from convlens.runs import predict
from convlens.runs.directory import write_metrics
from convlens.runs.loading import load_run
from convlens.runs.predict import PredictSummary, find_images, predict_folder

CLASSES = ("cat", "dog", "owl")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 3-class model saved as a run (its predictions are as good as any here)."""
    directory = tmp_path_factory.mktemp("run")
    model = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(12, 12, 1)),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(len(CLASSES), activation="softmax"),
        ],
        name="tiny",
        class_names=CLASSES,
    )
    save_model(directory, model, build_network(model, seed=0))
    write_metrics(directory, {"dataset": "generated"})
    return directory


def save(path: Path, mode: str = "L", size: tuple[int, int] = (20, 16), seed: int = 0) -> Path:
    """A random image at ``path`` (format from its suffix); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").convert(mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Five images in nested subfolders, two files named like images that are not, clutter."""
    root = tmp_path / "photos"
    save(root / "a" / "1.png")
    save(root / "a" / "2.jpg", "RGB", seed=1)
    save(root / "b" / "3.bmp", seed=2)
    save(root / "b" / "deeper" / "4.GIF", "P", seed=3)
    save(root / "5.webp", "RGB", (40, 30), seed=4)
    (root / "x.png").write_text("not an image at all\n")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(50))
    (root / "notes.txt").write_text("a file that is not named like an image\n")
    (root / ".hidden.png").write_text("hidden clutter, like macOS's ._ files\n")
    return root


REAL = {"a/1.png", "a/2.jpg", "b/3.bmp", "b/deeper/4.GIF", "5.webp"}


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_folder_writes_one_row_per_image_and_lists_the_bad_files(capsys, run_dir, folder, tmp_path):
    out = tmp_path / "predictions.csv"
    code, stdout, stderr = run_cli(
        capsys, "predict", str(folder), "--out", str(out), "--run", str(run_dir)
    )
    assert code == 0
    header, rows = read_rows(out)
    assert header == ["path", "predicted", "probability", "inverted", *CLASSES]
    assert {Path(row["path"]).relative_to(folder).as_posix() for row in rows} == REAL
    assert len(rows) == len(REAL)
    for row in rows:
        probs = np.array([float(row[name]) for name in CLASSES])
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert row["predicted"] == CLASSES[int(np.argmax(probs))]
        assert float(row["probability"]) == probs.max()
    assert f"wrote predictions for 5 images to {out}" in stdout
    assert "skipped 2 files that are not images: " in stderr
    assert "x.png (is not an image Pillow can read)" in stderr and "broken.jpg (" in stderr
    assert "notes.txt" not in stderr and ".hidden" not in stderr
    assert leftovers(tmp_path) == []


def test_rows_match_predicting_each_image_alone(capsys, run_dir, folder, tmp_path):
    out = tmp_path / "p.csv"
    assert run_cli(capsys, "predict", str(folder), "--out", str(out), "--run", str(run_dir))[0] == 0
    _, rows = read_rows(out)
    image = str(folder / "a" / "1.png")
    code, stdout, _ = run_cli(
        capsys, "predict", image, "--run", str(run_dir), "--json", "--top", "3"
    )
    assert code == 0
    alone = {c["class"]: c["probability"] for c in json.loads(stdout)[0]["top"]}
    row = next(r for r in rows if r["path"] == image)
    for name in CLASSES:
        assert float(row[name]) == pytest.approx(alone[name], abs=1e-6)


def test_batch_size_does_not_change_the_csv(capsys, run_dir, folder, tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    for out, size in ((small, "3"), (large, "256")):
        argv = ["predict", str(folder), "--out", str(out), "--run", str(run_dir)]
        assert run_cli(capsys, *argv, "--batch-size", size)[0] == 0
    assert small.read_bytes() == large.read_bytes()


def test_memory_holds_one_batch_at_a_time(run_dir, folder, tmp_path, monkeypatch):
    seen: list[int] = []
    real = predict.predict_proba

    def spy(network, images, input_shape):
        seen.append(len(images))
        return real(network, images, input_shape)

    monkeypatch.setattr(predict, "predict_proba", spy)
    progress: list[tuple[int, int]] = []
    summary = predict_folder(
        load_run(run_dir),
        [folder],
        tmp_path / "o.csv",
        batch_size=2,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert isinstance(summary, PredictSummary) and summary.predicted == 5
    assert [Path(p).name for p, _ in summary.skipped] == ["broken.jpg", "x.png"]
    assert max(seen) <= 2 and sum(seen) == 5
    assert progress[-1] == (7, 7) and [done for done, _ in progress] == [2, 4, 6, 7]


def test_find_images_is_recursive_sorted_and_takes_files_as_given(folder):
    found = find_images([folder / "notes.txt", folder, folder / "a"])
    assert found[0] == folder / "notes.txt"  # a file named on the command line is tried
    below = [p.relative_to(folder).as_posix() for p in found[1:]]
    assert below == sorted(below) and set(below) == REAL | {"x.png", "b/broken.jpg"}


def test_several_files_with_out(capsys, run_dir, folder, tmp_path):
    out = tmp_path / "two.csv"
    files = [str(folder / "a" / "1.png"), str(folder / "x.png"), str(folder / "5.webp")]
    code, _, stderr = run_cli(capsys, "predict", *files, "--out", str(out), "--run", str(run_dir))
    assert code == 0
    assert [row["path"] for row in read_rows(out)[1]] == [files[0], files[2]]
    assert "skipped 1 file that is not an image: " in stderr


def test_folder_without_images_exits_2(capsys, run_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    out = tmp_path / "none.csv"
    code, _, stderr = run_cli(
        capsys, "predict", str(empty), "--out", str(out), "--run", str(run_dir)
    )
    assert code == 2
    assert "no image files" in stderr and stderr.count("\n") == 1
    assert not out.exists() and leftovers(tmp_path) == []


def test_only_unreadable_images_exits_2_and_writes_nothing(capsys, run_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("text")
    out = tmp_path / "none.csv"
    code, _, stderr = run_cli(capsys, "predict", str(bad), "--out", str(out), "--run", str(run_dir))
    assert code == 2
    assert "none of the 1 files could be read as an image (x.png (" in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["missing-folder", "is-a-folder", "under-a-file"])
def test_unwritable_out_exits_2_without_a_partial_file(capsys, run_dir, folder, tmp_path, where):
    (tmp_path / "plain-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    out = {
        "missing-folder": tmp_path / "nowhere" / "p.csv",
        "is-a-folder": tmp_path / "a-folder",
        "under-a-file": tmp_path / "plain-file" / "p.csv",
    }[where]
    code, stdout, stderr = run_cli(
        capsys, "predict", str(folder), "--out", str(out), "--run", str(run_dir)
    )
    assert code == 2 and stdout == ""
    assert str(out) in stderr and stderr.count("\n") == 1
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "a-folder") == []
    assert not (tmp_path / "nowhere").exists() and (tmp_path / "plain-file").read_text() == "x"


def test_a_failed_write_keeps_the_old_csv(capsys, run_dir, folder, tmp_path, monkeypatch):
    out = tmp_path / "p.csv"
    out.write_text("the previous predictions\n")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(predict.os, "fsync", disk_full)
    code, _, stderr = run_cli(
        capsys, "predict", str(folder), "--out", str(out), "--run", str(run_dir)
    )
    assert code == 2 and "No space left on device" in stderr
    assert out.read_text() == "the previous predictions\n" and leftovers(tmp_path) == []


def test_folder_without_out_asks_for_it(capsys, run_dir, folder):
    code, _, stderr = run_cli(capsys, "predict", str(folder), "--run", str(run_dir))
    assert code == 2 and "--out predictions.csv" in stderr


def test_bad_batch_size_and_missing_path(capsys, run_dir, folder, tmp_path):
    out = str(tmp_path / "p.csv")
    argv = ["predict", str(folder), "--out", out, "--run", str(run_dir)]
    code, _, stderr = run_cli(capsys, *argv, "--batch-size", "0")
    assert code == 2 and "--batch-size must be at least 1" in stderr
    code, _, stderr = run_cli(capsys, "predict", str(folder), str(tmp_path / "missing"), *argv[2:])
    assert code == 2 and "missing does not exist" in stderr
    assert not Path(out).exists()


def test_plain_images_without_out_keep_the_table(capsys, run_dir, folder):
    code, stdout, _ = run_cli(capsys, "predict", str(folder / "a" / "1.png"), "--run", str(run_dir))
    assert code == 0 and stdout.startswith(f"{folder / 'a' / '1.png'}: ") and "%" in stdout
