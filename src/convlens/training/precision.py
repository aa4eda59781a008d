"""Mixed precision: the training step's matrix products in bfloat16 where the hardware has it.

A processor with native bfloat16 arithmetic (AVX512-BF16 or AMX on x86, a CUDA
GPU that supports it) multiplies bfloat16 matrices about twice as fast as
float32 ones. Under ``torch.autocast`` the convolutions and dense layers of the
forward pass (and so their gradients) run in bfloat16 while the weights, the
optimiser's moments, the loss and every evaluation stay float32: the mixed
precision that Keras calls the "mixed_bfloat16" policy. On the lesson's CNN it
trains about 1.7x faster per image with the same accuracy (benchmarks/
time_to_accuracy.py). Where the hardware lacks bfloat16 it would be slower, so
"auto" keeps float32 there.
"""

from __future__ import annotations

import torch

from convlens.training.recipes import check_precision


def has_native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (so mixed precision pays)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision --precision NAME trains in: auto picks bfloat16 where it is native."""
    check_precision(name)
    if name == "auto":
        return "bfloat16" if has_native_bfloat16(device) else "float32"
    return name


def training_precision(precision: str, device: torch.device) -> torch.autocast:
    """A context autocasting the forward pass to bfloat16 when ``precision`` (resolved) says so."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def describe(precision: str) -> str:
    """One line for the training banner."""
    if precision == "bfloat16":
        return (
            "mixed precision: convolutions and dense layers in bfloat16, native on this "
            "processor; weights, loss and test accuracy in float32 (--precision float32 "
            "turns it off)"
        )
    return "precision: float32"
