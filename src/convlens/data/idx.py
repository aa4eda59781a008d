"""The IDX file format that (Fashion-)MNIST ship in: read, every declared size checked.

An IDX file is a magic number (0, 0, type, dimensions), big-endian sizes and
the values; gzip-compressed files are read as they are. A header that claims
more than the file can hold is refused before anything is allocated.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convlens.errors import ConvlensError

# IDX type code (third magic byte) -> dtype of each value; multi-byte values are big-endian.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


_GZIP_MAGIC = b"\x1f\x8b"


# Deflate cannot expand data by more than about 1032:1, so a gzip file of n bytes holds at
# most ~1032 n bytes: a header claiming more is refused before anything is allocated.
_MAX_DEFLATE_RATIO = 1032


_READ_CHUNK = 1 << 22


REFETCH = "re-download it or delete it so convlens fetches it again"


def _corrupt(path: Path, cause: str) -> ConvlensError:
    return ConvlensError(f"{path} is not a valid IDX file ({cause}); {REFETCH}.")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into an array of its declared shape.

    Returns a writable native-endian array: uint8 for type code 0x08 (MNIST's images
    and labels), else int8, int16, int32, float32 or float64. Raises ConvlensError
    naming the file when it is missing, truncated, corrupt or not IDX.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            is_gzip = handle.read(2) == _GZIP_MAGIC
            if not is_gzip:
                handle.seek(0)
                return _read_idx_stream(handle, path, capacity=size)
    except FileNotFoundError:
        raise ConvlensError(f"{path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise ConvlensError(f"{path} is a folder, not an IDX file; check the path.") from None
    except OSError as exc:
        raise ConvlensError(
            f"{path} could not be read ({exc.strerror or exc}); {REFETCH}."
        ) from None
    try:
        with gzip.open(path, "rb") as stream:
            return _read_idx_stream(stream, path, capacity=size * _MAX_DEFLATE_RATIO)
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(path, f"its gzip data is corrupt: {exc}") from None


def _read_idx_stream(stream: BinaryIO, path: Path, capacity: int) -> np.ndarray:
    """Parse an IDX header and payload from ``stream`` holding at most ``capacity`` bytes."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise _corrupt(path, f"it has {len(magic)} bytes, fewer than the 4-byte magic number")
    if magic[:2] != b"\0\0":
        raise _corrupt(path, f"its magic number 0x{magic.hex()} does not start with two zero bytes")
    dtype = IDX_TYPES.get(magic[2])
    if dtype is None:
        raise _corrupt(path, f"its type code 0x{magic[2]:02x} is not an IDX type")
    ndim = magic[3]
    if ndim == 0:
        raise _corrupt(path, "its header declares no dimensions")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise _corrupt(path, f"it ends inside its header of {ndim} dimension sizes")
    shape = struct.unpack(f">{ndim}I", raw_dims)
    nbytes = math.prod(shape) * dtype.itemsize
    header_bytes = 4 + 4 * ndim
    if nbytes > capacity - header_bytes:
        raise _corrupt(
            path, f"its header declares {shape_text(shape)} values, more than the file can hold"
        )
    payload = _read_at_most(stream, nbytes + 1)
    if len(payload) < nbytes:
        raise _corrupt(
            path, f"it is truncated: {len(payload):,} of the {nbytes:,} declared bytes are there"
        )
    if len(payload) > nbytes:
        raise _corrupt(path, f"it has bytes after the {nbytes:,} bytes its header declares")
    native = dtype.newbyteorder("=")
    if nbytes == 0:
        return np.zeros(shape, dtype=native)
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(native, copy=False)


def _read_at_most(stream: BinaryIO, limit: int) -> bytearray:
    """Read up to ``limit`` bytes in chunks, so memory follows what the file really holds."""
    buffer = bytearray()
    while len(buffer) < limit:
        chunk = stream.read(min(_READ_CHUNK, limit - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def shape_text(shape: Sequence[int]) -> str:
    """(60000, 28, 28) -> '60,000x28x28', for sentences about sizes."""
    return "x".join(f"{n:,}" for n in shape)
