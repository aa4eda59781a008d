"""Time to 91% test accuracy: `convlens train` against the lesson in plain PyTorch.

Runs, in one invocation and one after the other (never two at once), each in
a fresh process so that no run inherits another's memory or imports:

- convlens: the whole `convlens train --seed S` command with its defaults (the
  lesson's exact architecture, 243,786 parameters), for each seed; the clock
  starts when the process is launched, so Python's start, imports, data
  loading, every test evaluation and the report are included. An epoch ends
  when its line (with its test accuracy) reaches this script;
- the plain PyTorch loop of the lesson's recipe (benchmarks/reference.py:
  Adam 1e-3, batch 32, 5 epochs, DataLoader), clock started before it reads
  the data, test accuracy after every epoch included in the clock;
- the same plain loop with convlens's allocator setting (allocator.py) for one
  epoch, to show what that setting alone gives any PyTorch loop;
- TensorFlow/Keras with the lesson's exact code, when tensorflow is installed.

It prints: seconds to reach the target (or "not reached"), final test
accuracy, the whole command's seconds, and the ratios against the plain
loop's first epoch (issue 24's goals: 91% within 0.6 plain epochs and the
whole command within 0.9 where the processor multiplies bfloat16 natively;
0.7 and 1.0 in float32).

    flock /tmp/convlens-bench.lock python benchmarks/time_to_accuracy.py --seeds 3
    flock /tmp/convlens-bench.lock python benchmarks/time_to_accuracy.py --seeds 3 \
        --train-args "--precision float32"

With ``--device cuda`` both sides train on the GPU (convlens with
``--device cuda``, the plain loop moving each batch there as the PyTorch
tutorials do) and the ratio that matters is the plain loop's time to 91%
against convlens's (issue 24's goal: at least 3x).

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from reference import accuracy, to_tensors, train_lesson

from convlens.data import datasets
from convlens.training.allocator import keep_freed_memory

EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) .* test accuracy (\d\.\d+)")


@dataclass
class Outcome:
    """One training run: when it reached the target, where it ended, how fast it went."""

    name: str
    epoch_times: list[float] = field(default_factory=list)  # cumulative seconds at each epoch end
    epoch_accuracy: list[float] = field(default_factory=list)
    train_images: int = 60_000
    train_seconds: float = 0.0  # time spent in training steps only
    trained_images: int | None = None  # images trained on, when not train_images every epoch
    command_seconds: float | None = None  # the whole command, report included
    note: str = ""

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


def run_command(seed: int, *options: str) -> Outcome:
    """`convlens train --seed SEED [options]` as a user runs it, timed from the launch."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "convlens", "train", "--seed", str(seed), "--quiet"]
        command += [*options, "--out", str(Path(scratch) / "run")]
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )  # epoch lines go to stderr
        outcome = Outcome(" ".join(["convlens train", *options, "--seed", str(seed)]))
        for line in child.stdout:
            match = EPOCH_LINE.match(line.strip())
            if match:
                outcome.epoch_times.append(time.perf_counter() - started)
                outcome.epoch_accuracy.append(float(match.group(3)))
        if child.wait() != 0:
            raise SystemExit(f"{outcome.name} failed with exit code {child.returncode}")
        outcome.command_seconds = time.perf_counter() - started
        metrics = json.loads((Path(scratch) / "run" / "metrics.json").read_text())
    outcome.train_seconds = metrics["seconds_per_epoch"] * metrics["epochs"]
    outcome.trained_images = round(metrics["images_per_second"] * outcome.train_seconds)
    outcome.note = f"precision {metrics.get('precision', 'float32')}"
    return outcome


def run_plain_torch(epochs: int, allocator: bool = False, device: str = "cpu") -> Outcome:
    """The lesson's recipe in a plain PyTorch loop (with convlens's allocator setting if asked)."""
    if allocator:
        keep_freed_memory()
    started = time.perf_counter()
    dataset = datasets.load("fashion-mnist")
    x_test, y_test = to_tensors(dataset.test.images, dataset.test.labels)
    name = "plain PyTorch + allocator setting" if allocator else "plain PyTorch (lesson recipe)"
    name += f" on {device}" if device != "cpu" else ""
    outcome = Outcome(name, train_images=len(dataset.train))
    eval_seconds = 0.0

    def on_epoch(epoch: int, seconds: float, model) -> None:
        nonlocal eval_seconds
        eval_start = time.perf_counter()
        outcome.epoch_accuracy.append(accuracy(model, x_test, y_test, device=device))
        eval_seconds += time.perf_counter() - eval_start
        outcome.epoch_times.append(time.perf_counter() - started)

    train_lesson(dataset, epochs=epochs, on_epoch=on_epoch, device=device)
    outcome.train_seconds = outcome.epoch_times[-1] - eval_seconds
    return outcome


def run_keras(epochs: int) -> Outcome | None:
    """The lesson's exact Keras code, if TensorFlow is installed."""
    try:
        import tensorflow as tf  # type: ignore[import-not-found]
    except ImportError:
        return None
    started = time.perf_counter()
    dataset = datasets.load("fashion-mnist")
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
    """One line: time to the target, final accuracy, throughput and the per-epoch curve."""
    reached = outcome.seconds_to(target)
    when = f"{reached:6.1f} s" if reached is not None else "not reached"
    whole = f", command {outcome.command_seconds:.1f} s" if outcome.command_seconds else ""
    curve = " ".join(f"{a:.4f}" for a in outcome.epoch_accuracy)
    note = f" ({outcome.note})" if outcome.note else ""
    return (
        f"{outcome.name:<34} to {target:.1%}: {when}   final {outcome.final_accuracy:.4f} "
        f"after {outcome.epoch_times[-1]:.1f} s{whole}   {outcome.images_per_second:6.0f} img/s"
        f"{note}   per epoch: {curve}"
    )


def in_child(kind: str, epochs: int, device: str = "cpu") -> Outcome | None:
    """A reference run in a fresh Python process (this script with --child KIND)."""
    command = [sys.executable, __file__, "--child", kind, "--reference-epochs", str(epochs)]
    command += ["--device", device]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    last = finished.stdout.strip().splitlines()[-1]
    return None if last == "null" else Outcome(**json.loads(last))


def child_main(kind: str, epochs: int, device: str) -> None:
    """Run one reference here and print it as JSON (null when it cannot run)."""
    runners = {
        "plain": lambda: run_plain_torch(epochs, device=device),
        "plain-allocator": lambda: run_plain_torch(epochs, allocator=True),
        "keras": lambda: run_keras(epochs),
    }
    outcome = runners[kind]()
    print(json.dumps(None if outcome is None else asdict(outcome)))


def median_or_none(values: list[float | None]) -> float | None:
    """The median, or None when any value is missing (a seed that never reached the target)."""
    return None if any(v is None for v in values) else statistics.median(values)


def goals(ours: list[Outcome]) -> tuple[float, float]:
    """Issue 24's goals (to the target, whole command) for the precision the runs trained in."""
    return (0.6, 0.9) if all("bfloat16" in o.note for o in ours) else (0.7, 1.0)


def report(ours: list[Outcome], plain: Outcome, target: float) -> None:
    """The medians over seeds and the ratios against the plain loop's first epoch."""
    goal_target, goal_whole = goals(ours)
    first_epoch = plain.epoch_times[0]
    to_target = median_or_none([o.seconds_to(target) for o in ours])
    whole = statistics.median(o.command_seconds for o in ours)
    final = statistics.median(o.final_accuracy for o in ours)
    speed = statistics.median(o.images_per_second for o in ours)
    print(f"plain PyTorch's first epoch: {first_epoch:.1f} s (data loading and test included)")
    if to_target is None:
        print(f"convlens: {target:.1%} not reached by every seed")
    else:
        print(
            f"convlens median of {len(ours)}: to {target:.1%} {to_target:.1f} s = "
            f"{to_target / first_epoch:.2f} plain epochs (goal <= {goal_target})"
        )
    print(
        f"convlens whole command (report included): {whole:.1f} s = {whole / first_epoch:.2f} "
        f"plain epochs (goal <= {goal_whole}); final {final:.4f} against plain's {plain.final_accuracy:.4f} "
        f"after {len(plain.epoch_times)} epoch(s); {speed / plain.images_per_second:.2f}x its "
        "training throughput"
    )
    theirs = plain.seconds_to(target)
    if theirs is not None and to_target is not None:
        print(
            f"plain PyTorch reaches {target:.1%} at {theirs:.1f} s: {theirs / to_target:.1f}x later"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="convlens runs (median reported)")
    parser.add_argument("--target", type=float, default=0.91)
    parser.add_argument("--reference-epochs", type=int, default=5)
    parser.add_argument(
        "--train-args",
        default="",
        help='more `convlens train` options for a variant, e.g. "--precision float32"',
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu or cuda: where both convlens and the plain loop train (default cpu)",
    )
    parser.add_argument(
        "--child", choices=("plain", "plain-allocator", "keras"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.reference_epochs, args.device)
        return
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    options = [*args.train_args.split(), "--device", args.device]
    ours = [run_command(seed, *options) for seed in range(args.seeds)]
    for outcome in ours:
        print(describe(outcome, args.target), flush=True)
    plain = in_child("plain", args.reference_epochs, args.device)
    print(describe(plain, args.target), flush=True)
    if args.device == "cpu":
        tuned = in_child("plain-allocator", 1)
        print(describe(tuned, args.target), flush=True)
        keras = in_child("keras", args.reference_epochs)
        print(
            describe(keras, args.target) if keras else "TensorFlow is not installed: Keras skipped"
        )
    report(ours, plain, args.target)


if __name__ == "__main__":
    main()
