"""ONNX operators -> convlens layers: one small function per operator (OP_READERS).

Each reader takes a node of the chain and the walk's state (``Chain``: the
layers so far, their weights in network.py's names, the current tensor's
shape) and appends the Keras layer(s) computing the same thing in NHWC terms:
Conv -> [ZeroPadding2D] + Conv2D, Gemm/MatMul(+Add) -> Dense (columns permuted
after a Flatten of an NCHW volume), pooling, BatchNormalization, activations
(folded into the previous Conv2D/Dense as Keras writes them), Flatten/Reshape,
Pad, Slice of rows or columns -> Cropping2D, Mul/Add by a number -> Rescaling. Constant inputs are read through
``Chain.const``, which checks each initializer's declared size first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.interop import limits
from convlens.interop.onnx_shapes import STANDIN_BATCH, ShapeEvaluator
from convlens.model.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Cropping2D,
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

ONNX_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Elu": "elu"}
FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}
INT_TYPES = {6: np.int32, 7: np.int64}


@dataclass
class Chain:
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
            raise refuse(node, f"has no {what}")
        name = node.input[index]
        if name in self.constants:
            return tensor_array(self.constants[name], f"{node.op_type} node {node.name!r}'s {what}")
        if self.shapes is None:
            raise refuse(node, f"takes its {what} from another computation, not a constant")
        return self.shapes.value(name)  # a small shape or pads computation beside the chain

    def constant(self, name: str) -> np.ndarray | None:
        """A constant tensor's value (checked), or None when ``name`` is not a constant."""
        if name not in self.constants:
            return None
        return tensor_array(self.constants[name], f"the constant {name!r}")

    def onnx_shape(self) -> tuple[int, ...]:
        """The current tensor's shape in ONNX's layout, with the stand-in batch size."""
        if len(self.shape) == 3:
            height, width, channels = self.shape
            return (STANDIN_BATCH, channels, height, width)
        return (STANDIN_BATCH, *self.shape)


def refuse(node: Any, what: str) -> ConvlensError:
    return ConvlensError(
        f"the ONNX {node.op_type} node {node.name or '(unnamed)'!r} {what}; convlens reads "
        f"single-chain CNNs (Conv, Gemm, pooling, BatchNormalization, activations, Flatten)."
    )


def tensor_array(tensor: Any, where: str) -> np.ndarray:
    """An ONNX TensorProto as NumPy, its declared size checked against the data it holds."""
    from onnx import numpy_helper  # optional: the export extra

    if tensor.data_location == 1:  # EXTERNAL: the values live in another file
        raise ConvlensError(f"{where} keeps its values in another file; convlens reads one file.")
    dtype = FLOAT_TYPES.get(tensor.data_type) or INT_TYPES.get(tensor.data_type)
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


def attributes(node: Any) -> dict[str, Any]:
    from onnx import helper  # optional: the export extra

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- one function per operator


def _window_padding(node: Any, chain: Chain, window: tuple[int, int], strides: tuple[int, int]):
    """ "valid", "same", or explicit (top, bottom, left, right) pads of a Conv or pooling node."""
    attrs = attributes(node)
    auto = _text(attrs.get("auto_pad", "NOTSET"))
    if auto == "SAME_UPPER":
        return "same"
    if auto == "VALID":
        return "valid"
    if auto != "NOTSET":
        raise refuse(node, f"pads with auto_pad={auto}, which Keras does not have")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise refuse(node, f"has pads {pads} for a 2-D window")
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
    attrs = attributes(node)
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise refuse(node, "is dilated")
    if attrs.get("ceil_mode", 0):
        raise refuse(node, "rounds its output size up (ceil_mode)")
    window = tuple(attrs.get("kernel_shape", kernel))  # optional for Conv: the kernel's size
    strides = tuple(attrs.get("strides", [1, 1]))
    if len(window) != 2 or len(strides) != 2:
        raise refuse(node, "is not a 2-D window")
    return window, strides  # type: ignore[return-value]


def conv(node: Any, chain: Chain) -> None:
    """Conv -> [ZeroPadding2D] + Conv2D; kernels (out, in, kh, kw) stay as they are."""
    weight = chain.const(node, 1, "kernel").astype(np.float32)
    if attributes(node).get("group", 1) != 1:
        raise refuse(node, "is a grouped convolution")
    if weight.ndim != 4 or weight.shape[1] != chain.shape[-1]:
        raise refuse(node, f"has a kernel of shape {weight.shape} for {chain.shape[-1]} channels")
    window, strides = _window(node, tuple(weight.shape[2:]))
    if tuple(weight.shape[2:]) != window:
        raise refuse(node, f"declares a {window} window for a {weight.shape[2:]} kernel")
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


def pool(node: Any, chain: Chain) -> None:
    """MaxPool / AveragePool -> MaxPooling2D / AveragePooling2D (zero pads for count_include_pad)."""
    window, strides = _window(node)
    padding = _window_padding(node, chain, window, strides)
    is_max = node.op_type == "MaxPool"
    counts_pads = bool(attributes(node).get("count_include_pad", 0))
    if padding == "same" and not is_max and counts_pads:
        top, bottom = same_padding(chain.shape[0], window[0], strides[0])
        left, right = same_padding(chain.shape[1], window[1], strides[1])
        padding = (top, bottom, left, right)
    if isinstance(padding, tuple):
        if is_max:
            raise refuse(node, "pads its max pooling in a way Keras cannot ('same' only)")
        if not counts_pads:
            raise refuse(node, "averages padded windows over real pixels with non-'same' pads")
        top, bottom, left, right = padding
        chain.add(ZeroPadding2D(((top, bottom), (left, right))))  # the zeros count, as in ONNX
        padding = "valid"
    cls = MaxPooling2D if is_max else AveragePooling2D
    chain.add(cls(window, strides=strides, padding=padding))


def global_pool(node: Any, chain: Chain) -> None:
    """GlobalAveragePool / GlobalMaxPool -> global pooling keeping (1, 1, C), as ONNX does."""
    cls = GlobalMaxPooling2D if node.op_type == "GlobalMaxPool" else GlobalAveragePooling2D
    chain.add(cls(keepdims=True))


def reduce(node: Any, chain: Chain) -> None:
    """ReduceMean / ReduceMax over the rows and columns -> global pooling."""
    attrs = attributes(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = chain.const(node, 1, "axes").tolist()
    if sorted(int(a) % 4 for a in (axes or [])) != [2, 3] or len(chain.shape) != 3:
        raise refuse(node, f"reduces axes {axes}, not the rows and columns of an image")
    cls = GlobalMaxPooling2D if node.op_type == "ReduceMax" else GlobalAveragePooling2D
    chain.add(cls(keepdims=bool(attrs.get("keepdims", 1))))


def batch_norm(node: Any, chain: Chain) -> None:
    """BatchNormalization (inference form) with the file's epsilon and statistics."""
    names = ("scale", "bias", "mean", "variance")
    gamma, beta, mean, variance = (
        chain.const(node, i + 1, what).astype(np.float32).reshape(-1)
        for i, what in enumerate(names)
    )
    attrs = attributes(node)
    momentum = float(attrs.get("momentum", 0.99))
    layer = BatchNormalization(
        momentum=momentum if 0 <= momentum < 1 else 0.99,
        epsilon=float(attrs.get("epsilon", 1e-5)),
    )
    weights = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": variance}
    chain.add(layer, weights)


def activation(node: Any, chain: Chain) -> None:
    """Relu, Tanh, Sigmoid, Elu: the previous Conv/Gemm's activation, or a layer of its own."""
    name = ONNX_ACTIVATIONS[node.op_type]
    if node.op_type == "Elu" and attributes(node).get("alpha", 1.0) != 1.0:
        raise refuse(node, "has an alpha other than 1")
    _activate(chain, name)


def softmax(node: Any, chain: Chain) -> None:
    """Softmax over the channels (or the features of a flat vector)."""
    axis = int(attributes(node).get("axis", -1))
    rank = len(chain.shape) + 1  # ONNX's tensor has the batch axis too
    if axis % rank != 1:
        raise refuse(node, f"takes the softmax over axis {axis}, not the channels")
    if len(chain.shape) == 1:
        _activate(chain, "softmax")
    else:
        chain.add(Softmax())


def _activate(chain: Chain, name: str) -> None:
    last = chain.layers[-1] if chain.layers else None
    fusable = chain.previous_op in ("Conv", "Gemm", "Add", "MatMul")
    if isinstance(last, (Conv2D, Dense)) and last.activation == "linear" and fusable:
        chain.layers[-1] = replace(last, activation=name)
    else:
        chain.add(Activation(name))


def flatten(node: Any, chain: Chain) -> None:
    """Flatten (axis 1), or a Reshape to (batch, features): Keras's Flatten."""
    if node.op_type == "Flatten" and int(attributes(node).get("axis", 1)) != 1:
        raise refuse(node, "flattens from an axis other than 1")
    if node.op_type == "Reshape":
        target = [int(n) for n in chain.const(node, 1, "shape").reshape(-1).tolist()]
        keeps_batch = len(target) == 2 and target[0] in (-1, 0, STANDIN_BATCH)
        if not keeps_batch or target[1] not in (-1, math.prod(chain.shape)):
            raise refuse(node, f"reshapes to {target}, not to (batch, features)")
    if len(chain.shape) == 3:
        chain.flattened_from = None if chain.channels_last else chain.shape
        chain.channels_last = False
        chain.add(Flatten())


def transpose(node: Any, chain: Chain) -> None:
    """Transpose to NHWC right before a Flatten: the flattened order is Keras's already."""
    perm = [int(n) for n in attributes(node).get("perm", [])]
    if perm != [0, 2, 3, 1] or len(chain.shape) != 3:
        raise refuse(node, f"transposes the axes {perm}, not to channels last before Flatten")
    chain.channels_last = True


def multiply(node: Any, chain: Chain) -> None:
    """Mul by one constant number -> Rescaling(scale)."""
    chain.add(Rescaling(_scalar(node, chain, "factor")))


def _scalar(node: Any, chain: Chain, what: str) -> float:
    value = chain.const(node, 1, what)
    if value.size != 1 or not np.isfinite(value).all():
        raise refuse(node, f"uses a {what} of shape {value.shape}, not one number")
    return float(value.reshape(-1)[0])


def gemm(node: Any, chain: Chain) -> None:
    """Gemm (alpha = beta = 1) -> Dense; after a Flatten the columns follow Keras's order."""
    attrs = attributes(node)
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        raise refuse(node, "scales or transposes its input (alpha, beta, transA)")
    weight = chain.const(node, 1, "weight").astype(np.float32)
    weight = weight if attrs.get("transB", 0) else weight.T  # (out, in)
    arrays = {"weight": weight}
    if len(node.input) > 2 and node.input[2]:
        arrays["bias"] = chain.const(node, 2, "bias").astype(np.float32).reshape(-1)
    _dense(node, chain, arrays)


def matmul(node: Any, chain: Chain) -> None:
    """MatMul by a constant (in, out) -> Dense without bias (an Add after it adds one)."""
    weight = chain.const(node, 1, "weight").astype(np.float32)
    if weight.ndim != 2:
        raise refuse(node, "multiplies by a matrix that is not 2-D")
    _dense(node, chain, {"weight": weight.T})


def add(node: Any, chain: Chain) -> None:
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
        raise refuse(node, "adds two computations (a branch) or adds outside a Dense layer")
    bias = chain.const(node, 1, "bias").astype(np.float32).reshape(-1)
    if bias.shape != (last.units,):
        raise refuse(node, f"adds a bias of shape {bias.shape} to {last.units} units")
    chain.layers[-1] = replace(last, use_bias=True)
    chain.weights[-1]["bias"] = bias


def _dense(node: Any, chain: Chain, arrays: dict[str, np.ndarray]) -> None:
    if len(chain.shape) != 1:
        raise refuse(node, f"multiplies a {chain.shape} image volume; flatten it first")
    weight = arrays["weight"]
    if weight.ndim != 2 or weight.shape[1] != chain.shape[0]:
        raise refuse(node, f"has a weight of shape {weight.shape} for {chain.shape[0]} inputs")
    if chain.flattened_from is not None and chain.previous_op in ("Flatten", "Reshape"):
        height, width, channels = chain.flattened_from
        # Column (h, w, c) of Keras's order is ONNX's column (c, h, w).
        order = np.arange(height * width * channels).reshape(channels, height, width)
        arrays["weight"] = np.ascontiguousarray(weight[:, order.transpose(1, 2, 0).reshape(-1)])
    if "bias" in arrays and arrays["bias"].shape != (weight.shape[0],):
        raise refuse(node, f"has a bias of shape {arrays['bias'].shape}")
    chain.add(Dense(int(weight.shape[0]), use_bias="bias" in arrays), arrays)


def pad(node: Any, chain: Chain) -> None:
    """Pad with zeros on rows and columns only (nn.ZeroPad2d) -> ZeroPadding2D."""
    attrs = attributes(node)
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
        raise refuse(node, "pads other than with zeros around an image")
    if pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        raise refuse(node, "pads the batch or channel axis, or crops")
    chain.add(ZeroPadding2D(((pads[2], pads[6]), (pads[3], pads[7]))))


def slice_rows_or_columns(node: Any, chain: Chain) -> None:
    """Slice of an image's rows or columns (step 1) -> Cropping2D; a slice per axis, merged."""
    if len(chain.shape) != 3:
        raise refuse(node, "slices a flat vector, not an image's rows or columns")
    starts, ends = chain.const(node, 1, "starts"), chain.const(node, 2, "ends")
    has = lambda i: len(node.input) > i and node.input[i]  # noqa: E731
    axes = chain.const(node, 3, "axes") if has(3) else np.arange(len(starts))
    steps = chain.const(node, 4, "steps") if has(4) else np.ones(len(starts), np.int64)
    height, width, _ = chain.shape
    crop = [[0, 0], [0, 0]]
    for start, end, axis, step in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist(), strict=True):
        axis = int(axis) % 4
        if axis not in (2, 3) or step != 1:
            raise refuse(node, f"slices axis {axis} with step {step}, not rows or columns by 1")
        size = height if axis == 2 else width
        begin = min(max(start + size if start < 0 else start, 0), size)
        stop = min(max(end + size if end < 0 else end, 0), size)
        crop[axis - 2] = [begin, size - stop]
    layer = Cropping2D(((crop[0][0], crop[0][1]), (crop[1][0], crop[1][1])))
    last = chain.layers[-1] if chain.layers else None
    if chain.previous_op == "Slice" and isinstance(last, Cropping2D):  # the other axis's slice
        chain.shape = layer.output_shape(chain.shape)
        (a, b), (c, d) = last.cropping
        (e, f), (g, h) = layer.cropping
        chain.layers[-1] = Cropping2D(((a + e, b + f), (c + g, d + h)))
        return
    chain.add(layer)


def passthrough(node: Any, chain: Chain) -> None:
    """Dropout and Identity: nothing at inference."""


OP_READERS: dict[str, Callable[[Any, Chain], None]] = {
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
    "Slice": slice_rows_or_columns,
    "Transpose": transpose,
    "Mul": multiply,
    "Dropout": passthrough,
    "Identity": passthrough,
}
