"""``convlens export``: write a run's model as ONNX or TorchScript for other programs."""

from __future__ import annotations

import argparse

from convlens.cli import command

FORMAT_CHOICES = ("onnx", "torchscript")  # convlens.export.FORMATS, without importing torch


@command
def _add_export(sub) -> None:
    parser = sub.add_parser(
        "export",
        help="write the run's model as ONNX or TorchScript (input float32 NCHW in [0, 1], "
        "output class probabilities)",
    )
    parser.add_argument(
        "--run", metavar="DIR", help="run directory (default: the latest under runs/)"
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMAT_CHOICES,
        help="onnx (onnxruntime, Netron) or torchscript (torch.jit.load)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="the file to write (default: <run>/model.onnx or <run>/model.torchscript.pt)",
    )
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from convlens.export import export_run

    exported = export_run(args.run, args.format, args.out)
    info = exported.metadata
    shape = ", ".join(str(n) for n in info["input_shape"])
    print(
        f"wrote {exported.path} ({args.format}): input {info['input_name']!r} float32 ({shape}) "
        f"scaled to [0, 1], output {info['output_name']!r} "
        f"(N, {len(info['class_names'])}) for the classes {', '.join(info['class_names'])}"
    )
    return 0
