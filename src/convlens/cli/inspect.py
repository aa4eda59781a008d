"""Subcommands that look inside a trained run: ``inspect`` and ``report``.

``inspect`` draws one figure: the lesson's journey grid (one filter's map
after every convolution and pooling layer, for test images of one class),
every map of one layer (``--layer``), or the learned filters (``--weights``).
``report`` writes the run's self-contained report.html. Both read the run
directory and the test split only: nothing is retrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from convlens.cli.base import command
from convlens.errors import ConvlensError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convlens.runs.loading import Run


def _add_run_and_data(parser: argparse.ArgumentParser, many: bool = False) -> None:
    parser.add_argument(
        "--run",
        action="append" if many else "store",
        help="run directory (default: the latest under runs/)"
        + ("; give it twice to compare two runs side by side" if many else ""),
    )
    parser.add_argument(
        "--dataset", help="the test images' dataset (default: the one the run was trained on)"
    )
    parser.add_argument("--data-dir", help="where the dataset's IDX files are (searched first)")


def _add_image_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--class",
        dest="class_choice",
        metavar="CLASS",
        help='the class of the test images to follow, by name ("Ankle boot") or number '
        "(default: the class of test image 0)",
    )
    parser.add_argument(
        "--images", type=int, default=3, help="how many images of the class (default 3)"
    )
    parser.add_argument(
        "--image-index",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="a test image by position (from 0) instead of --class; repeat for more",
    )
    parser.add_argument(
        "--filter",
        type=int,
        dest="filter_index",
        help="the filter whose maps to follow, numbered from 0 (default 1, as the lesson)",
    )


@command
def _register_inspect(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect",
        help="draw inside a trained model: one filter's journey, a layer's maps, the filters",
        description="By default, draw the lesson's journey grid: one row per test image of a "
        "class, one column per convolution and pooling layer, showing one filter's map. "
        "--layer draws every map of one layer for one image; --weights draws the learned "
        "filters of the first convolution. Filters are numbered from 0.",
    )
    _add_run_and_data(parser)
    _add_image_choice(parser)
    parser.add_argument("--layer", help="draw every map of this layer (e.g. conv2d) for one image")
    parser.add_argument(
        "--weights",
        action="store_true",
        help="draw the learned filters of the first Conv2D layer (or of --layer)",
    )
    parser.add_argument(
        "--portraits",
        action="store_true",
        help="draw filter portraits of --layer (default: the last Conv2D): the test images "
        "exciting each filter most, the patch each one sees, and a synthesised input",
    )
    parser.add_argument(
        "--filters", help='the portraits\' filters, like "0-15" or "3,5,9" (default 0-15)'
    )
    parser.add_argument(
        "--scale",
        choices=("panel", "row"),
        default="panel",
        help="the journey's colour scale: one per panel (default) or one per row",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="the figure to write (.png, .pdf, .svg, .jpg)"
    )
    parser.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    from convlens.runs.loading import load_run
    from convlens.views import plots, run_figures

    plots.check_figure_path(args.out)
    _refuse_mixed_options(args)
    run = load_run(args.run)
    if args.portraits:
        figure = _portraits_figure(args, run)
    elif args.weights:
        figure = run_figures.filters_figure(run, args.layer)
        print(f"learned filters of {args.layer or 'the first Conv2D layer'} in {run.path}")
    else:
        figure = _maps_figure(args, run)
    plots.save_figure(figure, args.out)
    print(f"wrote {args.out}")
    return 0


def _portraits_figure(args: argparse.Namespace, run: Run) -> Figure:
    """Filter portraits of --layer over the run's test split."""
    from convlens.inspect import portraits
    from convlens.runs import loading
    from convlens.views import attribution_figures

    row = portraits.portrait_layer(run.model, args.layer)
    portraits.parse_filters(args.filters, row.output_shape[-1])  # before the dataset is read
    test = loading.load_test_split(run, args.dataset, args.data_dir)
    print(f"portraits of {row.name}'s filters over {len(test):,} test images")
    return attribution_figures.run_portraits_figure(run, test, row.name, args.filters)


def _refuse_mixed_options(args: argparse.Namespace) -> None:
    """One sentence for options that pull in different directions."""
    if args.filters is not None and not args.portraits:
        raise ConvlensError("--filters chooses the portraits' filters; add --portraits.")
    if args.portraits and (args.weights or args.class_choice or args.image_index):
        raise ConvlensError(
            "--portraits draws filters over the whole test split; leave out --weights, "
            "--class and --image-index."
        )
    if args.images < 1:
        raise ConvlensError(f"--images must be at least 1, not {args.images}.")
    if (args.weights or args.layer) and args.filter_index is not None:
        raise ConvlensError(
            "--filter picks the journey's filter; leave it out with --layer or --weights, "
            "which draw every filter."
        )
    if args.weights and (args.class_choice or args.image_index):
        raise ConvlensError(
            "--weights draws the learned filters, which do not depend on an image; "
            "leave out --class and --image-index."
        )
    if args.class_choice is not None and args.image_index:
        raise ConvlensError("--class and --image-index both choose images; give one or the other.")
    if args.layer and len(args.image_index) > 1:
        raise ConvlensError("--layer draws the maps of one image; give one --image-index.")


def _maps_figure(args: argparse.Namespace, run: Run) -> Figure:
    """The journey grid, or with --layer every map of one layer for one image."""
    from convlens.inspect import journey
    from convlens.runs import loading
    from convlens.views import run_figures

    # Wrong names and numbers fail before the dataset is read.
    if args.layer:
        journey.spatial_row(run.model, args.layer)
    else:
        _check_journey_choice(run, args.filter_index)
    if args.class_choice is not None:
        journey.class_index(args.class_choice, run.class_names)
    test = loading.load_test_split(run, args.dataset, args.data_dir)
    count = 1 if args.layer else args.images
    indices = journey.choose_images(
        test.labels, run.class_names, args.class_choice, count, args.image_index
    )
    described = ", ".join(f"{i} ({run.class_names[test.labels[i]]})" for i in indices)
    if args.layer:
        print(f"every map of {args.layer} for test image {described}")
        return run_figures.feature_maps_figure(run, test, int(indices[0]), args.layer)
    filter_index = run_figures.default_filter(run) if args.filter_index is None else args.filter_index
    layers = ", ".join(row.name for row in journey.check_journey(run.model))
    print(f"filter {filter_index} through {layers} for test images {described}")
    return run_figures.journey_figure(run, test, indices, filter_index, args.scale)


def _check_journey_choice(run: Run, filter_index: int | None) -> None:
    """Refuse a model without a journey, or a --filter past a journey layer's depth."""
    from convlens.inspect import journey

    rows = journey.check_journey(run.model)
    if filter_index is not None:
        journey.check_filter(filter_index, rows)


@command
def _register_report(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="write a run's self-contained report.html (every figure embedded)",
        description="Write one HTML file that opens in any browser with no server and no "
        "network: the model summary, training curves and time, test accuracy, per-class "
        "accuracy, confusion matrix, the journey grid, the learned filters and the "
        "misclassified test images. With two --run, it also compares them side by side.",
    )
    _add_run_and_data(parser, many=True)
    _add_image_choice(parser)
    parser.add_argument(
        "--out",
        type=Path,
        help="the HTML file to write (default: <run>/report.html, or "
        "<run>/compare-<other run>.html when comparing; figures/*.png go beside a default one)",
    )
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from convlens.inspect import journey
    from convlens.runs import loading
    from convlens.runs.loading import load_run
    from convlens.views import report

    if args.images < 1:
        raise ConvlensError(f"--images must be at least 1, not {args.images}.")
    if args.out is not None and args.out.suffix.lower() not in (".html", ".htm"):
        raise ConvlensError(f"--out {args.out} is not an .html file; end it in .html.")
    if args.out is not None and not args.out.parent.is_dir():
        raise ConvlensError(
            f"the folder {args.out.parent} does not exist; create it or choose another --out."
        )
    runs = [load_run(path) for path in (args.run or [None])]
    run, others = runs[0], runs[1:]
    if journey.journey_layers(run.model):
        _check_journey_choice(run, args.filter_index)
    if args.class_choice is not None:
        if args.image_index:
            raise ConvlensError(
                "--class and --image-index both choose images; give one or the other."
            )
        journey.class_index(args.class_choice, run.class_names)
    test = loading.load_test_split(run, args.dataset, args.data_dir)
    journey.check_image_indices(args.image_index, len(test))
    options = report.ReportOptions(
        class_choice=args.class_choice,
        images=args.images,
        image_indices=tuple(args.image_index),
        filter_index=args.filter_index,
    )
    out, figures = args.out, None
    if out is None:
        names = "-".join(report.run_name(other.path) for other in others)
        out = run.path / (f"compare-{names}.html" if others else report.REPORT_FILE)
        figures = run.path / report.FIGURES_DIR
    path = report.write_report(
        run, test, out=out, options=options, others=others, figures_dir=figures
    )
    print(f"wrote {path} ({path.stat().st_size / 1024:,.0f} KB)")
    if figures is not None:
        print(f"figures in {figures}/")
    return 0
