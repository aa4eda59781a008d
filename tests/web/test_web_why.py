# ruff: noqa: F811  (pytest fixtures imported from another test module are parameters here)
"""The explorer's "why" routes: attribution maps and filter portraits, good and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from test_web_api import (  # noqa: F401 (fixtures)
    client,
    data_root,
    decode,
    runs_root,
    test_split,
    upload,
)

from convlens.inspect import attribution, methods, portraits
from convlens.runs.loading import load_run


def colour_table(name: str) -> np.ndarray:
    """matplotlib's colour map ``name`` as 256 RGB uint8 rows, level 0..255."""
    return np.rint(colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def assert_map_shows(drawn: np.ndarray, values: np.ndarray, signed: bool) -> None:
    """The served map's every pixel is ``values``'s colour (to one level of 256).

    Signed maps run blue..red over -max|v|..max|v| (RdBu_r), Grad-CAM's white..red over
    0..max (Reds): the colour each value should have is looked up in matplotlib's own map.
    """
    limit = float(np.abs(values).max())
    assert limit > 0, "a map of zeros cannot tell one map from another"
    low = -limit if signed else 0.0
    levels = np.clip(np.rint((values - low) / (limit - low) * 255), 0, 255).astype(int)
    table = colour_table("RdBu_r" if signed else "Reds")
    near = table[np.clip(levels[..., None] + np.array([-1, 0, 1]), 0, 255)]  # (H, W, 3, RGB)
    shown = (near == drawn[..., None, :3]).all(axis=-1).any(axis=-1)
    assert shown.mean() == 1.0, f"{(~shown).sum()} of {shown.size} pixels show another value"


def sample(client, count: int = 1) -> dict:
    found = client.get("/api/samples", params={"class_choice": "2", "count": count, "run": "tiny"})
    return found.json()["images"][0]


@pytest.mark.parametrize("method", methods.METHODS)
def test_attribution_equals_the_engine_and_any_class_can_be_asked(
    client,
    runs_root,
    test_split,
    method,
) -> None:
    image = sample(client)
    body = client.post(
        "/api/attribution",
        json={"run": "tiny", "image": image["id"], "method": method, "target": 7},
    )
    assert body.status_code == 200, body.text
    body = body.json()
    run = load_run(runs_root / "tiny")
    pixels = test_split.images[image["test_index"]]
    expected = attribution.attribute(run, pixels[None], method, target=7)[0]
    assert body["target_index"] == 7 and body["target_name"] == "class 7"
    assert body["shape"] == [28, 28]
    assert body["min"] == pytest.approx(float(expected.min()), abs=1e-6)
    assert body["max"] == pytest.approx(float(expected.max()), abs=1e-6)
    assert decode(body["overlay"]).shape == (28, 28, 3)
    assert_map_shows(decode(body["map"]), expected, methods.METHODS[method].signed)
    other = attribution.attribute(run, pixels[None], method, target=3)[0]
    assert not np.allclose(other, expected)  # the class asked is the one drawn
    assert body["title"].startswith("red:") and "class 7" in body["title"]
    assert (body["delta"] is not None) == (method == "integrated-gradients")


def test_attribution_defaults_to_the_predicted_class(client, runs_root, test_split) -> None:
    image = sample(client)
    body = client.post("/api/attribution", json={"run": "tiny", "image": image["id"]}).json()
    assert body["method"] == "gradcam" and body["layer"] == "conv2d_1"
    run = load_run(runs_root / "tiny")
    pixels = test_split.images[image["test_index"]][None]
    predicted = int(run.predict(pixels)[0].argmax())
    assert body["target_index"] == body["predicted_index"] == predicted
    expected = attribution.attribute(run, pixels, "gradcam", target=predicted)[0]
    assert_map_shows(decode(body["map"]), expected, signed=False)


@pytest.mark.parametrize(
    ("extra", "status", "words"),
    [
        ({"target": 10}, 400, "out of range"),
        ({"layer": "dense"}, 400, "not maps"),
        ({"method": "lime"}, 422, '"Method" must be one of'),
        ({"run": "nope"}, 404, "nope"),
    ],
)
def test_bad_attribution_requests_are_one_sentence(client, extra, status, words) -> None:
    image = sample(client)
    answer = client.post("/api/attribution", json={"run": "tiny", "image": image["id"], **extra})
    assert answer.status_code == status
    assert words in answer.json()["error"]


def test_a_dense_run_has_no_gradcam(client) -> None:
    image = upload(client, np.zeros((28, 28), dtype=np.uint8))["id"]
    answer = client.post("/api/attribution", json={"run": "dense", "image": image})
    assert answer.status_code == 400 and "no Conv2D" in answer.json()["error"]


def test_portrait_equals_the_engine(client, runs_root, test_split) -> None:
    body = client.post("/api/portrait", json={"run": "tiny", "layer": "conv2d_1", "filter": 2})
    assert body.status_code == 200, body.text
    body = body.json()
    run = load_run(runs_root / "tiny")
    found = portraits.top_patches(run, test_split.images, "conv2d_1", [2], count=6)
    assert [p["test_index"] for p in body["patches"]] == list(found.indices[0])
    assert [p["window"] for p in body["patches"]] == found.windows[0].tolist()
    assert body["field"] == [8, 8] and body["filters"] == 4 and body["test_images"] == 120
    made = portraits.synthesise(run, "conv2d_1", [2])[0]
    np.testing.assert_array_equal(decode(body["synthesised"]), made[:, :, 0])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"layer": "conv2d_1", "filter": 4}, 400, "outside the layer's 4 filters"),
        ({"layer": "flatten", "filter": 0}, 400, "not maps"),
        ({"layer": "conv2d", "filter": -1}, 422, '"Filter" must be at least 0, not -1'),
    ],
)
def test_bad_portrait_requests_are_one_sentence(client, body, status, words) -> None:
    answer = client.post("/api/portrait", json={"run": "tiny", **body})
    assert answer.status_code == status
    assert words in answer.json()["error"]
