"""Batch prediction over folders: stream image files through a run into a CSV file.

``predict_folder`` finds the image files under the given files and folders,
decodes them one batch at a time (never more than one batch of images in
memory), and writes one CSV row per image: its path, the predicted class, that
class's probability, whether it was inverted first (the explorer's rule,
``model_image``), then every class's probability. Files that are not
readable images are skipped and reported instead of stopping the job. The CSV
is written to a temporary file beside the target and renamed into place only
when complete, so a failure never leaves a partial file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_writer
from convlens.images import IMAGE_SUFFIXES, invert_rule, read_image, to_model_input
from convlens.runs.evaluate import predict_proba
from convlens.runs.loading import Run

DEFAULT_BATCH = 256
ProgressHook = Callable[[int, int], None]  # (files done, files in all)


@dataclass(frozen=True)
class PredictSummary:
    """What predict_folder did: images predicted, files skipped as (path, reason), the CSV."""

    predicted: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    out: Path | None = None
    inverted: int = 0  # how many were inverted before they were read


def invert_choice(invert: bool | str) -> str:
    """``invert`` as auto, yes or no (True and False, as older callers pass it: yes and no)."""
    if isinstance(invert, bool):
        return "yes" if invert else "no"
    return invert


def model_image(run: Run, image: np.ndarray, invert: bool | str = "auto") -> tuple[np.ndarray, str]:
    """An image as ``run`` reads it, uint8 (H, W, C) at its input, and why it was inverted.

    Resized to the run's input and colour (images.to_model_input), then
    inverted by the explorer's rule (images.invert_rule): "auto" inverts a
    picture with a light border for a run that learned light shapes on black.
    The reason is "" when the picture was kept as it is.
    """
    height, width, channels = run.model.input_shape
    pixels = to_model_input(image, (height, width), channels)
    inverted, why = invert_rule(pixels, invert_choice(invert), run.light_on_dark)
    return (255 - pixels if inverted else pixels), why


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """The image files named by ``paths``, in order, without repeats.

    A file is taken as given (whatever its suffix); a folder contributes every
    non-hidden file below it whose suffix is an image's (PNG, JPEG, BMP, GIF,
    WEBP), recursively and sorted. Raises ConvlensError for a path that does
    not exist.
    """
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            found.update(dict.fromkeys(_images_below(path)))
        elif path.is_file():
            found[path] = None
        else:
            raise ConvlensError(f"{path} does not exist; check the path.")
    return list(found)


def _images_below(folder: Path) -> list[Path]:
    """Sorted image files (by suffix) under ``folder``, skipping hidden files and folders."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [
            Path(root, name)
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        ]
    return sorted(files)


def predict_folder(
    run: Run,
    paths: Sequence[str | Path],
    out_csv: str | Path,
    batch_size: int = DEFAULT_BATCH,
    invert: bool | str = "auto",
    on_progress: ProgressHook | None = None,
) -> PredictSummary:
    """Classify every image under ``paths`` with ``run`` and write the rows to ``out_csv``.

    Columns: path, predicted, probability, inverted (yes or no: ``invert``
    "auto" applies the explorer's rule, see ``model_image``), then one per class
    name (that class's probability); one row per readable image, in find_images order.
    Returns a PredictSummary; raises ConvlensError (and writes nothing) when no
    file could be read as an image or the CSV cannot be written.
    """
    if batch_size < 1:
        raise ConvlensError(f"--batch-size must be at least 1, not {batch_size}.")
    files = find_images(paths)
    if not files:
        shown = ", ".join(str(p) for p in paths)
        raise ConvlensError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) were found in {shown}; check the folder."
        )
    out = _check_out(Path(out_csv))
    predicted, skipped, inverted = 0, [], 0
    with _atomic_csv(out) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "predicted", "probability", "inverted", *run.class_names])
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            rows, flipped = _predict_batch(run, batch, invert, writer, skipped)
            predicted, inverted = predicted + rows, inverted + flipped
            if on_progress is not None:
                on_progress(start + len(batch), len(files))
        if predicted == 0:
            raise ConvlensError(_none_readable(skipped))
    return PredictSummary(predicted, skipped, out, inverted)


def _predict_batch(
    run: Run,
    files: list[Path],
    invert: bool | str,
    writer: Any,
    skipped: list[tuple[str, str]],
) -> tuple[int, int]:
    """Decode, classify and write one batch; appends unreadable files to ``skipped``.

    Returns how many rows were written and how many of those images were inverted.
    """
    images, kept, flipped = [], [], []
    for path in files:
        try:
            image = read_image(path)
        except ConvlensError as exc:
            skipped.append((str(path), _reason(path, exc)))
            continue
        pixels, why = model_image(run, image, invert)
        images.append(pixels)
        kept.append(path)
        flipped.append(bool(why))
    if not images:
        return 0, 0
    probabilities = predict_proba(run.network, np.stack(images), run.model.input_shape)
    for path, probs, was_inverted in zip(kept, probabilities, flipped, strict=True):
        best = int(np.argmax(probs))  # probs: (classes,)
        writer.writerow(
            [
                str(path),
                run.class_names[best],
                f"{probs[best]:.6f}",
                "yes" if was_inverted else "no",
                *(f"{p:.6f}" for p in probs),
            ]
        )
    return len(kept), sum(flipped)


def _reason(path: Path, error: ConvlensError) -> str:
    """The cause part of read_image's sentence, without the path and the fix."""
    return str(error).split(";")[0].removeprefix(str(path)).strip()


def _none_readable(skipped: list[tuple[str, str]]) -> str:
    examples = ", ".join(f"{Path(p).name} ({why})" for p, why in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return (
        f"none of the {len(skipped)} files could be read as an image ({examples}{more}); "
        f"give PNG, JPEG or BMP files."
    )


def _check_out(out: Path) -> Path:
    """Refuse an --out that cannot become a file, before any image is read."""
    if out.is_dir():
        raise ConvlensError(f"{out} is a folder; give --out a file name like predictions.csv.")
    if not out.parent.is_dir():
        raise ConvlensError(
            f"cannot write {out}: the folder {out.parent} does not exist; create it or "
            f"choose another --out."
        )
    return out


@contextmanager
def _atomic_csv(path: Path) -> Iterator[TextIO]:
    """Yield a text handle on a temp file beside ``path``; renamed to ``path`` on success.

    On any error the temp file is removed and ``path`` is left as it was.
    """
    try:
        with atomic_writer(path, "w", newline="", encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise ConvlensError(
            f"cannot write {path} ({exc.strerror or exc}); free some space or choose another --out."
        ) from None
