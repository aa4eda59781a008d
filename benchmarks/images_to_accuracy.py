"""How many training images (and seconds) a recipe needs to reach a test accuracy.

Goal 1 and 2 of issue 24 ask for 91% sooner. Per-epoch evaluation sees 91%
only at an epoch's end; this script looks closer: it trains the lesson's CNN
with `convlens.training.train.fit` (the real loop) and every ``--every``
training images evaluates what the run would save (the weights' average when
the recipe keeps one) on the 10,000 test images, in float32, outside the
clock. A variant is the fast recipe with TrainConfig fields changed, e.g.

    flock /tmp/convlens-bench.lock python benchmarks/images_to_accuracy.py \
        --seeds 0,1,2 --variant base --variant "lr=3e-3" --variant "batch_size=128,learning_rate=4e-3"

It prints, per variant and seed, the images trained on and the training
seconds (evaluations excluded) when the test accuracy first reached the
target, and the medians. Seconds are only comparable within one run.
Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import fields, replace

import torch

import convlens.training.train as train_module
from convlens.data import datasets
from convlens.model.network import pixels_to_tensor
from convlens.model.presets import preset
from convlens.runs.evaluate import evaluate_tensors
from convlens.training.callbacks import Callback
from convlens.training.recipes import TrainConfig, for_dataset, recipe_config

ALIASES = {
    "lr": "learning_rate",
    "batch": "batch_size",
    "ema": "ema_decay",
    "keep": "keep_fraction",
}


class Reached(Exception):
    """Raised inside fit once the target (or the image budget) is reached."""


def parse_variant(text: str) -> dict[str, object]:
    """``"lr=3e-3,batch=128,beta2=0.99"`` as TrainConfig overrides (``base``: none)."""
    if text == "base":
        return {}
    kinds = {field.name: str(field.type) for field in fields(TrainConfig)}
    overrides: dict[str, object] = {}
    for item in text.split(","):
        key, value = (part.strip() for part in item.split("="))
        key = ALIASES.get(key, key)
        kind = kinds[key]
        if kind.startswith("int"):
            overrides[key] = int(value)
        elif kind.startswith("float"):
            overrides[key] = float(value)
        elif kind == "bool":
            overrides[key] = value.lower() in ("1", "true", "yes")
        else:
            overrides[key] = value
    return overrides


class Probe(Callback):
    """Every ``every`` steps: the saved network's test accuracy, images and seconds so far."""

    def __init__(self, test_x, test_y, every: int, batch: int, target: float, budget: int):
        self.test_x, self.test_y = test_x, test_y
        self.every, self.batch, self.target, self.budget = every, batch, target, budget
        self.network = None
        self.average = None
        self.steps = 0
        self.evaluating = 0.0
        self.started = time.perf_counter()
        self.points: list[tuple[int, float, float]] = []  # (images, seconds, accuracy)
        self.final: float | None = None  # the whole run's test accuracy, if it ended first

    def on_train_begin(self, network) -> None:
        """Remember the trained network (evaluated when the recipe keeps no average)."""
        self.network = network
        self.started = time.perf_counter()

    def on_batch_end(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        """Count the step; every ``every`` steps evaluate, and stop at the target."""
        self.steps += 1
        if self.steps % self.every:
            return
        images = self.steps * self.batch
        seconds = time.perf_counter() - self.started - self.evaluating
        began = time.perf_counter()
        evaluated = self.average.network if self.average is not None else self.network
        was_training = evaluated.training
        result = evaluate_tensors(evaluated, self.test_x, self.test_y, 10)
        evaluated.train(was_training)
        self.evaluating += time.perf_counter() - began
        self.points.append((images, seconds, result.accuracy))
        if result.accuracy >= self.target or images >= self.budget:
            raise Reached


def run(config: TrainConfig, dataset, args) -> Probe:
    """One training run of ``config``, probed until the target or the budget."""
    model = preset("seed-cnn").with_class_names(dataset.class_names)
    test_x = pixels_to_tensor(dataset.test.images, model.input_shape)
    test_y = torch.from_numpy(dataset.test.labels.astype("int64"))
    every = max(1, args.every // config.batch_size)
    probe = Probe(test_x, test_y, every, config.batch_size, args.target, args.budget)
    original = train_module.WeightAverage

    class Captured(original):  # the run's average, so the probe evaluates what fit saves
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            probe.average = self

    train_module.WeightAverage = Captured
    try:
        result = train_module.fit(model, dataset, config, callbacks=[probe])
        probe.final = result.test.accuracy  # the run ended before the target: its last figure
    except Reached:
        pass
    finally:
        train_module.WeightAverage = original
    return probe


def main() -> None:
    """Run every variant for every seed and print images and seconds to the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], help="e.g. base, lr=3e-3")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--target", type=float, default=0.91)
    parser.add_argument("--every", type=int, default=5120, help="images between evaluations")
    parser.add_argument("--budget", type=int, default=130_000, help="images before giving up")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    dataset = datasets.load("fashion-mnist")
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}")
    for text in args.variant or ["base"]:
        reached_images, reached_seconds = [], []
        for seed in seeds:
            config = recipe_config("fast", seed=seed, precision=args.precision)
            overrides = parse_variant(text)
            config = for_dataset(replace(config, **overrides), len(dataset.train.images))
            probe = run(config, dataset, args)
            images, seconds, accuracy = probe.points[-1]
            hit = accuracy >= args.target
            trail = " ".join(f"{a:.4f}@{i // 1000}k" for i, _, a in probe.points[-6:])
            print(
                f"{text:40s} seed {seed}: "
                + (f"{images:,} images {seconds:.1f} s" if hit else f"not in {images:,}")
                + f" | {trail}"
                + ("" if probe.final is None else f" | final {probe.final:.4f}"),
                flush=True,
            )
            if hit:
                reached_images.append(images)
                reached_seconds.append(seconds)
        if reached_images:
            print(
                f"{text:40s} median: {statistics.median(reached_images):,.0f} images, "
                f"{statistics.median(reached_seconds):.1f} s ({len(reached_images)}/{len(seeds)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
