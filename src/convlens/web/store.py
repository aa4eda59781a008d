"""What the explorer's server holds between requests: images by id, runs by name.

The client never names a file on the server. Images come in as bytes (or as
built-ins and test-set samples) and are named by a hash of their pixels;
runs are named by directory name and looked up among those the server lists
(the runs folder, plus the one given with --run).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from convlens.data.datasets import Split
from convlens.errors import ConvlensError
from convlens.images import to_model_input
from convlens.model.files import SPEC_FILE, read_spec
from convlens.runs.directory import METRICS_FILE, RUNS_ROOT, is_run
from convlens.runs.loading import Run, load_run, load_test_split
from convlens.web import pictures

MAX_STORED_BYTES = 512 << 20  # images kept for this session, the least recently used dropped
MAX_STORED_IMAGES = 2000  # ... and as many as this (a test-set sample is a few hundred bytes)
MAX_LOADED_RUNS = 4  # runs held loaded (uploaded models among them), the least recently used
MAX_LOADED_BYTES = 1 << 30  # ... dropped past this many bytes of weights and test images


class NotFound(ConvlensError):
    """A name the client gave that the server does not hold (answered with 404)."""


class TooLarge(ConvlensError):
    """A request body over its limit (answered with 413)."""


@dataclass(frozen=True)
class StoredImage:
    """An image as it arrived: uint8 (H, W, C), C 1 or 3, and where it came from."""

    id: str
    name: str
    pixels: np.ndarray
    label: str | None = None
    test_index: int | None = None

    @property
    def footprint(self) -> int:
        """Bytes it holds: its pixels, and the grayscale copy a colour image is filtered as."""
        height, width, channels = self.pixels.shape
        return self.pixels.nbytes + (height * width if channels > 1 else 0)

    @cached_property
    def luma(self) -> np.ndarray:
        """The grayscale picture the playground filters: uint8 (H, W), as `convlens convolve`'s."""
        if self.pixels.shape[2] == 1:
            return self.pixels[:, :, 0]
        return to_model_input(self.pixels, self.pixels.shape[:2], channels=1)[:, :, 0]

    @cached_property
    def luma_png(self) -> str:
        """``luma`` as a PNG data URL, encoded once: every playground answer shows it."""
        return pictures.data_url(self.luma)

    @cached_property
    def colour_png(self) -> str | None:
        """A colour image as it is, as a PNG data URL (None for a grayscale one)."""
        return pictures.data_url(self.pixels) if self.pixels.shape[2] == 3 else None


def image_id(pixels: np.ndarray) -> str:
    """A short, stable id for an image: the start of the SHA-256 of its shape and pixels."""
    digest = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes())
    return digest.hexdigest()[:16]


class ImageStore:
    """Images of this session, by id; the least recently used go past a count or byte budget."""

    def __init__(
        self, max_bytes: int = MAX_STORED_BYTES, max_images: int = MAX_STORED_IMAGES
    ) -> None:
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._max_bytes = max_bytes
        self._max_images = max_images
        self._lock = threading.Lock()

    def add(
        self,
        pixels: np.ndarray,
        name: str,
        label: str | None = None,
        test_index: int | None = None,
    ) -> StoredImage:
        """Keep ``pixels`` (uint8 (H, W, C)) and return it with its id (the newest kept)."""
        image = StoredImage(image_id(pixels), name, pixels, label, test_index)
        with self._lock:
            self._images[image.id] = image
            self._images.move_to_end(image.id)
            total = sum(stored.footprint for stored in self._images.values())
            while len(self._images) > 1 and (
                total > self._max_bytes or len(self._images) > self._max_images
            ):
                _, dropped = self._images.popitem(last=False)
                total -= dropped.footprint
        return image

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    def get(self, image: str) -> StoredImage:
        """The image with id ``image``; an unknown id ends in one sentence (404)."""
        with self._lock:
            found = self._images.get(image)
            if found is not None:
                self._images.move_to_end(image)
        if found is None:
            raise NotFound(
                f"there is no image {image!r} on the server (it may have been dropped to save "
                "memory); choose or upload the image again."
            )
        return found


class LoadedRun:
    """A run loaded once, with a lock: forward hooks must not mix between requests."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.lock = threading.Lock()
        self._test: Split | None = None
        self.weight_bytes = sum(
            tensor.numel() * tensor.element_size()
            for tensor in run.network.state_dict().values()
        )

    def test_split(self) -> Split:
        """The run's test split, fitted to its input, read once."""
        with self.lock:
            if self._test is None:
                self._test = load_test_split(self.run)
            return self._test

    @property
    def footprint(self) -> int:
        """Bytes it holds: its weights, and its test split once read."""
        test = self._test
        held = 0 if test is None else test.images.nbytes + test.labels.nbytes
        return self.weight_bytes + held


class RunRegistry:
    """The runs the server may show: every finished run under ``root``, plus ``extra``."""

    def __init__(
        self,
        root: Path = RUNS_ROOT,
        extra: Path | None = None,
        max_runs: int = MAX_LOADED_RUNS,
        max_bytes: int = MAX_LOADED_BYTES,
    ) -> None:
        self.root = Path(root)
        self.extra = None if extra is None else Path(extra).resolve()
        self._loaded: OrderedDict[str, LoadedRun] = OrderedDict()
        self._max_runs = max_runs
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def directories(self) -> dict[str, Path]:
        """{run name: directory}, the most recently finished first (--run's first of all)."""
        found = []
        if self.root.is_dir():
            found = [p for p in self.root.iterdir() if p.is_dir() and is_run(p)]
        found.sort(key=lambda p: (p / METRICS_FILE).stat().st_mtime, reverse=True)
        if self.extra is not None:
            found = [self.extra, *(p for p in found if p.resolve() != self.extra)]
        named: dict[str, Path] = {}
        for path in found:
            named.setdefault(path.name, path)
        return named

    def default(self) -> str | None:
        """The run shown first: --run's, else the latest; None when there is none."""
        return next(iter(self.directories()), None)

    def describe(self, name: str) -> dict:
        """A RunInfo read from model.json and metrics.json only (no weights loaded)."""
        path = self.directories().get(name)
        if path is None:
            raise NotFound(f"there is no run called {name!r}; choose one of the listed runs.")
        return _describe(name, path)

    def describe_all(self) -> list[dict]:
        """Every listed run's RunInfo, newest first; a damaged run is left out, not fatal."""
        described = []
        for name, path in self.directories().items():
            try:
                described.append(_describe(name, path))
            except ConvlensError:
                continue
        return described

    def get(self, name: str) -> LoadedRun:
        """The run called ``name``, loaded once; an unlisted name ends in one sentence (404)."""
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
        directories = self.directories()
        if name not in directories:
            listing = ", ".join(directories) or "none yet (train one with `convlens train`)"
            raise NotFound(f"there is no run called {name!r}; choose one of: {listing}.")
        loaded = LoadedRun(load_run(directories[name]))
        with self._lock:
            self._loaded[name] = loaded
            self._loaded.move_to_end(name)
            self._drop_past_budget()
        return loaded

    def loaded(self) -> list[str]:
        """The names of the runs held loaded now, the least recently used first."""
        with self._lock:
            return list(self._loaded)

    def _drop_past_budget(self) -> None:
        """Drop the least recently used runs past the count or byte budget (keeping the newest)."""
        total = sum(held.footprint for held in self._loaded.values())
        while len(self._loaded) > 1 and (
            len(self._loaded) > self._max_runs or total > self._max_bytes
        ):
            _, dropped = self._loaded.popitem(last=False)
            total -= dropped.footprint


def _describe(name: str, path: Path) -> dict:
    """A RunInfo for the run directory ``path`` listed as ``name``."""
    model = read_spec(path / SPEC_FILE)
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvlensError(f"{path / METRICS_FILE} is not readable JSON ({exc}).") from None
    epochs, accuracy = metrics.get("epochs"), metrics.get("test_accuracy")
    classes = model.class_names or tuple(str(i) for i in range(model.num_classes))
    return {
        "name": name,
        "model": model.name,
        "test_accuracy": accuracy if isinstance(accuracy, (int, float)) else None,
        "epochs": epochs if isinstance(epochs, int) else None,
        "dataset": metrics.get("dataset") if isinstance(metrics.get("dataset"), str) else None,
        "classes": list(classes),
        "imported_from": _imported_from(metrics.get("imported_from")),
        "test_time_flip": model.test_time_flip,
    }


def _imported_from(source: object) -> str | None:
    """'fashion.keras (keras 3.15.1)' for an imported run's metrics, else None."""
    if not isinstance(source, dict):
        return None
    version = source.get("keras_version") or source.get("producer") or ""
    return f"{source.get('file', '?')} ({source.get('format', '?')} {version})".replace(" )", ")")
