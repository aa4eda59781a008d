"""The explorer's views of a trained run: one image's journey, one filter across a class.

The numbers come from convlens.inspect (activations from one forward pass
with hooks, learned filters, the lesson's journey); this module turns them
into the page's pictures. A run's forward hooks are held under its lock, so
two requests never capture into each other's layers.
"""

from __future__ import annotations

import threading

import numpy as np

from convlens.data.datasets import SOURCES, Split
from convlens.errors import ConvlensError
from convlens.images import fit_to_input, to_model_input
from convlens.inspect.journey import (
    activations,
    check_filter,
    check_journey,
    class_index,
    images_of_class,
    learned_filters,
)
from convlens.inspect.journey import (
    journey as follow_filter,
)
from convlens.model.receptive import ReceptiveField
from convlens.model.sequential import LayerRow, receptive_summary
from convlens.web import pictures
from convlens.web.store import LoadedRun, StoredImage

INVERT_BORDER_LEVEL = 127.5  # a light border means a dark object on white: invert it


def layer_summary(row: LayerRow, field: ReceptiveField | None = None) -> dict:
    """A schemas.LayerSummary from a summary row (and its receptive field, when it has one)."""
    extra = receptive_summary(field)
    return {
        "receptive_field": extra["receptive_field"],
        "jump": extra["jump"],
        "receptive_field_start": extra["receptive_field_start"],
        "receptive_field_why": extra["receptive_field_explanation"],
        "name": row.name,
        "type": type(row.layer).__name__,
        "output_shape": list(row.output_shape),
        "keras_shape": row.keras_shape,
        "params": row.params,
        "shape_why": row.shape_why,
        "params_why": row.params_why,
    }


def model_input(
    image: StoredImage, input_shape: tuple[int, int, int], invert: str, light_on_dark: bool = True
):
    """The image as the model reads it, uint8 (H, W, C), whether it was inverted, and how.

    Images no larger than the input are padded around the centre, as the
    datasets are when a model's input is larger (LeNet-5's 32x32); larger
    ones are resized by area. ``invert`` "auto" inverts when the border is
    light and the model was trained on light objects on black (``light_on_dark``:
    Fashion-MNIST and MNIST are; a folder of photos is not, so it is never
    inverted unless asked).
    """
    height, width, channels = input_shape
    pixels = image.pixels
    h, w, c = pixels.shape
    if h <= height and w <= width:
        fitted = fit_to_input(pixels[None], input_shape)[0]
        how = (
            "as it is" if (h, w) == (height, width) else f"padded from {h}x{w} to {height}x{width}"
        )
    else:
        fitted = to_model_input(pixels, (height, width), channels)
        how = f"resized from {h}x{w} to {height}x{width} by area"
    if c != channels:
        how += ", grayscale luma" if channels == 1 else ", gray repeated to RGB"
    auto = invert == "auto" and light_on_dark and border_is_light(fitted)
    inverted = invert == "yes" or auto
    if auto:
        how += ", inverted (its border is light; the model was trained on light shapes on black)"
    elif inverted:
        how += ", inverted (as asked)"
    return (255 - fitted if inverted else fitted), inverted, f"{image.name}: {how}."


def border_is_light(pixels: np.ndarray) -> bool:
    """Whether the one-pixel frame of uint8 (H, W, C) averages above mid-grey."""
    frame = np.concatenate(
        [pixels[0].ravel(), pixels[-1].ravel(), pixels[:, 0].ravel(), pixels[:, -1].ravel()]
    )
    return float(frame.mean()) > INVERT_BORDER_LEVEL


def map_grid(maps: np.ndarray, colour_map: str = "inferno", symmetric: bool = False) -> dict:
    """A schemas.MapGrid from float maps (H, W, C)."""
    drawn = pictures.map_grid(maps, colour_map, symmetric)
    return _grid_body(drawn, maps.shape, colour_map, symmetric)


def _grid_body(drawn: tuple, shape: tuple, colour_map: str, symmetric: bool = False) -> dict:
    """A schemas.MapGrid from what pictures drew (png, columns, rows, ranges) for (H, W, C)."""
    png, columns, rows, ranges = drawn
    return {
        "png": png,
        "count": shape[-1],
        "columns": columns,
        "rows": rows,
        "tile": list(shape[:2]),
        "gap": pictures.GRID_GAP,
        "ranges": pictures.compact(ranges),
        "colour_map": colour_map,
        "symmetric": symmetric,
    }


def image_picture(pixels: np.ndarray) -> dict:
    """A schemas.Picture of a uint8 (H, W, C) image as the model sees it."""
    shown = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    return {
        "shape": list(pixels.shape),
        "png": pictures.data_url(shown),
        "min": float(pixels.min()),
        "max": float(pixels.max()),
    }


def probabilities(loaded: LoadedRun, outputs: np.ndarray) -> list[dict]:
    """schemas.Probability per class from the last layer (softmax applied if it has none)."""
    values = outputs.astype(np.float64)
    if not loaded.run.network.final_softmax:
        values = np.exp(values - values.max())
        values /= values.sum()
    names = loaded.run.class_names
    return [{"index": i, "name": names[i], "probability": float(p)} for i, p in enumerate(values)]


def filter_weights(loaded: LoadedRun) -> dict | None:
    """The first Conv2D's kernels on its first input channel, each on a diverging scale."""
    try:
        row, kernels = learned_filters(loaded.run)  # (kh, kw, in, filters)
    except ConvlensError:
        return None  # a model without Conv2D has no filters to show
    first_channel = kernels[:, :, 0, :]
    count = kernels.shape[3]
    if kernels.shape[2] == 3:  # a colour model: each kernel drawn in the colours it weighs
        drawn = pictures.colour_kernel_grid(kernels)
        grid = _grid_body(drawn, first_channel.shape, "rgb-weights", symmetric=True)
        caption = (
            f"Learned filters of {row.name} ({count}, in colour: each pixel's red, green and "
            "blue are its weights for those channels, mid-grey = 0; numbers: the red channel)"
        )
    else:
        grid = map_grid(first_channel, "RdBu_r", symmetric=True)
        caption = (
            f"Learned filters of {row.name} ({count}, first input channel; each on its own "
            "scale, white = 0)"
        )
    return {
        "layer": row.name,
        "grid": grid,
        "kernels": pictures.compact(first_channel.transpose(2, 0, 1)),
        "caption": caption,
    }


def journey(loaded: LoadedRun, image: StoredImage, invert: str, run_name: str) -> dict:
    """A schemas.JourneyBody: every layer's output for one image, from one forward pass."""
    spec = loaded.run.model
    light_on_dark = str(loaded.run.metrics.get("dataset", "")).lower() in SOURCES
    pixels, inverted, how = model_input(image, spec.input_shape, invert, light_on_dark)
    with loaded.lock:
        captured = activations(loaded.run, pixels[None])
    layers = []
    fields = spec.receptive_fields()
    for row in spec.rows:
        output = captured[row.name][0]
        layer = {"summary": layer_summary(row, fields[row.name])}
        if output.ndim == 3:
            layer["maps"] = map_grid(output)
        else:
            layer["values"] = pictures.compact(output)
        layers.append(layer)
    probs = probabilities(loaded, captured[spec.rows[-1].name][0])
    return {
        "run": run_name,
        "model": spec.name,
        "input": {**image_picture(pixels), "caption": how},
        "inverted": inverted,
        "layers": layers,
        "filters": filter_weights(loaded),
        "probabilities": probs,
        "predicted": max(probs, key=lambda p: p["probability"]),
    }


def class_filter(
    loaded: LoadedRun, run_name: str, class_choice: str, filter_index: int, count: int
) -> dict:
    """A schemas.ClassFilterBody: ``count`` test images of a class, one filter, every layer."""
    run = loaded.run
    rows = check_journey(run.model)
    check_filter(filter_index, rows)  # before the dataset is read
    chosen = class_index(class_choice, run.class_names)
    test = loaded.test_split()
    indices = images_of_class(test.labels, chosen, count, run.class_names[chosen])
    images = test.images[indices]
    with loaded.lock:
        followed = follow_filter(run, images, filter_index)
    probs = [probabilities(loaded, output) for output in followed.outputs]
    return {
        "run": run_name,
        "class_index": chosen,
        "class_name": run.class_names[chosen],
        "filter": filter_index,
        "images": [
            {
                "test_index": int(index),
                "png": image_picture(pixels)["png"],
                "predicted": (best := max(p, key=lambda q: q["probability"]))["name"],
                "probability": best["probability"],
            }
            for index, pixels, p in zip(indices, images, probs, strict=True)
        ],
        "layers": [
            {
                "summary": layer_summary(row),
                "maps": [heat_picture(m) for m in followed.maps[row.name]],
            }
            for row in followed.rows
        ],
    }


def heat_picture(values: np.ndarray) -> dict:
    """A schemas.Picture of one float map (H, W) on its own min..max, inferno colours."""
    low, high = float(values.min()), float(values.max())
    levels = pictures.scaled(values, low, high)
    return {
        "shape": list(values.shape),
        "png": pictures.data_url(pictures.coloured(levels, "inferno")),
        "min": low,
        "max": high,
        "caption": f"{low:.3g}..{high:.3g}",
    }


class SampleSource:
    """Test-set images by class: the run's test split, or Fashion-MNIST's without a run."""

    def __init__(self) -> None:
        self._default: tuple[str, Split, tuple[str, ...]] | None = None
        self._lock = threading.Lock()

    def default_split(self) -> tuple[str, Split, tuple[str, ...]]:
        """Fashion-MNIST's test split and class names, read once."""
        from convlens.data import datasets

        with self._lock:
            if self._default is None:
                loaded = datasets.load("fashion-mnist")
                self._default = (loaded.name, loaded.test, loaded.class_names)
            return self._default

    def samples(self, loaded: LoadedRun | None, class_choice: str, count: int, start: int):
        """(dataset, class index, class name, [(test index, uint8 image)]) of one class."""
        if loaded is None:
            dataset, test, names = self.default_split()
        else:
            from convlens.runs.loading import dataset_of

            dataset, test, names = (
                dataset_of(loaded.run),
                loaded.test_split(),
                loaded.run.class_names,
            )
        chosen = class_index(class_choice, names)
        indices = images_of_class(test.labels, chosen, start + count, names[chosen])
        picked = indices[start:]
        return dataset, chosen, names[chosen], [(int(i), test.images[i]) for i in picked]
