"""What measuring batch normalisation's statistics afresh does for the best preset.

The best preset saves an exponential average (EMA) of the weights; its batch
normalisation layers' running statistics (momentum 0.99, Keras's) are the
trained network's, measured under weights the average only approaches, and
after a few hundred steps still hold much of their start. `fit` now measures
them afresh for the saved network before every test (training/statistics.py).
This trains `--model best` with the real loop and the recipe `convlens train`
plans, with that refresh turned off, and after every epoch prints the saved
network's test accuracy with the running statistics and with statistics
measured from ``--images`` training images (the module's sample: 512).

    flock /tmp/convlens-bench.lock python benchmarks/bn_statistics.py --seed 3

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

import convlens.training.train as train_module
from convlens.model.network import pixels_to_tensor
from convlens.runs.evaluate import evaluate_tensors
from convlens.training import statistics
from convlens.training.callbacks import Callback
from convlens.training.plan import plan_training
from convlens.training.statistics import StatisticsRefresh


def refreshed(network: torch.nn.Module, sample: StatisticsRefresh) -> torch.nn.Module:
    """A copy of ``network`` with its batch-norm statistics measured from ``sample``."""
    fresh = copy.deepcopy(network)
    sample(fresh)
    return fresh


class EveryEpoch(Callback):
    """After each epoch: the saved network's test accuracy, running and measured statistics."""

    def __init__(self, test_x, test_y, sample: StatisticsRefresh, flip: bool) -> None:
        self.test_x, self.test_y, self.sample, self.flip = test_x, test_y, sample, flip
        self.average = None
        self.rows: list[tuple[int, float, float]] = []

    def on_epoch_end(self, record) -> bool:
        """Evaluate both ways (outside the epoch's own figures) and print."""
        saved = self.average.network
        as_saved = record.test_accuracy
        began = time.perf_counter()
        fresh = evaluate_tensors(
            refreshed(saved, self.sample), self.test_x, self.test_y, 10, flip=self.flip
        ).accuracy
        took = time.perf_counter() - began
        self.rows.append((record.epoch, as_saved, fresh))
        print(
            f"epoch {record.epoch:2d}: running {as_saved:.4f}, measured {fresh:.4f} "
            f"({fresh - as_saved:+.4f}; {took:.1f} s)",
            flush=True,
        )
        return False


def main() -> None:
    """Train the best preset once and compare the two ways after every epoch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=statistics.SAMPLE_IMAGES)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    plan = plan_training("best", seed=args.seed, epochs=args.epochs, precision=args.precision)
    model, config, dataset = plan.model, plan.config, plan.dataset
    test_x = pixels_to_tensor(dataset.test.images, model.input_shape)
    test_y = torch.from_numpy(dataset.test.labels.astype("int64"))
    statistics.SAMPLE_IMAGES = args.images
    train_x = pixels_to_tensor(dataset.train.images, model.input_shape)
    sample = StatisticsRefresh(train_x, model.input_scale, config.flip_augment, config.seed)
    flip = config.test_time_flip or model.test_time_flip
    watcher = EveryEpoch(test_x, test_y, sample, flip)
    original = train_module.WeightAverage

    class Captured(original):
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            watcher.average = self

    train_module.WeightAverage = Captured
    train_module.StatisticsRefresh = lambda *a, **k: lambda network: None  # the running ones
    try:
        train_module.fit(model, dataset, config, callbacks=[watcher])
    finally:
        train_module.WeightAverage = original
        train_module.StatisticsRefresh = StatisticsRefresh
    gains = [fresh - saved for _, saved, fresh in watcher.rows]
    print(f"mean change {sum(gains) / len(gains):+.4f}; last epoch {gains[-1]:+.4f}")


if __name__ == "__main__":
    main()
