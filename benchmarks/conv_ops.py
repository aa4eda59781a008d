"""Time convlens.ops against the lesson's nested loops and scipy, in one process.

The job: a 3x3 filter (the lesson's worked example) over a 512x512 float64
image, "valid" padding, then 2x2 max pooling -> (255, 255). Three ways:

- the lesson's notebook: nested Python loops over every pixel, nine explicit
  multiply-adds, then a loop over 2x2 blocks keeping the biggest (it writes
  the valid (510, 510) map rather than the notebook's zero-bordered copy, so
  the three results can be compared);
- scipy.signal.correlate2d(mode="valid") and a NumPy reshape max-pool;
- convlens.ops.conv2d then convlens.ops.pool2d.

All three results are checked equal first. Times are the best of several runs
(the loops, which take seconds, run fewer times). The machine is shared, so
run it alone:

    flock /tmp/convlens-bench.lock python benchmarks/conv_ops.py

Measured on this project's shared 2-core CPU machine (load ~2): loops 1.27 s,
scipy + reshape 0.0171 s, convlens 0.0040 s, so convlens is 321x faster than
the loops and 4.3x faster than scipy (conv2d alone: 3.2x faster than correlate2d).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.signal import correlate2d

from convlens.lab import ops

SIZE = 512


def lesson_loops(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The notebook's way: a Python loop per pixel, then per 2x2 block. Returns (255, 255)."""
    f = kernel.tolist()
    size_x, size_y = image.shape
    transformed = np.zeros((size_x - 2, size_y - 2))
    for x in range(1, size_x - 1):
        for y in range(1, size_y - 1):
            convolution = 0.0
            convolution = convolution + (image[x - 1, y - 1] * f[0][0])
            convolution = convolution + (image[x - 1, y] * f[0][1])
            convolution = convolution + (image[x - 1, y + 1] * f[0][2])
            convolution = convolution + (image[x, y - 1] * f[1][0])
            convolution = convolution + (image[x, y] * f[1][1])
            convolution = convolution + (image[x, y + 1] * f[1][2])
            convolution = convolution + (image[x + 1, y - 1] * f[2][0])
            convolution = convolution + (image[x + 1, y] * f[2][1])
            convolution = convolution + (image[x + 1, y + 1] * f[2][2])
            transformed[x - 1, y - 1] = convolution
    new_x, new_y = transformed.shape[0] // 2, transformed.shape[1] // 2
    pooled = np.zeros((new_x, new_y))
    for x in range(0, 2 * new_x, 2):
        for y in range(0, 2 * new_y, 2):
            pixels = [
                transformed[x, y],
                transformed[x + 1, y],
                transformed[x, y + 1],
                transformed[x + 1, y + 1],
            ]
            pixels.sort(reverse=True)
            pooled[x // 2, y // 2] = pixels[0]
    return pooled


def scipy_way(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """scipy's correlate2d, then a reshape max-pool. Returns (255, 255)."""
    filtered = correlate2d(image, kernel, mode="valid")  # (510, 510)
    h, w = filtered.shape[0] // 2, filtered.shape[1] // 2
    return filtered[: 2 * h, : 2 * w].reshape(h, 2, w, 2).max(axis=(1, 3))


def convlens_way(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """convlens.ops: conv2d then pool2d. Returns (255, 255)."""
    return ops.pool2d(ops.conv2d(image, kernel), 2, mode="max")


def best_time(run: Callable[[], object], repeats: int, number: int) -> float:
    """Best seconds per call over ``repeats`` rounds of ``number`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            run()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def main() -> None:
    image = np.random.default_rng(0).uniform(0, 255, (SIZE, SIZE))  # float64
    kernel = np.asarray(ops.FILTERS["lesson"])
    reference = convlens_way(image, kernel)
    for way in (scipy_way, lesson_loops):
        np.testing.assert_allclose(way(image, kernel), reference, rtol=1e-12, atol=1e-9)

    loops = best_time(lambda: lesson_loops(image, kernel), repeats=2, number=1)
    scipy_s = best_time(lambda: scipy_way(image, kernel), repeats=7, number=10)
    ours = best_time(lambda: convlens_way(image, kernel), repeats=7, number=10)
    scipy_conv = best_time(lambda: correlate2d(image, kernel, mode="valid"), repeats=7, number=10)
    ours_conv = best_time(lambda: ops.conv2d(image, kernel), repeats=7, number=10)

    print(f"3x3 filter (valid) then 2x2 max pool on a {SIZE}x{SIZE} float64 image; results equal")
    print(f"  lesson loops        {loops:10.4f} s")
    print(f"  scipy + reshape     {scipy_s:10.4f} s")
    print(f"  convlens            {ours:10.4f} s")
    print(
        f"  convlens is {loops / ours:,.0f}x faster than the loops, {scipy_s / ours:.2f}x faster than scipy"
    )
    print(
        f"conv2d alone: scipy correlate2d {scipy_conv:.4f} s, convlens {ours_conv:.4f} s "
        f"({scipy_conv / ours_conv:.2f}x)"
    )


if __name__ == "__main__":
    main()
