"""Runs survive faults: SIGKILL and Ctrl-C at real processes, then --resume, bit for bit."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from synthetic import pattern_dataset, write_idx_dataset

from convlens.errors import ConvlensError
from convlens.model.network import build_network
from convlens.runs.directory import CHECKPOINT_FILE, partial_path
from convlens.training.checkpoint import load_checkpoint, save_checkpoint

EPOCHS = 3


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), pattern_dataset(480, 100))


def train_command(mnist_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "convlens",
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def resume_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "convlens", "train", "--resume", str(out), "--quiet"]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def saved_epoch(out: Path) -> int:
    try:
        return load_checkpoint(partial_path(out)).epoch
    except ConvlensError:
        return 0


def start_and_wait(command: list[str], out: Path, epoch: int) -> subprocess.Popen:
    """Start training and return once the checkpoint of ``epoch`` is on disk."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while saved_epoch(out) < epoch:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    return process


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "weights.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(mnist_dir: Path, tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("ref") / "run"
    done = run(train_command(mnist_dir, out))
    assert done.returncode == 0, done.stderr
    assert not (out / CHECKPOINT_FILE).exists()  # a finished run carries no checkpoint
    return weights(out)


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("kill_after_epoch", [1, 2])
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(
    mnist_dir, tmp_path, uninterrupted, kill_after_epoch
):
    out = tmp_path / "run"
    process = start_and_wait(train_command(mnist_dir, out), out, kill_after_epoch)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not out.exists()  # nothing published
    assert load_checkpoint(partial_path(out)).epoch >= kill_after_epoch  # last good one loads
    done = run(resume_command(out))
    assert done.returncode == 0, done.stderr
    assert_same(weights(out), uninterrupted)
    assert not partial_path(out).exists()


def test_sigint_saves_says_how_to_resume_and_exits_130(mnist_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    process = start_and_wait(train_command(mnist_dir, out), out, 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"convlens train --resume {out}" in stderr and "Traceback" not in stderr
    done = run(resume_command(out))
    assert done.returncode == 0, done.stderr
    assert_same(weights(out), uninterrupted)


def test_killed_before_the_first_epoch_leaves_nothing_to_resume(mnist_dir, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(train_command(mnist_dir, out), stderr=subprocess.PIPE)
    time.sleep(0.3)
    process.kill()
    process.communicate()
    done = run(resume_command(out))
    assert done.returncode == 2
    assert "no interrupted run" in done.stderr or "no checkpoint" in done.stderr


def test_a_waiting_interrupted_run_is_not_overwritten(mnist_dir, tmp_path):
    out = tmp_path / "run"
    staging = partial_path(out)
    staging.mkdir(parents=True)
    (staging / CHECKPOINT_FILE).write_bytes(b"placeholder")
    done = run(train_command(mnist_dir, out))
    assert done.returncode == 2
    assert "--resume" in done.stderr
    assert (staging / CHECKPOINT_FILE).read_bytes() == b"placeholder"


def test_a_cut_off_checkpoint_never_loads(tmp_path):
    from convlens.model.presets import preset
    from convlens.training.train import TrainingState

    network = build_network(preset("seed-dnn"), seed=0)
    optimizer = torch.optim.Adam(network.parameters())
    network(torch.rand(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    state = TrainingState(
        1,
        1,
        [],
        network.state_dict(),
        optimizer.state_dict(),
        torch.Generator().get_state(),
        torch.get_rng_state(),
    )
    path = save_checkpoint(tmp_path, state)
    again = load_checkpoint(tmp_path)
    assert again.epoch == 1 and torch.equal(again.network["dense.weight"], network.dense.weight)
    assert torch.equal(
        again.optimizer["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ConvlensError, match="is damaged"):
            load_checkpoint(tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary behind


def test_a_full_disk_is_one_sentence_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from dataclasses import replace

    from convlens.model.presets import preset
    from convlens.training.recipes import TrainConfig
    from convlens.training.train import train_to_run

    real_save = save_checkpoint

    def disk_fills_after_one_epoch(directory, state):
        if state.epoch >= 2:
            raise OSError(28, "No space left on device")
        return real_save(directory, state)

    monkeypatch.setattr("convlens.training.train.save_checkpoint", disk_fills_after_one_epoch)
    config = replace(TrainConfig(), epochs=3, batch_size=32)
    with pytest.raises(ConvlensError, match="No space left on device.*intact") as caught:
        train_to_run(preset("seed-dnn"), pattern_dataset(96, 32), config, out=tmp_path / "run")
    assert "\n" not in str(caught.value)
    assert load_checkpoint(partial_path(tmp_path / "run")).epoch == 1
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_from_before_ema_and_selection_resumes_without_them(mnist_dir, tmp_path):
    from dataclasses import replace

    from convlens.training.train import find_resumable

    out = tmp_path / "run"
    process = start_and_wait(train_command(mnist_dir, out), out, 1)
    process.kill()
    process.communicate()
    staging = partial_path(out)
    state = load_checkpoint(staging)
    config = {
        k: v
        for k, v in state.info["config"].items()
        if k not in ("ema_decay", "keep_fraction", "select_from_epoch")
    }
    old = replace(state, average=None, selection=None, info={**state.info, "config": config})
    save_checkpoint(staging, old)  # as a version without either wrote it
    resumable = find_resumable(out)
    assert resumable.config.ema_decay == 0.0 and resumable.config.keep_fraction == 1.0
    done = run(resume_command(out))
    assert done.returncode == 0, done.stderr
    rows = (out / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[-1] for row in rows][1:] == ["480"] * (EPOCHS - 1)  # every image
