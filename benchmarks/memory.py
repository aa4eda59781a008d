"""Peak resident memory of the default `convlens train` against the lesson's own Keras code.

Each run is a fresh process (`convlens train --seed S`, then TensorFlow's Keras
running the lesson's exact code when tensorflow is installed), measured by
the kernel's accounting of the child's peak resident set (wait4's ru_maxrss,
the figure `/usr/bin/time -v` prints as "Maximum resident set size"). Prints each run's peak, the largest, and
the ratio against the Keras reference (issue 24's goal: at most half of it,
550 MiB, every run).

    flock /tmp/convlens-bench.lock python benchmarks/memory.py --runs 6

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GOAL_MIB = 550.0
KERAS_LESSON = """
import numpy as np, tensorflow as tf
from convlens.data import datasets
data = datasets.load("fashion-mnist")
x, y = data.train.images / 255.0, data.train.labels
xt, yt = data.test.images / 255.0, data.test.labels
model = tf.keras.models.Sequential([
    tf.keras.layers.Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1)),
    tf.keras.layers.MaxPooling2D(2, 2),
    tf.keras.layers.Conv2D(64, (3, 3), activation="relu"),
    tf.keras.layers.MaxPooling2D(2, 2),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=EPOCHS, verbose=0)
model.evaluate(xt, yt, verbose=0)
"""


def peak_mib(command: list[str]) -> float:
    """The peak resident memory of ``command`` (MiB), from the kernel's accounting of the child."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {child.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024  # kilobytes on Linux


def convlens_peak(seed: int, options: list[str]) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "convlens", "train", "--seed", str(seed), "--quiet"]
        return peak_mib([*command, *options, "--out", str(Path(scratch) / "run")])


def keras_peak(epochs: int) -> float | None:
    try:
        import tensorflow  # noqa: F401  # type: ignore[import-not-found]
    except ImportError:
        return None
    return peak_mib([sys.executable, "-c", KERAS_LESSON.replace("EPOCHS", str(epochs))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="convlens runs (seeds 0..runs-1)")
    parser.add_argument("--train-args", default="", help="extra `convlens train` options")
    parser.add_argument("--keras-epochs", type=int, default=5, help="the lesson's Keras epochs")
    parser.add_argument(
        "--keras-mib", type=float, help="the Keras reference's peak, when TensorFlow is absent"
    )
    args = parser.parse_args()
    peaks = []
    for seed in range(args.runs):
        peaks.append(convlens_peak(seed, args.train_args.split()))
        print(
            f"convlens train --seed {seed} {args.train_args}: peak {peaks[-1]:.0f} MiB", flush=True
        )
    reference = keras_peak(args.keras_epochs) or args.keras_mib
    worst = max(peaks)
    print(
        f"largest of {len(peaks)}: {worst:.0f} MiB (goal {GOAL_MIB:.0f} MiB); "
        f"spread {min(peaks):.0f}-{worst:.0f} MiB"
    )
    if reference:
        print(
            f"TF-Keras, the lesson's code: {reference:.0f} MiB; largest / Keras = "
            f"{worst / reference:.2f} (goal at most 0.5)"
        )
    else:
        print("TensorFlow is not installed: give the Keras reference with --keras-mib")


if __name__ == "__main__":
    main()
