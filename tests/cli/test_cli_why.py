# ruff: noqa: F811  (pytest fixtures imported from another test module are parameters here)
"""`convlens why` and `convlens inspect --portraits` end to end on a tiny trained run, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_cli_inspect import dense_run, mnist_dir, run, trained  # noqa: F401 (fixtures)


@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated-gradients", "occlusion"])
def test_why_draws_a_test_image(capsys, trained, mnist_dir, tmp_path, method) -> None:
    out = tmp_path / "why.png"
    code, said, err = run(
        capsys,
        "why",
        "--run",
        trained,
        "--data-dir",
        mnist_dir,
        "--image-index",
        3,
        "--method",
        method,
        "--out",
        out,
    )
    assert code == 0, err
    assert f"wrote {out}" in said
    assert Image.open(out).size[0] > 1000


def test_why_reads_an_image_file_and_explains_any_class(capsys, trained, tmp_path) -> None:
    picture = tmp_path / "square.png"
    pixels = np.zeros((40, 40), np.uint8)
    pixels[5:20, 20:35] = 240
    Image.fromarray(pixels).save(picture)
    out = tmp_path / "why.png"
    code, _, err = run(capsys, "why", picture, "--run", trained, "--class", "7", "--out", out)
    assert code == 0, err
    assert out.is_file()


def test_portraits_draw_chosen_filters(capsys, trained, mnist_dir, tmp_path) -> None:
    out = tmp_path / "portraits.png"
    code, said, err = run(
        capsys,
        "inspect",
        "--portraits",
        "--run",
        trained,
        "--data-dir",
        mnist_dir,
        "--layer",
        "conv2d",
        "--filters",
        "0-2",
        "--out",
        out,
    )
    assert code == 0, err
    assert "portraits of conv2d's filters over 200 test images" in said
    width, height = Image.open(out).size
    assert height > 3 * 100 and width > 7 * 100  # three rows of seven panels


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["why", "--image-index", "3", "--class", "11"], "unknown class"),
        (["why", "--image-index", "3", "--layer", "dense"], "not maps"),
        (["why", "--image-index", "3", "--layer", "flatten"], "not maps"),
        (["why", "--image-index", "99999"], "outside the 200 test images"),
        (["why"], "give an image file or --image-index"),
        (["why", "--image-index", "3", "--method", "saliency", "--layer", "conv2d"], "Grad-CAM"),
        (["inspect", "--portraits", "--filters", "0-99"], "outside the layer's 4 filters"),
        (["inspect", "--filters", "0-2"], "add --portraits"),
        (["inspect", "--portraits", "--layer", "dense"], "not maps"),
    ],
)
def test_errors_exit_2_with_one_sentence(capsys, trained, mnist_dir, tmp_path, argv, words) -> None:
    out = tmp_path / "x.png"
    code, said, err = run(capsys, *argv, "--run", trained, "--data-dir", mnist_dir, "--out", out)
    assert code == 2
    assert words in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_a_dense_run_has_no_gradcam(capsys, dense_run, tmp_path) -> None:
    out = tmp_path / "x.png"
    code, _, err = run(capsys, "why", "--run", dense_run, "--image-index", "0", "--out", out)
    assert code == 2 and "no Conv2D" in err
