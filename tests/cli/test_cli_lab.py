"""The lab's commands, `convolve` and `explain-pixel`, run through convlens.cli.main."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens import images
from convlens.cli.main import main
from convlens.lab import ops
from convlens.lab.sample_images import facade

PATCH = "0,64,128;48,192,144;142,226,168"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail as a user error; return its one-line message."""
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("convlens: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    return err


@pytest.fixture()
def colour_png(tmp_path: Path) -> Path:
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[:, ::10, 0] = 255  # red vertical lines
    path = tmp_path / "lines.png"
    Image.fromarray(rgb).save(path)
    return path


def figure_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as figure:
        return figure.size


# ---------------------------------------------------------------- convolve


def test_convolve_built_in_image_prints_shapes_and_writes_the_figure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "fig.png"
    status, stdout, _ = run(capsys, "convolve", "--out", str(out))
    assert status == 0
    assert "input: the built-in building front (256, 256)" in stdout
    assert "vertical 3x3, stride 1, valid padding: (256, 256) -> (254, 254)" in stdout
    assert "-> 2x2 max pool -> (127, 127)" in stdout
    assert figure_size(out)[0] > 800
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no temporary file left


def test_convolve_all_presets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, stdout, _ = run(capsys, "convolve", "--filter", "all", "--out", str(tmp_path / "a.png"))
    assert status == 0
    assert all(name in stdout for name in ops.FILTERS)
    assert "vertical = sobel_x 3x3" in stdout  # one panel for a kernel with two names
    assert stdout.count(" 3x3, ") == len(ops.FILTERS) - 2


@pytest.mark.parametrize("form", [["--kernel", "-1,0,1;-2,0,2;-1,0,1"], ["--kernel=-1,0,1"]])
def test_convolve_takes_a_kernel_starting_with_a_minus(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, form: list[str]
) -> None:
    status, stdout, _ = run(capsys, "convolve", *form, "--out", str(tmp_path / "k.png"))
    assert status == 0 and "custom" in stdout


def test_convolve_colour_image_uses_luma_with_every_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, colour_png: Path
) -> None:
    argv = ["convolve", str(colour_png), "--filter", "sobel_y", "--stride", "2"]
    argv += ["--padding", "same", "--pool", "3", "--pool-mode", "avg", "--display", "rescale"]
    status, stdout, _ = run(capsys, *argv, "--out", str(tmp_path / "c.svg"))
    assert status == 0
    assert "(40, 60, 3) as grayscale luma (40, 60)" in stdout
    assert "stride 2, same padding: (40, 60) -> (20, 30) -> 3x3 avg pool -> (6, 10)" in stdout
    assert (tmp_path / "c.svg").read_text().startswith("<?xml")


def test_convolve_without_pooling(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, stdout, _ = run(capsys, "convolve", "--pool", "0", "--out", str(tmp_path / "p.png"))
    assert status == 0 and "pool" not in stdout.split("wrote")[0]


# ---------------------------------------------------------------- explain-pixel


def test_explain_pixel_patch_prints_the_lessons_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = run(capsys, "explain-pixel", "--patch", PATCH)
    assert status == 0
    assert "New pixel = (-1 * 0) + (0 * 64) + (-2 * 128) + (0.5 * 48)" in stdout
    assert stdout.splitlines()[-2].endswith(" = 577")
    assert " 48  192  144     0.5   4.5  -1.5" in stdout


def test_explain_pixel_matches_what_convolve_draws(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = run(
        capsys, "explain-pixel", "--row", "40", "--col", "17", "--filter", "vertical"
    )
    expected = ops.conv2d(facade(), ops.FILTERS["vertical"])[40, 17]
    assert status == 0
    assert stdout.splitlines()[-2].endswith(f"= {ops.format_number(expected)}")
    assert "Output pixel (row 40, col 17)" in stdout


def test_explain_pixel_on_a_file_with_stride_and_padding(
    capsys: pytest.CaptureFixture[str], colour_png: Path
) -> None:
    argv = ["explain-pixel", str(colour_png), "--row", "19", "--col", "0", "--stride", "2"]
    status, stdout, _ = run(capsys, *argv, "--padding", "same", "--filter", "blur")
    assert status == 0 and "zero padding" in stdout


# ---------------------------------------------------------------- user errors: exit 2, one sentence


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--filter", "diagonal"], "no filter called 'diagonal'"),
        (["--kernel", "1,x;2,3"], "'x' in the kernel is not a number"),
        (["--kernel", "1,2;3"], "row 2 of the kernel has 1 values"),
        (["--stride", "0"], "stride must be at least 1"),
        (["--pool", "-1"], "--pool must be 0"),
        (["--pool", "300"], "pooling window is larger than"),
        (["--padding", "full"], "invalid choice: 'full'"),
        (["--filter", "blur", "--kernel", "1"], "not allowed with argument"),
    ],
)
def test_convolve_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], words: str
) -> None:
    out = tmp_path / "fig.png"
    assert words in run_error(capsys, "convolve", *argv, "--out", str(out))
    assert not out.exists()


def test_convolve_kernel_larger_than_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((2, 2), dtype=np.uint8)).save(tiny)
    message = run_error(capsys, "convolve", str(tiny), "--out", str(tmp_path / "f.png"))
    assert "3x3 kernel is larger than the 2x2 valid-padded image" in message


def test_convolve_refuses_bad_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = str(tmp_path / "f.png")
    assert "does not exist" in run_error(
        capsys, "convolve", str(tmp_path / "nope.png"), "--out", out
    )
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "not an image" in run_error(capsys, "convolve", str(text), "--out", out)


def test_convolve_refuses_huge_images(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 100)  # stands in for 40 megapixels
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(path)
    assert "over the" in run_error(capsys, "convolve", str(path), "--out", str(tmp_path / "f.png"))


@pytest.mark.parametrize(
    ("out", "words"), [("fig.txt", "no figure extension"), ("missing/fig.png", "does not exist")]
)
def test_convolve_refuses_unwritable_figure_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out: str, words: str
) -> None:
    assert words in run_error(capsys, "convolve", "--out", str(tmp_path / out))


def test_failed_write_leaves_nothing_behind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "taken.png").mkdir()  # a folder where the figure should go
    assert "could not write" in run_error(capsys, "convolve", "--out", str(tmp_path / "taken.png"))
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--filter", "vertical"], "give --row and --col"),
        (["--row", "254", "--col", "0"], "row 254 is outside the 254x254 output"),
        (["--patch", PATCH, "--row", "1"], "--row pick a pixel of an image"),
        (["--patch", "1,2;3,4"], "the patch is 2x2 but the filter is 3x3"),
        (["--patch", "1,2;nan,4", "--kernel", "1,1;1,1"], "the patch contains 'nan'"),
        (["--filter", "all", "--row", "0", "--col", "0"], "no filter called 'all'"),
    ],
)
def test_explain_pixel_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert words in run_error(capsys, "explain-pixel", *argv)


def test_error_as_a_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convlens", "convolve", "--filter", "nope", "--out", "x.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("convlens: error: there is no filter called 'nope'")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
