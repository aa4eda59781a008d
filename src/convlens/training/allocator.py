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
threshold). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed: blocks below it come from the heap
TRIM_THRESHOLD = 512 * 1024 * 1024  # free heap top kept before trimming

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they were set."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _done
