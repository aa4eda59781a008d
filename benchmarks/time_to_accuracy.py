"""Time to 91% test accuracy: convlens's default recipe against the lesson in plain PyTorch.

Runs, in one invocation and one after the other (never two at once):

- convlens: `convlens.train.fit` with the default recipe on the lesson's exact
  architecture (243,786 parameters), for each seed; the clock starts before
  the dataset is read, so data loading is included;
- the plain PyTorch loop of the lesson's recipe (benchmarks/reference.py:
  Adam 1e-3, batch 32, 5 epochs, DataLoader), clock started the same way;
- TensorFlow/Keras with the lesson's exact code, when tensorflow is installed.

Each checks test accuracy after every epoch (evaluation time included in the
clock) and prints: seconds to reach the target (or "not reached"), final test
accuracy, training images per second (images trained on: the default recipe
trains on a third of them from its second epoch), and the ratios against the references.

    flock /tmp/convlens-bench.lock python benchmarks/time_to_accuracy.py --seeds 3

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import dataclass, field

import torch
from reference import accuracy, to_tensors, train_lesson

from convlens import data
from convlens.plan import plan_training
from convlens.train import fit


@dataclass
class Outcome:
    """One training run: when it reached the target, where it ended, how fast it went."""

    name: str
    epoch_times: list[float] = field(default_factory=list)  # cumulative seconds at each epoch end
    epoch_accuracy: list[float] = field(default_factory=list)
    train_images: int = 60_000
    train_seconds: float = 0.0  # time spent in training steps only
    trained_images: int | None = None  # images trained on, when not train_images every epoch

    def seconds_to(self, target: float) -> float | None:
        """Wall seconds when test accuracy first reached ``target``, else None."""
        for seconds, acc in zip(self.epoch_times, self.epoch_accuracy, strict=True):
            if acc >= target:
                return seconds
        return None

    @property
    def final_accuracy(self) -> float:
        return self.epoch_accuracy[-1]

    @property
    def images_per_second(self) -> float:
        trained = self.trained_images or self.train_images * len(self.epoch_times)
        return trained / self.train_seconds


def run_convlens(seed: int) -> Outcome:
    """The default recipe, data loading included in the clock."""
    started = time.perf_counter()
    plan = plan_training("seed-cnn", "fashion-mnist", seed=seed)  # as `convlens train` plans it
    outcome = Outcome(f"convlens seed {seed}", train_images=len(plan.dataset.train))

    def on_epoch(record) -> None:
        outcome.epoch_times.append(time.perf_counter() - started)
        outcome.epoch_accuracy.append(record.test_accuracy)

    result = fit(plan.model, plan.dataset, plan.config, on_epoch=on_epoch)
    outcome.train_seconds = sum(r.seconds for r in result.history.epochs)
    outcome.trained_images = sum(r.images for r in result.history.epochs)  # selective backprop
    return outcome


def run_plain_torch(epochs: int) -> Outcome:
    """The lesson's recipe in a plain PyTorch loop."""
    started = time.perf_counter()
    dataset = data.load("fashion-mnist")
    x_test, y_test = to_tensors(dataset.test.images, dataset.test.labels)
    outcome = Outcome("plain PyTorch (lesson recipe)", train_images=len(dataset.train))
    eval_seconds = 0.0

    def on_epoch(epoch: int, seconds: float, model) -> None:
        nonlocal eval_seconds
        eval_start = time.perf_counter()
        outcome.epoch_accuracy.append(accuracy(model, x_test, y_test))
        eval_seconds += time.perf_counter() - eval_start
        outcome.epoch_times.append(time.perf_counter() - started)

    train_lesson(dataset, epochs=epochs, on_epoch=on_epoch)
    outcome.train_seconds = outcome.epoch_times[-1] - eval_seconds
    return outcome


def run_keras(epochs: int) -> Outcome | None:
    """The lesson's exact Keras code, if TensorFlow is installed."""
    try:
        import tensorflow as tf  # type: ignore[import-not-found]
    except ImportError:
        return None
    started = time.perf_counter()
    dataset = data.load("fashion-mnist")
    x_train, x_test = dataset.train.images / 255.0, dataset.test.images / 255.0
    model = tf.keras.models.Sequential(
        [
            tf.keras.layers.Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            tf.keras.layers.MaxPooling2D(2, 2),
            tf.keras.layers.Conv2D(64, (3, 3), activation="relu"),
            tf.keras.layers.MaxPooling2D(2, 2),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    outcome = Outcome("TensorFlow/Keras (lesson code)", train_images=len(dataset.train))
    for _ in range(epochs):
        model.fit(x_train, dataset.train.labels, epochs=1, verbose=0)
        _, acc = model.evaluate(x_test, dataset.test.labels, verbose=0)
        outcome.epoch_accuracy.append(float(acc))
        outcome.epoch_times.append(time.perf_counter() - started)
    outcome.train_seconds = outcome.epoch_times[-1]
    return outcome


def describe(outcome: Outcome, target: float) -> str:
    reached = outcome.seconds_to(target)
    when = f"{reached:7.1f} s" if reached is not None else "not reached"
    curve = " ".join(f"{a:.4f}" for a in outcome.epoch_accuracy)
    return (
        f"{outcome.name:<34} to {target:.1%}: {when}   final {outcome.final_accuracy:.4f} "
        f"after {outcome.epoch_times[-1]:.1f} s   {outcome.images_per_second:6.0f} img/s   "
        f"per epoch: {curve}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="convlens runs (median reported)")
    parser.add_argument("--target", type=float, default=0.91)
    parser.add_argument("--reference-epochs", type=int, default=5)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )

    ours = [run_convlens(seed) for seed in range(args.seeds)]
    for outcome in ours:
        print(describe(outcome, args.target), flush=True)
    times = [o.seconds_to(args.target) for o in ours]
    reached = [t for t in times if t is not None]
    median = statistics.median(reached) if len(reached) == len(times) else None
    final = statistics.median(o.final_accuracy for o in ours)
    speed = statistics.median(o.images_per_second for o in ours)
    shown = f"{median:.1f} s" if median is not None else "not reached by every seed"
    print(
        f"convlens median of {args.seeds}: to {args.target:.1%} {shown}, final {final:.4f}, "
        f"{speed:.0f} img/s"
    )
    if args.skip_reference:
        return
    for reference in (run_plain_torch(args.reference_epochs), run_keras(args.reference_epochs)):
        if reference is None:
            print("TensorFlow is not installed: Keras reference skipped")
            continue
        print(describe(reference, args.target), flush=True)
        if median is not None:
            print(
                f"  convlens to {args.target:.1%} = {median / reference.epoch_times[0]:.2f} of "
                f"{reference.name}'s first epoch ({reference.epoch_times[0]:.1f} s, loading "
                "included)"
            )
        theirs = reference.seconds_to(args.target) or reference.epoch_times[-1]
        label = "reaching" if reference.seconds_to(args.target) else "finishing (never reached)"
        if median is not None:
            print(
                f"  convlens is {theirs / median:.1f}x faster than {reference.name} "
                f"{label} {args.target:.1%}; {speed / reference.images_per_second:.2f}x its "
                f"training throughput; accuracy {final - reference.final_accuracy:+.4f}"
            )


if __name__ == "__main__":
    main()
