"""What `convlens train` costs after its last epoch, and what `--help` costs (issue 24, goal 3).

Runs `convlens train --epochs 1 --seed S` in fresh processes, one after the
other, and times from the moment the last epoch's line arrives to the
command's exit (the report, every figure, the files, the interpreter's exit);
checks every figure the report promises is there. Then times `convlens
--help` and `convlens summary` and says whether either imported torch.

    flock /tmp/convlens-bench.lock python benchmarks/after_training.py --repeats 3

The goal is absolute (at most 1.0 s after the last epoch), so run it alone.
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

GOAL_SECONDS = 1.0
FIGURES = (
    "curves.png",
    "per_class.png",
    "confusion.png",
    "journey.png",
    "feature_maps.png",
    "filters.png",
    "misclassified.png",
    "mistakes_why.png",
)
TORCH_CHECK = (
    "import runpy, sys; sys.argv = ['convlens', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('convlens', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('TORCH-IMPORTED' if 'torch' in sys.modules else 'TORCH-ABSENT', file=sys.stderr)"
)


def tail_seconds(seed: int, scratch: Path) -> tuple[float, float, list[str]]:
    """(last epoch line -> exit, whole command) seconds and the figures missing from the run."""
    out = scratch / f"run{seed}"
    command = [sys.executable, "-m", "convlens", "train", "--epochs", "1", "--seed", str(seed)]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "--quiet", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last_epoch = None
    for line in child.stdout:
        if line.startswith("epoch "):
            last_epoch = time.perf_counter()
    if child.wait() != 0 or last_epoch is None:
        raise SystemExit(f"convlens train --seed {seed} failed ({child.returncode})")
    ended = time.perf_counter()
    missing = [name for name in FIGURES if not (out / "figures" / name).is_file()]
    missing += [] if (out / "report.html").is_file() else ["report.html"]
    return ended - last_epoch, ended - started, missing


def command_seconds(*arguments: str) -> tuple[float, bool]:
    """Seconds `convlens ARGUMENTS` takes in a fresh process, and whether it imported torch."""
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", TORCH_CHECK, *arguments], capture_output=True, text=True
    )
    return time.perf_counter() - started, "TORCH-IMPORTED" in finished.stderr


def main() -> None:
    """Time the tail of --repeats one-epoch runs, then --help and summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tails = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.repeats):
            tail, whole, missing = tail_seconds(seed, Path(scratch))
            tails.append(tail)
            state = "every figure there" if not missing else f"MISSING {', '.join(missing)}"
            print(f"seed {seed}: last epoch -> exit {tail:.2f} s (whole {whole:.1f} s); {state}")
    median = statistics.median(tails)
    verdict = "met" if median <= GOAL_SECONDS else "not met"
    print(f"median of {len(tails)}: {median:.2f} s after the last epoch (goal <= 1.0 s: {verdict})")
    for arguments in (["--help"], ["summary"]):
        seconds, torch_imported = command_seconds(*arguments)
        said = "imports torch" if torch_imported else "does not import torch"
        print(f"convlens {' '.join(arguments)}: {seconds:.2f} s, {said}")
    print(json.dumps({"tail_seconds": tails, "median": median}))


if __name__ == "__main__":
    main()
