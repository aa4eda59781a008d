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

One small function per ONNX operator, in OP_READERS. Nothing in the file is
run; external data (torch.onnx.export writes model.onnx.data beside the
model) is read only from a plain file name in the model's own folder, within
that file's bounds; every initializer's declared size is checked before it is
read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.interop import limits
from convlens.interop.keras import ImportedModel, sha256_of
from convlens.interop.onnx_shapes import STANDIN_BATCH, ShapeEvaluator
from convlens.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Layer,
    MaxPooling2D,
    Rescaling,
    Softmax,
    ZeroPadding2D,
    same_padding,
)
from convlens.model import DEFAULT_INPUT_SCALE, Sequential

ONNX_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Elu": "elu"}
_FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}
_INT_TYPES = {6: np.int32, 7: np.int64}


@dataclass
class _Chain:
    """The walk's state: the layers so far, their weights, and the current tensor."""

    constants: dict[str, Any]  # name -> TensorProto (initializers and Constant nodes)
    shape: tuple[int, ...]  # the current tensor in Keras's layout: (H, W, C) or (F,)
    input_shape: tuple[int, ...] = ()  # the model's (H, W, C)
    layers: list[Layer] = field(default_factory=list)
    weights: list[dict[str, np.ndarray]] = field(default_factory=list)
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) a Flatten laid out as NCHW
    channels_last: bool = False  # a Transpose to NHWC just ran: the next Flatten is Keras's
    previous_op: str = ""
    shapes: ShapeEvaluator | None = None  # side computations of shapes and pads

    def add(self, layer: Layer, weights: dict[str, np.ndarray] | None = None) -> None:
        """Append a layer (and its weights in network.py's names, without the layer prefix)."""
        self.shape = layer.output_shape(self.shape)
        self.layers.append(layer)
        self.weights.append(weights or {})

    def const(self, node: Any, index: int, what: str) -> np.ndarray:
        """A node's constant input (initializer or Constant), checked before it is read."""
        if index >= len(node.input) or not node.input[index]:
            raise _refuse(node, f"has no {what}")
        name = node.input[index]
        if name in self.constants:
            return _array(self.constants[name], f"{node.op_type} node {node.name!r}'s {what}")
        if self.shapes is None:
            raise _refuse(node, f"takes its {what} from another computation, not a constant")
        return self.shapes.value(name)  # a small shape or pads computation beside the chain

    def constant(self, name: str) -> np.ndarray | None:
        """A constant tensor's value (checked), or None when ``name`` is not a constant."""
        if name not in self.constants:
            return None
        return _array(self.constants[name], f"the constant {name!r}")

    def onnx_shape(self) -> tuple[int, ...]:
        """The current tensor's shape in ONNX's layout, with the stand-in batch size."""
        if len(self.shape) == 3:
            height, width, channels = self.shape
            return (STANDIN_BATCH, channels, height, width)
        return (STANDIN_BATCH, *self.shape)


def _refuse(node: Any, what: str) -> ConvlensError:
    return ConvlensError(
        f"the ONNX {node.op_type} node {node.name or '(unnamed)'!r} {what}; convlens reads "
        f"single-chain CNNs (Conv, Gemm, pooling, BatchNormalization, activations, Flatten)."
    )


def _array(tensor: Any, where: str) -> np.ndarray:
    """An ONNX TensorProto as NumPy, its declared size checked against the data it holds."""
    from onnx import numpy_helper

    if tensor.data_location == 1:  # EXTERNAL: the values live in another file
        raise ConvlensError(f"{where} keeps its values in another file; convlens reads one file.")
    dtype = _FLOAT_TYPES.get(tensor.data_type) or _INT_TYPES.get(tensor.data_type)
    if dtype is None:
        raise ConvlensError(f"{where} has ONNX data type {tensor.data_type}, not a float.")
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims):
        raise ConvlensError(f"{where} declares a negative size {dims}; the file is damaged.")
    count = math.prod(dims)
    limits.check_parameters(count, where)
    stored = len(tensor.raw_data) // np.dtype(dtype).itemsize if tensor.raw_data else None
    if stored is None:
        fields = (tensor.float_data, tensor.int32_data, tensor.int64_data, tensor.double_data)
        stored = max(len(f) for f in fields)
    if stored != count:
        raise ConvlensError(
            f"{where} declares {dims} ({count:,} numbers) but holds {stored:,}; the file is damaged."
        )
    return np.asarray(numpy_helper.to_array(tensor))


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- one function per operator


def _window_padding(node: Any, chain: _Chain, window: tuple[int, int], strides: tuple[int, int]):
    """ "valid", "same", or explicit (top, bottom, left, right) pads of a Conv or pooling node."""
    attrs = _attributes(node)
    auto = _text(attrs.get("auto_pad", "NOTSET"))
    if auto == "SAME_UPPER":
        return "same"
    if auto == "VALID":
        return "valid"
    if auto != "NOTSET":
        raise _refuse(node, f"pads with auto_pad={auto}, which Keras does not have")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise _refuse(node, f"has pads {pads} for a 2-D window")
    top, left, bottom, right = pads
    if not any(pads):
        return "valid"
    height, width, _ = chain.shape
    if (top, bottom) == same_padding(height, window[0], strides[0]) and (
        left,
        right,
    ) == same_padding(width, window[1], strides[1]):
        return "same"
    return (top, bottom, left, right)


def _window(node: Any, kernel: tuple[int, ...] = ()) -> tuple[tuple[int, int], tuple[int, int]]:
    attrs = _attributes(node)
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _refuse(node, "is dilated")
    if attrs.get("ceil_mode", 0):
        raise _refuse(node, "rounds its output size up (ceil_mode)")
    window = tuple(attrs.get("kernel_shape", kernel))  # optional for Conv: the kernel's size
    strides = tuple(attrs.get("strides", [1, 1]))
    if len(window) != 2 or len(strides) != 2:
        raise _refuse(node, "is not a 2-D window")
    return window, strides  # type: ignore[return-value]


def conv(node: Any, chain: _Chain) -> None:
    """Conv -> [ZeroPadding2D] + Conv2D; kernels (out, in, kh, kw) stay as they are."""
    weight = chain.const(node, 1, "kernel").astype(np.float32)
    if _attributes(node).get("group", 1) != 1:
        raise _refuse(node, "is a grouped convolution")
    if weight.ndim != 4 or weight.shape[1] != chain.shape[-1]:
        raise _refuse(node, f"has a kernel of shape {weight.shape} for {chain.shape[-1]} channels")
    window, strides = _window(node, tuple(weight.shape[2:]))
    if tuple(weight.shape[2:]) != window:
        raise _refuse(node, f"declares a {window} window for a {weight.shape[2:]} kernel")
    padding = _window_padding(node, chain, window, strides)
    if isinstance(padding, tuple):
        top, bottom, left, right = padding
        chain.add(ZeroPadding2D(((top, bottom), (left, right))))
        padding = "valid"
    arrays = {"weight": weight}
    if len(node.input) > 2 and node.input[2]:
        arrays["bias"] = chain.const(node, 2, "bias").astype(np.float32).reshape(-1)
    layer = Conv2D(
        int(weight.shape[0]), window, strides=strides, padding=padding, use_bias="bias" in arrays
    )
    chain.add(layer, arrays)


def pool(node: Any, chain: _Chain) -> None:
    """MaxPool / AveragePool -> MaxPooling2D / AveragePooling2D (zero pads for count_include_pad)."""
    window, strides = _window(node)
    padding = _window_padding(node, chain, window, strides)
    is_max = node.op_type == "MaxPool"
    counts_pads = bool(_attributes(node).get("count_include_pad", 0))
    if padding == "same" and not is_max and counts_pads:
        top, bottom = same_padding(chain.shape[0], window[0], strides[0])
        left, right = same_padding(chain.shape[1], window[1], strides[1])
        padding = (top, bottom, left, right)
    if isinstance(padding, tuple):
        if is_max:
            raise _refuse(node, "pads its max pooling in a way Keras cannot ('same' only)")
        if not counts_pads:
            raise _refuse(node, "averages padded windows over real pixels with non-'same' pads")
        top, bottom, left, right = padding
        chain.add(ZeroPadding2D(((top, bottom), (left, right))))  # the zeros count, as in ONNX
        padding = "valid"
    cls = MaxPooling2D if is_max else AveragePooling2D
    chain.add(cls(window, strides=strides, padding=padding))


def global_pool(node: Any, chain: _Chain) -> None:
    """GlobalAveragePool / GlobalMaxPool -> global pooling keeping (1, 1, C), as ONNX does."""
    cls = GlobalMaxPooling2D if node.op_type == "GlobalMaxPool" else GlobalAveragePooling2D
    chain.add(cls(keepdims=True))


def reduce(node: Any, chain: _Chain) -> None:
    """ReduceMean / ReduceMax over the rows and columns -> global pooling."""
    attrs = _attributes(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = chain.const(node, 1, "axes").tolist()
    if sorted(int(a) % 4 for a in (axes or [])) != [2, 3] or len(chain.shape) != 3:
        raise _refuse(node, f"reduces axes {axes}, not the rows and columns of an image")
    cls = GlobalMaxPooling2D if node.op_type == "ReduceMax" else GlobalAveragePooling2D
    chain.add(cls(keepdims=bool(attrs.get("keepdims", 1))))


def batch_norm(node: Any, chain: _Chain) -> None:
    """BatchNormalization (inference form) with the file's epsilon and statistics."""
    names = ("scale", "bias", "mean", "variance")
    gamma, beta, mean, variance = (
        chain.const(node, i + 1, what).astype(np.float32).reshape(-1)
        for i, what in enumerate(names)
    )
    attrs = _attributes(node)
    momentum = float(attrs.get("momentum", 0.99))
    layer = BatchNormalization(
        momentum=momentum if 0 <= momentum < 1 else 0.99,
        epsilon=float(attrs.get("epsilon", 1e-5)),
    )
    weights = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": variance}
    chain.add(layer, weights)


def activation(node: Any, chain: _Chain) -> None:
    """Relu, Tanh, Sigmoid, Elu: the previous Conv/Gemm's activation, or a layer of its own."""
    name = ONNX_ACTIVATIONS[node.op_type]
    if node.op_type == "Elu" and _attributes(node).get("alpha", 1.0) != 1.0:
        raise _refuse(node, "has an alpha other than 1")
    _activate(chain, name)


def softmax(node: Any, chain: _Chain) -> None:
    """Softmax over the channels (or the features of a flat vector)."""
    axis = int(_attributes(node).get("axis", -1))
    rank = len(chain.shape) + 1  # ONNX's tensor has the batch axis too
    if axis % rank != 1:
        raise _refuse(node, f"takes the softmax over axis {axis}, not the channels")
    if len(chain.shape) == 1:
        _activate(chain, "softmax")
    else:
        chain.add(Softmax())


def _activate(chain: _Chain, name: str) -> None:
    last = chain.layers[-1] if chain.layers else None
    fusable = chain.previous_op in ("Conv", "Gemm", "Add", "MatMul")
    if isinstance(last, (Conv2D, Dense)) and last.activation == "linear" and fusable:
        chain.layers[-1] = replace(last, activation=name)
    else:
        chain.add(Activation(name))


def flatten(node: Any, chain: _Chain) -> None:
    """Flatten (axis 1), or a Reshape to (batch, features): Keras's Flatten."""
    if node.op_type == "Flatten" and int(_attributes(node).get("axis", 1)) != 1:
        raise _refuse(node, "flattens from an axis other than 1")
    if node.op_type == "Reshape":
        target = [int(n) for n in chain.const(node, 1, "shape").reshape(-1).tolist()]
        keeps_batch = len(target) == 2 and target[0] in (-1, 0, STANDIN_BATCH)
        if not keeps_batch or target[1] not in (-1, math.prod(chain.shape)):
            raise _refuse(node, f"reshapes to {target}, not to (batch, features)")
    if len(chain.shape) == 3:
        chain.flattened_from = None if chain.channels_last else chain.shape
        chain.channels_last = False
        chain.add(Flatten())


def transpose(node: Any, chain: _Chain) -> None:
    """Transpose to NHWC right before a Flatten: the flattened order is Keras's already."""
    perm = [int(n) for n in _attributes(node).get("perm", [])]
    if perm != [0, 2, 3, 1] or len(chain.shape) != 3:
        raise _refuse(node, f"transposes the axes {perm}, not to channels last before Flatten")
    chain.channels_last = True


def multiply(node: Any, chain: _Chain) -> None:
    """Mul by one constant number -> Rescaling(scale)."""
    chain.add(Rescaling(_scalar(node, chain, "factor")))


def _scalar(node: Any, chain: _Chain, what: str) -> float:
    value = chain.const(node, 1, what)
    if value.size != 1 or not np.isfinite(value).all():
        raise _refuse(node, f"uses a {what} of shape {value.shape}, not one number")
    return float(value.reshape(-1)[0])


def gemm(node: Any, chain: _Chain) -> None:
    """Gemm (alpha = beta = 1) -> Dense; after a Flatten the columns follow Keras's order."""
    attrs = _attributes(node)
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        raise _refuse(node, "scales or transposes its input (alpha, beta, transA)")
    weight = chain.const(node, 1, "weight").astype(np.float32)
    weight = weight if attrs.get("transB", 0) else weight.T  # (out, in)
    arrays = {"weight": weight}
    if len(node.input) > 2 and node.input[2]:
        arrays["bias"] = chain.const(node, 2, "bias").astype(np.float32).reshape(-1)
    _dense(node, chain, arrays)


def matmul(node: Any, chain: _Chain) -> None:
    """MatMul by a constant (in, out) -> Dense without bias (an Add after it adds one)."""
    weight = chain.const(node, 1, "weight").astype(np.float32)
    if weight.ndim != 2:
        raise _refuse(node, "multiplies by a matrix that is not 2-D")
    _dense(node, chain, {"weight": weight.T})


def add(node: Any, chain: _Chain) -> None:
    """Add of a constant vector right after MatMul (the Dense's bias), or of one number."""
    last = chain.layers[-1] if chain.layers else None
    if chain.previous_op != "MatMul" and chain.const(node, 1, "addend").size == 1:
        offset = _scalar(node, chain, "addend")
        if isinstance(last, Rescaling) and chain.previous_op == "Mul" and last.offset == 0:
            chain.layers[-1] = replace(last, offset=offset)
        else:
            chain.add(Rescaling(1.0, offset))
        return
    if chain.previous_op != "MatMul" or not isinstance(last, Dense) or last.use_bias:
        raise _refuse(node, "adds two computations (a branch) or adds outside a Dense layer")
    bias = chain.const(node, 1, "bias").astype(np.float32).reshape(-1)
    if bias.shape != (last.units,):
        raise _refuse(node, f"adds a bias of shape {bias.shape} to {last.units} units")
    chain.layers[-1] = replace(last, use_bias=True)
    chain.weights[-1]["bias"] = bias


def _dense(node: Any, chain: _Chain, arrays: dict[str, np.ndarray]) -> None:
    if len(chain.shape) != 1:
        raise _refuse(node, f"multiplies a {chain.shape} image volume; flatten it first")
    weight = arrays["weight"]
    if weight.ndim != 2 or weight.shape[1] != chain.shape[0]:
        raise _refuse(node, f"has a weight of shape {weight.shape} for {chain.shape[0]} inputs")
    if chain.flattened_from is not None and chain.previous_op in ("Flatten", "Reshape"):
        height, width, channels = chain.flattened_from
        # Column (h, w, c) of Keras's order is ONNX's column (c, h, w).
        order = np.arange(height * width * channels).reshape(channels, height, width)
        arrays["weight"] = np.ascontiguousarray(weight[:, order.transpose(1, 2, 0).reshape(-1)])
    if "bias" in arrays and arrays["bias"].shape != (weight.shape[0],):
        raise _refuse(node, f"has a bias of shape {arrays['bias'].shape}")
    chain.add(Dense(int(weight.shape[0]), use_bias="bias" in arrays), arrays)


def pad(node: Any, chain: _Chain) -> None:
    """Pad with zeros on rows and columns only (nn.ZeroPad2d) -> ZeroPadding2D."""
    attrs = _attributes(node)
    mode = _text(attrs.get("mode", "constant"))
    pads = attrs.get("pads")
    if pads is None:
        pads = chain.const(node, 1, "pads").tolist()
    value = chain.const(node, 2, "value") if len(node.input) > 2 and node.input[2] else 0.0
    pads = [int(n) for n in pads]
    if (
        mode != "constant"
        or np.any(np.asarray(value) != 0)
        or len(pads) != 8
        or len(chain.shape) != 3
    ):
        raise _refuse(node, "pads other than with zeros around an image")
    if pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        raise _refuse(node, "pads the batch or channel axis, or crops")
    chain.add(ZeroPadding2D(((pads[2], pads[6]), (pads[3], pads[7]))))


def passthrough(node: Any, chain: _Chain) -> None:
    """Dropout and Identity: nothing at inference."""


OP_READERS: dict[str, Callable[[Any, _Chain], None]] = {
    "Conv": conv,
    "MaxPool": pool,
    "AveragePool": pool,
    "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool,
    "ReduceMean": reduce,
    "ReduceMax": reduce,
    "BatchNormalization": batch_norm,
    "Relu": activation,
    "Tanh": activation,
    "Sigmoid": activation,
    "Elu": activation,
    "Softmax": softmax,
    "Flatten": flatten,
    "Reshape": flatten,
    "Gemm": gemm,
    "MatMul": matmul,
    "Add": add,
    "Pad": pad,
    "Transpose": transpose,
    "Mul": multiply,
    "Dropout": passthrough,
    "Identity": passthrough,
}


# ---------------------------------------------------------------- the file and the graph


def read_onnx(path: str | Path) -> ImportedModel:
    """Read a single-chain ONNX CNN (NCHW input of fixed C, H, W) into a spec and weights."""
    path = Path(path)
    limits.check_file(path)
    try:
        import onnx
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
    dtype = _FLOAT_TYPES.get(tensor.data_type) or _INT_TYPES.get(tensor.data_type)
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


def _walk(graph: Any, name: str) -> _Chain:
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
                raise _refuse(node, "holds a constant convlens cannot read")
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
        perm = [int(n) for n in _attributes(first[0]).get("perm", [])]
        if perm == [0, 3, 1, 2]:
            shape = dims  # the file's (N, H, W, C)
            tensor, visited = first[0].output[0], 1
    chain = _Chain(constants, shape, input_shape=shape)
    chain.shapes = ShapeEvaluator(chain.constant, producers)
    output = graph.output[0].name
    while tensor != output:
        chain.shapes.tensor_shapes[tensor] = chain.onnx_shape()
        users = [u for u in consumers.get(tensor, []) if u.op_type != "Shape"]  # read lazily
        if len(users) != 1:
            raise ConvlensError(
                f"{name}'s tensor {tensor!r} feeds {len(users)} nodes (a branch, or a dead end); "
                f"convlens reads single-chain models only."
            )
        node = users[0]
        reader = OP_READERS.get(node.op_type)
        if reader is None:
            raise _refuse(node, "is an operator convlens does not have")
        if node.input[0] != tensor:
            raise _refuse(node, "combines two computations (a branch or merge)")
        try:
            reader(node, chain)
        except ConvlensError:
            raise
        except (ValueError, TypeError) as exc:
            raise _refuse(node, f"cannot be read ({exc})") from None
        if chain.channels_last and node.op_type != "Transpose":
            raise _refuse(node, "follows a Transpose to channels last; only Flatten may")
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


def _sequential(chain: _Chain, model_name: str, name: str) -> Sequential:
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
