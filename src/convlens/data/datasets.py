"""Datasets: Fashion-MNIST and MNIST (found, or downloaded and checked), image folders.

A Dataset is uint8 images (N, H, W, C), int64 labels and class names, split
into train and test. Nothing here imports torch: the training engine turns a
Dataset into tensors once.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convlens.data import folders
from convlens.data.idx import REFETCH, read_idx, shape_text
from convlens.errors import ConvlensError
from convlens.images import fit_to_input, luma, to_model_input


@dataclass(frozen=True)
class Split:
    """One part of a dataset: images uint8 (N, H, W, C) and labels int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A labelled image dataset held in memory, with its train and test splits."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    source: str
    input_why: str = ""  # why the images have their shape, e.g. "32x32x3: your images' size ..."
    split: dict | None = None  # a folder's held-out split: seed, test_fraction, test_files
    skipped: tuple[str, ...] = ()  # a folder's files that are not images, relative to it
    mirror_symmetric: bool = False  # its classes look the same mirrored (Fashion-MNIST's)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(n) for n in self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def location(self) -> str:
        """What data.load takes to read this dataset again: its name, or its folder's path."""
        return self.name if self.name in SOURCES else str(Path(self.source).resolve())

    @property
    def num_classes(self) -> int:
        """How many classes the labels range over."""
        return len(self.class_names)

    def with_train_images(self, count: int | None) -> Dataset:
        """The dataset training on its first ``count`` training images (None: all of them).

        A quick look at a model (a notebook's short training) trains on fewer
        images; the test split stays whole, so the accuracy is measured as ever.
        """
        if count is None or count == len(self.train):
            return self
        if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= len(self.train):
            raise ConvlensError(
                f"train_images must be a whole number from 1 to {len(self.train):,} (the "
                f"training images of {self.name}), not {count!r}."
            )
        subset = Split(self.train.images[:count], self.train.labels[:count])
        return replace(self, train=subset)


# --- IDX files -------------------------------------------------------------------------------


# --- Fashion-MNIST and MNIST ---------------------------------------------------------------------

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")  # where Debian's dataset-* packages install
DOWNLOAD_TIMEOUT_S = 30.0
MAX_DOWNLOAD_BYTES = 64 << 20  # the largest official file is 26.4 MB


@dataclass(frozen=True)
class IdxSource:
    """An IDX dataset convlens knows by name: its mirror, checksums and classes."""

    name: str
    title: str
    mirror: str
    sha256: Mapping[str, str]  # by file name (.gz) as served by the mirror
    class_names: tuple[str, ...]
    apt_package: str | None = None
    mirror_symmetric: bool = False  # every class looks like itself mirrored left-right


# SHA-256 of the official .gz files, as published alongside the datasets (TensorFlow
# Datasets' checksums and many mirrors agree; they match the published MD5s and sizes).
# The copy Debian installs is recompressed (no file name in its gzip headers, so 23-24 bytes
# shorter and other hashes): local copies are checked by their IDX structure, not by hash.
SOURCES: dict[str, IdxSource] = {
    "fashion-mnist": IdxSource(
        name="fashion-mnist",
        title="Fashion-MNIST",
        mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        sha256={
            # MD5 8d4fb7e6c68d591d4c3dfef9ec88bf0d, 26,421,880 bytes
            "train-images-idx3-ubyte.gz": (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
            ),
            # MD5 25c81989df183df01b3e8a0aad5dffbe, 29,515 bytes
            "train-labels-idx1-ubyte.gz": (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
            ),
            # MD5 bef4ecab320f06d8554ea6380940ec79, 4,422,102 bytes
            "t10k-images-idx3-ubyte.gz": (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
            ),
            # MD5 bb300cfdad3c16e7a12a480ee83cd310, 5,148 bytes
            "t10k-labels-idx1-ubyte.gz": (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
            ),
        },
        class_names=FASHION_MNIST_CLASSES,
        apt_package="dataset-fashion-mnist",
        mirror_symmetric=True,  # a mirrored shirt or boot is still one; a mirrored 7 is not
    ),
    "mnist": IdxSource(
        name="mnist",
        title="MNIST",
        mirror="https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror
        sha256={
            # MD5 f68b3c2dcbeaaa9fbdd348bbdeb94873, 9,912,422 bytes
            "train-images-idx3-ubyte.gz": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            # MD5 d53e105ee54ea40749a09fcbcd1e9432, 28,881 bytes
            "train-labels-idx1-ubyte.gz": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            # MD5 9fb629c4189551a2d022fa330f9573f3, 1,648,877 bytes
            "t10k-images-idx3-ubyte.gz": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            # MD5 ec29112dd5afa0611ce80d1b7f02629c, 4,542 bytes
            "t10k-labels-idx1-ubyte.gz": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
        class_names=MNIST_CLASSES,
    ),
}


class DownloadError(ConvlensError):
    """A download that failed or did not match its published checksum."""


def cache_dir(name: str) -> Path:
    """The user cache folder for dataset ``name``: $XDG_CACHE_HOME or ~/.cache, /convlens/name."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "convlens" / name


def describe_search(dataset: str, data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The folders searched for an IDX dataset, in order, as (where it came from, folder)."""
    places: list[tuple[str, Path]] = []
    for label, base in (
        ("--data-dir", data_dir),
        ("CONVLENS_DATA", os.environ.get("CONVLENS_DATA")),
    ):
        if base:
            folder = Path(base).expanduser()
            places += [(label, folder / dataset), (label, folder)]
    places.append(("system copy", SYSTEM_DATA_ROOT / dataset))
    places.append(("user cache", cache_dir(dataset)))
    return places


def _find_file(directory: Path, stem: str) -> Path | None:
    """``stem``.gz or ``stem`` in ``directory``, whichever exists first."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _find_files(directory: Path) -> list[Path] | None:
    """The four IDX files in ``directory`` in IDX_FILES order, or None unless all are there."""
    found = [_find_file(directory, stem) for stem in IDX_FILES]
    return None if None in found else found  # type: ignore[return-value]


def _load_idx_source(source: IdxSource, data_dir: str | Path | None) -> Dataset:
    """Find (or download into the cache) ``source``'s four files and read them."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise ConvlensError(
            f"--data-dir {data_dir} is not a folder; give the folder that holds "
            f"the {source.title} IDX files."
        )
    places = describe_search(source.name, data_dir)
    for _label, directory in places:
        files = _find_files(directory)
        if files is not None:
            return _read_idx_dataset(source, files, directory)
    try:
        directory = _download_source(source)
    except DownloadError as exc:
        raise _not_found(source, places, str(exc)) from None
    files = _find_files(directory)
    if files is None:  # only if something removed them while we looked
        raise _not_found(source, places, f"{directory} lost files during the download")
    return _read_idx_dataset(source, files, directory)


def _not_found(source: IdxSource, places: list[tuple[str, Path]], reason: str) -> ConvlensError:
    looked = ", ".join(f"{directory} ({label})" for label, directory in places)
    folder_fix = (
        f"pass --data-dir (or set CONVLENS_DATA) to a folder holding "
        f"{', '.join(name + '.gz' for name in IDX_FILES)}"
    )
    fix = (
        f"run `apt-get install {source.apt_package}`, or {folder_fix}"
        if source.apt_package
        else folder_fix
    )
    return ConvlensError(f"{source.title} was not found in {looked}, and {reason}; {fix}.")


def _read_idx_dataset(source: IdxSource, files: list[Path], directory: Path) -> Dataset:
    """Read the four files into a Dataset of uint8 (N, 28, 28, 1) images and int64 labels."""
    train_images, train_labels, test_images, test_labels = files
    num_classes = len(source.class_names)
    return Dataset(
        name=source.name,
        train=_idx_split(train_images, train_labels, num_classes),
        test=_idx_split(test_images, test_labels, num_classes),
        class_names=source.class_names,
        source=str(directory),
        mirror_symmetric=source.mirror_symmetric,
    )


def _idx_split(images_path: Path, labels_path: Path, num_classes: int) -> Split:
    """One split from an images file (N, 28, 28) and a labels file (N,) of uint8 values."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ConvlensError(
            f"{images_path} holds {images.dtype} values of shape {shape_text(images.shape)}, "
            f"not 28x28 uint8 images; {REFETCH}."
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ConvlensError(
            f"{labels_path} holds {labels.dtype} values of shape {shape_text(labels.shape)}, "
            f"not a list of integer labels; {REFETCH}."
        )
    if len(images) != len(labels):
        raise ConvlensError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds "
            f"{len(labels):,} labels; re-download both or delete them so convlens fetches "
            "them again."
        )
    if len(images) == 0:
        raise ConvlensError(f"{images_path} holds no images; {REFETCH}.")
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
        raise ConvlensError(
            f"{labels_path} has label {int(outside[0])}, outside 0..{num_classes - 1}; {REFETCH}."
        )
    return Split(images=images[..., None], labels=labels.astype(np.int64))  # (N, 28, 28, 1)


# --- Downloading into the cache ---------------------------------------------------------------


def _download_source(source: IdxSource) -> Path:
    """Download what the cache lacks, each file verified and written atomically.

    Returns the cache folder, which then holds all four files.
    """
    directory = cache_dir(source.name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"the cache folder {directory} could not be created ({exc})") from None
    for stem in IDX_FILES:
        if _find_file(directory, stem) is None:
            name = f"{stem}.gz"
            _fetch_verified(source.mirror + name, directory / name, source.sha256[name])
    return directory


def _fetch_verified(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to a temporary file beside ``dest``, check its SHA-256, then rename it.

    Nothing is left at ``dest`` (or beside it) unless the bytes match the checksum.
    """
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
    except OSError as exc:
        raise DownloadError(f"{dest.parent} is not writable ({exc})") from None
    temp = Path(temp_name)
    try:
        _download(url, temp)
        digest = _sha256(temp)
        if digest != sha256:
            raise DownloadError(
                f"the file downloaded from {url} has SHA-256 {digest}, not the published {sha256}"
            )
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, dest)
        _fsync_dir(dest.parent)
    except OSError as exc:
        raise DownloadError(f"{dest} could not be written ({exc})") from None
    finally:
        temp.unlink(missing_ok=True)


def _download(url: str, dest: Path) -> None:
    """Write the bytes served at ``url`` to ``dest`` (the caller verifies them).

    Raises DownloadError on any network failure, timeout, or a body over MAX_DOWNLOAD_BYTES.
    """
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            dest.open("wb") as out,
        ):
            written = 0
            while chunk := response.read(1 << 20):
                written += len(chunk)
                if written > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"{url} sent more than {MAX_DOWNLOAD_BYTES:,} bytes")
                out.write(chunk)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"downloading {url} failed ({reason})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- Image folders ------------------------------------------------------------------------------


def _load_folder(
    root: Path,
    size: tuple[int, int] | None,
    channels: int | None,
    test_fraction: float,
    seed: int,
    minimum: tuple[int, int],
    test_files: Sequence[str] | None,
) -> Dataset:
    """A Dataset from class subfolders of ``root`` (or of root/train and root/test).

    ``size`` and ``channels`` None: chosen from the images (folders.profile, has_colour).
    """
    layout = folders.scan(root)
    size_why, read = ("the size asked for" if size else ""), channels
    if size is None or channels is None:  # reads every file's header: only when choosing
        chosen = folders.profile(layout, minimum)
        size, size_why = size or chosen.size, size_why or chosen.why
        read = channels or chosen.channels
    recorded: dict | None = None
    if layout.test is not None:
        train_part, test_part = layout.train, layout.test
    else:
        if test_files is None:
            train_part, test_part = folders.split(layout, test_fraction, seed)
        else:
            train_part, test_part = folders.recorded_split(layout, test_files)
        recorded = {
            "seed": seed,
            "test_fraction": test_fraction,
            "test_files": folders.relative_names(root, test_part.files),
        }
    train, test = (Split(*folders.read_images(p, size, read)) for p in (train_part, test_part))
    if channels is None and read == 3 and not folders.has_colour(train.images):
        train, test = (Split(luma(s.images), s.labels) for s in (train, test))
    why = _input_why(size, train.images.shape[-1], size_why, channels, read)
    return Dataset(
        root.name,
        train,
        test,
        layout.class_names,
        str(root),
        input_why=why,
        split=recorded,
        skipped=tuple(folders.relative_names(root, layout.skipped)),
    )


def _input_why(
    size: tuple[int, int], depth: int, size_why: str, asked: int | None, read: int
) -> str:
    """The sentence saying why a folder's images were read at their shape."""
    shape = f"{size[0]}x{size[1]}x{depth}"
    if asked:
        return f"{shape}: {size_why}; {'colour' if depth == 3 else 'grayscale'} as asked"
    if depth == 1 and read == 3:
        return f"{shape}: {size_why}; grayscale, since your images hold no colour (stored as RGB)"
    if size_why == "your images' size" and depth == 3:
        return f"{shape}: your images' size and colour"
    return f"{shape}: {size_why}; {'colour' if depth == 3 else 'grayscale'} as your images are"


# --- The entry point --------------------------------------------------------------------------


def _conform(split: Split, size: tuple[int, int] | None, channels: int | None) -> Split:
    """A named dataset's ``split`` at ``size`` with ``channels`` (None keeps what it has).

    A larger size pads each image with zeros around the centre (images.fit_to_input),
    as LeNet-5 reads 28x28 digits on a 32x32 input; a smaller one resizes.
    One channel becomes three by repetition.
    """
    count, height, width, have = split.images.shape
    size = size or (height, width)
    channels = channels or have
    if size == (height, width) and channels == have:
        return split
    if size[0] < height or size[1] < width:
        images = np.empty((count, *size, channels), dtype=np.uint8)  # (N, H, W, C)
        for i, image in enumerate(split.images):
            images[i] = to_model_input(image, size, channels)
        return Split(images, split.labels)
    return Split(fit_to_input(split.images, (*size, channels)), split.labels)  # zero-padded


def _check_options(
    image_size: tuple[int, int] | None, channels: int | None, test_fraction: float
) -> tuple[int, int] | None:
    """Validate load()'s options; return image_size as a tuple of two ints (or None)."""
    size = None
    if image_size is not None:
        size = tuple(int(n) for n in image_size)
        if len(size) != 2 or min(size) < 1:
            raise ConvlensError(
                f"image size {image_size} is not two positive numbers; give (height, width)."
            )
    if channels not in (None, 1, 3):
        raise ConvlensError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}.")
    if not 0.0 < test_fraction < 1.0:
        raise ConvlensError(f"test fraction {test_fraction} is not between 0 and 1; use e.g. 0.2.")
    return size  # type: ignore[return-value]


def load(
    dataset: str | Path = "fashion-mnist",
    data_dir: str | Path | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    minimum: tuple[int, int] = (1, 1),
    test_files: Sequence[str] | None = None,
) -> Dataset:
    """Load a dataset by name ("fashion-mnist", "mnist") or from a folder of images.

    Returns a Dataset whose splits hold uint8 images (N, H, W, C) and int64 labels (N,).
    Named datasets are looked for as describe_search() lists, then downloaded into the
    cache; they are 28x28x1 unless ``image_size`` (larger pads around the centre, smaller
    resizes) or ``channels`` (3 repeats the grey one) ask otherwise.

    A folder has one subfolder per class (or train/ and test/ with such subfolders).
    Its images are read at ``image_size`` with ``channels``; None chooses from the
    images: their common (or median) size, capped at 64 and at least ``minimum``, and
    3 channels when they hold colour, else 1 (Dataset.input_why says which and why).
    Without train/test, ``test_fraction`` of each class (chosen by ``seed``) is the
    test split, recorded in Dataset.split; ``test_files`` (a run's record) reuses one.
    """
    size = _check_options(image_size, channels, test_fraction)
    key = str(dataset).strip().lower()
    if key in SOURCES:
        named = _load_idx_source(SOURCES[key], data_dir)
        train, test = (_conform(s, size, channels) for s in (named.train, named.test))
        return replace(named, train=train, test=test)
    folder = Path(dataset).expanduser()
    if folder.is_dir():
        return _load_folder(folder, size, channels, test_fraction, seed, minimum, test_files)
    raise ConvlensError(
        f"unknown dataset {str(dataset)!r}; choose {', '.join(SOURCES)}, or give the path "
        "to a folder with one subfolder of images per class."
    )
