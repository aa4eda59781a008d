"""The deletion test and the default method it picks (convlens.inspect.faithfulness).

The probabilities are checked against the network run by hand on hand-deleted
images; the choice against the ranking; the cache against the weights it measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_attribution import square_model

from convlens.data.datasets import Split
from convlens.inspect import faithfulness
from convlens.inspect.faithfulness import MethodScore
from convlens.model.layers import Dense, Flatten
from convlens.model.sequential import Sequential
from convlens.model.weights import save_model
from convlens.runs.directory import write_metrics
from convlens.runs.loading import Run, load_run


def square_run(directory: Path) -> Run:
    """The hand-built square detector (test_attribution.square_model) saved as a run."""
    spec, network = square_model()
    directory.mkdir(parents=True)
    save_model(directory, spec, network)
    write_metrics(directory, {"model": spec.name, "dataset": str(directory / "no-such-folder")})
    return load_run(directory)


def squares(count: int, seed: int = 0) -> np.ndarray:
    """uint8 (count, 16, 16, 1): a white 5x5 square somewhere on black, a little noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 30, (count, 16, 16, 1)).astype(np.uint8)
    for image, (top, left) in zip(images, rng.integers(0, 11, (count, 2)), strict=True):
        image[top : top + 5, left : left + 5] = 255
    return images


def by_hand(network: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Softmax of the network on pixels / 255, computed here (not by convlens's helpers)."""
    x = torch.from_numpy(images.astype(np.float32) / 255).permute(0, 3, 1, 2)
    with torch.no_grad():
        return torch.softmax(network(x), 1).double().numpy()


def test_delete_zeroes_the_first_pixels_of_each_order_in_every_channel() -> None:
    images = np.random.default_rng(0).integers(1, 256, (2, 3, 4, 3)).astype(np.uint8)
    order = np.array([np.arange(12)[::-1], np.arange(12)])
    deleted = faithfulness.delete(images, order, 5)
    for n in range(2):
        for pixel in range(12):
            row, col = divmod(pixel, 4)
            expected = 0 if pixel in order[n, :5] else images[n, row, col]
            np.testing.assert_array_equal(deleted[n, row, col], expected)


def test_the_drops_are_the_probabilities_the_network_gives(tmp_path) -> None:
    run = square_run(tmp_path / "square")
    images = squares(6)
    maps = (images[..., 0] == 255).astype(np.float32)  # the square ranked first
    predicted = np.ones(6, np.int64)
    by_map, by_chance = faithfulness.deletion_drops(run, images, maps, predicted, 0.1, seed=3)
    count = round(0.1 * 256)
    chance = np.argsort(np.random.default_rng(3).random((6, 256)), axis=1)[:, :count]
    top = np.argsort(-maps.reshape(6, -1), axis=1, kind="stable")[:, :count]
    before = by_hand(run.network, images)[:, 1]
    for order, found in ((top, by_map), (chance, by_chance)):
        deleted = images.reshape(6, -1).copy()
        for n in range(6):
            deleted[n, order[n]] = 0
        after = by_hand(run.network, deleted.reshape(images.shape))[:, 1]
        np.testing.assert_allclose(found, before - after, atol=1e-6)
    assert by_map.mean() > by_chance.mean() + 0.1  # the square is what class 1 reads


def test_the_default_is_the_method_ranked_first_and_is_kept_with_the_run(
    tmp_path, monkeypatch
) -> None:
    run = square_run(tmp_path / "square")
    test = Split(squares(30), np.ones(30, np.int64))
    measured = faithfulness.rank_methods(run, test.images[faithfulness.sample_indices(30)])
    assert [s.map_drop for s in measured] == sorted((s.map_drop for s in measured), reverse=True)
    chosen = faithfulness.default_method(run, test)
    assert chosen.method == measured[0].method and chosen.scores == tuple(measured)
    assert chosen.images == 30 and chosen.method in chosen.why
    stored = json.loads((run.path / faithfulness.CACHE_FILE).read_text())
    assert stored["method"] == chosen.method and stored["why"] == chosen.why
    faithfulness._MEASURED.clear()  # another process: the file is read, nothing measured
    monkeypatch.setattr(faithfulness, "score_method", pytest.fail)
    assert faithfulness.default_method(run, test) == chosen


def test_the_choice_follows_the_scores_and_new_weights_are_measured_again(
    tmp_path, monkeypatch
) -> None:
    run = square_run(tmp_path / "square")
    test = Split(squares(4), np.ones(4, np.int64))
    drops = {"gradcam": 0.19, "saliency": 0.1, "integrated-gradients": 0.63, "occlusion": 0.69}
    calls = []

    def scored(run, images, method, fraction=0.1, seed=0):
        calls.append(method)
        return MethodScore(method, drops[method], 0.14, 0.9)

    monkeypatch.setattr(faithfulness, "score_method", scored)
    assert faithfulness.default_method(run, test).method == "occlusion"
    drops["gradcam"] = 0.9
    assert faithfulness.default_method(run, test).method == "occlusion"  # kept
    assert len(calls) == 4
    with torch.no_grad():
        run.network.dense.bias[0] += 1.0
    save_model(run.path, run.model, run.network)  # other weights: the old measure is stale
    assert faithfulness.default_method(run, test).method == "gradcam"
    assert len(calls) == 8


def test_a_model_without_convolution_is_not_offered_gradcam() -> None:
    spec = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(2)])
    assert faithfulness.usable_methods(Run(Path("."), spec, None, {})) == [
        "saliency",
        "integrated-gradients",
        "occlusion",
    ]


def test_without_test_images_the_lesson_default_is_said_and_not_kept(tmp_path) -> None:
    run = square_run(tmp_path / "square")  # its dataset folder does not exist
    chosen = faithfulness.default_method(run)
    assert chosen.method == faithfulness.FALLBACK_METHOD and chosen.scores == ()
    assert "could not be read" in chosen.why
    assert not (run.path / faithfulness.CACHE_FILE).exists()


def test_a_run_that_cannot_be_written_is_measured_once_per_process(tmp_path, monkeypatch) -> None:
    run = square_run(tmp_path / "square")
    test = Split(squares(4), np.ones(4, np.int64))

    def refused(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(faithfulness, "atomic_write_text", refused)
    first = faithfulness.default_method(run, test)
    assert not (run.path / faithfulness.CACHE_FILE).exists()
    monkeypatch.setattr(faithfulness, "score_method", pytest.fail)
    assert faithfulness.default_method(run, test) == first


def lesson_run(directory: Path, dataset: str, spec: Sequential | None = None) -> Run:
    """An untrained seed-cnn (or ``spec``) saved as a run of ``dataset``."""
    from convlens.model.network import build_network
    from convlens.model.presets import preset

    spec = spec or preset("seed-cnn")
    directory.mkdir(parents=True)
    save_model(directory, spec, build_network(spec, seed=0))
    write_metrics(directory, {"model": spec.name, "dataset": dataset})
    return load_run(directory)


def test_the_lesson_cnn_on_fashion_mnist_takes_its_measured_default(tmp_path, monkeypatch):
    monkeypatch.setattr(faithfulness, "score_method", pytest.fail)  # nothing is measured
    run = lesson_run(tmp_path / "lesson", "fashion-mnist")
    chosen = faithfulness.default_method(run, Split(np.zeros((2, 28, 28, 1), np.uint8), [0, 1]))
    assert chosen == faithfulness.MEASURED_PRESETS[("seed-cnn", "fashion-mnist")]
    assert chosen.method == chosen.scores[0].method == "occlusion"
    assert "fixed by measurement" in chosen.why and "1,000 test images" in chosen.why
    assert not (run.path / faithfulness.CACHE_FILE).exists()


@pytest.mark.parametrize("change", ["folder", "edited"])
def test_other_data_or_an_edited_lesson_cnn_is_measured(tmp_path, monkeypatch, change) -> None:
    from convlens.model.layers import Conv2D, MaxPooling2D

    edited = Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(10, activation="softmax"),
        ],
        name="seed-cnn",
    )
    run = lesson_run(
        tmp_path / change,
        "fashion-mnist" if change == "edited" else str(tmp_path / "shapes"),
        edited if change == "edited" else None,
    )
    assert faithfulness.preset_default(run) is None
    calls = []

    def scored(run, images, method, fraction=0.1, seed=0):
        calls.append(method)
        return MethodScore(method, {"saliency": 0.8}.get(method, 0.2), 0.1, 0.9)

    monkeypatch.setattr(faithfulness, "score_method", scored)
    test = Split(np.zeros((2, 28, 28, 1), np.uint8), np.array([0, 1]))
    assert faithfulness.default_method(run, test).method == "saliency"
    assert len(calls) == 4
