"""Keep freed memory in the process while training, instead of handing it back every step.

Each training step allocates and frees the same activation buffers (the
lesson's CNN: about 11 MB for the first convolution's output at batch 64).
glibc's malloc serves blocks that large with fresh mmap() calls and returns
them to the kernel on free, or trims the top of its heap, so every step pays
page faults to zero-fill memory it just gave back: on a 2-core machine that
doubled the first epoch's time (12 s against 6.5 s, benchmarks/
time_to_accuracy.py). Raising malloc's mmap and trim thresholds keeps those
buffers in the heap for reuse, as PyTorch's CUDA caching allocator does on a
GPU. The cost is memory the process holds after training (at most the trim
threshold), so ``release_freed_memory`` hands it back when training ends:
what follows (the report) starts from the memory training left, not from
its peak, and keeps at most REPORT_TRIM_THRESHOLD free for reuse (glibc's
own 128 KiB, with the mmap threshold left raised, made every forward pass of
the report's attribution maps fault its buffers in again: 0.39 s against
0.19 s). Elsewhere than glibc this does nothing.

With the buffers in the heap, a small block that outlives them can pin the
space around it: test evaluation kept each batch's logits (5 KB) in a list
among the first convolution's maps, and one default run in four to six
peaked at 640-800 MiB instead of about 410 (issue 24's goal: 550).
``runs.evaluate.predict_logits`` therefore writes every batch's logits into
one block, allocated once with the first batch (34 runs: 402-451 MiB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed: blocks below it come from the heap
TRIM_THRESHOLD = 512 * 1024 * 1024  # free heap top kept before trimming
REPORT_TRIM_THRESHOLD = 64 * 1024 * 1024  # kept once training has ended and handed back the rest


def _libc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # a libc without mallopt
        return None
    return libc


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (training's buffers stay); True if they were set."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def release_freed_memory() -> bool:
    """Give the heap's free memory back to the kernel; from then on keep at most
    REPORT_TRIM_THRESHOLD of it free for reuse."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    libc.mallopt(M_TRIM_THRESHOLD, REPORT_TRIM_THRESHOLD)
    return True
