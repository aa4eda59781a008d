"""convlens.ops against independent implementations: scipy and torch (test-only oracles)."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d

from convlens.errors import ConvlensError
from convlens.lab import ops
from convlens.lab.sample_images import facade

LESSON_PATCH = np.array([[0, 64, 128], [48, 192, 144], [142, 226, 168]])
LESSON_LINE = (
    "New pixel = (-1 * 0) + (0 * 64) + (-2 * 128) + (0.5 * 48) + (4.5 * 192) + "
    "(-1.5 * 144) + (1.5 * 142) + (2 * 226) + (-3 * 168) = 577"
)
PROPERTY = settings(max_examples=60, deadline=None)


@st.composite
def image_and_kernel(draw: st.DrawFn, channels: bool = False, fit: bool = True) -> tuple:
    """A float image (H, W[, C]) and a kernel (kh, kw[, C]) that fits inside it when ``fit``."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kh = draw(st.integers(1, h if fit else 6))
    kw = draw(st.integers(1, w if fit else 6))
    c = draw(st.integers(1, 3)) if channels else None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tail = () if c is None else (c,)
    image = rng.integers(-50, 256, (h, w, *tail)).astype(np.float64)  # integers: exact sums
    kernel = np.round(rng.normal(0, 2, (kh, kw, *tail)), 2)
    return image, kernel


def torch_conv(image: np.ndarray, kernel: np.ndarray, stride: int, pad: tuple) -> np.ndarray:
    """torch's conv2d (double) of (H, W, C) by (kh, kw, C); pad is (left, right, top, bottom)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, C, H, W)
    weight = torch.from_numpy(kernel).permute(2, 0, 1)[None]  # (1, C, kh, kw)
    return F.conv2d(F.pad(x, pad), weight, stride=stride)[0, 0].numpy()


def keras_same_pad(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's documented "same" rule, written out here independently of ops."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


# ---------------------------------------------------------------- the lesson's numbers


def test_lesson_example_is_577() -> None:
    explanation = ops.explain_pixel(LESSON_PATCH, ops.FILTERS["lesson"], 0, 0)
    assert explanation.sum == 577
    assert explanation.equation() == LESSON_LINE
    assert ops.conv2d(LESSON_PATCH, ops.FILTERS["lesson"]).tolist() == [[577.0]]


def test_explanation_text_shows_both_grids_aligned() -> None:
    text = ops.explain_pixel(LESSON_PATCH, ops.FILTERS["lesson"], 0, 0).format()
    assert text.splitlines() == [
        "Window: input rows 0..2, cols 0..2",
        "Neighbourhood    Filter",
        "  0   64  128      -1     0    -2",
        " 48  192  144     0.5   4.5  -1.5",
        "142  226  168     1.5     2    -3",
        LESSON_LINE,
    ]


def test_explanation_says_when_the_window_is_in_the_padding() -> None:
    explanation = ops.explain_pixel(np.ones((4, 4)), np.ones((3, 3)), 0, 0, padding="same")
    assert (explanation.top, explanation.left, explanation.in_padding) == (-1, -1, True)
    assert explanation.neighbourhood.tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert "zero padding" in explanation.format().splitlines()[0]
    assert not ops.explain_pixel(np.ones((4, 4)), np.ones((3, 3)), 1, 1, padding="same").in_padding


def test_explanation_arrays_are_read_only() -> None:
    explanation = ops.explain_pixel(LESSON_PATCH, ops.FILTERS["lesson"], 0, 0)
    with pytest.raises(ValueError):
        explanation.products[0, 0] = 1


def test_eleven_by_eleven_pools_to_five_by_five() -> None:
    assert ops.pool2d(np.zeros((11, 11))).shape == (5, 5)


def test_max_pool_keeps_the_biggest_of_four() -> None:
    image = np.array([[1, 9, 0, 2], [3, 4, 5, 1], [0, 0, 7, 8], [6, 0, 1, 1]])
    assert ops.pool2d(image).tolist() == [[9, 5], [6, 8]]
    assert ops.pool2d(image, mode="avg").tolist() == [[4.25, 2], [1.5, 4.25]]


def test_same_padding_puts_the_odd_row_at_the_bottom() -> None:
    image = np.arange(36, dtype=np.float64).reshape(6, 6)
    out = ops.conv2d(image, np.ones((3, 3)), stride=2, padding="same")
    assert out.shape == (3, 3)  # ceil(6 / 2)
    padded = np.pad(image, ((0, 1), (0, 1)))  # total padding 1: none on top, one at the bottom
    assert np.array_equal(out, correlate2d(padded, np.ones((3, 3)), mode="valid")[::2, ::2])


def test_uint8_input_does_not_overflow() -> None:
    image = np.full((3, 3), 255, dtype=np.uint8)
    assert ops.conv2d(image, np.full((3, 3), 2.0)).item() == 9 * 255 * 2
    assert ops.conv2d(image, np.ones((3, 3))).dtype == np.float64


# ---------------------------------------------------------------- exactness, by property


@PROPERTY
@given(image_and_kernel())
def test_conv2d_valid_equals_scipy(case: tuple) -> None:
    image, kernel = case
    np.testing.assert_allclose(
        ops.conv2d(image, kernel), correlate2d(image, kernel, mode="valid"), rtol=1e-12, atol=1e-9
    )


@PROPERTY
@given(image_and_kernel(), st.integers(1, 4), st.integers(1, 4))
def test_conv2d_strided_equals_scipy_subsampled(case: tuple, sh: int, sw: int) -> None:
    image, kernel = case
    expected = correlate2d(image, kernel, mode="valid")[::sh, ::sw]
    np.testing.assert_allclose(
        ops.conv2d(image, kernel, stride=(sh, sw)), expected, rtol=1e-12, atol=1e-9
    )


@PROPERTY
@given(image_and_kernel(channels=True), st.integers(1, 3))
def test_conv2d_valid_equals_torch_with_channels(case: tuple, stride: int) -> None:
    image, kernel = case
    expected = torch_conv(image, kernel, stride, (0, 0, 0, 0))
    got = ops.conv2d(image, kernel, stride=stride)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@PROPERTY
@given(image_and_kernel(channels=True, fit=False))
def test_conv2d_same_stride_1_equals_torch_same(case: tuple) -> None:
    image, kernel = case
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    weight = torch.from_numpy(kernel).permute(2, 0, 1)[None]
    expected = F.conv2d(x, weight, padding="same")[0, 0].numpy()
    got = ops.conv2d(image, kernel, padding="same")
    assert got.shape == image.shape[:2]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


@PROPERTY
@given(image_and_kernel(channels=True, fit=False), st.integers(1, 4))
def test_conv2d_same_strided_follows_keras(case: tuple, stride: int) -> None:
    image, kernel = case
    (h, w, _), (kh, kw, _) = image.shape, kernel.shape
    top, bottom = keras_same_pad(h, kh, stride)
    left, right = keras_same_pad(w, kw, stride)
    expected = torch_conv(image, kernel, stride, (left, right, top, bottom))
    got = ops.conv2d(image, kernel, stride=stride, padding="same")
    assert got.shape == (math.ceil(h / stride), math.ceil(w / stride))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


@PROPERTY
@given(
    st.integers(1, 14),
    st.integers(1, 14),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from(["max", "avg"]),
    st.integers(0, 2**32 - 1),
)
def test_pool2d_equals_torch(
    h: int, w: int, c: int, size: int, stride: int, mode: str, seed: int
) -> None:
    size = min(size, h, w)
    image = np.random.default_rng(seed).normal(0, 100, (h, w, c))
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    expected = pool(torch.from_numpy(image).permute(2, 0, 1)[None], size, stride)[0]
    got = ops.pool2d(image, size, stride, mode)
    np.testing.assert_allclose(got, expected.permute(1, 2, 0).numpy(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ops.pool2d(image[:, :, 0], size, stride, mode), got[:, :, 0])


@PROPERTY
@given(image_and_kernel(fit=False), st.integers(1, 3), st.sampled_from(ops.PADDINGS), st.data())
def test_explain_pixel_sum_is_the_output_pixel(
    case: tuple, stride: int, padding: str, data: st.DataObject
) -> None:
    image, kernel = case
    if padding == "valid" and (
        kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]
    ):
        padding = "same"
    out = ops.conv2d(image, kernel, stride=stride, padding=padding)
    row = data.draw(st.integers(0, out.shape[0] - 1))
    col = data.draw(st.integers(0, out.shape[1] - 1))
    explanation = ops.explain_pixel(image, kernel, row, col, stride=stride, padding=padding)
    assert explanation.sum == pytest.approx(out[row, col], rel=1e-12, abs=1e-9)
    assert explanation.neighbourhood.shape == kernel.shape
    pad_top = keras_same_pad(image.shape[0], kernel.shape[0], stride)[0] if padding == "same" else 0
    assert explanation.top == row * stride - pad_top


# ---------------------------------------------------------------- errors: one sentence each


def _error(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ConvlensError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        ((np.zeros((2, 2)), np.ones((3, 3))), {}, "larger than"),
        ((np.zeros((5, 5)), np.ones((3, 3))), {"stride": 0}, "stride must be at least 1"),
        ((np.zeros((5, 5)), np.ones((3, 3))), {"stride": -2}, "stride must be at least 1"),
        ((np.full((5, 5), np.nan), np.ones((3, 3))), {}, "NaN"),
        ((np.zeros((5, 5)), np.full((3, 3), np.inf)), {}, "NaN or infinite"),
        ((np.zeros(5), np.ones((3, 3))), {}, "2-D (H, W)"),
        ((np.zeros((5, 5)), np.ones(3)), {}, "2-D (kh, kw)"),
        ((np.zeros((5, 5, 3)), np.ones((3, 3))), {}, "3 channels"),
        ((np.zeros((5, 5)), np.ones((3, 3))), {"padding": "full"}, "'valid' or 'same'"),
        ((np.array([["a"]]), np.ones((1, 1))), {}, "not real numbers"),
        ((np.zeros((0, 5)), np.ones((1, 1))), {}, "empty"),
    ],
)
def test_conv2d_errors(args: tuple, kwargs: dict, words: str) -> None:
    assert words in _error(ops.conv2d, *args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"size": 5}, "larger than"),
        ({"size": 0}, "at least 1"),
        ({"stride": 0}, "at least 1"),
        ({"mode": "min"}, "'max' or 'avg'"),
    ],
)
def test_pool2d_errors(kwargs: dict, words: str) -> None:
    assert words in _error(ops.pool2d, np.zeros((4, 4)), **kwargs)


@pytest.mark.parametrize(("row", "col"), [(3, 0), (0, 3), (-1, 0), (0.5, 0)])
def test_explain_pixel_refuses_pixels_outside_the_output(row: object, col: object) -> None:
    assert "outside the 3x3 output" in _error(
        ops.explain_pixel, np.zeros((5, 5)), np.ones((3, 3)), row, col
    )


# ---------------------------------------------------------------- kernels by text and by name


def test_parse_kernel_reads_rows_and_columns() -> None:
    kernel = ops.parse_kernel(" -1, 0, 1 ; -2,0,2;-1,0,1.5 ")
    assert kernel.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1.5]]
    assert kernel.dtype == np.float64
    assert ops.parse_kernel("7").shape == (1, 1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("1,a,2", "'a' in the kernel is not a number"),
        ("1,,2", "'' in the kernel is not a number"),
        ("1,2,3;4,5", "row 2 of the kernel has 2 values but row 1 has 3"),
        ("1,nan", "contains 'nan'"),
        ("1,inf;2,3", "contains 'inf'"),
    ],
)
def test_parse_kernel_errors(text: str, words: str) -> None:
    assert words in _error(ops.parse_kernel, text)


def test_presets_are_read_only_and_named_in_errors() -> None:
    assert {"vertical", "horizontal", "sobel_x", "sobel_y", "laplacian", "sharpen"} <= set(
        ops.FILTERS
    )
    assert {"blur", "identity", "lesson"} <= set(ops.FILTERS)
    assert ops.FILTERS["laplacian"].tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    assert all(
        kernel.shape == (3, 3) and not kernel.flags.writeable for kernel in ops.FILTERS.values()
    )
    assert "choose one of vertical, horizontal" in _error(ops.get_filter, "diagonal")


def test_identity_and_blur_do_what_they_say() -> None:
    image = np.random.default_rng(0).integers(0, 256, (8, 9)).astype(np.float64)
    assert np.array_equal(ops.conv2d(image, ops.FILTERS["identity"]), image[1:-1, 1:-1])
    assert ops.conv2d(np.full((3, 3), 90.0), ops.FILTERS["blur"]).item() == pytest.approx(90)


@pytest.mark.parametrize(("name", "lit_axis"), [("vertical", 1), ("horizontal", 0)])
def test_line_filters_light_up_the_lines_they_are_named_for(name: str, lit_axis: int) -> None:
    image = np.zeros((20, 20))
    image[:, 9:11] = 200  # a vertical bar...
    image[15:17, :] = 200  # ...and a horizontal one
    bar = np.abs(ops.conv2d(image, ops.FILTERS[name]))
    # Along the vertical bar (rows 2..10, away from the horizontal one) only "vertical" responds.
    vertical_response, horizontal_response = bar[2:10, 6:12].max(), bar[12:16, 0:5].max()
    if lit_axis == 1:
        assert vertical_response > 500 and horizontal_response == 0
    else:
        assert horizontal_response > 500 and vertical_response == 0


def test_on_the_built_in_image_each_line_filter_prefers_its_lines() -> None:
    image = facade()
    vertical = np.abs(ops.conv2d(image, ops.FILTERS["vertical"]))
    horizontal = np.abs(ops.conv2d(image, ops.FILTERS["horizontal"]))
    # Vertical lines are long in rows: their response, summed down each column, peaks high.
    assert vertical.sum(axis=0).max() > 3 * horizontal.sum(axis=0).max() / 2
    assert horizontal.sum(axis=1).max() > 3 * vertical.sum(axis=1).max() / 2


def test_built_in_image_is_a_fixed_uint8_square() -> None:
    image = facade()
    assert image.shape == (256, 256) and image.dtype == np.uint8
    assert np.array_equal(image, facade())
    assert 30 < image.std() < 90  # real contrast, not a flat field


# ---------------------------------------------------------------- the ground floor


def test_ops_imports_nothing_of_the_package_but_the_ground_floors_errors_and_html() -> None:
    tree = ast.parse(Path(ops.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    # convlens.shown: the explanations' notebook display (HTML text; NumPy and Pillow)
    assert {name for name in imported if name.startswith("convlens")} == {"convlens.errors", "convlens"}
    assert "from convlens import shown" in Path(ops.__file__).read_text()
    code = "import sys, convlens.lab.ops; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 12),
    st.integers(2, 12),
    st.integers(1, 3),
    st.sampled_from(["max", "avg"]),
    st.integers(0, 2**31 - 1),
)
def test_explain_pool_is_the_pooled_pixel(height, width, size, mode, seed) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(-50, 50, (height, width)).astype(np.float64)
    size = min(size, height, width)
    pooled = ops.pool2d(image, size, mode=mode)
    row, col = int(rng.integers(0, pooled.shape[0])), int(rng.integers(0, pooled.shape[1]))
    explained = ops.explain_pool(image, row, col, size, mode=mode)
    window = image[row * size : (row + 1) * size, col * size : (col + 1) * size]
    np.testing.assert_array_equal(explained.values, window)
    assert explained.value == pytest.approx(pooled[row, col])
    if mode == "max":
        i, j = explained.chosen
        assert window[i, j] == window.max() and (i, j) == divmod(int(np.argmax(window)), size)
    else:
        assert explained.chosen is None
    assert explained.equation().endswith("= " + ops.format_number(explained.value))


def test_explain_pool_errors() -> None:
    with pytest.raises(ConvlensError, match="outside the 2x2 pooled map"):
        ops.explain_pool(np.zeros((5, 5)), 2, 0)
    with pytest.raises(ConvlensError, match="2-D"):
        ops.explain_pool(np.zeros((4, 4, 2)), 0, 0)
    assert ops.explain_pool(np.array([[1, 9], [9, 3]]), 0, 0).chosen == (0, 1)  # first of ties
