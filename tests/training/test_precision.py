"""Mixed precision (bfloat16 autocast) and the allocator setting used while training."""

from __future__ import annotations

import pytest
import torch

from convlens.errors import ConvlensError
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.training.allocator import keep_freed_memory
from convlens.training.precision import resolve_precision, training_precision
from convlens.training.recipes import RECIPES, recipe_config


def test_auto_is_bfloat16_only_where_native(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", cpu) == "float32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert resolve_precision("auto", cpu) == "bfloat16"
    assert resolve_precision("float32", cpu) == "float32"
    with pytest.raises(ConvlensError, match="unknown precision 'half'"):
        resolve_precision("half", cpu)


def test_lesson_recipe_stays_float32_and_bad_precision_is_refused() -> None:
    assert RECIPES["lesson"].precision == "float32"
    assert RECIPES["fast"].precision == "auto"
    with pytest.raises(ConvlensError, match="unknown precision"):
        recipe_config("fast", precision="fp8")


def test_bfloat16_runs_the_products_in_bfloat16_and_keeps_weights_float32() -> None:
    network = build_network(preset("seed-cnn"), seed=0)
    x = torch.rand(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with training_precision("bfloat16", torch.device("cpu")):
        mixed = network(x)
    with training_precision("float32", torch.device("cpu")):
        full = network(x)
    assert mixed.dtype == torch.bfloat16 and full.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in network.parameters())
    # bfloat16 keeps 8 bits of mantissa: the outputs agree to about 1%, not exactly
    assert torch.allclose(mixed.float(), full, atol=0.03)
    assert not torch.equal(mixed.float(), full)


def test_keep_freed_memory_is_idempotent() -> None:
    first = keep_freed_memory()
    assert keep_freed_memory() == first
