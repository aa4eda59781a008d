"""Read an ONNX model whose graph is one chain (torch.onnx.export, tf2onnx) into a convlens spec.

ONNX computes in NCHW; convlens's specs are Keras's NHWC. Inside, convlens's
torch modules are NCHW too, so convolution kernels keep their layout; the one
place the layouts meet is Flatten: ONNX flattens (channel, row, column),
Keras (row, column, channel), so the Dense (Gemm / MatMul + Add) after a
Flatten gets its weight columns permuted and computes the same outputs.

Padding: a Conv's explicit pads that equal Keras's "same" rule become
padding="same"; any other pads (PyTorch pads both sides alike) become a
ZeroPadding2D before a "valid" Conv2D. An activation node right after a Conv
or Gemm becomes that layer's activation, as Keras writes Conv2D(..., "relu").

One small function per ONNX operator, in onnx_ops.OP_READERS. Nothing in the file is
run; external data (torch.onnx.export writes model.onnx.data beside the
model) is read only from a plain file name in the model's own folder, within
that file's bounds; every initializer's declared size is checked before it is
read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.interop import limits
from convlens.interop.keras import ImportedModel, sha256_of
from convlens.interop.onnx_ops import FLOAT_TYPES, INT_TYPES, OP_READERS, Chain, attributes, refuse
from convlens.interop.onnx_shapes import ShapeEvaluator
from convlens.model.sequential import DEFAULT_INPUT_SCALE, Sequential

# ---------------------------------------------------------------- the file and the graph


def read_onnx(path: str | Path) -> ImportedModel:
    """Read a single-chain ONNX CNN (NCHW input of fixed C, H, W) into a spec and weights."""
    path = Path(path)
    limits.check_file(path)
    try:
        import onnx  # optional: the export extra
    except ImportError:
        raise ConvlensError(
            "reading ONNX files needs the onnx package; install it with `pip install onnx`."
        ) from None
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not ONNX
        raise ConvlensError(
            f"{path.name} is not a readable ONNX file ({exc}); export it again."
        ) from None
    graph = proto.graph
    _check_initializers(graph, path)
    chain = _walk(graph, path.name)
    model = _with_convlens_metadata(_sequential(chain, graph.name or path.stem, path.name), proto)
    state = {
        f"{row.name}.{key}": value
        for row, weights in zip(model.rows, chain.weights, strict=True)
        for key, value in weights.items()
    }
    producer = f"{proto.producer_name} {proto.producer_version}".strip()
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    source = {
        "file": path.name,
        "sha256": sha256_of(path),
        "format": "onnx",
        "producer": producer,
        "opset": opset,
    }
    return ImportedModel(model, state, source)


def _with_convlens_metadata(model: Sequential, proto: Any) -> Sequential:
    """A file convlens exported says its input scale and class names: use them."""
    props = {p.key: p.value for p in proto.metadata_props}
    try:
        scale = float(props.get("convlens.input_scale", DEFAULT_INPUT_SCALE))
        names = json.loads(props.get("convlens.class_names", "null"))
    except ValueError:
        return model
    if math.isfinite(scale) and scale > 0:
        model = model.with_input_scale(scale)
    fits = isinstance(names, list) and len(names) == model.num_classes
    if fits and all(isinstance(n, str) and n for n in names):
        model = model.with_class_names(tuple(names))
    return model


def _check_initializers(graph: Any, path: Path) -> None:
    """Refuse, before anything is read, sizes beyond the limit; read external data safely."""
    total = 0
    for tensor in graph.initializer:
        total += math.prod(int(d) for d in tensor.dims)
        limits.check_parameters(total, path.name)
    for tensor in graph.initializer:
        if tensor.data_location == 1:
            _load_external(tensor, path)


def _load_external(tensor: Any, path: Path) -> None:
    """Read a tensor's values from its data file beside the model (torch.onnx's model.onnx.data).

    The file must be a plain name in the model's own folder, and the stated
    offset and length must lie inside it and match the tensor's declared size.
    """
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    folder = path.parent.resolve()
    data_path = (folder / location).resolve()
    if Path(location).name != location or location in ("", ".", "..") or data_path.parent != folder:
        raise ConvlensError(
            f"{path.name} names {location!r} as the file of its weights {tensor.name!r}; convlens "
            f"reads weight files only from the model's own folder, by plain name."
        )
    if not data_path.is_file():
        raise ConvlensError(
            f"{path.name} keeps its weights in {location}, which is not beside it; put the two "
            f"files in one folder, or export with torch.onnx.export(..., external_data=False)."
        )
    dtype = FLOAT_TYPES.get(tensor.data_type) or INT_TYPES.get(tensor.data_type)
    if dtype is None:
        raise ConvlensError(
            f"{path.name}'s weights {tensor.name!r} are not numbers convlens reads."
        )
    needed = math.prod(int(d) for d in tensor.dims) * np.dtype(dtype).itemsize
    try:
        offset, length = int(entries.get("offset", 0)), int(entries.get("length", needed))
    except ValueError:
        raise ConvlensError(
            f"{path.name}'s weights {tensor.name!r} have a damaged location."
        ) from None
    size = data_path.stat().st_size
    if length != needed or offset < 0 or offset + length > size:
        raise ConvlensError(
            f"{location} does not hold {path.name}'s weights {tensor.name!r} ({needed:,} bytes at "
            f"offset {offset:,} of a {size:,}-byte file); export the model again."
        )
    with data_path.open("rb") as handle:
        handle.seek(offset)
        tensor.raw_data = handle.read(length)
    del tensor.external_data[:]
    tensor.data_location = 0


def _graph_input(graph: Any, name: str) -> tuple[str, tuple[int, int, int]]:
    """The image input's name and its three fixed sizes after the batch, as the file has them."""
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ConvlensError(
            f"{name} has {len(inputs)} inputs and {len(graph.output)} outputs; convlens reads "
            f"models with one image input and one output."
        )
    dims = inputs[0].type.tensor_type.shape.dim
    sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(sizes) != 4 or not all(n and 0 < n <= 4096 for n in sizes[1:]):
        raise ConvlensError(
            f"{name}'s input has shape {sizes}, but convlens reads images (N, C, H, W) with a "
            f"fixed channels, height and width; export the model with a fixed image size."
        )
    return inputs[0].name, (sizes[1], sizes[2], sizes[3])


def _walk(graph: Any, name: str) -> Chain:
    """Follow the data from the graph's input to its output, one node at a time."""
    tensor, dims = _graph_input(graph, name)
    shape = (dims[1], dims[2], dims[0])  # the file's (N, C, H, W) as Keras's (H, W, C)
    constants = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    producers: dict[str, Any] = {}
    pending = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.output) == 1:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is None:
                raise refuse(node, "holds a constant convlens cannot read")
            constants[node.output[0]] = value
            continue
        pending.append(node)
        producers.update((out, node) for out in node.output)
        for input_name in node.input:
            if input_name and input_name not in constants:
                consumers.setdefault(input_name, []).append(node)
    visited = 0
    first = consumers.get(tensor, [])
    if len(first) == 1 and first[0].op_type == "Transpose":  # tf2onnx: NHWC in, NCHW inside
        perm = [int(n) for n in attributes(first[0]).get("perm", [])]
        if perm == [0, 3, 1, 2]:
            shape = dims  # the file's (N, H, W, C)
            tensor, visited = first[0].output[0], 1
    chain = Chain(constants, shape, input_shape=shape)
    chain.shapes = ShapeEvaluator(chain.constant, producers)
    output = graph.output[0].name
    while tensor != output:
        chain.shapes.tensor_shapes[tensor] = chain.onnx_shape()
        users = [u for u in consumers.get(tensor, []) if u.op_type != "Shape"]  # read lazily
        if len(users) != 1:
            raise _not_a_chain(name, tensor, users, consumers, constants)
        node = users[0]
        reader = OP_READERS.get(node.op_type)
        if reader is None:
            raise refuse(node, "is an operator convlens does not have")
        if node.input[0] != tensor:
            raise refuse(node, "combines two computations (a branch or merge)")
        try:
            reader(node, chain)
        except ConvlensError:
            raise
        except (ValueError, TypeError) as exc:
            raise refuse(node, f"cannot be read ({exc})") from None
        if chain.channels_last and node.op_type != "Transpose":
            raise refuse(node, "follows a Transpose to channels last; only Flatten may")
        chain.previous_op = node.op_type
        visited += 1
        tensor = node.output[0]
    off_chain = len(pending) - visited - len(chain.shapes.used)
    if off_chain:
        raise ConvlensError(
            f"{name} has {off_chain} nodes off the chain from its input to its "
            f"output; convlens reads single-chain models only."
        )
    return chain


# What a merge node does with the branches it joins, for the sentence refusing it.
MERGES = {
    "Add": "adds the branches (a residual connection)",
    "Sum": "adds the branches (a residual connection)",
    "Concat": "joins the branches side by side (a concatenation)",
    "Mul": "multiplies the branches (a gate)",
}


def _not_a_chain(
    name: str, tensor: str, users: list, consumers: dict[str, list], constants: dict
) -> ConvlensError:
    """The sentence for a tensor read by no node or by several: the merge they meet at, if any."""
    if not users:
        return ConvlensError(
            f"{name}'s tensor {tensor!r} feeds no node on the way to the output (a dead end); "
            "convlens reads single-chain models only."
        )
    merge = _merge_after(tensor, consumers, constants)
    if merge is None:
        return ConvlensError(
            f"{name}'s tensor {tensor!r} feeds {len(users)} nodes (a branch); convlens reads "
            "single-chain models only."
        )
    does = MERGES.get(merge.op_type, "combines the branches")
    return ConvlensError(
        f"{name} branches at tensor {tensor!r} and merges again at its {merge.op_type} node "
        f"{merge.name or '(unnamed)'!r}, which {does}; convlens reads single-chain models only."
    )


def _merge_after(tensor: str, consumers: dict[str, list], constants: dict) -> Any:
    """The first node downstream of ``tensor`` that reads two or more computed tensors, or None."""
    queue, seen = [tensor], {tensor}
    while queue:
        for node in consumers.get(queue.pop(0), []):
            computed = [i for i in node.input if i and i not in constants]
            if len(computed) > 1:
                return node
            for out in node.output:
                if out not in seen:
                    seen.add(out)
                    queue.append(out)
    return None


def _sequential(chain: Chain, model_name: str, name: str) -> Sequential:
    if not chain.layers:
        raise ConvlensError(f"{name} has no layers between its input and output.")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in model_name)[:60]
    try:
        model = Sequential(
            chain.layers, chain.input_shape, safe or "onnx-model", input_scale=DEFAULT_INPUT_SCALE
        )
    except ConvlensError as exc:
        raise ConvlensError(f"{name}: {exc}") from None
    limits.check_parameters(model.total_params, name)
    return model
