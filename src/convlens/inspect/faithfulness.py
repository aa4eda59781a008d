"""Which attribution method points at what the model used: the deletion test, and the default.

The deletion test (benchmarks/attribution.py runs it at scale): for each test
image, delete (set to 0, the datasets' black background) the ``fraction`` of
pixels a method's map ranks highest toward the predicted class, and as many
pixels chosen at random; a faithful map makes the class's probability drop
more than chance does. The method whose deletion drops it most on average is
the run's default "why" in the CLI, the report and the explorer.

``default_method(run, test)`` measures it once per run on SAMPLE test images
(evenly spread over the test split) and caches the ranking in the run
directory (``attribution.json``, tied to the weights by their SHA-256), so the
run's commands all agree and only its first use pays (2.7 s for the lesson's
CNN on 2 shared CPU cores, occlusion most of it; `convlens train` pays it while
writing the report). A run whose test images cannot be read takes
FALLBACK_METHOD, the method this test ranked first for the lesson's CNN (see
BENCHMARKS.md), and says so.

The lesson's CNN trained on Fashion-MNIST (what `convlens train` makes by
default) is not measured again: its default is fixed by the benchmark's
measurement on 1,000 test images (MEASURED_PRESETS), so the default command
does not pay 1.2 s after its last epoch for an answer known in advance.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_text
from convlens.inspect import attribution
from convlens.inspect.methods import METHODS
from convlens.model.presets import preset
from convlens.runs.loading import load_test_split

FRACTION = 0.1  # the share of pixels deleted
SAMPLE = 50  # test images the default is measured on (the ranks stand far apart: BENCHMARKS.md)
SEED = 0  # the random deletion's
BATCH = 100  # maps computed at once, as the report and the CLI do
CACHE_FILE = "attribution.json"
FALLBACK_METHOD = "occlusion"  # first for the lesson CNN (BENCHMARKS.md); when no test images


@dataclass(frozen=True)
class MethodScore:
    """One method's deletion test: mean drops of the predicted class's probability."""

    method: str
    map_drop: float  # deleting the map's top pixels
    random_drop: float  # deleting as many random pixels
    wins: float  # share of images where the map's deletion dropped more


@dataclass(frozen=True)
class DefaultMethod:
    """The run's default attribution method and the measurement that chose it."""

    method: str
    scores: tuple[MethodScore, ...]  # best first; empty when not measured
    images: int  # test images measured on (0: not measured)
    fraction: float = FRACTION
    measured_on: str = ""  # "": this run; else the run of the same preset that was measured

    @property
    def why(self) -> str:
        """One sentence: why this method is the default."""
        if not self.scores:
            return (
                f"{self.method} is the default: this run's test images could not be read to "
                "measure the methods, and it ranked first for the lesson's CNN."
            )
        drops = ", ".join(f"{s.method} {s.map_drop:.2f}" for s in self.scores)
        if self.measured_on:
            return (
                f"{self.method} is the default for {self.measured_on}, fixed by measurement "
                f"(benchmarks/attribution.py, BENCHMARKS.md): deleting the {self.fraction:.0%} "
                f"of pixels its map ranks highest drops the predicted class's probability most "
                f"on {self.images:,} test images ({drops}; random pixels "
                f"{self.scores[0].random_drop:.2f})."
            )
        return (
            f"{self.method} is the default: deleting the {self.fraction:.0%} of pixels its map "
            f"ranks highest drops the predicted class's probability most on {self.images} test "
            f"images ({drops}; random pixels {self.scores[0].random_drop:.2f})."
        )


# Defaults fixed by measurement, by (preset, dataset): benchmarks/attribution.py on the first
# 1,000 Fashion-MNIST test images of a 6-epoch seed-cnn run (BENCHMARKS.md, "Attribution maps").
MEASURED_PRESETS: dict[tuple[str, str], DefaultMethod] = {
    ("seed-cnn", "fashion-mnist"): DefaultMethod(
        "occlusion",
        (
            MethodScore("occlusion", 0.706, 0.130, 0.98),
            MethodScore("integrated-gradients", 0.624, 0.130, 0.95),
            MethodScore("saliency", 0.455, 0.130, 0.92),
            MethodScore("gradcam", 0.148, 0.130, 0.50),
        ),
        images=1000,
        measured_on="the lesson's CNN (seed-cnn) on Fashion-MNIST",
    ),
}


def preset_default(run) -> DefaultMethod | None:
    """The fixed default of MEASURED_PRESETS when ``run`` is that preset's model, layer for
    layer, trained on that dataset; None otherwise (a folder, an edited or imported model)."""
    dataset = str(run.metrics.get("dataset", "")).lower()
    fixed = MEASURED_PRESETS.get((run.model.name, dataset))
    if fixed is None:
        return None
    measured = preset(run.model.name)
    bare = [replace(layer, name=None, input_shape=None) for layer in run.model.layers]
    same = bare == [replace(layer, name=None, input_shape=None) for layer in measured.layers]
    return fixed if same and run.model.input_shape == measured.input_shape else None


def sample_indices(count: int, sample: int = SAMPLE) -> np.ndarray:
    """Up to ``sample`` test indices spread evenly over ``count`` images (first and last kept)."""
    return np.unique(np.linspace(0, count - 1, min(sample, count)).round().astype(np.int64))


def probabilities(run, images: np.ndarray) -> np.ndarray:
    """float64 (N, classes): the run's class probabilities for uint8 images (N, H, W, C)."""
    with torch.inference_mode():
        tensor = attribution.model_tensor(run.model, images)
        return run.network.eval().probabilities(tensor).double().numpy()


def delete(images: np.ndarray, order: np.ndarray, count: int) -> np.ndarray:
    """Copies of ``images`` with the first ``count`` pixels of each row of ``order`` set to 0."""
    flat = images.reshape(len(images), -1, images.shape[-1]).copy()
    rows = np.arange(len(images))[:, None]
    flat[rows, order[:, :count]] = 0
    return flat.reshape(images.shape)


def deletion_drops(
    run, images: np.ndarray, maps: np.ndarray, predicted: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the predicted class's probability drop deleting the maps' top pixels, and
    deleting as many random ones (float64 (N,) each)."""
    pixels = maps[0].size
    count = int(round(fraction * pixels))
    strongest = np.argsort(-maps.reshape(len(maps), -1), axis=1, kind="stable")
    chance = np.argsort(np.random.default_rng(seed).random((len(maps), pixels)), axis=1)
    rows = np.arange(len(images))
    before = probabilities(run, images)[rows, predicted]
    by_map = before - probabilities(run, delete(images, strongest, count))[rows, predicted]
    by_chance = before - probabilities(run, delete(images, chance, count))[rows, predicted]
    return by_map, by_chance


def explain_in_batches(run, images: np.ndarray, method: str) -> list[attribution.Attribution]:
    """``attribution.explain`` toward the predicted classes, BATCH images at a time."""
    return [
        attribution.explain(run, images[i : i + BATCH], method)
        for i in range(0, len(images), BATCH)
    ]


def score_method(
    run, images: np.ndarray, method: str, fraction: float = FRACTION, seed: int = SEED
) -> MethodScore:
    """The deletion test of one method on uint8 images (N, H, W, C)."""
    found = explain_in_batches(run, images, method)
    maps = np.concatenate([f.maps for f in found])
    predicted = np.concatenate([f.targets for f in found])
    by_map, by_chance = deletion_drops(run, images, maps, predicted, fraction, seed)
    return MethodScore(
        method, float(by_map.mean()), float(by_chance.mean()), float((by_map > by_chance).mean())
    )


def usable_methods(run) -> list[str]:
    """The methods that apply to the run's model (Grad-CAM needs a Conv2D)."""
    try:
        attribution.last_conv(run.model)
    except ConvlensError:
        return [name for name in METHODS if not METHODS[name].reads_layer]
    return list(METHODS)


def rank_methods(
    run, images: np.ndarray, fraction: float = FRACTION, seed: int = SEED
) -> list[MethodScore]:
    """Every usable method's deletion test, the largest mean drop first."""
    scores = [score_method(run, images, method, fraction, seed) for method in usable_methods(run)]
    return sorted(scores, key=lambda s: -s.map_drop)


def default_method(
    run, test=None, dataset: str | None = None, data_dir: str | None = None
) -> DefaultMethod:
    """The run's default method: fixed for a measured preset (``preset_default``), else
    cached in its directory, else measured on ``test`` (a Split; None: the run's test
    split, of ``dataset`` in ``data_dir`` if given) and cached; FALLBACK_METHOD if no
    test image can be read."""
    fixed = preset_default(run)
    if fixed is not None:
        return fixed
    cached = read_cached(run.path)
    if cached is not None:
        return cached
    if test is None:
        try:
            test = load_test_split(run, dataset, data_dir)
        except ConvlensError:
            return DefaultMethod(FALLBACK_METHOD, (), 0)
    if len(test) == 0:
        return DefaultMethod(FALLBACK_METHOD, (), 0)
    images = test.images[sample_indices(len(test))]
    scores = tuple(rank_methods(run, images))
    chosen = DefaultMethod(scores[0].method, scores, len(images))
    write_cached(run.path, chosen)
    return chosen


def weights_digest(directory: Path) -> str:
    """SHA-256 of the run's weights file: the cache is the measurement of these weights."""
    path = directory / "weights.safetensors"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


# What this process measured, by (run directory, weights digest): a read-only run pays once.
_MEASURED: dict[tuple[str, str], DefaultMethod] = {}


def read_cached(directory: Path) -> DefaultMethod | None:
    """The cached DefaultMethod, or None if absent, unreadable or for other weights or methods."""
    remembered = _MEASURED.get((str(Path(directory).resolve()), weights_digest(Path(directory))))
    if remembered is not None:
        return remembered
    try:
        stored = json.loads((Path(directory) / CACHE_FILE).read_text(encoding="utf-8"))
        scores = tuple(MethodScore(**entry) for entry in stored["scores"])
        chosen = DefaultMethod(stored["method"], scores, int(stored["images"]), stored["fraction"])
        fresh = stored["weights_sha256"] == weights_digest(Path(directory))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    known = chosen.method in METHODS and all(s.method in METHODS for s in scores)
    return chosen if fresh and known and scores else None


def write_cached(directory: Path, chosen: DefaultMethod) -> None:
    """Cache the measurement in the run directory; a read-only run is measured again next time."""
    digest = weights_digest(Path(directory))
    _MEASURED[(str(Path(directory).resolve()), digest)] = chosen
    stored = asdict(chosen) | {"weights_sha256": digest}
    stored["why"] = chosen.why
    with contextlib.suppress(OSError):
        atomic_write_text(Path(directory) / CACHE_FILE, json.dumps(stored, indent=2) + "\n")
