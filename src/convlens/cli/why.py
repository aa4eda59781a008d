"""``convlens why``: which pixels made a trained run give its answer for one image.

It draws the image, an attribution map (see convlens.attribution), the map
laid over the image and the model's top classes, titled with what the map
means ("red: pixels that raised the score for Sandal").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from convlens.cli.base import add_invert_arguments, command, inverted_note
from convlens.errors import ConvlensError


@command
def _register_why(sub: argparse._SubParsersAction) -> None:
    from convlens.inspect.methods import METHODS

    parser = sub.add_parser(
        "why",
        help="draw which pixels made a run give its answer for one image (Grad-CAM, ...)",
        description="Explain one prediction: the image, an attribution map toward a class "
        "(default: the predicted one), the map over the image and the top classes. "
        "The default method is the run's most faithful one: the one whose top 10%% of pixels, "
        "deleted, drop the predicted class's probability most on 100 of its test images "
        "(measured once, kept in the run's attribution.json). Methods: gradcam (on --layer, default the last Conv2D), saliency (input "
        "gradients), integrated-gradients (32 steps from a black image) and occlusion "
        "(a black patch slid over the image).",
    )
    parser.add_argument("image", nargs="?", type=Path, help="an image file (PNG, JPEG, BMP)")
    parser.add_argument(
        "--image-index", type=int, metavar="N", help="a test image by position (from 0)"
    )
    parser.add_argument("--run", help="run directory (default: the latest under runs/)")
    parser.add_argument("--dataset", help="the test images' dataset (default: the run's)")
    parser.add_argument("--data-dir", help="where the dataset's IDX files are (searched first)")
    parser.add_argument(
        "--method",
        choices=list(METHODS),
        help="default: the run's most faithful method (gradcam when --layer is given)",
    )
    parser.add_argument(
        "--class",
        dest="class_choice",
        metavar="CLASS",
        help="the class to explain, by name or number (default: the predicted class)",
    )
    parser.add_argument("--layer", help="Grad-CAM's layer (default: the last Conv2D)")
    add_invert_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, help="the figure to write (.png, ...)")
    parser.set_defaults(func=_why)


def _why(args: argparse.Namespace) -> int:
    from convlens.inspect import attribution, journey
    from convlens.runs.loading import load_run
    from convlens.views import attribution_figures, plots

    plots.check_figure_path(args.out)
    if (args.image is None) == (args.image_index is None):
        raise ConvlensError("give an image file or --image-index N (a test image), one of them.")
    run = load_run(args.run)
    method = _method(args, run)
    if method == "gradcam":
        attribution.gradcam_layer(run.model, args.layer)
    if args.class_choice is not None:
        journey.class_index(args.class_choice, run.class_names)
    image, label, why = _chosen_image(args, run)
    figure = attribution_figures.run_why_figure(
        run, image, method, args.class_choice, args.layer, label
    )
    plots.save_figure(figure, args.out)
    if why:
        print(f"{args.image}:{inverted_note(why)}")
    print(f"wrote {args.out}")
    return 0


def _method(args: argparse.Namespace, run) -> str:
    """--method, else gradcam for --layer, else the run's default (said, with why)."""
    from convlens.inspect.faithfulness import default_method

    if args.method is not None:
        return args.method
    if args.layer is not None:
        return "gradcam"  # --layer is Grad-CAM's
    chosen = default_method(run, dataset=args.dataset, data_dir=args.data_dir)
    print(chosen.why)
    return chosen.method


def _chosen_image(args: argparse.Namespace, run):
    """The image as the model reads it, uint8 (H, W, C), a label for the title, and why it
    was inverted ("" when it was not: a test image never is)."""
    from convlens.images import read_image
    from convlens.inspect import journey
    from convlens.runs import loading
    from convlens.runs.predict import model_image

    if args.image is not None:
        pixels, why = model_image(run, read_image(args.image), args.invert)
        return pixels, args.image.name + (" (inverted)" if why else ""), why
    test = loading.load_test_split(run, args.dataset, args.data_dir)
    index = int(journey.check_image_indices([args.image_index], len(test))[0])
    return test.images[index], f"test image {index} ({run.class_names[test.labels[index]]})", ""
