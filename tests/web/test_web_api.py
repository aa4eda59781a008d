"""The explorer's HTTP API through the server's test client: every endpoint, good and bad input.

Numbers are checked against convlens.ops and convlens.inspect computed here
on the same arrays; images are decoded from the PNG data URLs the page gets.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from matplotlib import colormaps
from PIL import Image
from synthetic import pattern_dataset, tiny_cnn, write_idx_dataset, write_run

from convlens.cli.main import main
from convlens.inspect import faithfulness, journey, methods
from convlens.lab import ops
from convlens.lab.sample_images import facade
from convlens.model.layers import Conv2D, Dense, Flatten, MaxPooling2D
from convlens.model.presets import preset
from convlens.model.sequential import Sequential
from convlens.runs.loading import load_run
from convlens.web import pictures
from convlens.web.app import create_app
from convlens.web.images import MAX_UPLOAD_BYTES
from convlens.web.page import STATIC_DIR
from convlens.web.server import bind, serve_in_thread

CLASSES = tuple(f"class {i}" for i in range(9)) + ("Ankle boot",)
LESSON_PATCH = np.array([[0, 64, 128], [48, 192, 144], [142, 226, 168]], dtype=np.uint8)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Generated IDX files standing in for MNIST and Fashion-MNIST, found via CONVLENS_DATA."""
    root = tmp_path_factory.mktemp("data")
    dataset = pattern_dataset(60, 120)
    write_idx_dataset(root / "mnist", dataset)
    write_idx_dataset(root / "fashion-mnist", dataset)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(root))
        yield root


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, data_root) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "dense", preset("seed-dnn"), CLASSES)
    time.sleep(0.01)
    write_run(root / "tiny", tiny_cnn(), CLASSES)  # finished last: the default
    (root / "not-a-run").mkdir()
    return root


@pytest.fixture(scope="module")
def client(runs_root) -> TestClient:
    return TestClient(create_app(runs_root), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def test_split(data_root):
    return pattern_dataset(60, 120).test


def decode(url: str) -> np.ndarray:
    """A PNG data URL -> its pixels as a NumPy array."""
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :]))))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: TestClient, pixels: np.ndarray, name: str = "my.png") -> dict:
    answer = client.post("/api/images", content=png(pixels), headers={"X-Filename": name})
    assert answer.status_code == 200, answer.text
    return answer.json()


def one_sentence(answer, status: int) -> str:
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture(scope="module")
def facade_id(client) -> str:
    return client.get("/api/images/builtin/facade").json()["id"]


# ---------------------------------------------------------------- info and images


def test_info_lists_filters_images_and_runs_newest_first(client) -> None:
    info = client.get("/api/info").json()
    assert list(info["filters"]) == list(ops.FILTERS)
    for (
        name,
        kernel,
    ) in ops.FILTERS.items():  # written as the arithmetic writes them: 1/9 -> 0.111111
        np.testing.assert_allclose(info["filters"][name], kernel, atol=5e-7)
    assert [image["name"] for image in info["builtin_images"]] == ["facade"]
    assert [run["name"] for run in info["runs"]] == ["tiny", "dense"]
    assert info["default_run"] == "tiny" and info["no_run_hint"] is None
    assert info["runs"][0]["classes"] == list(CLASSES)


def test_without_runs_the_page_is_told_how_to_get_one(tmp_path) -> None:
    info = TestClient(create_app(tmp_path / "none"), base_url="http://127.0.0.1").get("/api/info")
    assert info.json()["runs"] == [] and info.json()["default_run"] is None
    hint = info.json()["no_run_hint"]
    assert "convlens train" in hint and "Train it and watch the filters learn" in hint
    # Issue 22, item 3: one epoch trains in about 30 s, and the page needs no reload.
    assert "3 minutes" not in hint and "reload" not in hint
    # The test-set samples without a run are Fashion-MNIST's, by name.
    assert info.json()["sample_classes"][:2] == ["T-shirt/top", "Trouser"]
    assert len(info.json()["sample_classes"]) == 10


def test_builtin_image_is_the_facade(client) -> None:
    image = client.get("/api/images/builtin/facade").json()
    assert (image["height"], image["width"], image["channels"]) == (256, 256, 1)
    np.testing.assert_array_equal(decode(image["png"]), facade())
    assert "facade" in one_sentence(client.get("/api/images/builtin/ascent"), 404)


def test_upload_keeps_the_image_and_shows_its_luma(client) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image = upload(client, rgb, "colour.png")
    assert (image["height"], image["width"], image["channels"]) == (20, 30, 3)
    expected = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(decode(image["png"]).astype(int) - expected).max() <= 1
    assert upload(client, rgb)["id"] == image["id"]  # same pixels, same id


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"hello, not an image", 400, "not an image"),
        (b"", 400, "empty"),
        (b"\0" * (MAX_UPLOAD_BYTES + 1), 413, "10 MB"),
    ],
)
def test_bad_uploads_get_one_sentence(client, body, status, words) -> None:
    assert words in one_sentence(client.post("/api/images", content=body), status)


def test_an_upload_over_40_megapixels_is_refused(client) -> None:
    huge = Image.new("L", (8000, 5001))  # compresses to a few KB, decodes to 40 MB
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    assert "megapixel" in one_sentence(client.post("/api/images", content=buffer.getvalue()), 400)
    assert client.get("/api/info").status_code == 200  # and the server keeps serving


# ---------------------------------------------------------------- the playground


def test_convolve_matches_ops_and_the_lesson_display(client, facade_id) -> None:
    answer = client.post("/api/convolve", json={"image": facade_id, "filter": "vertical"})
    body = answer.json()
    filtered = ops.conv2d(facade(), ops.FILTERS["vertical"])
    pooled = ops.pool2d(filtered, 2)
    assert body["filtered"]["shape"] == [254, 254] and body["pooled"]["shape"] == [127, 127]
    assert body["filtered"]["formula"] == "254 = 256 - 3 + 1"
    assert body["pooled"]["formula"] == "127 = floor(254 / 2)"
    np.testing.assert_array_equal(decode(body["filtered"]["png"]), np.clip(filtered, 0, 255))
    np.testing.assert_array_equal(decode(body["pooled"]["png"]), np.clip(pooled, 0, 255))
    assert (body["filtered"]["min"], body["filtered"]["max"]) == (filtered.min(), filtered.max())
    assert "clipped" in body["filtered"]["caption"]


@pytest.mark.parametrize(
    ("stride", "padding", "shape", "formula"),
    [
        (1, "same", [256, 256], "256 = ceil(256 / 1) (same padding)"),
        (2, "valid", [127, 127], "127 = floor((256 - 3) / 2) + 1"),
        (3, "same", [86, 86], "86 = ceil(256 / 3) (same padding)"),
    ],
)
def test_stride_and_padding_change_the_shape_and_its_formula(
    client, facade_id, stride, padding, shape, formula
) -> None:
    request = {"image": facade_id, "filter": "sobel_y", "stride": stride, "padding": padding}
    body = client.post("/api/convolve", json={**request, "pool": "avg", "display": "rescale"})
    filtered = ops.conv2d(facade(), ops.FILTERS["sobel_y"], stride=stride, padding=padding)
    assert body.json()["filtered"]["shape"] == shape == list(filtered.shape)
    assert body.json()["filtered"]["formula"] == formula
    pooled = ops.pool2d(filtered, 2, mode="avg")
    assert body.json()["pooled"]["shape"] == list(pooled.shape)
    assert body.json()["pooled"]["min"] == pytest.approx(pooled.min())


def test_a_typed_kernel_is_the_same_as_its_preset(client, facade_id) -> None:
    typed = {"image": facade_id, "kernel": [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "pool": "none"}
    named = {"image": facade_id, "filter": "laplacian", "pool": "none"}
    a, b = client.post("/api/convolve", json=typed).json(), client.post("/api/convolve", json=named)
    assert a["filtered"]["png"] == b.json()["filtered"]["png"] and a["pooled"] is None
    flat = {**typed, "kernel": [0, 1, 0, 1, -4, 1, 0, 1, 0]}
    assert client.post("/api/convolve", json=flat).json()["filtered"] == a["filtered"]


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"kernel": [1, 2, 3, 4, 5, 6, 7, 8]}, 400, "nine"),
        ({"kernel": [1, 2, 3, 4, 5, 6, 7, 8, "x"]}, 422, '"Kernel" item 9 must be a number, not "x"'),
        ({"kernel": [1, 2, 3, 4, 5, 6, 7, 8, float("nan")]}, 400, "finite"),
        ({"kernel": [1] * 9, "filter": "blur"}, 400, "not both"),
        ({"filter": None}, 400, "neither"),
        ({"filter": "emboss"}, 400, "no filter called 'emboss'"),
        ({"stride": 0}, 422, '"Stride" must be at least 1, not 0; change it'),
        ({"padding": "full"}, 422, '"Padding" must be one of \'valid\' or \'same\', not "full"'),
        ({"image": "0123456789abcdef"}, 404, "no image"),
        ({"pool_size": 300}, 422, '"Pool size" must be at most 64, not 300'),
    ],
)
def test_bad_convolve_requests_get_one_sentence(client, facade_id, change, status, words) -> None:
    chosen = {} if "kernel" in change else {"filter": "vertical"}
    request = {"image": facade_id, **chosen, **change}
    data = json.dumps(request)  # NaN is written as the bare token NaN, as a careless client might
    answer = client.post(
        "/api/convolve", content=data, headers={"Content-Type": "application/json"}
    )
    assert words in one_sentence(answer, status)


def test_a_pool_window_larger_than_the_image_is_refused(client) -> None:
    image = upload(client, np.zeros((5, 5), dtype=np.uint8))["id"]
    request = {"image": image, "filter": "blur", "pool_size": 4}
    assert "pooling window" in one_sentence(client.post("/api/convolve", json=request), 400)


def test_explain_gives_the_lessons_577(client) -> None:
    image = upload(client, LESSON_PATCH)["id"]
    body = client.post(
        "/api/explain", json={"image": image, "filter": "lesson", "row": 0, "col": 0}
    ).json()
    assert body["sum"] == 577 and body["equation"].endswith("= 577")
    assert body["equation"].startswith("New pixel = (-1 * 0) + (0 * 64) + (-2 * 128)")
    assert body["neighbourhood"] == LESSON_PATCH.tolist() and body["shown"] == 255
    assert (body["top"], body["left"], body["in_padding"]) == (0, 0, False)


@pytest.mark.parametrize(("stride", "padding"), [(1, "valid"), (2, "same"), (1, "same")])
def test_every_explained_pixel_is_the_convolutions(client, facade_id, stride, padding) -> None:
    kernel = [[1, 2, 0], [-1, 0.5, 3], [0, -2, 1]]
    filtered = ops.conv2d(facade(), np.array(kernel), stride=stride, padding=padding)
    rng = np.random.default_rng(stride)
    pixels = [(0, 0), (filtered.shape[0] - 1, filtered.shape[1] - 1)]
    pixels += [tuple(rng.integers(0, filtered.shape[0], 2)) for _ in range(5)]
    for row, col in pixels:
        request = {"image": facade_id, "kernel": kernel, "stride": stride, "padding": padding}
        body = client.post("/api/explain", json={**request, "row": int(row), "col": int(col)})
        assert body.json()["sum"] == pytest.approx(filtered[row, col])
        products = np.array(body.json()["products"])
        assert products.sum() == pytest.approx(filtered[row, col])
    corner = client.post(
        "/api/explain", json={**request, "row": 0, "col": 0, "display": "rescale"}
    ).json()
    expected = (filtered[0, 0] - filtered.min()) * 255 / (filtered.max() - filtered.min())
    assert corner["shown"] == int(np.rint(expected))  # the picture's pixel level
    by_hand = ops.explain_pixel(facade(), np.array(kernel), 0, 0, stride, padding)
    assert (corner["in_padding"], corner["top"]) == (by_hand.in_padding, by_hand.top)


def test_explain_outside_the_output_is_one_sentence(client, facade_id) -> None:
    request = {"image": facade_id, "filter": "vertical", "row": 254, "col": 0}
    assert "outside the 254x254 output" in one_sentence(
        client.post("/api/explain", json=request), 400
    )


def test_explain_pool_names_the_window_and_its_maximum(client, facade_id) -> None:
    filtered = ops.conv2d(facade(), ops.FILTERS["horizontal"])
    pooled = ops.pool2d(filtered, 2)
    for row, col in [(0, 0), (17, 40), (126, 126)]:
        request = {"image": facade_id, "filter": "horizontal", "row": row, "col": col}
        body = client.post("/api/explain-pool", json=request).json()
        window = filtered[2 * row : 2 * row + 2, 2 * col : 2 * col + 2]
        assert body["values"] == window.tolist() and body["value"] == pooled[row, col]
        i, j = body["chosen"]
        assert window[i, j] == window.max() and (body["top"], body["left"]) == (2 * row, 2 * col)
        assert body["equation"].startswith("max(")
    average = client.post("/api/explain-pool", json={**request, "pool": "avg"}).json()
    assert average["chosen"] is None and average["value"] == pytest.approx(window.mean())
    off = client.post("/api/explain-pool", json={**request, "pool": "none"})
    assert "pooling is off" in one_sentence(off, 400)
    past = client.post("/api/explain-pool", json={**request, "row": 127})
    assert "outside the 127x127 pooled map" in one_sentence(past, 400)


# ---------------------------------------------------------------- samples and runs


def test_samples_are_test_images_of_the_class(client, test_split) -> None:
    body = client.get("/api/samples", params={"class_choice": "3", "count": 4, "run": "tiny"})
    body = body.json()
    assert body["class_name"] == "class 3" and body["dataset"] == "mnist"
    expected = np.flatnonzero(test_split.labels == 3)[:4]
    assert [image["test_index"] for image in body["images"]] == expected.tolist()
    for image, index in zip(body["images"], expected, strict=True):
        np.testing.assert_array_equal(decode(image["png"]), test_split.images[index, :, :, 0])
        assert image["label"] == "class 3"
    later = client.get("/api/samples", params={"class_choice": "3", "count": 2, "start": 2})
    assert [i["test_index"] for i in later.json()["images"]] == expected[2:4].tolist()


def test_samples_without_a_run_come_from_fashion_mnist(client) -> None:
    body = client.get("/api/samples", params={"class_choice": "Ankle boot", "count": 1}).json()
    assert body["dataset"] == "fashion-mnist" and body["class_index"] == 9


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"class_choice": "Boots"}, 400, "unknown class 'Boots'"),
        ({"class_choice": "1", "count": 48}, 400, "fewer than the 48"),
        ({"class_choice": "1", "run": "../../etc"}, 404, "no run called"),
        ({"class_choice": "1", "count": 0}, 422, '"How many" must be at least 1, not 0'),
    ],
)
def test_bad_sample_requests_get_one_sentence(client, params, status, words) -> None:
    assert words in one_sentence(client.get("/api/samples", params=params), status)


def test_run_summary_explains_every_layer(client, runs_root) -> None:
    body = client.get("/api/runs/tiny").json()
    model = load_run(runs_root / "tiny").model
    assert [layer["keras_shape"] for layer in body["layers"]] == [r.keras_shape for r in model.rows]
    assert body["layers"][0]["params_why"] == model.rows[0].params_why
    assert body["total_params"] == model.total_params and body["input_shape"] == [28, 28, 1]
    assert "no run called 'nope'" in one_sentence(client.get("/api/runs/nope"), 404)
    assert one_sentence(client.get("/api/runs/not-a-run"), 404)  # only finished runs are listed


# ---------------------------------------------------------------- the journey


def assert_grid_shows(drawn: np.ndarray, grid: dict, maps: np.ndarray) -> None:
    """The journey's grid PNG: its size from rows, columns and gap, each tile its map.

    Tile k (row k // columns, column k % columns) is map k scaled min..max onto
    matplotlib's inferno, read from matplotlib here (to one level of 256).
    """
    (tile_h, tile_w), gap = grid["tile"], grid["gap"]
    height = grid["rows"] * (tile_h + gap) - gap
    width = grid["columns"] * (tile_w + gap) - gap
    assert drawn.shape[:2] == (height, width)
    table = np.rint(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(int)
    for k in range(maps.shape[2]):
        top = (k // grid["columns"]) * (tile_h + gap)
        left = (k % grid["columns"]) * (tile_w + gap)
        tile = drawn[top : top + tile_h, left : left + tile_w, :3].astype(int)
        low, high = maps[..., k].min(), maps[..., k].max()
        if high <= low:
            continue  # a flat map: one colour, nothing to place
        levels = np.rint((maps[..., k] - low) / (high - low) * 255).astype(int)
        near = table[np.clip(levels[..., None] + np.array([-1, 0, 1]), 0, 255)]
        assert (near == tile[..., None, :]).all(axis=-1).any(axis=-1).all(), f"tile {k}"


def test_journey_shows_every_layer_from_one_forward_pass(client, runs_root, test_split) -> None:
    sample = client.get("/api/samples", params={"class_choice": "2", "count": 1, "run": "tiny"})
    image = sample.json()["images"][0]
    body = client.post("/api/journey", json={"run": "tiny", "image": image["id"]}).json()
    run = load_run(runs_root / "tiny")
    pixels = test_split.images[image["test_index"]]
    expected = journey.activations(run, pixels[None])
    assert [layer["summary"]["name"] for layer in body["layers"]] == list(expected)
    for layer in body["layers"]:
        maps = expected[layer["summary"]["name"]][0]
        assert layer["summary"]["output_shape"] == list(maps.shape)
        if maps.ndim == 3:
            grid = layer["maps"]
            assert grid["count"] == maps.shape[2] and grid["tile"] == list(maps.shape[:2])
            np.testing.assert_allclose(
                grid["ranges"], np.stack([maps.min((0, 1)), maps.max((0, 1))], 1), rtol=1e-3
            )
            assert (grid["colour_map"], grid["symmetric"]) == ("inferno", False)
            assert_grid_shows(decode(grid["png"]), grid, maps)
            assert (grid["rows"] - 1) * grid["columns"] < grid["count"]  # no empty last row
            assert grid["count"] <= grid["rows"] * grid["columns"]
        else:
            np.testing.assert_allclose(layer["values"], maps, rtol=1e-3, atol=1e-6)
    probabilities = [p["probability"] for p in body["probabilities"]]
    np.testing.assert_allclose(probabilities, expected["dense"][0], rtol=1e-3)  # 4 digits
    assert body["predicted"]["index"] == int(np.argmax(probabilities))
    assert [p["name"] for p in body["probabilities"]] == list(CLASSES)
    assert body["inverted"] is False and body["input"]["shape"] == [28, 28, 1]
    assert body["filters"]["layer"] == "conv2d" and body["filters"]["grid"]["count"] == 6


def test_journey_of_a_photo_resizes_and_inverts_it(client) -> None:
    photo = np.full((280, 280), 250, dtype=np.uint8)
    photo[60:220, 100:180] = 20  # a dark shape on white paper
    image = upload(client, photo, "photo.png")["id"]
    body = client.post("/api/journey", json={"run": "tiny", "image": image}).json()
    shown = decode(body["input"]["png"])
    assert shown.shape == (28, 28) and body["inverted"] is True
    assert body["input"]["caption"].startswith("photo.png: resized from 280x280 to 28x28 by area")
    assert "inverted (its border is light" in body["input"]["caption"]
    assert shown[0, 0] < 10 and shown[14, 14] > 200  # light object on black, as trained
    kept = client.post("/api/journey", json={"run": "tiny", "image": image, "invert": "no"})
    assert kept.json()["inverted"] is False


def test_a_run_on_photos_never_inverts_on_its_own(tmp_path) -> None:
    """Only the light-on-black datasets (Fashion-MNIST, MNIST) invert a light-bordered image."""
    rgb = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(32, 32, 3)),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    write_run(tmp_path / "photos", rgb, ("cat", "dog", "fox"), dataset=str(tmp_path / "pets"))
    client = TestClient(create_app(tmp_path), base_url="http://127.0.0.1")
    image = upload(client, np.full((64, 48, 3), 200, dtype=np.uint8), "snow.png")["id"]
    auto = client.post("/api/journey", json={"run": "photos", "image": image}).json()
    assert auto["inverted"] is False and auto["input"]["shape"] == [32, 32, 3]
    assert auto["input"]["caption"] == "snow.png: resized from 64x48 to 32x32 by area."
    asked = client.post("/api/journey", json={"run": "photos", "image": image, "invert": "yes"})
    assert (
        asked.json()["inverted"] is True
        and "inverted (as asked)" in asked.json()["input"]["caption"]
    )
    small = upload(client, np.zeros((28, 28), dtype=np.uint8), "digit.png")["id"]
    padded = client.post("/api/journey", json={"run": "photos", "image": small}).json()
    assert (
        padded["input"]["caption"] == "digit.png: padded from 28x28 to 32x32, gray repeated to RGB."
    )
    # a colour model's first filters are drawn in the colours they weigh
    filters = auto["filters"]
    kernels = load_run(tmp_path / "photos").network.state_dict()["conv2d.weight"]  # (4, 3, 3, 3)
    peaks = kernels.abs().amax(dim=(1, 2, 3)).numpy()
    assert "in colour" in filters["caption"] and filters["grid"]["colour_map"] == "rgb-weights"
    np.testing.assert_allclose([high for _, high in filters["grid"]["ranges"]], peaks, rtol=1e-3)
    tile = decode(filters["grid"]["png"])[:3, :3]  # filter 0's 3x3 kernel, (3, 3, RGB)
    expected = 127.5 + 127.5 * kernels[0].permute(1, 2, 0).numpy() / peaks[0]
    np.testing.assert_allclose(tile, expected, atol=1.0)


def test_a_dense_models_journey_has_no_maps_or_filters(client) -> None:
    image = upload(client, np.zeros((28, 28), dtype=np.uint8))["id"]
    body = client.post("/api/journey", json={"run": "dense", "image": image}).json()
    assert all(layer["maps"] is None for layer in body["layers"]) and body["filters"] is None
    assert sum(p["probability"] for p in body["probabilities"]) == pytest.approx(1, abs=1e-5)


def test_bad_journey_requests_get_one_sentence(client) -> None:
    assert one_sentence(client.post("/api/journey", json={"run": "x", "image": "y"}), 404)
    missing = client.post("/api/journey", json={"run": "tiny"})
    assert '"Image" is missing; give it' in one_sentence(missing, 422)


# ---------------------------------------------------------------- one class, one filter


def test_class_filter_follows_one_filter_through_the_layers(client, runs_root, test_split) -> None:
    request = {"run": "tiny", "class_choice": "Ankle boot", "filter": 3, "count": 2}
    body = client.post("/api/class-filter", json=request).json()
    indices = np.flatnonzero(test_split.labels == 9)[:2]
    assert [image["test_index"] for image in body["images"]] == indices.tolist()
    run = load_run(runs_root / "tiny")
    followed = journey.journey(run, test_split.images[indices], 3)
    assert [layer["summary"]["name"] for layer in body["layers"]] == [r.name for r in followed.rows]
    for layer in body["layers"]:
        maps = followed.maps[layer["summary"]["name"]]
        assert len(layer["maps"]) == 2
        for picture, expected in zip(layer["maps"], maps, strict=True):
            assert picture["shape"] == list(expected.shape)
            assert picture["max"] == pytest.approx(float(expected.max()))
            assert decode(picture["png"]).shape == (*expected.shape, 3)


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"filter": 4}, 400, "filter 4 is past conv2d_1's 4 filters; choose 0..3."),
        ({"filter": -1}, 400, "negative"),
        ({"class_choice": "Boots"}, 400, "unknown class"),
        ({"count": 13}, 422, '"Images" must be at most 12, not 13'),
        ({"run": "dense"}, 400, "no Conv2D or pooling layer"),
    ],
)
def test_bad_class_filter_requests_get_one_sentence(client, change, status, words) -> None:
    request = {"run": "tiny", "class_choice": "1", "filter": 1, "count": 2, **change}
    assert words in one_sentence(client.post("/api/class-filter", json=request), status)


# ---------------------------------------------------------------- the page and the server


def test_openapi_describes_every_route(client) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert set(paths) == {
        "/api/info",
        "/api/images",
        "/api/images/builtin/{name}",
        "/api/samples",
        "/api/convolve",
        "/api/explain",
        "/api/explain-pool",
        "/api/runs/{name}",
        "/api/journey",
        "/api/class-filter",
        # the experiment (tests/test_web_jobs.py, tests/test_web_experiment.py)
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/events",
        "/api/models/presets",
        "/api/models/layer-types",
        "/api/models/summary",
        "/api/runs/{name}/model",
        "/api/compare",
        "/api/compare/default",
        "/api/compare/predict",
        "/api/models",
        "/api/attribution",
        "/api/attribution/methods",
        "/api/portrait",
    }
    assert client.get("/docs").status_code == 404  # the interactive docs would need a CDN


def test_the_page_and_its_assets_are_served_and_refer_to_nothing_outside(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assets = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert assets, "the page's static files are installed with the package"
    for path in assets:
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, path
        served = client.get("/static/" + path.relative_to(STATIC_DIR).as_posix())
        assert served.status_code == 200 and served.text == text


def test_unknown_routes_and_foreign_hosts_are_refused(client) -> None:
    assert "no /api/nothing" in one_sentence(client.get("/api/nothing"), 404)
    foreign = client.get("/api/info", headers={"Host": "attacker.example"})
    assert foreign.status_code == 400  # DNS rebinding: only local names are served


def test_a_real_server_answers_over_http(runs_root) -> None:
    url, stop = serve_in_thread(create_app(runs_root))
    try:
        with urllib.request.urlopen(url + "api/info", timeout=10) as answer:
            assert json.load(answer)["default_run"] == "tiny"
    finally:
        stop()


def test_explore_refuses_a_busy_port_and_a_missing_run(capsys, runs_root) -> None:
    url, stop = serve_in_thread(create_app(runs_root))
    try:
        port = url.rsplit(":", 1)[1].strip("/")
        assert main(["explore", "--no-browser", "--port", port]) == 2
        assert f"port {port} is already in use" in capsys.readouterr().err
    finally:
        stop()
    assert main(["explore", "--no-browser", "--run", os.fspath(runs_root / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["explore", "--no-browser", "--port", "70000"]) == 2


@pytest.mark.parametrize("shape", [(7, 5), (300, 301), (9, 4, 3), (260, 270, 3)])
def test_our_png_encoder_is_read_back_exactly_by_pillow(shape) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(pictures.png_bytes(pixels))))
    np.testing.assert_array_equal(decoded, pixels)


def test_the_listening_socket_says_tcp_so_asyncio_turns_nagle_off() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP  # else small answers wait ~40 ms for an ACK
    finally:
        sock.close()


def test_a_colour_runs_samples_keep_their_colour_for_thumbnails(tmp_path) -> None:
    from synthetic import colour_folder

    from convlens.data.datasets import load

    folder = colour_folder(tmp_path / "squares", per_class=4, size=28)
    rgb = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(28, 28, 3)),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    write_run(tmp_path / "runs" / "squares", rgb, ("green", "red"), dataset=str(folder))
    client = TestClient(create_app(tmp_path / "runs"), base_url="http://127.0.0.1")
    body = client.get("/api/samples", params={"class_choice": "red", "count": 2, "run": "squares"})
    test = load(folder, image_size=(28, 28), channels=3).test
    for image in body.json()["images"]:
        np.testing.assert_array_equal(decode(image["colour_png"]), test.images[image["test_index"]])
        assert decode(image["png"]).ndim == 2  # the playground filters the luma
    upload_info = upload(client, np.full((30, 30, 3), 90, np.uint8), "mine.png")
    assert upload_info["colour_png"] is None  # only test-set thumbnails carry it


def test_a_mirror_averaging_run_says_so_and_the_page_predicts_as_it_does(tmp_path) -> None:
    from convlens.runs.evaluate import predict_proba

    write_run(tmp_path / "mirrored", tiny_cnn().with_test_time_flip(True), CLASSES)
    client = TestClient(create_app(tmp_path), base_url="http://127.0.0.1")
    (listed,) = client.get("/api/info").json()["runs"]
    assert listed["test_time_flip"] is True
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 3:12] = 255  # a bar on the left: its mirror is a bar on the right
    image = upload(client, pixels, "bar.png")["id"]
    body = client.post("/api/journey", json={"run": "mirrored", "image": image}).json()
    network = load_run(tmp_path / "mirrored").network
    both = predict_proba(network, pixels[None, :, :, None], (28, 28, 1))[0]
    network.test_time_flip = False
    alone = predict_proba(network, pixels[None, :, :, None], (28, 28, 1))[0]
    shown = [p["probability"] for p in body["probabilities"]]
    np.testing.assert_allclose(shown, both, rtol=1e-3, atol=1e-6)
    assert np.abs(alone - both).max() > 1e-3


# ---------------------------------------------------------------- the default "why"


def test_the_methods_name_each_runs_most_faithful_default(client, runs_root, test_split) -> None:
    plain = client.get("/api/attribution/methods").json()
    assert [m["name"] for m in plain] == list(methods.METHODS)
    assert [m["name"] for m in plain if m["default"]] == [faithfulness.FALLBACK_METHOD]
    listed = client.get("/api/attribution/methods", params={"run": "tiny"}).json()
    run = load_run(runs_root / "tiny")
    images = test_split.images[faithfulness.sample_indices(len(test_split))]
    ranked = faithfulness.rank_methods(run, images)  # measured again, here
    assert [m["name"] for m in listed if m["default"]] == [ranked[0].method]
    assert {m["name"]: m["drop"] for m in listed} == pytest.approx(
        {s.method: s.map_drop for s in ranked}
    )
    assert faithfulness.read_cached(runs_root / "tiny").method == ranked[0].method  # kept
    (default,) = [m for m in listed if m["default"]]
    assert default["why"].startswith(f"{ranked[0].method} is the default: deleting the 10%")
    field = run.model.receptive_fields()["conv2d_1"].size
    (gradcam,) = [m for m in listed if m["name"] == "gradcam"]
    assert f"a cell is {field[0]}x{field[1]} input pixels wide" in gradcam["score"]
    image = client.get("/api/samples", params={"class_choice": "2", "count": 1, "run": "tiny"})
    request = {"run": "tiny", "image": image.json()["images"][0]["id"], "method": "gradcam"}
    body = client.post("/api/attribution", json=request).json()
    assert f"{field[0]}x{field[1]} input pixels wide" in body["legend"]
    assert body["target_name"] in body["legend"]


def test_a_dense_runs_default_is_a_method_it_can_use(client) -> None:
    listed = client.get("/api/attribution/methods", params={"run": "dense"}).json()
    (gradcam,) = [m for m in listed if m["name"] == "gradcam"]
    assert not gradcam["usable"] and not gradcam["default"] and gradcam["drop"] is None
    assert "needs a Conv2D layer" in gradcam["score"]
    assert sum(m["default"] for m in listed) == 1
    assert "no run called 'nope'" in one_sentence(
        client.get("/api/attribution/methods", params={"run": "nope"}), 404
    )
