"""Data-parallel training with torchrun: two CPU processes against one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic import pattern_dataset, write_idx_dataset

from convlens.errors import ConvlensError
from convlens.training.distributed import Group, resolve_device

# Two processes see the same images in a different grouping, so the weights
# differ slightly; their test accuracy must stay within this of one process's.
TOLERANCE = 0.05


def test_shards_are_equal_disjoint_and_cover_all_but_the_remainder():
    order = torch.randperm(103)
    shards = [Group(rank, 4).shard(order) for rank in range(4)]
    assert {len(s) for s in shards} == {25}
    seen = torch.cat(shards)
    assert len(set(seen.tolist())) == 100 and set(seen.tolist()) <= set(order.tolist())


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConvlensError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConvlensError, match="no CUDA GPU"):
            resolve_device("cuda")


def train(
    mnist_dir: Path, out: Path, launcher: list[str], device: str = "cpu"
) -> tuple[dict, str]:
    """Metrics and printout of one `convlens train` of a small MNIST-like set, as launched."""
    command = [
        *launcher,
        "-m",
        "convlens",
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--lr",
        "0.0001",
        "--threads",
        "1",
        "--device",
        device,
        "--quiet",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text()), done.stdout


def test_two_processes_match_one_and_write_one_run(tmp_path):
    mnist_dir = write_idx_dataset(tmp_path / "mnist", pattern_dataset(1200, 300))
    single, _ = train(mnist_dir, tmp_path / "one" / "run", [sys.executable])
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    double, printed = train(mnist_dir, tmp_path / "two" / "run", torchrun)
    assert printed.count("training seed-cnn") == 1, printed  # rank 0 alone announces the run
    assert printed.count("run written to") == 1
    assert double["processes"] == 2 and single["processes"] == 1
    assert double["train_images"] == single["train_images"] == 1200
    assert abs(double["test_accuracy"] - single["test_accuracy"]) <= TOLERANCE
    assert abs(double["train_accuracy"] - single["train_accuracy"]) <= TOLERANCE
    assert (
        0.5 < double["test_accuracy"] < 1.0
    )  # learning, not saturated: the comparison means something
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["run"]  # rank 0 alone wrote
