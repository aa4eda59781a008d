"""The why panel: attribution maps on the journey, filter portraits.

    GET  /api/attribution/methods  the methods, in the menu's order (one table: inspect/methods.py);
                            with ?run=NAME, which is that run's default (inspect/faithfulness.py)
    POST /api/attribution   one image's map toward any class (AttributionRequest)
    POST /api/portrait      one filter's top test patches and synthesised input

``router(state)`` returns a FastAPI APIRouter that app.py includes; the
page's script is static/js/why.js. The numbers come from
convlens.inspect.attribution and convlens.inspect.portraits; each request
holds its run's lock (Grad-CAM uses a forward hook). A layer's strongest
response per test image and filter is computed in one pass over the test
split, the first time one of its filters is asked for, and kept.
"""

from __future__ import annotations

import threading
import time
from typing import Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from convlens.errors import ConvlensError
from convlens.inspect import attribution, faithfulness, methods, portraits
from convlens.web import model_views, pictures
from convlens.web.bodies import ERRORS
from convlens.web.state import Explorer
from convlens.web.store import LoadedRun

OVERLAY_OPACITY = 0.8  # the most opaque a map pixel gets over the image

Method = Literal[tuple(methods.METHODS)]  # type: ignore[valid-type]


class AttributionRequest(BaseModel):
    """One image's attribution map toward one class, as the journey shows the image."""

    run: str
    image: str = Field(description="an ImageInfo id")
    invert: Literal["auto", "yes", "no"] = Field("auto", title="Invert the image")
    method: Method = Field("gradcam", title="Method")
    target: int | None = Field(
        None, title="Explain", description="a class number; null: the predicted class"
    )
    layer: str | None = Field(None, description="Grad-CAM's layer; null: the last Conv2D")


class AttributionBody(BaseModel):
    """The map (H, W) at the input's size, drawn two ways, and what it means."""

    run: str
    method: str
    layer: str | None
    target_index: int
    target_name: str
    predicted_index: int
    title: str = Field(description='what the colours mean: "red: pixels that raised ..."')
    legend: str = Field(description="what the map's values are (Grad-CAM: its cells' width)")
    note: str = Field(description="how it was computed (layer, steps, patch)")
    delta: float | None = Field(None, description="integrated gradients' completeness error")
    shape: list[int]
    min: float
    max: float
    signed: bool = Field(description="true: blue below 0 (all but Grad-CAM)")
    overlay: str = Field(description="PNG data URL: the input with the map laid over it")
    map: str = Field(description="PNG data URL: the map alone")
    milliseconds: float = Field(description="the server's time to compute and draw it")


class PortraitRequest(BaseModel):
    """One filter of a layer with maps: what it responds to."""

    run: str
    layer: str
    filter: int = Field(ge=0, title="Filter")
    count: int = Field(6, ge=1, le=12, description="how many of the top test images")


class PortraitPatch(BaseModel):
    """A test image exciting the filter, and the patch its strongest value sees."""

    test_index: int
    class_name: str
    value: float
    png: str
    window: list[int] = Field(description="top, left, bottom, right (ends excluded), pixels")


class PortraitBody(BaseModel):
    """Top test patches of one filter and an input synthesised to excite it."""

    run: str
    layer: str
    filter: int
    filters: int = Field(description="how many filters the layer has")
    field: list[int] = Field(description="the receptive field, rows x columns of input pixels")
    field_why: str
    test_images: int
    never_fires: bool = Field(description="no test image makes it positive")
    synthesised: str = Field(description="PNG data URL of the synthesised input")
    patches: list[PortraitPatch]


def overlay_picture(image: np.ndarray, values: np.ndarray, signed: bool) -> np.ndarray:
    """uint8 (H, W, 3): the grayscale image under the map, each pixel as opaque as |value|."""
    gray = image.mean(axis=2) if image.shape[2] > 1 else image[:, :, 0]
    limit = float(np.abs(values).max()) or 1.0
    low = -limit if signed else 0.0
    colours = pictures.coloured(pictures.scaled(values, low, limit), "RdBu_r" if signed else "Reds")
    alpha = (np.clip(np.abs(values) / limit, 0, 1) * OVERLAY_OPACITY)[..., None]
    blended = colours * alpha + gray[..., None].astype(np.float64) * (1 - alpha)
    return pictures.to_uint8(blended)


def map_picture(values: np.ndarray, signed: bool) -> np.ndarray:
    """uint8 (H, W, 3): the map alone on its colour scale."""
    limit = float(np.abs(values).max()) or 1.0
    levels = pictures.scaled(values, -limit if signed else 0.0, limit)
    return pictures.coloured(levels, "RdBu_r" if signed else "Reds")


def attribution_body(loaded: LoadedRun, image, request: AttributionRequest) -> dict:
    """An AttributionBody for one stored image."""
    started = time.perf_counter()
    spec = loaded.run.model
    light_on_dark = loaded.run.light_on_dark
    pixels, _, _ = model_views.model_input(image, spec.input_shape, request.invert, light_on_dark)
    with loaded.lock:
        found = attribution.explain(
            loaded.run, pixels[None], request.method, request.target, request.layer
        )
    values, signed = found.maps[0], methods.METHODS[request.method].signed
    names = loaded.run.class_names
    target = int(found.targets[0])
    body = {
        "run": request.run,
        "method": request.method,
        "layer": found.layer,
        "target_index": target,
        "target_name": names[target],
        "predicted_index": int(found.probabilities[0].argmax()),
        "title": methods.describe(request.method, names[target]),
        "legend": found.meaning(names[target]),
        "note": found.note,
        "delta": None if found.delta is None else float(found.delta[0]),
        "shape": list(values.shape),
        "min": float(values.min()),
        "max": float(values.max()),
        "signed": signed,
        "overlay": pictures.data_url(overlay_picture(pixels, values, signed)),
        "map": pictures.data_url(map_picture(values, signed)),
    }
    body["milliseconds"] = (time.perf_counter() - started) * 1000
    return body


def run_methods(loaded: LoadedRun) -> list[dict]:
    """The methods for one run: each with "default", "usable", its deletion-test "drop" (null
    if not measured), what its values mean ("score") and, on the default, "why"."""
    try:
        test = loaded.test_split()
    except ConvlensError:
        test = None  # no test images: the lesson CNN's default, said so
    with loaded.lock:
        chosen = faithfulness.default_method(loaded.run, test)
    drops = {score.method: score.map_drop for score in chosen.scores}
    usable = faithfulness.usable_methods(loaded.run)
    spec = loaded.run.model
    listed = []
    for name, method in methods.METHODS.items():
        entry = method.as_dict() | {
            "default": name == chosen.method,
            "usable": name in usable,
            "drop": drops.get(name),
            "score": method.meaning("the class", cells_of(spec, name))
            if name in usable
            else f"{method.title} needs a Conv2D layer's maps; this model has none.",
        }
        if name == chosen.method:
            entry["why"] = chosen.why
        listed.append(entry)
    return listed


def cells_of(spec, name: str) -> str:
    """Grad-CAM's cell width (its default layer's receptive field) or occlusion's patch, "8x8"."""
    if name == "gradcam":
        height, width = spec.receptive_fields()[attribution.last_conv(spec).name].size
        return f"{height}x{width}"
    if name == "occlusion":
        patch, _ = attribution.occlusion_window(spec.input_shape)
        return f"{patch}x{patch}"
    return ""


class StrongestCache:
    """Per (run, layer): every test image's strongest response per filter, and where."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, loaded: LoadedRun, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """(maxima float32 (N, C), places int64 (N, C)), computed once per run and layer."""
        with self._lock:
            if (name, layer) not in self._found:
                images = loaded.test_split().images
                with loaded.lock:
                    self._found[(name, layer)] = portraits.strongest(loaded.run, images, layer)
            return self._found[(name, layer)]


def portrait_body(name: str, loaded: LoadedRun, request: PortraitRequest, cache) -> dict:
    """A PortraitBody: top test patches and a synthesised input of one filter."""
    run = loaded.run
    row = portraits.portrait_layer(run.model, request.layer)
    depth = row.output_shape[-1]
    portraits.parse_filters(str(request.filter), depth)  # refuses a filter past the layer
    maxima, places = cache.get(name, loaded, row.name)
    test = loaded.test_split()
    field = run.model.receptive_fields()[row.name]
    order = np.argsort(-maxima[:, request.filter], kind="stable")[: request.count]
    width = row.output_shape[1]
    patches = []
    for index in order:
        place = divmod(int(places[index, request.filter]), width)
        patches.append(
            {
                "test_index": int(index),
                "class_name": run.class_names[int(test.labels[index])],
                "value": float(maxima[index, request.filter]),
                "png": model_views.image_picture(test.images[index])["png"],
                "window": list(field.window(*place, run.model.input_shape)),
            }
        )
    with loaded.lock:
        made = portraits.synthesise(run, row.name, [request.filter])[0]
    return {
        "run": name,
        "layer": row.name,
        "filter": request.filter,
        "filters": depth,
        "field": list(field.size),
        "field_why": field.why,
        "test_images": len(test),
        "never_fires": bool(maxima[:, request.filter].max() <= 0),
        "synthesised": model_views.image_picture(made)["png"],
        "patches": patches,
    }


def router(state: Explorer) -> APIRouter:
    """The routes, over the explorer's state (its runs and images)."""
    routes = APIRouter()
    cache = StrongestCache()

    @routes.get("/api/attribution/methods", responses=ERRORS)
    def attribution_methods(run: str | None = None) -> list[dict]:
        """Every attribution method: name, menu title, signed, whether it reads a layer, and
        "default": the one to show first (with ``run``: that run's most faithful, measured
        once and kept in its directory; without: the lesson CNN's)."""
        if run is None:
            return [
                method.as_dict() | {"default": name == faithfulness.FALLBACK_METHOD}
                for name, method in methods.METHODS.items()
            ]
        return run_methods(state.runs.get(run))

    @routes.post("/api/attribution", response_model=AttributionBody, responses=ERRORS)
    def attribution_map(request: AttributionRequest) -> dict:
        """Which pixels raised one class's score for an image (Grad-CAM, saliency, ...)."""
        loaded = state.runs.get(request.run)
        return attribution_body(loaded, state.images.get(request.image), request)

    @routes.post("/api/portrait", response_model=PortraitBody, responses=ERRORS)
    def portrait(request: PortraitRequest) -> dict:
        """What one filter responds to: top test patches and a synthesised input."""
        return portrait_body(request.run, state.runs.get(request.run), request, cache)

    return routes
