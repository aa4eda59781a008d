"""Your own images: the default `convlens train` on two small folders against other recipes.

Makes two folders with train/ and test/ (nothing downloaded):

- digits: scikit-learn's 1,797 real 8x8 handwritten digits as grayscale PNGs
  (a quarter held out for testing, chosen by a fixed seed);
- fashion-1000: 100 real Fashion-MNIST photos per class (1,000), 200 per class
  held out (needs the dataset: `apt-get install dataset-fashion-mnist`);
- colour: 32x32 RGB pictures of a red or a green square on grey noise, the two
  colours of the same luma, so only a model that keeps colour can tell them apart.

For each it runs, one after the other, as a user would (`python -m convlens
train ...`, wall clock of the whole command, report included): the default,
the default as it was before folders chose their size and colour and the recipe
scaled by steps (28x28 grayscale, 6 epochs selecting from epoch 2), and a few
other recipes (with `--seeds N`, each N times and the mean); it prints each run's test accuracy and seconds, and which
recipe was best.

    flock /tmp/convlens-bench.lock python benchmarks/folders.py

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# name -> extra arguments of `convlens train`
BEFORE = ["--input-size", "28,28", "--color", "grayscale", "--epochs", "6", "--keep", "0.3333333"]
RECIPES = {
    "digits": {
        "default": [],
        "before (28x28x1, 6 epochs, selecting)": BEFORE,
        "30 epochs, no EMA, every image": ["--epochs", "30", "--ema", "0", "--keep", "1"],
        "60 epochs, every image": ["--epochs", "60", "--keep", "1"],
        "lesson recipe, 30 epochs": ["--recipe", "lesson", "--epochs", "30"],
    },
    "fashion-1000": {
        "default": [],
        "before (6 epochs, selecting)": ["--epochs", "6", "--keep", "0.3333333"],
        "default without shifts": ["--shift", "0"],
        "shifts of up to 2 pixels": ["--shift", "2"],
        "double the steps (76 epochs)": ["--epochs", "76"],
    },
    "colour": {
        "default": [],
        "before (28x28x1, 6 epochs, selecting)": BEFORE,
        "30 epochs, every image": ["--epochs", "30", "--keep", "1"],
        "lesson recipe, 30 epochs": ["--recipe", "lesson", "--epochs", "30"],
    },
}


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_digits(root: Path) -> Path:
    """scikit-learn's digits (0..16 levels scaled to 0..255) with a quarter held out."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    held_out = len(order) // 4
    for rank, index in enumerate(order):
        split = "test" if rank < held_out else "train"
        pixels = np.clip(digits.images[index] * 16, 0, 255).astype(np.uint8)
        save(root / split / str(digits.target[index]) / f"{index}.png", pixels)
    return root


# Red (220, 80, 80) and green (60, 165, 60) both have ITU-R 601 luma 122.
COLOURS = {"red": (220, 80, 80), "green": (60, 165, 60)}


def make_colour(root: Path, train: int = 300, test: int = 100, size: int = 32) -> Path:
    """Red or green squares of 8-13 pixels on grey noise, ``train``/``test`` per class."""
    rng = np.random.default_rng(1)
    for split, count in (("train", train), ("test", test)):
        for name, colour in COLOURS.items():
            for k in range(count):
                image = np.repeat(rng.integers(90, 160, (size, size, 1)), 3, axis=2)
                side = int(rng.integers(8, 14))
                top, left = rng.integers(0, size - side, 2)
                image[top : top + side, left : left + side] = colour
                save(root / split / name / f"{k}.png", image.astype(np.uint8))
    return root


def make_fashion_1000(root: Path) -> Path:
    """A small folder of real photos: 100 Fashion-MNIST training images per class, 200 test."""
    from convlens.data import datasets

    dataset = datasets.load("fashion-mnist")
    rng = np.random.default_rng(0)
    for split, part, count in (("train", dataset.train, 100), ("test", dataset.test, 200)):
        for label, name in enumerate(dataset.class_names):
            chosen = rng.permutation(np.flatnonzero(part.labels == label))[:count]
            for index in chosen:
                save(
                    root / split / name.replace("/", "-") / f"{index}.png",
                    part.images[index, :, :, 0],
                )
    return root


def train(folder: Path, extra: list[str], out: Path) -> tuple[float, float, str]:
    """(test accuracy, wall seconds, input line) of one `convlens train` command."""
    command = [sys.executable, "-m", "convlens", "train", "--dataset", str(folder)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, *extra, "--quiet", "--out", str(out)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics["test_accuracy"], seconds, metrics.get("input_why") or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=list(RECIPES), help="one folder only")
    parser.add_argument("--seeds", type=int, default=1, help="runs of each recipe (seeds 0..N-1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        makers = {"digits": make_digits, "fashion-1000": make_fashion_1000, "colour": make_colour}
        for name, recipes in RECIPES.items():
            if args.only and name != args.only:
                continue
            folder = makers[name](root / name)
            print(f"\n{name} ({folder})", flush=True)
            results = {}
            for label, extra in recipes.items():
                runs = [
                    train(
                        folder,
                        [*extra, "--seed", str(seed)],
                        root / "runs" / f"{name}-{len(results)}-{seed}",
                    )
                    for seed in range(args.seeds)
                ]
                accuracy = statistics.mean(r[0] for r in runs)
                seconds = statistics.mean(r[1] for r in runs)
                results[label] = accuracy
                each = " ".join(f"{r[0]:.4f}" for r in runs)
                print(
                    f"  {label:<36} {accuracy:.4f} ({each})  {seconds:6.1f} s   input {runs[0][2]}",
                    flush=True,
                )
            best = max(results, key=results.get)
            gap = results[best] - results["default"]
            print(f"  best: {best} ({results[best]:.4f}); default is {gap * 100:.2f} points below")


if __name__ == "__main__":
    main()
