"""The convolution lab's subcommands: ``convolve`` and ``explain-pixel``.

Each parses its arguments, calls convlens.ops (and convlens.plots for the
figure) and prints what it computed. Colour images are converted to
grayscale luma (ITU-R 601, as Pillow's "L" mode) first, so the filters see
one channel, as in the lesson; explain-pixel does the same, so it explains
exactly the pixels that convolve draws.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convlens.cli.base import command
from convlens.errors import ConvlensError
from convlens.images import read_image, to_model_input
from convlens.lab import ops
from convlens.lab.sample_images import facade

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BUILTIN_NAME = "the built-in building front"
_KERNEL_HELP = 'your own kernel, rows split by ";", e.g. "-1,0,1;-2,0,2;-1,0,1"'
# argparse takes "-1,0,1;..." for an option name because it starts with "-" and
# is not a plain negative number; let values that start "-<digit>" or "-." be values.
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")


def _lab_parser(
    sub: argparse._SubParsersAction, name: str, **kwargs: str
) -> argparse.ArgumentParser:
    """A subparser whose option values may start with a minus sign."""
    parser = sub.add_parser(name, **kwargs)
    parser._negative_number_matcher = _NEGATIVE_VALUE  # type: ignore[attr-defined]
    parser.add_argument(
        "image",
        nargs="?",
        help="a PNG, JPEG or BMP file (colour images are converted to grayscale luma); "
        f"default: {BUILTIN_NAME}, a 256x256 picture full of vertical and horizontal lines",
    )
    parser.add_argument("--stride", type=int, default=None, help="step of the filter (default 1)")
    parser.add_argument(
        "--padding",
        choices=ops.PADDINGS,
        default=None,
        help="'valid' adds none; 'same' zero-pads as Keras does (default valid)",
    )
    return parser


@command
def _register_convolve(sub: argparse._SubParsersAction) -> None:
    parser = _lab_parser(
        sub,
        "convolve",
        help="filter and pool an image; draw input, filter, filtered and pooled images",
        description="Pass a 3x3 (or any) filter over an image, pool the result, and write a "
        "figure of every stage titled with its shape. Prints the shapes.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--filter",
        default="vertical",
        help=f"a preset: {', '.join(ops.FILTERS)}; or 'all' for a grid of every preset "
        "(default vertical)",
    )
    which.add_argument("--kernel", help=_KERNEL_HELP)
    parser.add_argument(
        "--pool", type=int, default=2, help="pooling window, 0 for none (default 2)"
    )
    parser.add_argument(
        "--pool-mode",
        choices=ops.POOL_MODES,
        default="max",
        help="keep the biggest or the average of each window (default max)",
    )
    parser.add_argument(
        "--display",
        choices=("clip", "rescale"),
        default="clip",
        help="show filtered values clipped to 0..255, as the lesson does, or rescaled "
        "from their min..max (default clip)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="the figure to write (.png, .pdf, .svg, .jpg)"
    )
    parser.set_defaults(func=_convolve)


@command
def _register_explain_pixel(sub: argparse._SubParsersAction) -> None:
    parser = _lab_parser(
        sub,
        "explain-pixel",
        help="print the sum of products behind one filtered pixel",
        description="Show the neighbourhood, the filter and the lesson's line "
        "'New pixel = (-1 * 0) + (0 * 64) + ... = 577' for one output pixel. "
        "--row and --col index the filtered output, not the input.",
    )
    parser.add_argument("--row", type=int, help="output row, from 0")
    parser.add_argument("--col", type=int, help="output column, from 0")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--filter", default="lesson", help=f"a preset: {', '.join(ops.FILTERS)} (default lesson)"
    )
    which.add_argument("--kernel", help=_KERNEL_HELP)
    parser.add_argument(
        "--patch",
        help='a neighbourhood to use instead of an image, e.g. "0,64,128;48,192,144;142,226,168"',
    )
    parser.set_defaults(func=_explain_pixel)


# ---------------------------------------------------------------- convolve


def _convolve(args: argparse.Namespace) -> int:
    from convlens.views import plots  # matplotlib loads only when a figure is drawn

    plots.check_figure_path(args.out)
    if args.pool < 0:
        raise ConvlensError(f"--pool must be 0 (no pooling) or more, not {args.pool}.")
    image, source = _load_grayscale(args.image)
    kernels = _chosen_kernels(args.filter, args.kernel)
    stride, padding = _geometry(args)
    settings = f"stride {stride}, {padding} padding"
    print(f"input: {source}")
    filtered, pooled = {}, ({} if args.pool else None)
    for name, kernel in kernels.items():
        filtered[name] = ops.conv2d(image, kernel, stride=stride, padding=padding)
        kh, kw = kernel.shape
        line = f"{name} {kh}x{kw}, {settings}: {image.shape} -> {filtered[name].shape}"
        if pooled is not None:
            pooled[name] = ops.pool2d(filtered[name], args.pool, mode=args.pool_mode)
            line += f" -> {args.pool}x{args.pool} {args.pool_mode} pool -> {pooled[name].shape}"
        print(line)
    pool_label = f"{args.pool_mode} pooled {args.pool}x{args.pool}"
    figure = _figure(
        image, kernels, filtered, pooled, f"{source}, {settings}", pool_label, args.display
    )
    plots.save_figure(figure, args.out)
    print(f"wrote {args.out}")
    return 0


def _geometry(args: argparse.Namespace) -> tuple[int, str]:
    """--stride and --padding with their defaults (left None so --patch can tell them apart)."""
    return (1 if args.stride is None else args.stride), (args.padding or "valid")


def _figure(
    image: np.ndarray,
    kernels: Mapping[str, np.ndarray],
    filtered: Mapping[str, np.ndarray],
    pooled: Mapping[str, np.ndarray] | None,
    subject: str,
    pool_label: str,
    display: str,
) -> Figure:
    """Build the convolve figure: one filter side by side, or the grid of all."""
    from convlens.views import plots  # matplotlib loads only when a figure is drawn

    if len(kernels) > 1:
        return plots.filter_grid_figure(
            image,
            filtered,
            pooled,
            title=f"Every preset filter on {subject}",
            pool_label=pool_label,
            display=display,
        )
    ((name, kernel),) = kernels.items()
    return plots.convolution_figure(
        image,
        kernel,
        filtered[name],
        None if pooled is None else pooled[name],
        title=f"Filter {name!r} on {subject}",
        pool_label=pool_label,
        display=display,
    )


def _chosen_kernels(filter_name: str, kernel_text: str | None) -> dict[str, np.ndarray]:
    """The kernels to apply by name: one, or every preset for ``--filter all``."""
    if kernel_text is not None:
        return {"custom": ops.parse_kernel(kernel_text)}
    if filter_name == "all":
        return _distinct_presets()
    return {filter_name: ops.get_filter(filter_name)}


def _distinct_presets() -> dict[str, np.ndarray]:
    """Every preset once: kernels known by two names (vertical = sobel_x) share one panel."""
    names: dict[bytes, list[str]] = {}
    kernels: dict[bytes, np.ndarray] = {}
    for name, kernel in ops.FILTERS.items():
        names.setdefault(kernel.tobytes(), []).append(name)
        kernels.setdefault(kernel.tobytes(), kernel)
    return {" = ".join(names[key]): kernel for key, kernel in kernels.items()}


def _load_grayscale(path: str | None) -> tuple[np.ndarray, str]:
    """The image to filter as uint8 (H, W), and words naming it and its shape."""
    if path is None:
        image = facade()
        return image, f"{BUILTIN_NAME} {image.shape}"
    pixels = read_image(path)  # (H, W, 1) or (H, W, 3)
    gray = to_model_input(pixels, pixels.shape[:2], channels=1)[:, :, 0]  # (H, W)
    if pixels.shape[2] == 1:
        return gray, f"{path} {gray.shape}"
    return gray, f"{path} {pixels.shape} as grayscale luma {gray.shape}"


# ---------------------------------------------------------------- explain-pixel


def _explain_pixel(args: argparse.Namespace) -> int:
    custom = args.kernel is not None
    kernel = ops.parse_kernel(args.kernel) if custom else ops.get_filter(args.filter)
    name = "custom" if custom else args.filter
    if args.patch is not None:
        explanation = _explain_patch(args, kernel)
        print(f"Patch times filter {name!r}:")
    else:
        if args.row is None or args.col is None:
            raise ConvlensError(
                "give --row and --col (the output pixel to explain), "
                "or --patch with a neighbourhood."
            )
        image, source = _load_grayscale(args.image)
        stride, padding = _geometry(args)
        explanation = ops.explain_pixel(
            image, kernel, args.row, args.col, stride=stride, padding=padding
        )
        print(
            f"Output pixel (row {args.row}, col {args.col}) of filter {name!r}, stride {stride}, "
            f"{padding} padding, on {source}:"
        )
    print(explanation.format())
    clipped = min(max(explanation.sum, 0.0), 255.0)
    print(f"Shown clipped to 0..255, as the lesson does: {ops.format_number(clipped)}")
    return 0


def _explain_patch(args: argparse.Namespace, kernel: np.ndarray) -> ops.PixelExplanation:
    """Explain the single output pixel of ``kernel`` on the --patch neighbourhood."""
    given = [
        flag
        for flag, value in (
            ("IMAGE", args.image),
            ("--row", args.row),
            ("--col", args.col),
            ("--stride", args.stride),
            ("--padding", args.padding),
        )
        if value is not None
    ]
    if given:
        raise ConvlensError(
            f"{' and '.join(given)} pick a pixel of an image; leave them out when you give --patch."
        )
    patch = ops.parse_kernel(args.patch, name="patch")
    if patch.shape != kernel.shape:
        raise ConvlensError(
            f"the patch is {patch.shape[0]}x{patch.shape[1]} but the filter is "
            f"{kernel.shape[0]}x{kernel.shape[1]}; give a patch the size of the filter."
        )
    return ops.explain_pixel(patch, kernel, 0, 0)
