"""The best preset: `convlens train --model best` against a budget of 12 plain lesson epochs.

Runs, one after the other in fresh processes: the whole `convlens train
--model best --seed S` command for each seed (timed from its launch: start-up,
data, every epoch's test evaluation and the report included), then one epoch
of the plain PyTorch lesson loop (benchmarks/reference.py, data loading and
test included). Prints each seed's final test accuracy and time, the median
of the seeds, and the time as a number of plain epochs (the issue's goal: a
median of at least 94.0% in at most 12 plain epochs).

    flock /tmp/convlens-bench.lock python benchmarks/best_preset.py --seeds 3

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch
from time_to_accuracy import describe, in_child, run_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="convlens runs (median reported)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one")
    parser.add_argument("--goal", type=float, default=0.94, help="median test accuracy to reach")
    parser.add_argument("--budget", type=float, default=12.0, help="in plain lesson epochs")
    parser.add_argument(
        "--train-args",
        default="",
        help='more `convlens train` options for a variant, e.g. "--epochs 17"',
    )
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    options = ["--model", "best", *args.train_args.split()]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    ours = [run_command(seed, *options) for seed in seeds]
    for outcome in ours:
        print(describe(outcome, args.goal), flush=True)
    plain = in_child("plain", 1)
    print(describe(plain, args.goal), flush=True)
    epoch = plain.epoch_times[0]
    accuracy = statistics.median(o.final_accuracy for o in ours)
    seconds = statistics.median(o.command_seconds for o in ours)
    slowest = max(o.command_seconds for o in ours)
    print(f"plain PyTorch's first epoch: {epoch:.1f} s (data loading and test included)")
    print(
        f"best preset, median of {args.seeds}: test accuracy {accuracy:.4f} (goal >= "
        f"{args.goal:.4f}), whole command {seconds:.1f} s = {seconds / epoch:.2f} plain epochs "
        f"(slowest {slowest / epoch:.2f}; goal <= {args.budget:g})"
    )


if __name__ == "__main__":
    main()
