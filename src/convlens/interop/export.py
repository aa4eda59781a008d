"""Export a trained run as a model other programs can run: ONNX or TorchScript.

The exported model takes float32 images (N, C, H, W) scaled to [0, 1] (the
uint8 pixels divided by 255, channels first) with any batch size N, and
returns the class probabilities (N, classes) that ``evaluate.predict_proba``
gives: the final softmax is part of the exported graph. The model's name, the
input's name and shape, the class names and this preprocessing travel inside
the file: as ONNX ``metadata_props`` and as the TorchScript extra file
``convlens.json``.

The ONNX graph is named after the Keras layers, the way the summary shows them:
nodes are ``conv2d/Conv``, ``conv2d/Relu``, ``max_pooling2d/MaxPool``, ...,
weights ``conv2d.weight``, and each layer's output tensor carries the layer's
own name (``max_pooling2d``, shape (N, 64, 13, 13) for Keras's (None, 13, 13, 64)),
so Netron shows the summary's shapes between the layers.

Files are written atomically: the model is serialised in memory, then written
to a temporary file in the target's directory and renamed over the target.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import logging
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_bytes
from convlens.interop.keras_export import keras_bytes
from convlens.runs.loading import load_run

if TYPE_CHECKING:
    import onnx_ir  # optional: the export extra

    from convlens.model.network import Network
    from convlens.model.sequential import Sequential
    from convlens.runs.loading import Run

FORMATS = ("onnx", "torchscript", "keras")
DEFAULT_FILES = {
    "onnx": "model.onnx",
    "torchscript": "model.torchscript.pt",
    "keras": "model.keras",
}
INPUT_NAME = "images"
METADATA_FILE = "convlens.json"  # the TorchScript extra file holding export_metadata()
PREPROCESSING = (
    "float32 images (N, C, H, W): the uint8 pixels divided by 255 (values in [0, 1]), "
    "channels first; an image of the wrong size is resized or padded to (H, W) first, "
    "as convlens predict does"
)


def preprocessing(input_scale: float) -> str:
    """The exported input's preprocessing in words, for the run's input scale."""
    if input_scale == 1.0 / 255.0:
        return PREPROCESSING
    return PREPROCESSING.replace(
        "divided by 255 (values in [0, 1])", f"multiplied by {input_scale:.6g}"
    )


# Batch of the example input the exporters trace; torch.export specialises sizes 0 and 1.
EXAMPLE_BATCH = 2


class ExportedNetwork(nn.Module):
    """A Network's layers called one after another, then the final softmax.

    ``Network.forward`` pools before a monotone activation for speed and looks
    at forward hooks (inspection) to decide; an exported graph should instead
    show each Keras layer as the summary lists it, with no Python-side checks.
    Here every layer runs as written (convolution, activation, pooling), which
    gives the same values (max pooling and a non-decreasing activation commute).
    The layer modules are shared with the Network, under the same names, so
    the exported weights are named conv2d.weight, dense.bias, ...
    """

    def __init__(self, network: Network) -> None:
        super().__init__()
        for name, module in network.named_children():
            self.add_module(name, module)
        self.final_softmax = bool(network.final_softmax)
        self.test_time_flip = bool(network.test_time_flip)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """float32 images (N, C, H, W) in [0, 1] -> probabilities (N, classes).

        Without a final softmax, the last layer's outputs, as ``Network.probabilities``
        gives. A test-time-flip model averages the logits of the images and their mirrors.
        """
        x = self._layers(images)
        if self.test_time_flip:
            x = (x + self._layers(images.flip(3))) / 2
        return torch.softmax(x, dim=1) if self.final_softmax else x

    def _layers(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


def output_name(final_softmax: bool) -> str:
    """The exported output's name: probabilities when the model ends in softmax."""
    return "probabilities" if final_softmax else "outputs"


def export_metadata(run: Run) -> dict[str, Any]:
    """What a user of the exported file needs to know: names, shapes, classes, preprocessing.

    JSON-ready; ONNX stores each entry as a string (lists as JSON) in metadata_props.
    """
    height, width, channels = run.model.input_shape
    return {
        "model": run.model.name,
        "input_name": INPUT_NAME,
        "input_shape": ["N", channels, height, width],
        "input_dtype": "float32",
        "preprocessing": preprocessing(run.model.input_scale),
        "input_scale": run.model.input_scale,
        "output_name": output_name(run.network.final_softmax),
        "output_shape": ["N", run.model.num_classes],
        "class_names": list(run.class_names),
        # true: the output is from the mean of the logits of each image and its mirror
        "test_time_flip": run.model.test_time_flip,
    }


# export_metadata's plain-text entries; the others are lists, stored in ONNX as JSON.
_TEXT_KEYS = {"model", "input_name", "input_dtype", "preprocessing", "output_name"}


def default_out(run_path: Path, fmt: str) -> Path:
    """Where ``convlens export`` writes by default: <run>/model.onnx or <run>/model.torchscript.pt."""
    return Path(run_path) / DEFAULT_FILES[fmt]


@dataclass(frozen=True)
class Exported:
    """A written export: where, in which format, and the metadata recorded in it."""

    path: Path
    format: str
    metadata: dict[str, Any]


def export_run(
    run: str | Path | None = None, fmt: str = "onnx", out: str | Path | None = None
) -> Exported:
    """Export a run directory (default: the latest) as ``fmt`` (onnx or torchscript).

    Raises ConvlensError for an unknown format, a run without weights, or an
    ``out`` that cannot be written; nothing is written then.
    """
    check_format(fmt)
    loaded = load_run(run)
    target = Path(out) if out is not None else default_out(loaded.path, fmt)
    check_writable(target)
    data = export_bytes(loaded, fmt)
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        raise _unwritable(target, exc) from None
    return Exported(target, fmt, export_metadata(loaded))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The convlens metadata recorded in an exported file (either format), without running it.

    A TorchScript file is a zip archive: its ``extra/convlens.json`` is read
    directly. An ONNX file's ``convlens.*`` metadata_props are decoded back.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(
                (n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_FILE}")), None
            )
            if name is None:
                raise ConvlensError(f"{path} holds no {METADATA_FILE}; export it with convlens.")
            return json.loads(archive.read(name))
    import onnx  # optional: the export extra

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ConvlensError(f"{path} is not an ONNX file ({exc}); export it again.") from None
    prefix = "convlens."
    props = {
        p.key[len(prefix) :]: p.value for p in proto.metadata_props if p.key.startswith(prefix)
    }
    return {k: v if k in _TEXT_KEYS else json.loads(v) for k, v in props.items()}


def export_bytes(run: Run, fmt: str) -> bytes:
    """The exported model file's content for a loaded run."""
    check_format(fmt)
    if fmt == "keras":
        return keras_bytes(run)
    network = copy.deepcopy(run.network).cpu().float()  # the caller's network stays as it is
    wrapper = ExportedNetwork(network).eval()
    example = torch.rand(EXAMPLE_BATCH, *_nchw(run.model.input_shape))
    metadata = export_metadata(run)
    if fmt == "onnx":
        return onnx_bytes(wrapper, example, run.model, metadata)
    return torchscript_bytes(wrapper, example, metadata)


def check_format(fmt: str) -> None:
    """Refuse a format convlens cannot write."""
    if fmt not in FORMATS:
        raise ConvlensError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}.")


def check_writable(target: Path) -> None:
    """Fail before exporting when ``target`` cannot be written (a probe file in its directory)."""
    if target.is_dir():
        raise ConvlensError(f"{target} is a directory; give --out a file name, like model.onnx.")
    try:
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as exc:
        raise _unwritable(target, exc) from None


def _unwritable(target: Path, exc: OSError) -> ConvlensError:
    return ConvlensError(
        f"cannot write {target} ({exc.strerror or exc}); choose a writable place with --out."
    )


def _nchw(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    height, width, channels = input_shape
    return (channels, height, width)


# ---------------------------------------------------------------- TorchScript


def torchscript_bytes(
    wrapper: ExportedNetwork, example: torch.Tensor, metadata: dict[str, Any]
) -> bytes:
    """A traced TorchScript module (batch size free) with ``convlens.json`` as an extra file."""
    # torch.jit is deprecated upstream (DeprecationWarning on trace and save) but still the
    # one format C++ and mobile runtimes load; the warning tells a convlens user nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, (example,))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={METADATA_FILE: json.dumps(metadata)})
    return buffer.getvalue()


# ---------------------------------------------------------------- ONNX


def onnx_bytes(
    wrapper: ExportedNetwork, example: torch.Tensor, model: Sequential, metadata: dict[str, Any]
) -> bytes:
    """The ONNX model (opset of torch's exporter) with Keras names and convlens metadata."""
    program = _export_program(wrapper, example, output_name(wrapper.final_softmax))
    ir_model = program.model
    layer_names = [row.name for row in model.rows]
    name_graph(ir_model.graph, layer_names)
    _describe(ir_model, metadata)
    proto = _to_proto(ir_model)
    return proto.SerializeToString()


def _export_program(wrapper: ExportedNetwork, example: torch.Tensor, output: str) -> Any:
    """torch.onnx.export (the torch.export-based exporter) with a dynamic batch dimension."""
    try:
        # optional dependencies (the export extra); the exporter needs both: one sentence if not
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConvlensError(
            f"ONNX export needs the onnx and onnxscript packages ({exc.name} is missing); "
            f"install them with `pip install onnx onnxscript` (or convlens's export extra)."
        ) from None
    batch = torch.export.Dim("batch")
    try:
        with _quiet_exporter():
            return torch.onnx.export(
                wrapper,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[output],
                dynamic_shapes={"images": {0: batch}},
                dynamo=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter's own errors are many and internal
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvlensError(
            f"torch could not convert the model to ONNX ({first_line}); try --format torchscript."
        ) from None


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (torchvision ops not found, deprecations in its own code).

    The ONNX exporter logs a warning per torchvision operator it cannot register
    and its pytree code raises Future/DeprecationWarnings; none is about the user's model.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _to_proto(ir_model: onnx_ir.Model) -> Any:
    import onnx_ir  # optional: the export extra

    return onnx_ir.to_proto(ir_model)


def onnx_metadata_props(metadata: dict[str, Any]) -> dict[str, str]:
    """export_metadata as ONNX metadata_props: keys prefixed ``convlens.``, values strings."""
    return {
        f"convlens.{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in metadata.items()
    }


def _describe(ir_model: onnx_ir.Model, metadata: dict[str, Any]) -> None:
    """Record convlens's metadata and a plain-words description of the input and output."""
    ir_model.metadata_props.update(onnx_metadata_props(metadata))
    ir_model.doc_string = (
        f"convlens model {metadata['model']!r}: input {INPUT_NAME!r} is "
        f"{metadata['preprocessing']}; "
        f"output {metadata['output_name']!r} (N, classes) for the classes "
        f"{json.dumps(metadata['class_names'])}."
    )
    graph = ir_model.graph
    graph.inputs[0].doc_string = metadata["preprocessing"]
    graph.outputs[0].doc_string = (
        "class probabilities (N, classes), in the order of class_names"
        if metadata["output_name"] == "probabilities"
        else "the last layer's outputs (N, classes), in the order of class_names"
    )


def name_graph(graph: onnx_ir.Graph, layer_names: list[str]) -> None:
    """Name nodes ``<layer>/<Op>`` and each layer's output tensor ``<layer>``.

    The exporter records, on every node, the module scopes it came from; the
    first scope below the wrapper is the Keras layer. A node outside every
    layer (the final softmax) belongs to the last layer, as Keras's
    Dense(10, activation="softmax") holds its softmax. Graph inputs, outputs
    and weights (conv2d.weight, ...) keep their names; the exporter's own
    constants (val_7, ...) are named after the node that uses them. The
    exporter's per-node provenance (stack traces with this machine's paths)
    is dropped.
    """
    known = set(layer_names)
    layer_of = {node: _layer_of(node, known, layer_names[-1]) for node in graph}
    keep = {*graph.inputs, *graph.outputs, *graph.initializers.values()}
    produced = [v for node in graph for v in node.outputs if v not in keep]
    for index, value in enumerate(produced):  # free every name before handing out new ones
        value.name = f"__convlens_{index}"
    taken = {v.name for v in keep if v.name}
    node_names: set[str] = set()
    for node in graph:
        layer = layer_of[node]
        node.name = _unique(f"{layer}/{node.op_type}", node_names)
        node.metadata_props.clear()
        for value in node.outputs:
            if value not in keep:
                leaves = any(layer_of.get(use.node) != layer for use in value.uses())
                stem = layer if leaves else f"{layer}/{node.op_type}_output"
                value.name = _unique(stem, taken)
    _name_constants(graph, taken)


def _name_constants(graph: onnx_ir.Graph, taken: set[str]) -> None:
    """Rename the exporter's constants (no dot in the name) after their first user: flatten/Reshape_shape."""
    for value in list(graph.initializers.values()):
        uses = list(value.uses())
        if "." in (value.name or "") or not uses:
            continue
        node, index = uses[0].node, uses[0].idx
        role = "shape" if node.op_type == "Reshape" and index == 1 else f"input{index}"
        value.name = _unique(f"{node.name}_{role}", taken)


def _layer_of(node: onnx_ir.Node, known: set[str], last: str) -> str:
    """The Keras layer a node was exported from (its scopes: ['', layer, op, ...])."""
    scopes_text = node.metadata_props.get("pkg.torch.onnx.name_scopes", "[]")
    try:
        scopes = ast.literal_eval(scopes_text)
    except (ValueError, SyntaxError):
        scopes = []
    if len(scopes) > 2 and scopes[1] in known:
        return scopes[1]
    return last


def _unique(stem: str, taken: set[str]) -> str:
    name, count = stem, 0
    while name in taken:
        count += 1
        name = f"{stem}_{count}"
    taken.add(name)
    return name
