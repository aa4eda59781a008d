"""``convlens import``: turn a Keras (.keras, .h5) or ONNX model file into a run directory."""

from __future__ import annotations

import argparse

from convlens.cli.base import command, output_width


@command
def _add_import(sub) -> None:
    parser = sub.add_parser(
        "import",
        help="turn a Keras (.keras, .h5) or ONNX model file into a run every command can use",
    )
    parser.add_argument("file", metavar="FILE", help="the model file: .keras, .h5 or .onnx")
    parser.add_argument(
        "--out", metavar="RUN_DIR", help="the run directory to write (default: runs/<name>-<time>)"
    )
    parser.add_argument(
        "--classes", help='the class names, in the order of the outputs: "cat,dog,..."'
    )
    parser.add_argument(
        "--dataset",
        help="fashion-mnist, mnist or a folder of images: names the classes and evaluates the "
        "model on the test split (metrics.json, report.html)",
    )
    parser.add_argument("--data-dir", help="where the dataset's IDX files are (searched first)")
    parser.add_argument(
        "--input-scale",
        type=_scale,
        metavar="S",
        help="multiply the 0..255 pixels by S before the model (default: 1/255 as the lesson "
        "does, or 1 when the model starts with a Rescaling layer)",
    )
    parser.set_defaults(func=_run_import)


def _scale(text: str) -> float:
    """--input-scale: a number, or a fraction such as 1/255."""
    numerator, _, denominator = text.partition("/")
    try:
        return float(numerator) / float(denominator) if denominator else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; give the scale like 1, 0.00392 or 1/255"
        ) from None


def _run_import(args: argparse.Namespace) -> int:
    from convlens.interop.importing import import_model, parse_classes
    from convlens.views.report import write_run_report

    result = import_model(
        args.file,
        out=args.out,
        classes=parse_classes(args.classes),
        dataset=args.dataset,
        input_scale=args.input_scale,
        data_dir=args.data_dir,
        finish=write_run_report,
    )
    print(result.model.summary_text(width=output_width()))
    source = result.metrics["imported_from"]
    accuracy = result.metrics.get("test_accuracy")
    scored = f"; test accuracy {accuracy:.2%}" if isinstance(accuracy, float) else ""
    print(
        f"imported {source['file']} ({source['format']}) into {result.path}{scored}; "
        f"try `convlens inspect --run {result.path}` or `convlens explore --run {result.path}`"
    )
    return 0
