"""Tests for convlens.data: the IDX reader, the Fashion-MNIST/MNIST search, image folders.

Every test makes its own small files; only the one slow test reads the real Fashion-MNIST
(and only when Debian's copy is installed). The network is never used: ``_download`` is
replaced for every test, and the real one is exercised through file:// URLs.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convlens.data import datasets
from convlens.data.datasets import IDX_FILES, Dataset, load
from convlens.data.idx import read_idx
from convlens.errors import ConvlensError

REAL_SYSTEM_ROOT = datasets.SYSTEM_DATA_ROOT
REAL_DOWNLOAD = datasets._download


# --- helpers ------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array`` (big-endian values, as the format wants)."""
    code = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    kind = f"{array.dtype.kind}{array.dtype.itemsize}"
    header = bytes([0, 0, code[kind], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as IDX at ``path``, gzip-compressed when the name ends in .gz."""
    payload = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def make_set(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 images and labels 0..9, keyed by IDX file stem."""
    rng = np.random.default_rng(seed)
    return {
        IDX_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_FILES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        IDX_FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_FILES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_set(directory: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> dict:
    """Write a generated four-file IDX set into ``directory``; return its arrays."""
    arrays = make_set(n_train, n_test)
    for stem, array in arrays.items():
        write_idx(directory / (f"{stem}.gz" if gz else stem), array)
    return arrays


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real system copy, cache, CONVLENS_DATA or network in any test."""
    monkeypatch.setattr(datasets, "SYSTEM_DATA_ROOT", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("CONVLENS_DATA", raising=False)

    def no_network(url: str, dest: Path) -> None:
        raise datasets.DownloadError(f"downloading {url} failed (no network in tests)")

    monkeypatch.setattr(datasets, "_download", no_network)
    return tmp_path


# --- read_idx -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5),
        np.array([7, 0, 255], dtype=np.uint8),
        np.array([[-3, 4]], dtype=np.int8),
        np.array([-70000, 1, 2**31 - 1], dtype=np.int32),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([np.pi], dtype=np.float64),
        np.array([-300, 300], dtype=np.int16),
        np.zeros((0, 28, 28), dtype=np.uint8),
    ],
    ids=["u8-3d", "u8-1d", "i8", "i32", "f32", "f64", "i16", "empty"],
)
def test_read_idx_round_trips(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = write_idx(tmp_path / f"file{suffix}", array)
    result = read_idx(path)
    assert result.shape == array.shape
    assert result.dtype == array.dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_returns_a_writable_array(tmp_path: Path) -> None:
    for name in ("a", "a.gz"):
        assert read_idx(write_idx(tmp_path / name, np.ones((2, 3), np.uint8))).flags.writeable


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    raw_named_gz = tmp_path / "labels.gz"
    raw_named_gz.write_bytes(idx_bytes(array))
    gz_named_raw = tmp_path / "labels"
    gz_named_raw.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)
    np.testing.assert_array_equal(read_idx(gz_named_raw), array)


def corrupt_message(path: Path, payload: bytes, compress: bool) -> str:
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(ConvlensError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message
    assert "re-download it or delete it so convlens fetches it again." in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    return message


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_truncated_payload_is_refused(tmp_path: Path, compress: bool) -> None:
    good = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    message = corrupt_message(tmp_path / "t", good[:-100], compress)
    assert "truncated" in message or "more than the file can hold" in message


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_trailing_garbage_is_refused(tmp_path: Path, compress: bool) -> None:
    good = idx_bytes(np.zeros((4, 5), np.uint8))
    assert "bytes after" in corrupt_message(tmp_path / "t", good + b"junk", compress)


@pytest.mark.parametrize(
    ("header", "cause"),
    [
        (b"\x01\x00\x08\x01", "two zero bytes"),
        (b"\x00\x00\x07\x01", "type code 0x07"),
        (b"\x00\x00\x08\x00", "no dimensions"),
        (b"\x00\x00", "fewer than the 4-byte magic number"),
        (b"", "fewer than the 4-byte magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "ends inside its header"),
    ],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_bad_header_is_refused(tmp_path: Path, header: bytes, cause: str, compress: bool) -> None:
    assert cause in corrupt_message(tmp_path / "h", header, compress)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_huge_declared_size_fails_fast_without_allocating(tmp_path: Path, compress: bool) -> None:
    # Claims 4294967295^3 uint8 values (and, second, 47 MB of images) in a tiny file.
    for dims in ((2**32 - 1,) * 3, (60000, 28, 28)):
        header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", *dims)
        tracemalloc.start()
        try:
            message = corrupt_message(tmp_path / "huge", header + b"\0" * 64, compress)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert "more than the file can hold" in message
        assert peak < 2_000_000


def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.uint8) % 7)))
    compressed[len(compressed) // 2] ^= 0xFF  # a flipped byte in the deflate stream
    path = tmp_path / "c.gz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(ConvlensError, match="gzip data is corrupt"):
        read_idx(path)
    path.write_bytes(bytes(compressed[: len(compressed) - 30]))  # cut short
    with pytest.raises(ConvlensError, match=r"c\.gz is not a valid IDX file"):
        read_idx(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ConvlensError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(ConvlensError, match="is a folder"):
        read_idx(tmp_path)


def _check_fuzz(payload: bytes, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz"
        path.write_bytes(gzip.compress(payload) if compress else payload)
        try:
            result = read_idx(path)
        except ConvlensError:
            return
        assert isinstance(result, np.ndarray)


@settings(max_examples=120, deadline=None)
@given(
    prefix=st.sampled_from([b"", b"\x1f\x8b", b"\x1f\x8b\x08", b"\0\0\x08", b"\0\0\x0d\x02"]),
    payload=st.binary(max_size=200),
    compress=st.booleans(),
)
def test_fuzz_random_bytes(prefix: bytes, payload: bytes, compress: bool) -> None:
    _check_fuzz(prefix + payload, compress)


@settings(max_examples=120, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 19), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 40),
    compress=st.booleans(),
)
def test_fuzz_mutated_headers(edits: list[tuple[int, int]], cut: int, compress: bool) -> None:
    payload = bytearray(idx_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4)))
    for position, value in edits:
        payload[position] = value
    _check_fuzz(bytes(payload[: len(payload) - cut]), compress)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(1, 255))
def test_fuzz_mutated_gzip_stream(position: int, value: int) -> None:
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(300, dtype=np.uint8))))
    compressed[position % len(compressed)] ^= value
    _check_fuzz(bytes(compressed), compress=False)


# --- Fashion-MNIST and MNIST ---------------------------------------------------------------


def test_loads_a_generated_set_from_data_dir(tmp_path: Path) -> None:
    arrays = write_set(tmp_path / "mine", n_train=20, n_test=10)
    dataset = load("fashion-mnist", tmp_path / "mine")
    assert isinstance(dataset, Dataset)
    assert dataset.name == "fashion-mnist"
    assert dataset.source == str(tmp_path / "mine")
    assert dataset.class_names == datasets.FASHION_MNIST_CLASSES
    assert dataset.train.images.shape == (20, 28, 28, 1) and dataset.test.images.shape == (
        10,
        28,
        28,
        1,
    )
    assert dataset.train.images.dtype == np.uint8 and dataset.train.labels.dtype == np.int64
    np.testing.assert_array_equal(dataset.train.images[..., 0], arrays[IDX_FILES[0]])
    np.testing.assert_array_equal(dataset.test.labels, arrays[IDX_FILES[3]])
    assert dataset.image_shape == (28, 28, 1) and dataset.num_classes == 10


def test_raw_files_and_the_subfolder_form_are_accepted(tmp_path: Path) -> None:
    write_set(tmp_path / "root" / "fashion-mnist", n_train=11, gz=False)
    dataset = load("fashion-mnist", tmp_path / "root")
    assert len(dataset.train) == 11
    assert dataset.source == str(tmp_path / "root" / "fashion-mnist")


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    places = {
        "data_dir": tmp_path / "given",
        "env": tmp_path / "env" / "fashion-mnist",
        "system": tmp_path / "system" / "fashion-mnist",
        "cache": tmp_path / "xdg-cache" / "convlens" / "fashion-mnist",
    }
    for n_train, directory in enumerate(places.values(), start=11):
        write_set(directory, n_train=n_train)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env"))
    assert len(load("fashion-mnist", places["data_dir"]).train) == 11
    assert len(load("fashion-mnist").train) == 12  # CONVLENS_DATA
    monkeypatch.delenv("CONVLENS_DATA")
    assert len(load("fashion-mnist").train) == 13  # the system copy
    for stem in IDX_FILES:
        (places["system"] / f"{stem}.gz").unlink()
    assert load("fashion-mnist").source == str(places["cache"])


def test_an_incomplete_place_is_passed_over(tmp_path: Path) -> None:
    write_set(tmp_path / "given", n_train=11)
    (tmp_path / "given" / f"{IDX_FILES[3]}.gz").unlink()
    write_set(tmp_path / "system" / "fashion-mnist", n_train=13)
    assert len(load("fashion-mnist", tmp_path / "given").train) == 13


def test_a_data_dir_that_is_not_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConvlensError, match="is not a folder"):
        load("fashion-mnist", tmp_path / "typo")


def test_describe_search_lists_places_in_order(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env"))
    places = datasets.describe_search("mnist", tmp_path / "d")
    assert [label for label, _ in places] == [
        "--data-dir",
        "--data-dir",
        "CONVLENS_DATA",
        "CONVLENS_DATA",
        "system copy",
        "user cache",
    ]
    assert places[0][1] == tmp_path / "d" / "mnist" and places[1][1] == tmp_path / "d"
    assert places[-2][1] == tmp_path / "system" / "mnist"
    assert places[-1][1] == tmp_path / "xdg-cache" / "convlens" / "mnist"


def test_cache_defaults_to_home_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir("mnist") == tmp_path / "home" / ".cache" / "convlens" / "mnist"


def test_missing_everywhere_names_every_place_and_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env"))
    (tmp_path / "given").mkdir()
    with pytest.raises(ConvlensError) as caught:
        load("fashion-mnist", tmp_path / "given")
    message = str(caught.value)
    for _, place in datasets.describe_search("fashion-mnist", tmp_path / "given"):
        assert str(place) in message
    assert datasets.SOURCES["fashion-mnist"].mirror in message
    assert "no network in tests" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_missing_mnist_points_to_data_dir_and_convlens_data() -> None:
    with pytest.raises(ConvlensError) as caught:
        load("mnist")
    message = str(caught.value)
    assert "--data-dir" in message and "CONVLENS_DATA" in message
    assert "apt-get" not in message
    assert "ossci-datasets.s3.amazonaws.com/mnist/" in message


def test_mnist_goes_through_the_same_path(tmp_path: Path) -> None:
    arrays = write_set(tmp_path / "d" / "mnist", n_train=30, n_test=7)
    dataset = load("MNIST", tmp_path / "d")
    assert dataset.name == "mnist"
    assert dataset.class_names == tuple("0123456789")
    assert dataset.train.images.shape == (30, 28, 28, 1) and len(dataset.test) == 7
    np.testing.assert_array_equal(dataset.train.labels, arrays[IDX_FILES[1]])


def test_images_and_labels_of_different_lengths_are_refused(tmp_path: Path) -> None:
    write_set(tmp_path / "d", n_train=20)
    write_idx(tmp_path / "d" / f"{IDX_FILES[1]}.gz", np.zeros(19, np.uint8))
    with pytest.raises(ConvlensError, match=r"holds 20 images but .* holds 19 labels"):
        load("fashion-mnist", tmp_path / "d")


def test_labels_outside_the_classes_are_refused(tmp_path: Path) -> None:
    write_set(tmp_path / "d", n_train=20)
    write_idx(tmp_path / "d" / f"{IDX_FILES[3]}.gz", np.full(10, 10, np.uint8))
    with pytest.raises(ConvlensError, match=r"has label 10, outside 0\.\.9"):
        load("fashion-mnist", tmp_path / "d")


def test_images_that_are_not_28x28_are_refused(tmp_path: Path) -> None:
    write_set(tmp_path / "d", n_train=20)
    write_idx(tmp_path / "d" / f"{IDX_FILES[0]}.gz", np.zeros((20, 28 * 28), np.uint8))
    with pytest.raises(ConvlensError, match="not 28x28 uint8 images"):
        load("fashion-mnist", tmp_path / "d")


def test_a_corrupt_file_in_the_chosen_place_is_reported(tmp_path: Path) -> None:
    write_set(tmp_path / "d")
    (tmp_path / "d" / f"{IDX_FILES[2]}.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ConvlensError, match="t10k-images-idx3-ubyte.gz is not a valid IDX file"):
        load("fashion-mnist", tmp_path / "d")


def test_named_datasets_can_be_resized_and_made_rgb(tmp_path: Path) -> None:
    arrays = write_set(tmp_path / "d", n_train=4, n_test=3)
    rgb = load("fashion-mnist", tmp_path / "d", channels=3)
    assert rgb.train.images.shape == (4, 28, 28, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb.train.images[..., channel], arrays[IDX_FILES[0]])
    small = load("fashion-mnist", tmp_path / "d", image_size=(14, 14))
    assert small.train.images.shape == (4, 14, 14, 1) and small.test.images.shape == (3, 14, 14, 1)
    padded = load("fashion-mnist", tmp_path / "d", image_size=(32, 33), channels=3)
    assert padded.train.images.shape == (4, 32, 33, 3)  # LeNet-5's way: zeros around 28x28
    np.testing.assert_array_equal(padded.train.images[:, 2:30, 2:30, 1], arrays[IDX_FILES[0]])
    assert padded.train.images.sum() == 3 * int(arrays[IDX_FILES[0]].sum(dtype=np.int64))


# --- Downloading ------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake mirror: generated .gz files, their SHA-256s published, every call recorded."""
    files = {f"{stem}.gz": gzip.compress(idx_bytes(a)) for stem, a in make_set(9, 4).items()}
    checksums = {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}
    source = dataclasses.replace(datasets.SOURCES["fashion-mnist"], sha256=checksums)
    monkeypatch.setitem(datasets.SOURCES, "fashion-mnist", source)
    calls: list[tuple[str, Path]] = []

    def fake_download(url: str, dest: Path) -> None:
        calls.append((url, dest))
        dest.write_bytes(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(datasets, "_download", fake_download)
    return {"files": files, "calls": calls}


def test_download_is_verified_and_written_atomically_into_the_cache(tmp_path, served) -> None:
    dataset = load("fashion-mnist")
    cache = tmp_path / "xdg-cache" / "convlens" / "fashion-mnist"
    assert dataset.source == str(cache) and len(dataset.train) == 9
    mirror = datasets.SOURCES["fashion-mnist"].mirror
    assert sorted(url for url, _ in served["calls"]) == sorted(mirror + n for n in served["files"])
    for url, dest in served["calls"]:
        final = cache / url.rsplit("/", 1)[1]
        assert dest.parent == cache and dest != final  # a temporary file beside the final one
        assert final.read_bytes() == served["files"][final.name]
    assert sorted(os.listdir(cache)) == sorted(served["files"])  # no temporary left behind
    load("fashion-mnist")
    assert len(served["calls"]) == 4  # the second load reads the cache


def test_download_fills_in_only_what_the_cache_lacks(tmp_path, served) -> None:
    cache = tmp_path / "xdg-cache" / "convlens" / "fashion-mnist"
    cache.mkdir(parents=True)
    kept = f"{IDX_FILES[0]}.gz"
    (cache / kept).write_bytes(served["files"][kept])
    load("fashion-mnist")
    assert [url.rsplit("/", 1)[1] for url, _ in served["calls"]] == [
        f"{stem}.gz" for stem in IDX_FILES[1:]
    ]


def test_checksum_mismatch_leaves_no_file_behind(tmp_path, served, monkeypatch) -> None:
    def tampered(url: str, dest: Path) -> None:
        dest.write_bytes(b"\x1f\x8b tampered bytes")

    monkeypatch.setattr(datasets, "_download", tampered)
    with pytest.raises(ConvlensError) as caught:
        load("fashion-mnist")
    message = str(caught.value)
    assert "SHA-256" in message and "not the published" in message
    assert "apt-get install dataset-fashion-mnist" in message
    cache = tmp_path / "xdg-cache" / "convlens" / "fashion-mnist"
    assert not cache.exists() or os.listdir(cache) == []


def test_real_download_copies_the_bytes_at_a_url(tmp_path: Path) -> None:
    origin = tmp_path / "origin.bin"
    origin.write_bytes(bytes(range(256)) * 100)
    dest = tmp_path / "copy.bin"
    REAL_DOWNLOAD(origin.as_uri(), dest)
    assert dest.read_bytes() == origin.read_bytes()


def test_real_download_failure_is_a_convlens_error(tmp_path: Path) -> None:
    with pytest.raises(ConvlensError, match="failed"):
        REAL_DOWNLOAD((tmp_path / "absent.gz").as_uri(), tmp_path / "dest")
    with pytest.raises(ConvlensError, match="failed"):
        REAL_DOWNLOAD("not a url", tmp_path / "dest")


def test_real_download_refuses_an_oversized_body(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 1000)
    origin = tmp_path / "big.bin"
    origin.write_bytes(b"x" * 5000)
    with pytest.raises(ConvlensError, match="more than 1,000 bytes"):
        REAL_DOWNLOAD(origin.as_uri(), tmp_path / "dest")


# --- Image folders --------------------------------------------------------------------------------


def make_folder(root: Path, counts: dict[str, int], shape=(10, 12, 3)) -> Path:
    """Class subfolders of PNGs; image k of a class has every pixel equal to its own value."""
    value = 1
    for name, count in counts.items():
        for k in range(count):
            save_png(root / name / f"{k:03d}.png", np.full(shape, value, np.uint8))
            value += 1
    return root


def test_folder_colour_and_size_follow_the_images(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    save_png(root / "red" / "a.png", np.full((10, 12, 3), (255, 0, 0), np.uint8))
    save_png(root / "red" / "b.png", np.full((10, 12, 3), (255, 0, 0), np.uint8))
    save_png(root / "blue" / "a.png", np.full((40, 40, 3), (0, 0, 255), np.uint8))
    save_png(root / "blue" / "b.png", np.full((40, 40, 3), (0, 0, 255), np.uint8))
    dataset = load(root)
    assert dataset.name == "shapes" and dataset.source == str(root)
    assert dataset.class_names == ("blue", "red")
    # two sizes: the median height of 10, 10, 40, 40 is 25, of the widths 12, 12, 40, 40 is 26
    assert dataset.image_shape == (25, 26, 3)
    assert dataset.input_why.startswith("25x26x3: the median of your images' 2 sizes; colour")
    assert len(dataset.train) == 2 and len(dataset.test) == 2
    images = np.concatenate([dataset.train.images, dataset.test.images])
    labels = np.concatenate([dataset.train.labels, dataset.test.labels])
    assert {tuple(p) for p in images[labels == 1].reshape(-1, 3)} == {(255, 0, 0)}
    assert {tuple(p) for p in images[labels == 0].reshape(-1, 3)} == {(0, 0, 255)}


def test_folder_read_as_grayscale_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        for k in range(2):
            save_png(root / name / f"{k}.png", np.full((10, 12, 3), colour, np.uint8))
    dataset = load(root, image_size=(28, 28), channels=1)
    assert dataset.image_shape == (28, 28, 1)
    images = np.concatenate([dataset.train.images, dataset.test.images])
    labels = np.concatenate([dataset.train.labels, dataset.test.labels])
    assert set(np.unique(images[labels == 1])) == {76}  # ITU-R 601 luma of pure red
    assert set(np.unique(images[labels == 0])) == {29}  # and of pure blue


def test_gray_pictures_stored_as_rgb_are_one_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "gray"
    for name in ("a", "b"):
        for k in range(3):
            level = rng.integers(0, 256, (16, 16, 1)).astype(np.uint8)
            save_png(root / name / f"{k}.png", np.repeat(level, 3, axis=2))  # R = G = B
    dataset = load(root)
    assert dataset.image_shape == (16, 16, 1)
    assert "no colour" in dataset.input_why


def test_a_grayscale_folder_keeps_one_channel_and_its_size(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2}, shape=(12, 20))
    dataset = load(root)
    assert dataset.image_shape == (12, 20, 1)
    assert dataset.input_why == "12x20x1: your images' size; grayscale as your images are"


def test_a_chosen_size_is_capped_and_raised_to_the_minimum(tmp_path: Path) -> None:
    big = make_folder(tmp_path / "big", {"a": 2, "b": 2}, shape=(100, 80))
    assert load(big).image_shape == (64, 64, 1)
    assert "(100x80) capped at 64" in load(big).input_why
    small = make_folder(tmp_path / "small", {"a": 2, "b": 2}, shape=(8, 8))
    raised = load(small, minimum=(28, 28))
    assert raised.image_shape == (28, 28, 1)
    assert "(8x8) raised to the model's smallest input" in raised.input_why


def test_a_held_out_split_is_recorded_and_reused(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"a": 6, "b": 9}, shape=(5, 5))
    first = load(root, seed=4)
    assert first.split is not None and first.split["seed"] == 4
    names = first.split["test_files"]
    assert len(names) == len(first.test) and all(n.count("/") == 1 for n in names)
    # a later load with another seed but the recorded files tests on the same images
    again = load(root, seed=9, test_files=names)
    np.testing.assert_array_equal(again.test.images, first.test.images)
    np.testing.assert_array_equal(again.train.labels, first.train.labels)
    (root / names[0]).unlink()
    with pytest.raises(ConvlensError, match="was in the run's test split but is not in the"):
        load(root, test_files=names)


def test_train_and_test_folders_record_no_split(tmp_path: Path) -> None:
    root = tmp_path / "f"
    make_folder(root / "train", {"cat": 2, "dog": 2}, shape=(5, 5))
    make_folder(root / "test", {"cat": 1, "dog": 1}, shape=(5, 5))
    assert load(root).split is None


def test_folder_to_three_channels_and_resized(tmp_path: Path) -> None:
    root = tmp_path / "f"
    for name in ("grey", "more grey"):
        save_png(root / name / "a.png", np.full((20, 20), 200, np.uint8))
        save_png(root / name / "b.png", np.full((20, 20), 200, np.uint8))
    dataset = load(str(root), image_size=(8, 6), channels=3)
    assert dataset.train.images.shape == (2, 8, 6, 3) and dataset.test.images.shape == (2, 8, 6, 3)
    assert set(np.unique(dataset.train.images)) == {200}


def test_stratified_split_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"a": 5, "b": 10, "c": 2})
    first = load(root, test_fraction=0.2, seed=3)
    again = load(root, test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(first.test.images, again.test.images)
    np.testing.assert_array_equal(first.train.labels, again.train.labels)
    assert np.bincount(first.test.labels, minlength=3).tolist() == [1, 2, 1]
    assert np.bincount(first.train.labels, minlength=3).tolist() == [4, 8, 1]
    chosen = {tuple(np.unique(load(root, seed=seed).test.images[:, 0, 0, 0])) for seed in range(6)}
    assert len(chosen) > 1  # other seeds hold out other images
    everything = np.concatenate([first.train.images, first.test.images])[:, 0, 0, 0]
    assert sorted(everything.tolist()) == sorted(set(everything.tolist()))  # no image twice


def test_every_class_with_two_images_is_in_both_splits(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"x": 2, "y": 3, "z": 40}, shape=(4, 4))
    dataset = load(root, test_fraction=0.05)
    assert set(dataset.test.labels.tolist()) == {0, 1, 2}
    assert set(dataset.train.labels.tolist()) == {0, 1, 2}


def test_train_and_test_folders(tmp_path: Path) -> None:
    root = tmp_path / "f"
    make_folder(root / "train", {"cat": 3, "dog": 2, "emu": 2}, shape=(5, 5))
    make_folder(root / "test", {"dog": 1, "emu": 2}, shape=(5, 5))
    dataset = load(root)
    assert dataset.class_names == ("cat", "dog", "emu")
    assert dataset.train.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert dataset.test.labels.tolist() == [1, 2, 2]


def test_test_classes_missing_from_train_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "f"
    make_folder(root / "train", {"cat": 1, "dog": 1}, shape=(5, 5))
    make_folder(root / "test", {"cat": 1, "yak": 1}, shape=(5, 5))
    with pytest.raises(ConvlensError, match=r"has classes that .* lacks \(yak\)"):
        load(root)


def test_only_one_of_train_and_test_is_refused(tmp_path: Path) -> None:
    make_folder(tmp_path / "f" / "train", {"cat": 2}, shape=(5, 5))
    with pytest.raises(ConvlensError, match="only one of train/ and test/"):
        load(tmp_path / "f")


def test_a_non_image_file_is_skipped_and_a_broken_image_named(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2}, shape=(5, 5))
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / ".DS_Store").write_bytes(b"\0\1")  # hidden clutter is not even counted
    save_png(root / "b" / "more" / "nested.PNG", np.full((5, 5), 9, np.uint8))  # subfolders too
    dataset = load(root, test_fraction=0.3)
    assert dataset.skipped == ("b/notes.txt",)
    assert len(dataset.train) + len(dataset.test) == 5
    (root / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ConvlensError, match=r"broken\.png is not an image"):
        load(root)


def test_an_empty_folder_or_class_is_one_clear_sentence(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConvlensError, match="has no class subfolders"):
        load(tmp_path / "empty")
    root = make_folder(tmp_path / "f", {"a": 2}, shape=(5, 5))
    (root / "b").mkdir()
    with pytest.raises(ConvlensError, match=r"[/\\]b has no images"):
        load(root)


def test_a_class_too_small_to_split_is_one_sentence(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"a": 5, "tiny": 1}, shape=(5, 5))
    with pytest.raises(ConvlensError, match="class 'tiny' in .* has 1 image, too few to hold"):
        load(root)


def test_unknown_dataset_lists_the_choices() -> None:
    with pytest.raises(ConvlensError) as caught:
        load("cifar-10")
    message = str(caught.value)
    assert "'cifar-10'" in message and "fashion-mnist" in message and "mnist" in message
    assert "folder" in message


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"channels": 2}, "channels must be 1"),
        ({"image_size": (0, 28)}, "not two positive numbers"),
        ({"image_size": (28,)}, "not two positive numbers"),
        ({"test_fraction": 1.0}, "between 0 and 1"),
        ({"test_fraction": 0.0}, "between 0 and 1"),
    ],
)
def test_bad_options_are_refused(options: dict, match: str) -> None:
    with pytest.raises(ConvlensError, match=match):
        load("fashion-mnist", **options)


# --- The real data -----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    if datasets._find_files(REAL_SYSTEM_ROOT / "fashion-mnist") is None:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    monkeypatch.setattr(datasets, "SYSTEM_DATA_ROOT", REAL_SYSTEM_ROOT)
    dataset = load("fashion-mnist")
    assert dataset.source == str(REAL_SYSTEM_ROOT / "fashion-mnist")
    assert dataset.train.images.shape == (60000, 28, 28, 1)
    assert dataset.test.images.shape == (10000, 28, 28, 1)
    assert dataset.train.images.dtype == np.uint8 and dataset.test.labels.dtype == np.int64
    assert dataset.num_classes == 10 and dataset.class_names[9] == "Ankle boot"
    assert np.bincount(dataset.train.labels).tolist() == [6000] * 10
    assert np.bincount(dataset.test.labels).tolist() == [1000] * 10


def test_a_folder_of_one_class_is_one_sentence(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", {"cats": 3}, shape=(5, 5))
    with pytest.raises(ConvlensError, match=r"only one class subfolder \(cats\); a classifier"):
        load(root)
    make_folder(tmp_path / "g" / "train", {"a": 2, "b": 2}, shape=(5, 5))
    make_folder(tmp_path / "g" / "test", {"b": 1}, shape=(5, 5))  # a test folder may hold one
    assert load(tmp_path / "g").test.labels.tolist() == [1]
