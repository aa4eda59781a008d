"""The report: one valid, self-contained HTML file with every figure embedded."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import make_run, pattern_dataset, tiny_cnn

from convlens.model.presets import preset
from convlens.runs.evaluate import evaluate
from convlens.runs.loading import load_run
from convlens.views import mosaic, report, run_figures

VOID = {"meta", "img", "br", "hr", "link", "input"}


@pytest.fixture(scope="module")
def test_split():
    return pattern_dataset(60, 120, seed=4).test


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "cnn & <b>bold", tiny_cnn())
    make_run(root / "dense", preset("seed-dnn"), seconds=3.0)
    return root


@pytest.fixture(scope="module")
def written(runs_dir, test_split) -> tuple[Path, str]:
    run = load_run(runs_dir / "cnn & <b>bold")
    path = report.write_report(run, test_split, figures_dir=run.path / report.FIGURES_DIR)
    return path, path.read_text(encoding="utf-8")


class Collector(HTMLParser):
    """Start tags with attributes, text, and a check that every element is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Collector:
    collector = Collector()
    collector.feed(text)
    collector.close()
    assert not collector.errors and not collector.open, (collector.errors, collector.open)
    return collector


def test_report_is_valid_html_with_every_image_embedded(written) -> None:
    path, text = written
    assert path.name == "report.html" and text.startswith("<!DOCTYPE html>")
    page = parse(text)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    # curves, per class, confusion, journey, maps, filters, mistakes, mistakes' Grad-CAM
    assert len(images) == 8
    for attrs in images:
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix) and attrs["alt"]
        png = base64.b64decode(attrs["src"][len(prefix) :], validate=True)
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size[0] > 300


def test_report_references_nothing_outside_itself(written) -> None:
    _, text = written
    page = parse(text)
    ids = {attrs.get("id") for _, attrs in page.tags}
    for tag, attrs in page.tags:
        assert tag not in {"script", "link", "iframe", "object", "embed", "base"}
        for name, value in attrs.items():
            if name == "src":
                assert value.startswith("data:"), value
            if name == "href":
                assert value.startswith("#") and value[1:] in ids, value
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "url(" not in lowered and "@import" not in lowered


def test_report_holds_every_section(written) -> None:
    _, text = written
    words = " ".join(parse(text).text)
    for heading in ("Model", "Training", "Test results", "Journey", "Filters", "Mistakes"):
        assert heading in words
    assert "conv2d (Conv2D)" in words and "(None, 26, 26, 6)" in words  # the summary
    assert "26x26: 28 - 3 + 1" in words and "60 = 6 x (3 x 3 x 1) + 6" in words  # explained
    assert "Total params" in words
    assert "13.0 s" in words and "6.5 s" in words  # training time and per epoch
    assert "Test accuracy" in words and "metrics.json recorded 56.00%" in words
    assert "Comparison" not in words


def test_report_escapes_every_text(written) -> None:
    _, text = written
    assert "<b>bold" not in text and "convlens report: cnn &amp; &lt;b&gt;bold</title>" in text
    assert "<script>" not in text


def test_figures_are_written_beside_the_report_and_nothing_half_written(written) -> None:
    path, _ = written
    figures = path.parent / report.FIGURES_DIR
    names = {p.name for p in figures.iterdir()}
    assert names == {
        f"{n}.png"
        for n in (
            "curves",
            "per_class",
            "confusion",
            "journey",
            "feature_maps",
            "filters",
            "misclassified",
            "mistakes_why",
        )
    }
    assert not [p for p in path.parent.rglob("*") if p.name.endswith(".tmp")]


def test_figures_files_are_the_very_images_the_page_embeds(written) -> None:
    path, text = written
    prefix = "data:image/png;base64,"
    embedded = {
        base64.b64decode(attrs["src"][len(prefix) :])
        for tag, attrs in parse(text).tags
        if tag == "img"
    }
    files = {p.read_bytes() for p in (path.parent / report.FIGURES_DIR).glob("*.png")}
    assert files == embedded  # each figure drawn and encoded once, written twice
    for name in ("journey", "feature_maps", "filters", "misclassified", "mistakes_why"):
        with Image.open(path.parent / report.FIGURES_DIR / f"{name}.png") as image:
            pixels = np.asarray(image.convert("RGB"))
        assert (pixels.min(axis=2) < 200).mean() > 0.1, name  # panels drawn, not only titles


def test_two_runs_are_compared_side_by_side(runs_dir, test_split, tmp_path) -> None:
    cnn, dense = load_run(runs_dir / "cnn & <b>bold"), load_run(runs_dir / "dense")
    out = report.write_report(cnn, test_split, out=tmp_path / "compare.html", others=[dense])
    page = parse(out.read_text(encoding="utf-8"))
    words = " ".join(page.text)
    assert "Comparison" in words and "dense" in words and "seed-dnn" in words
    assert f"{cnn.model.total_params:,}" in words and "101,770" in words
    assert "3.0 s" in words  # the dense run's training time
    assert sum(1 for tag, _ in page.tags if tag == "img") == 9
    assert not (tmp_path / report.FIGURES_DIR).exists()  # figures only when asked


def test_a_dense_model_says_it_has_no_journey(runs_dir, test_split) -> None:
    run = load_run(runs_dir / "dense")
    rendered = report.render_report(run, test_split)
    assert set(rendered.figures) == {"curves", "per_class", "confusion", "misclassified"}
    assert "has no convolution or pooling layer" in rendered.html


def test_the_journey_follows_the_chosen_class_and_filter(runs_dir, test_split) -> None:
    run = load_run(runs_dir / "cnn & <b>bold")
    options = report.ReportOptions(class_choice="Ankle boot", images=2, filter_index=3)
    evaluation = evaluate(run.network, test_split, run.model.input_shape, 10)
    figure = run_figures.run_figures(run, test_split, evaluation, options)["journey"]
    titles = [panel.title for panel in mosaic.panels(figure)]
    assert len(titles) == 2 * 5 and "Ankle boot" in titles[0] and "model says" in titles[0]
    assert "Filter 3 (numbered from 0)" in " ".join(figure.get_suptitle().split())
    labels = np.asarray(test_split.labels)
    first = int(np.flatnonzero(labels == 9)[0])
    assert titles[0].startswith(f"test image {first}: Ankle boot")


def test_run_name_of_a_run_being_written() -> None:
    assert report.run_name(Path("runs/.seed-cnn-1.partial")) == "seed-cnn-1"
    assert report.run_name(Path("runs/seed-cnn-1")) == "seed-cnn-1"


def test_figure_png_is_what_matplotlib_saves_pixel_for_pixel() -> None:
    from convlens.views import plots

    figure = plots.per_class_figure(np.array([0.5, 0.9]), ["a", "b"], overall=0.7, title="t")
    ours = Image.open(io.BytesIO(run_figures.figure_png(figure)))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    theirs = Image.open(io.BytesIO(buffer.getvalue()))
    assert ours.mode == "RGB"  # an opaque figure: no alpha channel to encode
    np.testing.assert_array_equal(np.asarray(ours.convert("RGBA")), np.asarray(theirs))


def test_figures_built_and_drawn_by_two_processes_are_the_bytes_one_process_makes(
    runs_dir, test_split
):
    """The report's path: every figure's numbers made first, then a forked child draws some."""
    run = load_run(runs_dir / "cnn & <b>bold")
    evaluation = evaluate(run.network, test_split, run.model.input_shape, run.model.num_classes)
    plans = run_figures.figure_plans(run, test_split, evaluation)
    assert set(run_figures.CHILD_DRAWS) < set(plans)
    together = run_figures.built_figures_png(plans)
    import gc

    assert gc.get_freeze_count() == 0  # frozen for the fork only: collections go on as before
    alone = run_figures.run_figures(run, test_split, evaluation)
    assert list(together) == list(alone)  # the report's order, the same figures
    for name, figure in alone.items():
        assert together[name] == run_figures.figure_png(figure), name


def test_once_a_figures_numbers_are_made_its_drawing_runs_no_model(
    runs_dir, test_split, monkeypatch
):
    """What the forked child does must not need torch's thread pool: no forward pass."""
    import torch

    run = load_run(runs_dir / "cnn & <b>bold")
    evaluation = evaluate(run.network, test_split, run.model.input_shape, run.model.num_classes)
    drawings = {
        n: plan() for n, plan in run_figures.figure_plans(run, test_split, evaluation).items()
    }

    def no_forward_pass(*args, **kwargs):
        raise AssertionError("a drawing ran the model")

    monkeypatch.setattr(torch.nn.Module, "__call__", no_forward_pass)
    drawn = {name: drawing() for name, drawing in drawings.items() if drawing is not None}
    assert {"journey", "feature_maps", "filters", "mistakes_why", "curves"} <= set(drawn)
