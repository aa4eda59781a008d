"""``convlens export``: write a run's model as ONNX, TorchScript or Keras for other programs."""

from __future__ import annotations

import argparse

from convlens.cli.base import command

FORMAT_CHOICES = (
    "onnx",
    "torchscript",
    "keras",
)  # convlens.interop.export.FORMATS, without importing torch


@command
def _add_export(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write the run's model as ONNX, TorchScript or Keras (input: the pixels times "
        "the run's input scale, 1/255 by default; output: class probabilities)",
    )
    parser.add_argument(
        "--run", metavar="DIR", help="run directory (default: the latest under runs/)"
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMAT_CHOICES,
        help="onnx (onnxruntime, Netron), torchscript (torch.jit.load) or keras "
        "(a Keras 3 .keras file for keras.models.load_model)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="the file to write (default: <run>/model.onnx, model.torchscript.pt or model.keras)",
    )
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from convlens.interop.export import export_run

    exported = export_run(args.run, args.format, args.out)
    info = exported.metadata
    if args.format == "keras":
        height, width = info["input_shape"][2:]
        print(
            f"wrote {exported.path} (Keras 3): keras.models.load_model reads it; input "
            f"(N, {height}, {width}, {info['input_shape'][1]}) pixels x "
            f"{info['input_scale']:.6g}, output (N, {len(info['class_names'])}) for the classes "
            f"{', '.join(info['class_names'])}"
        )
        if info["test_time_flip"]:
            print(
                "note: this model predicts from each image and its mirror (the mean of their "
                "logits); Keras has no layer that does this at inference, so the .keras file "
                "predicts from the image alone (about 0.3 points less accurate on Fashion-MNIST)"
            )
        return 0
    shape = ", ".join(str(n) for n in info["input_shape"])
    print(
        f"wrote {exported.path} ({args.format}): input {info['input_name']!r} float32 ({shape}) "
        f"(pixels x {info['input_scale']:.6g}), output {info['output_name']!r} "
        f"(N, {len(info['class_names'])}) for the classes {', '.join(info['class_names'])}"
    )
    return 0
