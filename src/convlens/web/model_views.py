"""What several panels show of a model: summary rows, the image as the model reads it, pictures.

The helpers the journey, class view, editor, compare and why panels (and a
training job's snapshots, web/job_process.py) share to turn a model's rows,
an image and its outputs into the bodies of web/bodies.py; each panel's own
views live in its module.
"""

from __future__ import annotations

import numpy as np

from convlens.images import fit_to_input, invert_rule, to_model_input
from convlens.model.receptive import ReceptiveField
from convlens.model.sequential import LayerRow, receptive_summary
from convlens.web import pictures
from convlens.web.store import LoadedRun, StoredImage


def layer_summary(row: LayerRow, field: ReceptiveField | None = None) -> dict:
    """A LayerSummary from a summary row (and its receptive field, when it has one)."""
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
    inverted, why = invert_rule(fitted, invert, light_on_dark)  # the CLI's rule too
    if inverted:
        how += f", inverted ({why})"
    return (255 - fitted if inverted else fitted), inverted, f"{image.name}: {how}."


def map_grid(maps: np.ndarray, colour_map: str = "inferno", symmetric: bool = False) -> dict:
    """A MapGrid from float maps (H, W, C)."""
    drawn = pictures.map_grid(maps, colour_map, symmetric)
    return grid_body(drawn, maps.shape, colour_map, symmetric)


def grid_body(drawn: tuple, shape: tuple, colour_map: str, symmetric: bool = False) -> dict:
    """A MapGrid from what pictures drew (png, columns, rows, ranges) for (H, W, C)."""
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
    """A Picture of a uint8 (H, W, C) image as the model sees it."""
    shown = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    return {
        "shape": list(pixels.shape),
        "png": pictures.data_url(shown),
        "min": float(pixels.min()),
        "max": float(pixels.max()),
    }


def probabilities(loaded: LoadedRun, outputs: np.ndarray) -> list[dict]:
    """One Probability per class from the last layer (softmax applied if it has none)."""
    values = outputs.astype(np.float64)
    if not loaded.run.network.final_softmax:
        values = np.exp(values - values.max())
        values /= values.sum()
    names = loaded.run.class_names
    return [{"index": i, "name": names[i], "probability": float(p)} for i, p in enumerate(values)]
