"""Folders of your own images as datasets: one subfolder per class.

A folder holds class subfolders directly (a stratified test split is then
held out and recorded), or ``train/`` and ``test/`` each holding them. The
images decide the input, as Keras's ``image_dataset_from_directory`` users
expect: ``profile`` reads only the files' headers and chooses a size (their
common size, else their median, capped for speed) and a colour (grayscale
stays one channel; colour is three, never dropped without a word). Nothing
here imports torch.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from convlens.errors import ConvlensError
from convlens.images import IMAGE_SUFFIXES, read_image, to_model_input

MAX_AUTO_SIDE = 64  # a chosen size is capped here: a 2-core CPU trains 64x64 maps in minutes
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
# A pixel "has colour" when its channels differ by more than this many levels; a folder
# is colour when more than COLOUR_PIXEL_SHARE of its pixels do. JPEG noise in gray photos
# stored as RGB stays below both.
COLOUR_SPREAD = 24
COLOUR_PIXEL_SHARE = 0.001
_IGNORED_FILES = {"thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Labelled:
    """Image files with their class indices, in a stable order."""

    files: tuple[Path, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class FolderLayout:
    """A folder's classes and files; ``test`` is None when no test/ folder was given."""

    root: Path
    class_names: tuple[str, ...]
    train: Labelled
    test: Labelled | None
    skipped: tuple[Path, ...] = ()  # files that are not images (by their suffix)


@dataclass(frozen=True)
class Profile:
    """What a folder's images are: the size and channels to read them at, and why."""

    size: tuple[int, int]
    channels: int
    why: str


# --- Finding the files ---------------------------------------------------------------------


def scan(root: Path) -> FolderLayout:
    """The classes and image files under ``root`` (class folders, or train/ and test/)."""
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        class_names = _class_folders(train_dir)
        extra = sorted(set(_class_folders(test_dir, at_least=1)) - set(class_names))
        if extra:
            raise ConvlensError(
                f"{test_dir} has classes that {train_dir} lacks ({', '.join(extra)}); "
                "give every test class training images too."
            )
        test_names = [n for n in class_names if (test_dir / n).is_dir()]
        skipped: list[Path] = []
        train = _labelled(train_dir, class_names, class_names, skipped)
        test = _labelled(test_dir, test_names, class_names, skipped)
        return FolderLayout(root, class_names, train, test, tuple(skipped))
    if train_dir.is_dir() or test_dir.is_dir():
        raise ConvlensError(
            f"{root} has only one of train/ and test/; add the other, or put the class "
            "folders directly in it to hold out a test fraction."
        )
    class_names = _class_folders(root)
    skipped = []
    train = _labelled(root, class_names, class_names, skipped)
    return FolderLayout(root, class_names, train, None, tuple(skipped))


def _class_folders(directory: Path, at_least: int = 2) -> tuple[str, ...]:
    """Sorted names of the (non-hidden) subfolders of ``directory``, one per class.

    A training folder needs two classes at least (``at_least``); a test folder one.
    """
    names = sorted(
        entry.name
        for entry in directory.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if len(names) < at_least or not names:
        has = f"only one class subfolder ({names[0]})" if names else "no class subfolders"
        raise ConvlensError(
            f"{directory} has {has}; a classifier needs at least two classes: put each "
            f"class's images in a subfolder named after the class (for example "
            f"{directory / 'cat' / '1.png'} and {directory / 'dog' / '1.png'})."
        )
    return tuple(names)


def _class_files(class_dir: Path) -> tuple[list[Path], list[Path]]:
    """(images, other files) under one class folder and its subfolders, sorted.

    Images are told by their suffix (IMAGE_SUFFIXES, any case), as Keras's
    image_dataset_from_directory does; hidden files and folders and system
    clutter (Thumbs.db, desktop.ini) are not counted at all.
    """
    images, others = [], []
    for entry in sorted(class_dir.rglob("*")):
        parts = entry.relative_to(class_dir).parts
        if any(part.startswith(".") for part in parts) or not entry.is_file():
            continue
        if entry.name.lower() in _IGNORED_FILES:
            continue
        (images if entry.suffix.lower() in IMAGE_SUFFIXES else others).append(entry)
    if not images:
        raise ConvlensError(
            f"{class_dir} has no images; add PNG, JPEG or BMP files to it or remove the folder."
        )
    return images, others


def _labelled(
    directory: Path, folders: Sequence[str], class_names: Sequence[str], skipped: list[Path]
) -> Labelled:
    files: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        found, others = _class_files(directory / folder)
        files += found
        skipped += others
        labels += [class_names.index(folder)] * len(found)
    return Labelled(tuple(files), tuple(labels))


# --- The held-out split ---------------------------------------------------------------------


def _held_out_count(count: int, fraction: float) -> int:
    """How many of a class's ``count`` images go to the test split (>= 1 each side)."""
    return min(max(round(count * fraction), 1), count - 1)


def split(layout: FolderLayout, test_fraction: float, seed: int) -> tuple[Labelled, Labelled]:
    """(train, test): ``test_fraction`` of each class held out, chosen by ``seed``.

    Every class needs at least two images, one on each side.
    """
    labels = np.asarray(layout.train.labels)
    for index, name in enumerate(layout.class_names):
        count = int((labels == index).sum())
        if count < 2:
            raise ConvlensError(
                f"class {name!r} in {layout.root} has {count} image, too few to hold one out "
                "for testing; give it at least 2 images, or use train/ and test/ folders."
            )
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for index in range(len(layout.class_names)):
        members = np.flatnonzero(labels == index)
        is_test[rng.permutation(members)[: _held_out_count(len(members), test_fraction)]] = True
    return _subset(layout.train, ~is_test), _subset(layout.train, is_test)


def recorded_split(layout: FolderLayout, test_files: Sequence[str]) -> tuple[Labelled, Labelled]:
    """(train, test) with the test images a run recorded (paths relative to the folder)."""
    position = {_relative(layout.root, path): i for i, path in enumerate(layout.train.files)}
    missing = [name for name in test_files if name not in position]
    if missing:
        raise ConvlensError(
            f"{layout.root / missing[0]} was in the run's test split but is not in the folder "
            f"any more ({len(missing)} missing); restore the images or retrain on the folder."
        )
    is_test = np.zeros(len(layout.train), dtype=bool)
    is_test[[position[name] for name in test_files]] = True
    return _subset(layout.train, ~is_test), _subset(layout.train, is_test)


def relative_names(root: Path, files: Sequence[Path]) -> list[str]:
    """``files`` as POSIX paths relative to ``root``, as a run records its test split."""
    return [_relative(root, path) for path in files]


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _subset(part: Labelled, keep: np.ndarray) -> Labelled:
    chosen = np.flatnonzero(keep)
    return Labelled(tuple(part.files[i] for i in chosen), tuple(part.labels[i] for i in chosen))


# --- What the images are ----------------------------------------------------------------------


def _header(path: Path) -> tuple[int, int, str]:
    """(height, width, mode) from a file's header, without decoding its pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            return height, width, image.mode
    except (UnidentifiedImageError, ValueError, SyntaxError, OSError):
        raise ConvlensError(
            f"{path} is not an image Pillow can read; give a PNG, JPEG or BMP file, or "
            "remove it from the folder."
        ) from None


def profile(layout: FolderLayout, minimum: tuple[int, int] = (1, 1)) -> Profile:
    """The size and channels to read ``layout``'s images at, chosen from their headers.

    Size: the images' common size when they share one, else the median height and
    width; capped at MAX_AUTO_SIDE and never below ``minimum`` (what the model
    needs). Channels: 1 when every file is grayscale, else 3 (``colour_in`` may
    still find the colour files gray once decoded).
    """
    files = layout.train.files + (layout.test.files if layout.test else ())
    headers = [_header(path) for path in files]
    sizes = {(h, w) for h, w, _ in headers}
    if len(sizes) == 1:
        (natural,) = sizes
        how = "your images' size"
    else:
        natural = (
            int(statistics.median(h for h, _, _ in headers)),
            int(statistics.median(w for _, w, _ in headers)),
        )
        how = f"the median of your images' {len(sizes)} sizes"
    size = tuple(min(n, MAX_AUTO_SIDE) for n in natural)
    if size != natural:
        how += f" ({natural[0]}x{natural[1]}) capped at {MAX_AUTO_SIDE} for speed"
    if size[0] < minimum[0] or size[1] < minimum[1]:
        size = (max(size[0], minimum[0]), max(size[1], minimum[1]))
        how = f"{how} ({natural[0]}x{natural[1]}) raised to the model's smallest input"
    colour = any(mode not in GRAY_MODES for _, _, mode in headers)
    return Profile(size, 3 if colour else 1, how)  # type: ignore[arg-type]


def has_colour(images: np.ndarray) -> bool:
    """Whether uint8 RGB images (N, H, W, 3) carry colour, not gray stored as RGB."""
    if images.shape[-1] != 3 or images.size == 0:
        return False
    coloured = 0
    for start in range(0, len(images), 1024):  # in chunks: int16 copies of a whole split are big
        chunk = images[start : start + 1024].astype(np.int16)
        coloured += int((chunk.max(axis=-1) - chunk.min(axis=-1) > COLOUR_SPREAD).sum())
    return coloured / (images.size // 3) > COLOUR_PIXEL_SHARE


def read_images(
    part: Labelled, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every file of ``part`` as uint8 (N, H, W, C) at ``size`` with ``channels``, and labels."""
    images = np.empty((len(part), *size, channels), dtype=np.uint8)  # (N, H, W, C)
    for i, path in enumerate(part.files):
        images[i] = to_model_input(read_image(path), size, channels)
    return images, np.asarray(part.labels, dtype=np.int64)
