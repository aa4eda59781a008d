"""Fuzzing the parsers a user can feed: model JSON, safetensors weights, images, IDX.

The property for every parser: given any bytes, the call returns normally or
raises ConvlensError (one clear sentence); any other exception fails, and a
header claiming a huge size must be refused without allocating (tracemalloc
peak under 50 MB). How long each case takes is a benchmark's question
(benchmarks/parsers.py), not an assertion. Every test is
bounded (max_examples), so the whole module runs in well under a minute.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from synthetic import idx_bytes, pattern_dataset, write_idx_dataset

from convlens.data import datasets
from convlens.data.idx import read_idx
from convlens.errors import ConvlensError
from convlens.images import decode_image, read_image
from convlens.model.files import SPEC_FILE, WEIGHTS_FILE, read_spec
from convlens.model.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
from convlens.model.network import build_network
from convlens.model.sequential import Sequential
from convlens.model.weights import load_model, save_model

HUGE_PEAK_BYTES = 50_000_000
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def outcome(call: Callable[[], Any]) -> str:
    """Run ``call``: "ok" if it returns, "refused" on ConvlensError; any other exception fails.

    How long a case takes is measured in benchmarks/parsers.py, never asserted here.
    """
    try:
        call()
        result = "ok"
    except ConvlensError as exc:
        assert str(exc).strip(), "a ConvlensError must carry its sentence"
        result = "refused"
    event(result)  # tallied by --hypothesis-show-statistics
    return result


def peak_bytes(call: Callable[[], Any]) -> tuple[str, int]:
    """``outcome(call)`` and the peak of Python-traced memory while it ran (bytes)."""
    tracemalloc.start()
    try:
        result = outcome(call)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def flip_bytes(payload: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    """``payload`` with each (position, xor mask) applied, then ``cut`` bytes dropped at the end."""
    mutated = bytearray(payload)
    for position, mask in edits:
        mutated[position % len(mutated)] ^= mask
    return bytes(mutated[: max(0, len(mutated) - cut)])


edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=6)


# --- the model JSON loader ----------------------------------------------------------------------


def tiny_model() -> Sequential:
    """A 55-parameter model touching every kind of state: conv, batch norm, pooling, dense."""
    return Sequential(
        [
            Conv2D(2, (3, 3), activation="relu", input_shape=(6, 6, 1)),
            BatchNormalization(),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        name="tiny",
        class_names=("a", "b", "c"),
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny model; tests overwrite its files with mutated copies of the originals."""
    directory = tmp_path_factory.mktemp("model")
    model = tiny_model()
    save_model(directory, model, build_network(model, seed=0))
    return directory


@pytest.fixture(scope="module")
def good_weights(model_dir: Path) -> bytes:
    return (model_dir / WEIGHTS_FILE).read_bytes()


@pytest.fixture(scope="module")
def good_spec() -> dict[str, Any]:
    return tiny_model().config()


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30)])
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["Dense", "Conv2D", "Flatten", "same", "valid", "relu", "a.b", ""])
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
spec_keys = st.sampled_from(["name", "input_shape", "layers", "class_names", "extra"])
layer_keys = st.sampled_from(
    [
        "type",
        "name",
        "units",
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "pool_size",
        "activation",
        "use_bias",
        "momentum",
        "epsilon",
        "rate",
        "input_shape",
    ]
)


def write_spec(directory: Path, content: bytes) -> Path:
    path = directory / SPEC_FILE
    path.write_bytes(content)
    return path


def mutate_spec(spec: dict[str, Any], changes: list[tuple[int, str, Any]]) -> dict[str, Any]:
    """A copy of ``spec`` with fields set to other values: (layer index or -1 for top, key, value)."""
    mutated = copy.deepcopy(spec)
    for where, key, value in sorted(changes, key=lambda change: change[0] < 0):
        target = mutated if where < 0 else mutated["layers"][where % len(mutated["layers"])]
        target[key] = value  # layer fields first: a top-level change may replace "layers"
    return mutated


@FUZZ
@given(value=json_value)
def test_spec_any_json_value(tmp_path: Path, value: Any) -> None:
    outcome(lambda: read_spec(write_spec(tmp_path, json.dumps(value).encode())))


@FUZZ
@given(
    top=st.lists(st.tuples(st.just(-1), spec_keys, json_value), max_size=2),
    layers=st.lists(st.tuples(st.integers(0, 4), layer_keys, json_value), max_size=3),
)
def test_spec_fields_of_random_types(
    model_dir: Path, good_spec: dict[str, Any], top: list, layers: list
) -> None:
    """A valid spec with fields replaced by random JSON: read alone, then loaded with weights."""
    text = json.dumps(mutate_spec(good_spec, top + layers)).encode()
    try:
        outcome(lambda: read_spec(write_spec(model_dir, text)))
        outcome(lambda: load_model(model_dir))  # the weights check must refuse a mismatch
    finally:
        write_spec(model_dir, json.dumps(good_spec).encode())


@FUZZ
@given(edits=edits, cut=st.integers(0, 64), garbage=st.binary(max_size=16))
def test_spec_mutated_bytes(
    tmp_path: Path, good_spec: dict[str, Any], edits: list, cut: int, garbage: bytes
) -> None:
    text = json.dumps(good_spec).encode()
    outcome(lambda: read_spec(write_spec(tmp_path, flip_bytes(text, edits, cut) + garbage)))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.binary(max_size=300)
    | st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n)
    | st.integers(1, 200_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    | st.sampled_from([b"\xff\xfe{}", b"\xc3\x28", b"1e999", b"NaN", b"-Infinity", b"\0"])
)
def test_spec_random_bytes_and_deep_nesting(tmp_path: Path, payload: bytes) -> None:
    outcome(lambda: read_spec(write_spec(tmp_path, payload)))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(10**5, 10**18),
    shape=st.sampled_from(["input", "units", "filters"]),
)
def test_spec_claiming_huge_sizes_is_refused_before_allocating(
    model_dir: Path, good_spec: dict[str, Any], size: int, shape: str
) -> None:
    """A model.json with a huge input or layer must not build a huge network for its weights."""
    spec = copy.deepcopy(good_spec)
    if shape == "input":
        spec["input_shape"] = [size, size, 1]
    elif shape == "units":
        spec["layers"][-1]["units"] = size
    else:
        spec["layers"][0]["filters"] = size
    write_spec(model_dir, json.dumps(spec).encode())
    try:
        result, peak = peak_bytes(lambda: load_model(model_dir))
    finally:
        write_spec(model_dir, json.dumps(good_spec).encode())
    assert result == "refused" and peak < HUGE_PEAK_BYTES


# --- the safetensors weights loader -------------------------------------------------------------


def write_weights(directory: Path, content: bytes) -> None:
    (directory / WEIGHTS_FILE).write_bytes(content)


def split_weights(good: bytes) -> tuple[dict[str, Any], bytes]:
    """A safetensors file's header (as JSON) and its data section."""
    (length,) = struct.unpack("<Q", good[:8])
    return json.loads(good[8 : 8 + length]), good[8 + length :]


def join_weights(header: dict[str, Any], body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def load_weights(directory: Path, content: bytes, good: bytes) -> str:
    """outcome of load_model on ``directory`` with ``content`` as its weights; restores them."""
    write_weights(directory, content)
    try:
        return outcome(lambda: load_model(directory))
    finally:
        write_weights(directory, good)


@FUZZ
@given(edits=edits, cut=st.integers(0, 400))
def test_weights_byte_flips_and_truncation(
    model_dir: Path, good_weights: bytes, edits: list, cut: int
) -> None:
    result = load_weights(model_dir, flip_bytes(good_weights, edits, cut), good_weights)
    if cut and not edits:
        assert result == "refused"


@FUZZ
@given(claimed=st.integers(0, 2**64 - 1) | st.integers(0, 4096))
def test_weights_header_length_claiming_huge_size(
    model_dir: Path, good_weights: bytes, claimed: int
) -> None:
    """The 8-byte little-endian header length is checked against the file before any allocation."""
    content = struct.pack("<Q", claimed) + good_weights[8:]
    write_weights(model_dir, content)
    try:
        result, peak = peak_bytes(lambda: load_model(model_dir))
    finally:
        write_weights(model_dir, good_weights)
    if claimed > len(content) - 8:
        assert result == "refused"
    assert peak < HUGE_PEAK_BYTES


dtypes = st.sampled_from(
    ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "U16", "BOOL", "C64"]
    + ["F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "XX", ""]
)
dims = st.integers(0, 8) | st.integers(-3, 2**64 + 3)
lies = st.lists(
    st.one_of(
        st.tuples(st.just("dtype"), dtypes),
        st.tuples(st.just("shape"), st.lists(dims, max_size=4) | json_value),
        st.tuples(st.just("data_offsets"), st.lists(dims, min_size=2, max_size=2) | json_value),
        st.tuples(st.just("rename"), st.text(max_size=20)),
    ),
    min_size=1,
    max_size=3,
)


@FUZZ
@given(which=st.integers(0, 100), lies=lies, keep_offsets_consistent=st.booleans())
def test_weights_header_lies_about_offsets_shapes_dtypes(
    model_dir: Path, good_weights: bytes, which: int, lies: list, keep_offsets_consistent: bool
) -> None:
    header, body = split_weights(good_weights)
    truth = tensor_kinds(header)
    names = sorted(k for k in header if k != "__metadata__")
    name = names[which % len(names)]
    for field, value in lies:
        if field == "rename":
            header[value] = header.pop(name)
            name = value
        else:
            header[name][field] = value
    if keep_offsets_consistent:
        header, body = _repack(header, body)
    result = load_weights(model_dir, join_weights(header, body), good_weights)
    if tensor_kinds(header) != truth:  # a name, dtype or shape the network does not have
        assert result == "refused"


def tensor_kinds(header: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each tensor's (dtype, shape) by name, as a safetensors header declares them."""
    return {
        key: (entry.get("dtype"), entry.get("shape"))
        for key, entry in header.items()
        if key != "__metadata__" and isinstance(entry, dict)
    }


def _repack(header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
    """Recompute data offsets from (possibly lying) shapes and dtypes, so the library accepts more."""
    sizes = {"F64": 8, "I64": 8, "C64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "U16": 2}
    start, chunks = 0, []
    for key, entry in header.items():
        if key == "__metadata__" or not isinstance(entry, dict):
            continue
        shape = entry.get("shape")
        if not (isinstance(shape, list) and all(isinstance(n, int) and 0 <= n < 64 for n in shape)):
            return header, body
        count = int(np.prod(shape)) if shape else 1
        size = count * sizes.get(entry.get("dtype"), 1)
        entry["data_offsets"] = [start, start + size]
        chunks.append(b"\x01" * size)
        start += size
    return header, b"".join(chunks)


@FUZZ
@given(payload=st.binary(max_size=600))
def test_weights_random_bytes(model_dir: Path, good_weights: bytes, payload: bytes) -> None:
    assert load_weights(model_dir, payload, good_weights) == "refused"


# --- the image loader ---------------------------------------------------------------------------


def encoded(format_: str, mode: str = "RGB", size: tuple[int, int] = (9, 7)) -> bytes:
    """A small valid image in ``format_`` (PNG, JPEG, BMP, GIF, WEBP)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=format_)
    return buffer.getvalue()


SAMPLES = [
    encoded("PNG"),
    encoded("PNG", "L"),
    encoded("PNG", "RGBA"),
    encoded("PNG", "P"),
    encoded("PNG", "I;16"),
    encoded("JPEG"),
    encoded("JPEG", "L"),
    encoded("BMP"),
    encoded("BMP", "1"),
    encoded("GIF", "P"),
    encoded("WEBP"),
    encoded("TIFF"),  # not a suffix predict picks up, but read_image opens it by content
    encoded("GIF", "P", (40, 30)),
    encoded("JPEG", "RGB", (40, 30)),
]


def decode_both(tmp_path: Path, payload: bytes) -> None:
    """decode_image on the bytes and read_image on a file holding them must agree."""
    from_bytes = outcome(lambda: decode_image(payload, "fuzz"))
    path = tmp_path / "fuzz.img"
    path.write_bytes(payload)
    assert outcome(lambda: read_image(path)) == from_bytes


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt TIFF tags
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sample=st.sampled_from(SAMPLES), edits=edits, cut=st.integers(0, 200))
def test_image_mutated_files(tmp_path: Path, sample: bytes, edits: list, cut: int) -> None:
    decode_both(tmp_path, flip_bytes(sample, edits, cut))


@FUZZ
@given(
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF89a", b"RIFF"]),
    payload=st.binary(max_size=300),
)
def test_image_random_bytes(tmp_path: Path, prefix: bytes, payload: bytes) -> None:
    decode_both(tmp_path, prefix + payload)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (valid CRC) over a few bytes of data."""
    import zlib

    good = encoded("PNG", "L", (2, 2))
    ihdr = struct.pack(">II", width, height) + good[24:29]
    chunk = b"IHDR" + ihdr
    return (
        good[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + good[33:]
    )


def _bmp_claiming(width: int, height: int) -> bytes:
    good = bytearray(encoded("BMP", "RGB", (2, 2)))
    good[18:26] = struct.pack("<ii", width, height)
    return bytes(good)


def _gif_claiming(width: int, height: int) -> bytes:
    good = bytearray(encoded("GIF", "P", (2, 2)))
    good[6:10] = struct.pack("<HH", width, height)
    return bytes(good)


def _jpeg_claiming(width: int, height: int) -> bytes:
    good = bytearray(encoded("JPEG", "L", (2, 2)))
    sof = good.index(b"\xff\xc0")
    good[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(good)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    maker=st.sampled_from([_png_claiming, _bmp_claiming, _gif_claiming, _jpeg_claiming]),
    width=st.integers(7_000, 65_535),  # 7,000 x 7,000 is 49 megapixels, over the 40 limit
    height=st.integers(7_000, 65_535),
)
def test_image_header_claiming_huge_size(
    tmp_path: Path, maker: Callable[[int, int], bytes], width: int, height: int
) -> None:
    """Over 40 megapixels claimed in a tiny file: refused quickly, without allocating."""
    payload = maker(width, height)
    path = tmp_path / "huge.img"
    path.write_bytes(payload)
    for call in (lambda: decode_image(payload, "huge"), lambda: read_image(path)):
        result, peak = peak_bytes(call)
        assert result == "refused" and peak < HUGE_PEAK_BYTES


# --- IDX through the dataset loader -------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("idx"), pattern_dataset(20, 10))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.integers(0, 3),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
    compress=st.booleans(),
)
def test_idx_header_claiming_huge_size_through_load(
    mnist_dir: Path, tmp_path: Path, which: int, dims: list[int], compress: bool
) -> None:
    """datasets.load on a set whose one file claims any shape: refused fast unless it truly fits."""
    import gzip
    import shutil

    folder = tmp_path / "set"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(mnist_dir, folder)
    target = folder / f"{datasets.IDX_FILES[which]}.gz"
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    payload = header + b"\0" * 64
    target.unlink()
    if compress:
        target.write_bytes(gzip.compress(payload))
    else:
        target.with_suffix("").write_bytes(payload)
    result, peak = peak_bytes(lambda: datasets.load("mnist", folder))
    assert peak < HUGE_PEAK_BYTES
    if np.prod(dims, dtype=object) > 64:
        assert result == "refused"


@FUZZ
@given(edits=edits, cut=st.integers(0, 30))
def test_idx_mutated_through_read_idx(tmp_path: Path, edits: list, cut: int) -> None:
    path = tmp_path / "fuzz-idx"
    path.write_bytes(
        flip_bytes(idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5)), edits, cut)
    )
    outcome(lambda: read_idx(path))
