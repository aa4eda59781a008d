"""End to end on a CUDA GPU (issue 24, goal 5); every test skips where there is none.

CI has no GPU and most sessions are lent none, so tests/training/test_cuda_path.py
checks on the CPU what can be decided without one. These run the real thing
when a GPU is at hand, in one short call of the device machine:

    python -m pytest -q tests/training/test_on_gpu.py

Each trains on a tenth of the real Fashion-MNIST, on the GPU and on the CPU
with the same seed, and holds the GPU to the CPU's accuracy band; one counts
the copies between host and GPU while training (the dataset lives on the GPU,
so no batch is copied over); torchrun with NCCL needs two GPUs.
"""

from __future__ import annotations

import sys

import pytest
import torch
from test_distributed import train as train_command

from convlens.data import datasets
from convlens.model.network import build_network, pixels_to_tensor
from convlens.model.presets import preset
from convlens.runs.evaluate import predict_logits
from convlens.training.recipes import recipe_config
from convlens.training.train import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")

# The same seed on two devices rounds differently; their test accuracies stay within this.
BAND = 0.03
TRAIN_IMAGES = 6000  # a tenth of Fashion-MNIST: 94 steps an epoch at batch 64


@pytest.fixture(scope="module")
def fashion() -> datasets.Dataset:
    """The real Fashion-MNIST, training on its first 6,000 images; the whole test split."""
    return datasets.load("fashion-mnist").with_train_images(TRAIN_IMAGES)


def accuracy_on(device: str, model: str, recipe: str, dataset, **overrides) -> float:
    """Test accuracy of a short run of ``model`` with ``recipe`` on ``device``."""
    config = recipe_config(recipe, device=device, seed=0, **overrides)
    return fit(preset(model), dataset, config).test.accuracy


def test_the_lesson_cnn_trains_on_the_gpu_as_on_the_cpu(fashion):
    gpu = accuracy_on("cuda", "seed-cnn", "fast", fashion, epochs=2)
    cpu = accuracy_on("cpu", "seed-cnn", "fast", fashion, epochs=2)
    assert 0.8 < cpu < 0.95, cpu  # learning, not saturated: the comparison means something
    assert abs(gpu - cpu) <= BAND, (gpu, cpu)


def test_the_best_preset_trains_on_the_gpu_as_on_the_cpu(fashion):
    # Batch normalisation's running statistics move 1% a step (Keras's momentum 0.99), so
    # the test figure means something only after some 500 steps: batch 32, four epochs.
    short = {"epochs": 4, "batch_size": 32, "flip_augment": True, "test_time_flip": True}
    gpu = accuracy_on("cuda", "best", "best", fashion, **short)
    cpu = accuracy_on("cpu", "best", "best", fashion, **short)
    assert 0.7 < cpu < 0.95, cpu
    assert abs(gpu - cpu) <= BAND, (gpu, cpu)


def test_evaluation_on_the_gpu_gives_the_cpu_s_logits(fashion):
    network = build_network(preset("seed-cnn"), seed=0)
    pixels = pixels_to_tensor(fashion.test.images[:1000], (28, 28, 1))
    on_cpu = predict_logits(network, pixels)
    on_gpu = predict_logits(network.cuda(), pixels.cuda())
    assert on_gpu.device.type == "cpu"  # brought back, as on the CPU
    assert torch.allclose(on_gpu, on_cpu, atol=1e-3), (on_gpu - on_cpu).abs().max()


def test_training_copies_no_batch_between_host_and_gpu(fashion):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as trace:
        accuracy_on("cuda", "seed-cnn", "fast", fashion, epochs=1, keep_fraction=1.0)
    steps = TRAIN_IMAGES // recipe_config("fast").batch_size
    to_gpu = [e for e in trace.events() if "HtoD" in e.name]
    to_host = [e for e in trace.events() if "DtoH" in e.name]
    # The dataset, the weights and the labels go over once; an epoch's figures come back
    # once and the test logits once: a handful, never one a step.
    assert len(to_gpu) < steps // 4, [e.name for e in to_gpu][:10]
    assert len(to_host) < steps // 4, [e.name for e in to_host][:10]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="torchrun with NCCL needs two GPUs")
def test_torchrun_on_two_gpus_matches_one(tmp_path):
    from synthetic import pattern_dataset, write_idx_dataset

    mnist_dir = write_idx_dataset(tmp_path / "mnist", pattern_dataset(1200, 300))
    single, _ = train_command(mnist_dir, tmp_path / "one" / "run", [sys.executable], "cuda")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    double, _ = train_command(
        mnist_dir, tmp_path / "two" / "run", [*torchrun, "--nproc-per-node", "2"], "cuda"
    )
    assert double["processes"] == 2 and single["processes"] == 1
    assert abs(double["test_accuracy"] - single["test_accuracy"]) <= 0.05
