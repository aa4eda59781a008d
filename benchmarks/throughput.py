"""Training throughput of the lesson's CNN as a fraction of this machine's matmul peak.

Measures, in one process: the best matrix multiply rate (GFLOP/s) over a few
square sizes in float32 and, where convlens trains in it, bfloat16; then
images per second of one training step (forward, backward, Adam) at the
default batch size for the plain PyTorch reference (float32, first, before
anything changes the process), and for convlens as `convlens train` runs it
(its allocator setting, its precision) and in float32. FLOPs per training
image are counted from the spec (every multiply-add of the forward pass,
times 2 for FLOPs, times 3 for forward + both backward products), so each
fraction is of real work, against the peak of the precision the step used.

    flock /tmp/convlens-bench.lock python benchmarks/throughput.py
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from reference import lesson_model

from convlens.model.layers import Conv2D, Dense
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.training.allocator import keep_freed_memory
from convlens.training.optimizer import Adam
from convlens.training.precision import resolve_precision, training_precision
from convlens.training.recipes import TrainConfig


def matmul_peak(
    sizes: tuple[int, ...] = (1024, 2048), repeats: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """Best GEMM rate in GFLOP/s over the given square sizes, in ``dtype``."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def forward_macs(name: str = "seed-cnn") -> int:
    """Multiply-adds of one image's forward pass through a preset."""
    total = 0
    for row in preset(name).rows:
        layer = row.layer
        if isinstance(layer, Conv2D):
            h, w, f = row.output_shape
            total += h * w * f * layer.kernel_size[0] * layer.kernel_size[1] * row.input_shape[-1]
        elif isinstance(layer, Dense):
            total += row.input_shape[0] * layer.units
    return total


def step_rate(
    model: torch.nn.Module,
    batch: int,
    steps: int,
    channels_last: bool,
    optimizer_class: type = torch.optim.Adam,
    precision: str = "float32",
) -> float:
    """Images per second of forward + backward + Adam on random data."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.rand(batch, 1, 28, 28).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    optimizer = optimizer_class(model.parameters(), lr=1e-3)
    cpu = torch.device("cpu")

    def step() -> None:
        with training_precision(precision, cpu):
            logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    torch.manual_seed(0)
    precision = resolve_precision("auto", torch.device("cpu"))
    peaks = {"float32": matmul_peak()}
    if precision == "bfloat16":
        peaks["bfloat16"] = matmul_peak(dtype=torch.bfloat16)
    flops = 3 * 2 * forward_macs()
    shown = ", ".join(f"{name} {peak:.1f}" for name, peak in peaks.items())
    print(
        f"matmul peak GFLOP/s: {shown}; {flops / 1e6:.1f} MFLOP per training image; "
        f"{torch.get_num_threads()} threads"
    )
    plain = step_rate(lesson_model(), 32, args.steps * args.batch_size // 32, False)
    keep_freed_memory()  # as fit() does; after the plain loop, which runs as users have it
    network = build_network(preset("seed-cnn"), seed=0)
    rates = [("plain PyTorch (batch 32)", "float32", plain)]
    for chosen in dict.fromkeys((precision, "float32")):
        rate = step_rate(network, args.batch_size, args.steps, True, Adam, chosen)
        rates.append((f"convlens (batch {args.batch_size}, {chosen})", chosen, rate))
    for name, chosen, rate in rates:
        achieved = rate * flops / 1e9
        print(
            f"{name:<34} {rate:7.0f} img/s  {achieved:5.1f} GFLOP/s  "
            f"{achieved / peaks[chosen]:5.1%} of the {chosen} peak"
        )
    print(f"convlens / plain: {rates[1][2] / plain:.2f}x")


if __name__ == "__main__":
    main()
