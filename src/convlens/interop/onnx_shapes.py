"""The small integer computations exporters put beside a chain: shapes, pads, reshape targets.

PyTorch's TorchScript-based exporter writes ``x.view(x.size(0), -1)`` as
Shape -> Gather -> Unsqueeze -> Concat -> Reshape, and nn.ZeroPad2d's pads as
ConstantOfShape -> Concat -> Reshape -> Slice -> Transpose -> Cast. These
side computations take only the shapes of chain tensors and constants, so
they are evaluated here on tiny NumPy arrays (at most MAX_ELEMENTS values
each), with a stand-in batch size; nothing else in the graph is evaluated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ConvlensError

STANDIN_BATCH = 7  # the batch size a shape computation sees; a Reshape must keep it or infer it
MAX_ELEMENTS = 64
MAX_DEPTH = 32
SHAPE_OPS = (
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Slice",
    "Cast",
    "Reshape",
    "Transpose",
    "ConstantOfShape",
    "Identity",
)


class ShapeEvaluator:
    """Evaluates the side computations feeding a chain node's shape-like inputs."""

    def __init__(self, constant: Any, producers: dict[str, Any]) -> None:
        self.constant = constant  # name -> np.ndarray or None (checked constants)
        self.producers = producers  # tensor name -> the node writing it
        self.tensor_shapes: dict[str, tuple[int, ...]] = {}  # chain tensors, ONNX layout
        self.used: set[int] = set()  # id() of the nodes evaluated

    def value(self, name: str, depth: int = 0) -> np.ndarray:
        """The value of tensor ``name``, computed from constants and chain shapes only."""
        known = self.constant(name)
        if known is not None:
            return known
        node = self.producers.get(name)
        if node is None or node.op_type not in SHAPE_OPS or depth > MAX_DEPTH:
            what = "an operator" if node is None else f"a {node.op_type} node"
            raise ConvlensError(
                f"the ONNX tensor {name!r} is computed by {what} convlens does not evaluate; "
                f"convlens reads single-chain CNNs whose shapes and pads are constants."
            )
        self.used.add(id(node))
        if node.op_type == "Shape":
            result = self._shape(node)
        else:
            inputs = [self.value(i, depth + 1) if i else None for i in node.input]
            result = _compute(node, inputs)
        result = np.asarray(result)
        if result.size > MAX_ELEMENTS:
            raise ConvlensError(
                f"the ONNX {node.op_type} node {node.name!r} computes {result.size:,} values, "
                f"more than a shape computation needs; the file is not a plain CNN."
            )
        return result

    def _shape(self, node: Any) -> np.ndarray:
        shape = self.tensor_shapes.get(node.input[0])
        if shape is None:
            raise ConvlensError(
                f"the ONNX Shape node {node.name!r} reads a tensor off the chain; "
                f"convlens reads single-chain CNNs."
            )
        attrs = _attributes(node)
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        return np.array(shape[start:end], dtype=np.int64)


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper  # optional: the export extra

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _axes(node: Any, inputs: list[Any], index: int) -> list[int]:
    attrs = _attributes(node)
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(inputs) > index and inputs[index] is not None:
        return [int(a) for a in np.asarray(inputs[index]).reshape(-1)]
    return []


def _compute(node: Any, inputs: list[Any]) -> np.ndarray:
    """One side-computation node on NumPy arrays."""
    op, attrs = node.op_type, _attributes(node)
    data = inputs[0] if inputs else None
    if op in ("Identity", "Cast"):
        return np.asarray(data).astype(np.int64) if attrs.get("to", 7) in (6, 7) else data
    if op == "Gather":
        return np.take(data, np.asarray(inputs[1]), axis=int(attrs.get("axis", 0)))
    if op == "Unsqueeze":
        for axis in sorted(_axes(node, inputs, 1)):
            data = np.expand_dims(data, axis)
        return data
    if op == "Squeeze":
        axes = _axes(node, inputs, 1)
        return np.squeeze(data, axis=tuple(axes)) if axes else np.squeeze(data)
    if op == "Concat":
        parts = [np.atleast_1d(np.asarray(p)) for p in inputs if p is not None]
        return np.concatenate(parts, axis=int(attrs.get("axis", 0)))
    if op == "Transpose":
        return np.transpose(data, attrs.get("perm"))
    if op == "Reshape":
        target = [int(n) for n in np.asarray(inputs[1]).reshape(-1)]
        if not attrs.get("allowzero", 0):
            target = [data.shape[i] if n == 0 else n for i, n in enumerate(target)]
        return np.reshape(data, target)
    if op == "ConstantOfShape":
        shape = [int(n) for n in np.asarray(data).reshape(-1)]
        if any(n < 0 for n in shape) or int(np.prod(shape)) > MAX_ELEMENTS:
            raise ConvlensError(f"the ONNX ConstantOfShape node {node.name!r} is too large.")
        fill = attrs.get("value")
        value = 0 if fill is None else _tensor_value(fill)
        return np.full(shape, value)
    if op == "Slice":
        return _slice(data, inputs)
    raise ConvlensError(f"the ONNX {op} node {node.name!r} is not a shape computation.")


def _tensor_value(tensor: Any) -> Any:
    from onnx import numpy_helper  # optional: the export extra

    return numpy_helper.to_array(tensor).reshape(-1)[0]


def _slice(data: np.ndarray, inputs: list[Any]) -> np.ndarray:
    starts, ends = (np.asarray(v).reshape(-1) for v in inputs[1:3])
    axes = np.asarray(inputs[3]).reshape(-1) if len(inputs) > 3 and inputs[3] is not None else None
    steps = np.asarray(inputs[4]).reshape(-1) if len(inputs) > 4 and inputs[4] is not None else None
    axes = range(len(starts)) if axes is None else axes
    index = [slice(None)] * data.ndim
    for k, axis in enumerate(axes):
        step = 1 if steps is None else int(steps[k])
        index[int(axis)] = slice(int(starts[k]), int(ends[k]), step)
    return data[tuple(index)]
