# ruff: noqa: F811  (pytest fixtures imported from another test module are parameters here)
"""`convlens why` and `convlens inspect --portraits` end to end on a tiny trained run, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_cli_inspect import dense_run, mnist_dir, run, trained  # noqa: F401 (fixtures)

from convlens.images import to_model_input
from convlens.inspect import attribution, faithfulness
from convlens.runs.loading import load_run, load_test_split
from convlens.views import attribution_figures


@pytest.fixture
def drawn(monkeypatch) -> list[dict]:
    """What `why` handed the figure: the image, the map, the title, the top classes."""
    calls: list[dict] = []
    draw = attribution_figures.why_figure

    def recording(image, values, **kwargs):
        calls.append({"image": image, "values": values, **kwargs})
        return draw(image, values, **kwargs)

    monkeypatch.setattr(attribution_figures, "why_figure", recording)
    return calls


@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated-gradients", "occlusion"])
def test_why_draws_a_test_images_map_as_attribute_computes_it(
    capsys, trained, mnist_dir, tmp_path, method, drawn
) -> None:
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
    loaded = load_run(trained)
    image = load_test_split(loaded, None, str(mnist_dir)).images[3]
    [call] = drawn
    np.testing.assert_array_equal(call["image"], image)
    expected = attribution.attribute(loaded, image[None], method)[0]  # the predicted class
    np.testing.assert_allclose(call["values"], expected, rtol=1e-5, atol=1e-6)
    predicted = int(loaded.predict(image[None])[0].argmax())
    assert call["top"][0][0] == loaded.class_names[predicted]


def test_why_reads_an_image_file_and_explains_the_class_asked_for(
    capsys, trained, tmp_path, drawn
) -> None:
    picture = tmp_path / "square.png"
    pixels = np.zeros((40, 40), np.uint8)
    pixels[5:20, 20:35] = 240
    Image.fromarray(pixels).save(picture)
    out = tmp_path / "why.png"
    code, said, err = run(
        capsys, "why", picture, "--run", trained, "--method", "gradcam", "--class", "7", "--out", out
    )
    assert code == 0, err
    assert out.is_file() and "inverted" not in said  # light on black: kept as it is
    loaded = load_run(trained)
    read = to_model_input(pixels[:, :, None], (28, 28), 1)
    [call] = drawn
    np.testing.assert_array_equal(call["image"], read)
    toward_7 = attribution.attribute(loaded, read[None], "gradcam", target=7)[0]
    np.testing.assert_allclose(call["values"], toward_7, rtol=1e-5, atol=1e-6)
    assert call["title"].startswith("square.png: red: pixels that raised the score for 7")
    predicted = int(loaded.predict(read[None])[0].argmax())
    if predicted != 7:  # the map toward 7 is not the map toward the predicted class
        assert not np.allclose(toward_7, attribution.attribute(loaded, read[None], "gradcam")[0])


def test_why_inverts_a_dark_on_light_picture_and_says_so(capsys, trained, tmp_path, drawn) -> None:
    picture = tmp_path / "paper.png"
    pixels = np.full((40, 40), 250, np.uint8)
    pixels[5:20, 20:35] = 15  # a dark shape on white paper
    Image.fromarray(pixels).save(picture)
    out = tmp_path / "why.png"
    code, said, _ = run(capsys, "why", picture, "--run", trained, "--out", out)
    assert code == 0
    assert f"{picture}: (inverted first: its border is light;" in said
    np.testing.assert_array_equal(
        drawn[0]["image"], 255 - to_model_input(pixels[:, :, None], (28, 28), 1)
    )
    code, said, _ = run(capsys, "why", picture, "--run", trained, "--no-invert", "--out", out)
    assert code == 0 and "inverted" not in said
    np.testing.assert_array_equal(
        drawn[1]["image"], to_model_input(pixels[:, :, None], (28, 28), 1)
    )


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
    argv = ["why", "--run", dense_run, "--image-index", "0", "--method", "gradcam"]
    code, _, err = run(capsys, *argv, "--out", out)
    assert code == 2 and "no Conv2D" in err


def test_why_draws_the_runs_most_faithful_method_and_says_why(
    capsys, trained, mnist_dir, tmp_path, drawn
) -> None:
    chosen = faithfulness.read_cached(trained)  # measured when `convlens train` wrote the report
    assert chosen is not None and chosen.images == faithfulness.SAMPLE  # of its 200
    assert chosen.method == max(chosen.scores, key=lambda s: s.map_drop).method
    out = tmp_path / "why.png"
    argv = ["why", "--run", trained, "--data-dir", mnist_dir, "--image-index", 5, "--out", out]
    code, said, err = run(capsys, *argv)
    assert code == 0, err
    assert said.splitlines()[0] == chosen.why
    loaded = load_run(trained)
    image = load_test_split(loaded, None, str(mnist_dir)).images[5]
    expected = attribution.attribute(loaded, image[None], chosen.method)[0]
    np.testing.assert_allclose(drawn[0]["values"], expected, rtol=1e-5, atol=1e-6)
    assert drawn[0]["method"] == chosen.method
    code, said, err = run(capsys, *argv, "--layer", "conv2d")  # --layer is Grad-CAM's
    assert code == 0, err
    assert drawn[1]["method"] == "gradcam" and chosen.why not in said
    assert "a cell is 3x3 input pixels wide" in drawn[1]["caption"].replace("\n", " ")
