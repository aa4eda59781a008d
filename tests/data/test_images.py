"""Reading image files safely and fitting them to a model's input."""

import numpy as np
import pytest
from PIL import Image

from convlens.errors import ConvlensError
from convlens.images import decode_image, fit_to_input, read_image, to_model_input


def test_grayscale_stays_one_channel_and_colour_becomes_rgb(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(np.dstack([gray] * 3)).save(tmp_path / "c.jpg", quality=95)
    assert read_image(tmp_path / "g.png").shape == (8, 8, 1)
    assert np.array_equal(read_image(tmp_path / "g.png")[..., 0], gray)
    assert read_image(tmp_path / "c.jpg").shape == (8, 8, 3)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "t.png")
    assert read_image(tmp_path / "t.png").min() == 255


@pytest.mark.parametrize(
    ("content", "message"), [(b"hello", "is not an image"), (b"", "is not an image")]
)
def test_files_that_are_not_images_are_named(tmp_path, content, message):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ConvlensError, match=message) as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConvlensError, match="does not exist"):
        read_image(tmp_path / "nope.png")


def test_images_over_the_pixel_limit_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("convlens.images.MAX_PIXELS", 100)
    Image.new("L", (20, 20)).save(tmp_path / "big.png")
    with pytest.raises(ConvlensError, match="megapixel limit"):
        read_image(tmp_path / "big.png")


def test_decode_image_reads_bytes():
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (5, 3), (255, 0, 0)).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue()).shape == (3, 5, 3)
    with pytest.raises(ConvlensError, match="the upload is not an image"):
        decode_image(b"GIF89a-broken")


def test_to_model_input_resizes_converts_and_inverts():
    photo = np.zeros((100, 80, 3), np.uint8)
    photo[:, :40] = 255  # left half white
    out = to_model_input(photo, (28, 28), 1)
    assert out.shape == (28, 28, 1) and out.dtype == np.uint8
    assert out[:, 0].min() == 255 and out[:, -1].max() == 0
    inverted = to_model_input(photo, (28, 28), 1, invert=True)
    assert np.array_equal(inverted, 255 - out)
    assert to_model_input(out, (32, 32), 3).shape == (32, 32, 3)


def test_fit_to_input_pads_and_converts_channels():
    images = np.full((2, 28, 28, 1), 9, np.uint8)
    padded = fit_to_input(images, (32, 32, 3))
    assert padded.shape == (2, 32, 32, 3)
    assert padded[:, 2:30, 2:30].min() == 9 and padded[:, :2].max() == 0
    rgb = np.zeros((1, 4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    assert fit_to_input(rgb, (4, 4, 1))[0, 0, 0, 0] == 150  # 0.587 * 255, Pillow's luma
    with pytest.raises(ConvlensError, match="load them at 8x8"):
        fit_to_input(images, (8, 8, 1))


def test_a_header_claiming_a_decompression_bomb_is_one_sentence_without_a_warning(tmp_path):
    import struct
    import warnings
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 12_000, 9_000, 8, 0, 0, 0, 0)  # 108 MP: Pillow warns past 89
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning would fail the test
        for read in (lambda: decode_image(data, "bomb.png"), lambda: read_image(path)):
            with pytest.raises(ConvlensError, match="claims more than 40 megapixels"):
                read()
