"""The CUDA path, checked on a machine without a GPU (issue 24, goal 5).

A GPU is lent to this project only now and then, so what can be decided
without one is tested here by making torch report a GPU: which device
``auto`` picks, which precision it trains in, and which process-group
backend torchrun's processes join. The end-to-end GPU runs are
tests/training/test_on_gpu.py (skipped without a GPU) and benchmarks/
(time_to_accuracy.py --device cuda), with figures in BENCHMARKS.md.
"""

from __future__ import annotations

import pytest
import torch

from convlens.errors import ConvlensError
from convlens.training import distributed
from convlens.training.distributed import join, resolve_device
from convlens.training.precision import resolve_precision

CUDA = torch.device("cuda")


def pretend_gpu(monkeypatch: pytest.MonkeyPatch, present: bool, bf16: bool = True) -> None:
    """Make torch report a CUDA GPU (with or without bfloat16) or none."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: present)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


def test_auto_picks_the_gpu_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_gpu(monkeypatch, present=True)
    assert resolve_device("auto") == CUDA
    assert resolve_device("cuda") == CUDA
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_asked_without_a_gpu_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_gpu(monkeypatch, present=False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConvlensError, match=r"no CUDA GPU is available; use cpu\.$"):
        resolve_device("cuda")


def test_gpu_precision_follows_its_bfloat16_support(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_gpu(monkeypatch, present=True, bf16=True)
    assert resolve_precision("auto", CUDA) == "bfloat16"
    assert resolve_precision("float32", CUDA) == "float32"
    pretend_gpu(monkeypatch, present=True, bf16=False)  # e.g. a T4 or older
    assert resolve_precision("auto", CUDA) == "float32"


def test_torchrun_on_gpus_joins_with_nccl_on_its_local_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    joined: dict[str, object] = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: joined.update(gpu=index))
    monkeypatch.setattr(
        torch.distributed, "init_process_group", lambda backend: joined.update(backend=backend)
    )
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    group = join(CUDA)
    assert joined == {"gpu": 1, "backend": "nccl"}
    assert (group.rank, group.world, group.is_main) == (1, 2, False)
    joined.clear()
    join(torch.device("cpu"))
    assert joined == {"backend": "gloo"}


def test_alone_joins_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert join(CUDA) is distributed.SINGLE
