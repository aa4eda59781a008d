"""Reading image files a user gives us, safely, into uint8 arrays.

Ground floor: Pillow and NumPy only. Everything that opens a PNG/JPEG/BMP
(the convolution lab, predict, image-folder datasets, the explorer) goes
through ``read_image`` so the size limits and error sentences are the same
everywhere.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from convlens.errors import ConvlensError

MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
INVERT_BORDER_LEVEL = 127.5  # a light border means a dark object on white: invert it
INVERT_CHOICES = ("auto", "yes", "no")


def _open_checked(source: Image.Image, name: str) -> np.ndarray:
    """Decode an opened (lazy) PIL image to uint8 (H, W, C), C being 1 or 3."""
    width, height = source.size
    if width * height > MAX_PIXELS:
        raise ConvlensError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the "
            f"{MAX_PIXELS // 1_000_000}-megapixel limit; resize it and try again."
        )
    try:
        mode = "L" if source.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"
        if source.mode in ("RGBA", "LA", "P") and mode == "RGB":
            # Composite transparency on white so transparent pixels are not black.
            rgba = source.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            converted = Image.alpha_composite(background, rgba).convert("RGB")
        else:
            converted = source.convert(mode)
        array = np.asarray(converted, dtype=np.uint8)
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        struct.error,
        Image.DecompressionBombError,
    ) as exc:
        # Pillow's decoders raise SyntaxError ("broken PNG file") and friends on corrupt data.
        raise ConvlensError(
            f"{name} could not be decoded as an image ({exc}); give a valid PNG, JPEG or BMP file."
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array  # (H, W, 1) or (H, W, 3)


@contextmanager
def _bombs_refused() -> Iterator[None]:
    """Pillow's "decompression bomb" warning (over ~89 megapixels) raised, to be refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _too_large(name: str) -> ConvlensError:
    """The sentence for a picture whose header claims more pixels than Pillow will open."""
    return ConvlensError(
        f"{name} claims more than {MAX_PIXELS // 1_000_000} megapixels, over the limit; "
        "resize it and try again."
    )


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file into a uint8 array of shape (H, W, 1) or (H, W, 3).

    Grayscale files stay one channel; colour files become RGB. Raises
    ConvlensError naming the file when it is missing, not an image, or over
    the pixel limit.
    """
    path = Path(path)
    if not path.is_file():
        raise ConvlensError(f"{path} does not exist or is not a file; check the path.")
    try:
        with _bombs_refused(), Image.open(path) as source:
            return _open_checked(source, str(path))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_large(str(path)) from None
    except (UnidentifiedImageError, ValueError, SyntaxError):
        # ValueError/SyntaxError: Pillow's openers on a corrupt header ("Truncated IHDR chunk").
        raise ConvlensError(
            f"{path} is not an image Pillow can read; give a PNG, JPEG or BMP file."
        ) from None
    except OSError as exc:
        raise ConvlensError(f"{path} could not be read ({exc}); check the file.") from None


def decode_image(data: bytes, name: str = "the upload") -> np.ndarray:
    """Decode image bytes (PNG/JPEG/BMP) into uint8 (H, W, 1) or (H, W, 3)."""
    try:
        with _bombs_refused(), Image.open(io.BytesIO(data)) as source:
            return _open_checked(source, name)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_large(name) from None
    except (UnidentifiedImageError, ValueError, SyntaxError):
        # ValueError/SyntaxError: Pillow's openers on a corrupt header ("Truncated IHDR chunk").
        raise ConvlensError(
            f"{name} is not an image Pillow can read; give a PNG, JPEG or BMP file."
        ) from None
    except OSError as exc:
        raise ConvlensError(f"{name} could not be read ({exc}); check the file.") from None


def to_model_input(
    image: np.ndarray, size: tuple[int, int], channels: int, invert: bool = False
) -> np.ndarray:
    """Convert an image to a model's input: uint8 (H, W, C) at ``size`` with ``channels``.

    Grayscale uses ITU-R 601 luma (as Pillow's "L" mode). Resizing uses a
    box/area filter when shrinking, bilinear when enlarging. ``invert`` turns
    dark-on-light photos into Fashion-MNIST's light-on-dark convention.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    pil_mode = "L" if image.shape[2] == 1 else "RGB"
    pil = Image.fromarray(image[:, :, 0] if pil_mode == "L" else image, mode=pil_mode)
    target_mode = "L" if channels == 1 else "RGB"
    if pil.mode != target_mode:
        pil = pil.convert(target_mode)
    height, width = size
    if pil.size != (width, height):
        shrinking = pil.size[0] > width or pil.size[1] > height
        pil = pil.resize((width, height), Image.BOX if shrinking else Image.BILINEAR)
    array = np.asarray(pil, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if invert:
        array = 255 - array
    return np.ascontiguousarray(array)  # (height, width, channels)


def border_is_light(pixels: np.ndarray) -> bool:
    """Whether the one-pixel frame of uint8 (H, W, C) averages above mid-grey."""
    frame = np.concatenate(
        [pixels[0].ravel(), pixels[-1].ravel(), pixels[:, 0].ravel(), pixels[:, -1].ravel()]
    )
    return float(frame.mean()) > INVERT_BORDER_LEVEL


def invert_rule(pixels: np.ndarray, invert: str, light_on_dark: bool) -> tuple[bool, str]:
    """Whether to invert an image as the model reads it (uint8 (H, W, C)), and why.

    The one rule the explorer and the command line share: ``invert`` "auto"
    inverts a picture whose border is light (a dark object on white) when the
    model learned light objects on black (``light_on_dark``: Fashion-MNIST and
    MNIST did; a folder of photos did not, so its pictures are kept); "yes"
    always, "no" never. The reason is "" when the picture is kept as it is.
    """
    if invert not in INVERT_CHOICES:
        raise ConvlensError(f"invert must be auto, yes or no, not {invert!r}.")
    if invert == "yes":
        return True, "as asked"
    if invert == "auto" and light_on_dark and border_is_light(pixels):
        return True, "its border is light; the model was trained on light shapes on black"
    return False, ""


def luma(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> uint8 (..., 1) ITU-R 601 luma, to the level Pillow's "L" gives."""
    rgb = images.astype(np.uint32)
    # Pillow's integer form: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16.
    value = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return value.astype(np.uint8)[..., None]


def fit_to_input(images: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Fit uint8 images (N, H, W, C) to a model's (H', W', C') input.

    Smaller images are zero-padded around the centre (how LeNet-5 reads 28x28
    digits on its 32x32 input); one channel is repeated to three; three are
    turned to one by luma. Larger images are refused: resize them when loading.
    """
    height, width, channels = input_shape
    _, h, w, c = images.shape
    if h > height or w > width:
        raise ConvlensError(
            f"the images are {h}x{w} but the model takes {height}x{width}; load them at "
            f"{height}x{width} or use a model whose input_shape is [{h}, {w}, {c}]."
        )
    if c != channels:
        if c == 1 and channels == 3:
            images = np.repeat(images, 3, axis=3)
        elif c == 3 and channels == 1:
            images = luma(images)
        else:
            raise ConvlensError(
                f"the images have {c} channels but the model takes {channels}; "
                f"use a model with input_shape [..., {c}]."
            )
    if (h, w) != (height, width):
        top, left = (height - h) // 2, (width - w) // 2
        padding = ((0, 0), (top, height - h - top), (left, width - w - left), (0, 0))
        images = np.pad(images, padding)
    return images  # (N, height, width, channels)
