"""Would Winograd F(2x2, 3x3) speed up the lesson's second convolution on this CPU?

The lesson's conv2d_1 (64 -> 64 channels, 13x13 -> 11x11, batch 64) costs
most of a training step and already runs near the matrix-multiply peak in
oneDNN's direct convolution. Winograd F(2x2, 3x3) does the same arithmetic
with 16 multiplies per 2x2 output tile instead of 36: 1.9x fewer in the GEMM
stage here (11x11 outputs round up to 6x6 tiles). This script builds it from
torch operations (input tiles by as_strided, the B/G/A transforms as additions
of slices, one batched GEMM over the 16 tile positions), checks it against
F.conv2d, and times both in the same process: the forward pass (the GEMM
stage alone, the whole Winograd convolution, oneDNN's convolution), then
forward + backward as training runs it (autograd through the Winograd graph
gives Winograd-domain GEMMs for both gradients: the transposed transforms).

    flock /tmp/convlens-bench.lock python benchmarks/winograd.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# F(2x2, 3x3) transform matrices (Lavin & Gray, 2016).
G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def weight_transform(weight: torch.Tensor) -> torch.Tensor:
    """(K, C, 3, 3) kernels -> (16, C, K): G g G^T for each of the 16 tile positions."""
    k, c = weight.shape[:2]
    return torch.einsum("ai,kcij,bj->abck", G, weight, G).reshape(16, c, k)


def input_tiles(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(N, C, H, W) channels_last -> B^T d B as (16, N * tiles, C), and the tile grid."""
    n, c, h, w = x.shape
    th, tw = (h - 1) // 2, (w - 1) // 2  # 2x2 output tiles covering (h - 2) x (w - 2)
    nhwc = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, 2 * tw + 2 - w, 0, 2 * th + 2 - h))
    s_n, s_h, s_w, s_c = nhwc.stride()
    d = nhwc.as_strided((n, th, tw, 4, 4, c), (s_n, 2 * s_h, 2 * s_w, s_h, s_w, s_c))
    d0, d1, d2, d3 = d.unbind(3)
    rows = torch.stack((d0 - d2, d1 + d2, d2 - d1, d1 - d3))  # (4, n, th, tw, 4, c)
    e0, e1, e2, e3 = rows.unbind(4)
    tiles = torch.stack((e0 - e2, e1 + e2, e2 - e1, e1 - e3), 1)  # (4, 4, n, th, tw, c)
    return tiles.reshape(16, n * th * tw, c), th, tw


def output_from_tiles(m: torch.Tensor, n: int, th: int, tw: int, h: int, w: int) -> torch.Tensor:
    """(16, N * tiles, K) products -> A^T m A as an (N, K, h - 2, w - 2) channels_last tensor."""
    m = m.view(4, 4, n, th, tw, -1)
    rows = torch.stack((m[0] + m[1] + m[2], m[1] - m[2] - m[3]))  # (2, 4, n, th, tw, k)
    y = torch.stack(
        (rows[:, 0] + rows[:, 1] + rows[:, 2], rows[:, 1] - rows[:, 2] - rows[:, 3]), 1
    )  # (2, 2, n, th, tw, k)
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, 2 * th, 2 * tw, -1)[:, : h - 2, : w - 2]
    return y.permute(0, 3, 1, 2)


def winograd_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A valid 3x3 convolution (cross-correlation) by Winograd F(2x2, 3x3)."""
    n, _, h, w = x.shape
    tiles, th, tw = input_tiles(x)
    products = torch.bmm(tiles, weight_transform(weight))
    return output_from_tiles(products, n, th, tw, h, w) + bias[:, None, None]


def milliseconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall milliseconds of ``fn`` over ``repeats`` calls, after a warm-up."""
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    """Check Winograd against F.conv2d, then time both at the lesson's conv2d_1 size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    cl = torch.channels_last
    x = torch.randn(args.batch, 64, 13, 13).contiguous(memory_format=cl)
    weight = torch.randn(64, 64, 3, 3).contiguous(memory_format=cl) * 0.05
    bias = torch.randn(64)
    error = (winograd_conv2d(x, weight, bias) - F.conv2d(x, weight, bias)).abs().max().item()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"largest difference from F.conv2d: {error:.2e}")
    tiles, th, tw = input_tiles(x)
    u = weight_transform(weight)
    direct = milliseconds(lambda: F.conv2d(x, weight, bias), args.repeats)
    gemm = milliseconds(lambda: torch.bmm(tiles, u), args.repeats)
    whole = milliseconds(lambda: winograd_conv2d(x, weight, bias), args.repeats)
    macs = args.batch * 11 * 11 * 64 * 64 * 9
    print(f"oneDNN direct convolution : {direct:7.2f} ms ({2 * macs / direct / 1e6:5.1f} GFLOP/s)")
    print(f"Winograd GEMM stage alone : {gemm:7.2f} ms ({direct / gemm:.2f}x faster than direct)")
    print(f"Winograd, transforms too  : {whole:7.2f} ms ({direct / whole:.2f}x direct's speed)")
    trained = [t.detach().requires_grad_() for t in (x, weight, bias)]
    grad = torch.randn(args.batch, 64, 11, 11).contiguous(memory_format=cl)

    def step(conv: Callable[..., torch.Tensor]) -> None:
        conv(*trained).backward(grad)

    direct_step = milliseconds(lambda: step(F.conv2d), args.repeats)
    winograd_step = milliseconds(lambda: step(winograd_conv2d), args.repeats)
    ratio = direct_step / winograd_step
    print(f"forward + backward, direct: {direct_step:7.2f} ms")
    print(f"forward + backward, Winograd: {winograd_step:5.2f} ms ({ratio:.2f}x direct's speed)")


if __name__ == "__main__":
    main()
