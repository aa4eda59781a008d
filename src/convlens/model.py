"""Sequential models: a list of layer specs, presets by name, the summary, model files.

A Sequential knows every layer's output shape and parameter count without
torch; ``build()`` turns it into a torch module (see network.py) whose
parameter count equals the spec's. A model file is the spec as JSON
(model.json) plus the weights as safetensors (weights.safetensors): loading
one never runs code from the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens.errors import ConvlensError, LayerError
from convlens.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Layer,
    MaxPooling2D,
    SameShapeLayer,
    Shape,
    layer_from_config,
)
from convlens.receptive import ReceptiveField, receptive_fields

if TYPE_CHECKING:
    import torch

SPEC_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
# The lesson's preprocessing: pixels 0..255 divided by 255. A model that starts with
# Rescaling(1./255) takes raw pixels instead (input_scale 1); model.json records any other.
DEFAULT_INPUT_SCALE = 1.0 / 255.0


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary: a layer with its shapes, counts and explanations."""

    name: str
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable: int
    shape_why: str
    params_why: str

    @property
    def keras_shape(self) -> str:
        """The output shape as Keras prints it: (None, 26, 26, 64)."""
        return "(" + ", ".join(["None", *(str(n) for n in self.output_shape)]) + ")"


def receptive_summary(field: ReceptiveField | None) -> dict[str, Any]:
    """A layer's receptive field as JSON-ready data: size, jump, start, formula (None when flat)."""
    if field is None:
        return {
            "receptive_field": None,
            "jump": None,
            "receptive_field_start": None,
            "receptive_field_explanation": None,
        }
    return {
        "receptive_field": list(field.size),
        "jump": list(field.jump),
        "receptive_field_start": list(field.start),
        "receptive_field_explanation": field.why,
    }


def _snake(keras_type: str) -> str:
    """Keras's default layer name stem: MaxPooling2D -> max_pooling2d."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", keras_type).lower()


_LAYER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")


def _check_layer_name(name: Any) -> None:
    """Refuse a layer name torch cannot use as a module name (it names the weights too)."""
    if not (isinstance(name, str) and _LAYER_NAME.fullmatch(name)):
        raise ConvlensError(
            f"layer name {name!r} is not usable; use letters, digits, '_' and '-', like 'conv2d_1'."
        )


def _validate_input_shape(shape: Any) -> Shape:
    ok = isinstance(shape, (list, tuple)) and len(shape) == 3
    ok = ok and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    if not ok:
        raise ConvlensError(
            f"input_shape must be three positive integers (height, width, channels), "
            f"like [28, 28, 1]; got {shape!r}."
        )
    return tuple(shape)


def _validate_input_scale(scale: Any) -> float:
    ok = isinstance(scale, (int, float)) and not isinstance(scale, bool)
    if not (ok and math.isfinite(scale) and scale > 0):
        raise ConvlensError(
            f"input_scale must be a positive number (the pixels 0..255 are multiplied by it, "
            f"like 1/255 = 0.00392); got {scale!r}."
        )
    return float(scale)


def _ends_as_classifier(rows: tuple[LayerRow, ...]) -> bool:
    """A flat output made by Dense or global pooling, perhaps then Flatten or an activation."""
    if len(rows[-1].output_shape) != 1:
        return False
    for row in reversed(rows):
        if not isinstance(row.layer, SameShapeLayer | Dropout | BatchNormalization | Flatten):
            return isinstance(row.layer, Dense | GlobalAveragePooling2D | GlobalMaxPooling2D)
    return False


class Sequential:
    """A stack of layers applied in order, as Keras's Sequential.

    ``Sequential([Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1)),
    MaxPooling2D(2, 2), Flatten(), Dense(10, activation="softmax")])``
    """

    def __init__(
        self,
        layers: list[Layer] | tuple[Layer, ...],
        input_shape: Shape | None = None,
        name: str = "sequential",
        class_names: tuple[str, ...] | None = None,
        input_scale: float = DEFAULT_INPUT_SCALE,
        test_time_flip: bool = False,
    ) -> None:
        if not layers:
            raise ConvlensError(
                "a model needs at least one layer; add layers to Sequential([...])."
            )
        for layer in layers:
            if not isinstance(layer, Layer):
                raise ConvlensError(f"{layer!r} is not a convlens layer; use Conv2D, Dense, etc.")
        shape = input_shape if input_shape is not None else layers[0].input_shape
        if shape is None:
            raise ConvlensError(
                "the model has no input shape; give the first layer input_shape=(28, 28, 1) "
                "or pass input_shape to Sequential."
            )
        self.input_shape: Shape = _validate_input_shape(shape)
        self.input_scale = _validate_input_scale(input_scale)
        if not isinstance(test_time_flip, bool):
            raise ConvlensError(
                f'"test_time_flip" in a model file must be true or false, not {test_time_flip!r}.'
            )
        # Predict from the mean of the logits of each image and its left-right mirror
        # (network.py): for a model trained on mirrored images whose classes look the same
        # mirrored, as Fashion-MNIST's clothes do.
        self.test_time_flip = test_time_flip
        self.name = name
        self.class_names = tuple(class_names) if class_names else None
        self.layers = tuple(layers)
        self.rows: tuple[LayerRow, ...] = self._compute_rows()
        if not _ends_as_classifier(self.rows):
            last = self.layers[-1]
            raise LayerError(
                f"the last layer is {last.keras_type}, but a classifier ends with "
                f"Dense(number of classes, activation='softmax'); add one.",
                len(self.layers) - 1,
            )

    def _compute_rows(self) -> tuple[LayerRow, ...]:
        rows, seen, shape = [], {}, self.input_shape
        for index, layer in enumerate(self.layers):
            stem = _snake(layer.keras_type)
            count = seen.get(stem, 0)
            seen[stem] = count + 1
            name = layer.name or (stem if count == 0 else f"{stem}_{count}")
            try:
                row = _row(name, layer, shape)
            except LayerError:
                raise
            except ConvlensError as exc:  # the editor shows it beside this layer
                raise LayerError(str(exc), index) from None
            rows.append(row)
            shape = row.output_shape
        names = [row.name for row in rows]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise LayerError(
                f"two layers are named {duplicate!r}; give each layer its own name.",
                len(names) - 1 - names[::-1].index(duplicate),
            )
        return tuple(rows)

    @property
    def output_shape(self) -> Shape:
        """The last layer's output shape (without batch)."""
        return self.rows[-1].output_shape

    @property
    def num_classes(self) -> int:
        """Units of the final Dense layer: how many classes the model tells apart."""
        return self.output_shape[0]

    @property
    def total_params(self) -> int:
        """All parameters, as Keras's "Total params"."""
        return sum(row.params for row in self.rows)

    @property
    def trainable_params(self) -> int:
        """Parameters trained by gradient descent, as Keras's "Trainable params"."""
        return sum(row.trainable for row in self.rows)

    def summary_text(self, explain: bool = True) -> str:
        """The Keras-style table, Layer (type) | Output Shape | Param #, plus the why of each."""
        return format_summary(self, explain=explain)

    def summary(self, explain: bool = True) -> None:
        """Print the summary table, as Keras's model.summary() does."""
        print(self.summary_text(explain=explain))

    def receptive_fields(self) -> dict[str, ReceptiveField | None]:
        """Each layer's receptive field on the input by name (None after Flatten); see receptive.py."""
        fields = receptive_fields([(row.layer, row.input_shape) for row in self.rows])
        return {row.name: field for row, field in zip(self.rows, fields, strict=True)}

    def summary_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data: layers with Keras shapes (batch as None), totals.

        Each layer also gives its receptive field and jump on the input (null
        for flat layers) and the formula behind them.
        """
        fields = self.receptive_fields()
        return {
            "name": self.name,
            "input_shape": [None, *self.input_shape],
            "layers": [
                {
                    "name": row.name,
                    "type": row.layer.keras_type,
                    "output_shape": [None, *row.output_shape],
                    "params": row.params,
                    "shape_explanation": row.shape_why,
                    "params_explanation": row.params_why,
                    **receptive_summary(fields[row.name]),
                }
                for row in self.rows
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.total_params - self.trainable_params,
            "test_time_flip": self.test_time_flip,
        }

    def config(self) -> dict[str, Any]:
        """The model file's JSON content: {"input_shape", "layers", "name", "class_names"?}."""
        layers = []
        for row in self.rows:
            entry = row.layer.config()
            entry.pop("input_shape", None)
            entry["name"] = row.name
            layers.append(entry)
        config: dict[str, Any] = {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": layers,
        }
        if self.class_names:
            config["class_names"] = list(self.class_names)
        if self.input_scale != DEFAULT_INPUT_SCALE:
            config["input_scale"] = self.input_scale
        if self.test_time_flip:
            config["test_time_flip"] = True
        return config

    @classmethod
    def from_config(cls, config: Any) -> Sequential:
        """Build a Sequential from the model file's JSON (as written by hand or by config())."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ConvlensError(
                'a model file must be a JSON object with "input_shape" and a "layers" list.'
            )
        for index, entry in enumerate(config["layers"]):
            if isinstance(entry, dict) and not isinstance(entry.get("type", ""), str):
                raise LayerError(
                    f'a layer\'s "type" must be a string; got {entry["type"]!r}.', index
                )
        layers = []
        for index, entry in enumerate(config["layers"]):
            try:
                layers.append(layer_from_config(entry))
            except ConvlensError as exc:  # the editor shows it beside this layer
                raise LayerError(str(exc), index) from None
        names = config.get("class_names")
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise ConvlensError('"class_names" in a model file must be a list of strings.')
        return cls(
            layers,
            input_shape=config.get("input_shape"),
            name=str(config.get("name", "sequential")),
            class_names=tuple(names) if names else None,
            input_scale=config.get("input_scale", DEFAULT_INPUT_SCALE),
            test_time_flip=config.get("test_time_flip", False),
        )

    def _changed(self, **changes: Any) -> Sequential:
        """A copy of this model with some constructor arguments changed."""
        arguments = {
            "layers": self.layers,
            "input_shape": self.input_shape,
            "name": self.name,
            "class_names": self.class_names,
            "input_scale": self.input_scale,
            "test_time_flip": self.test_time_flip,
        }
        return Sequential(**{**arguments, **changes})

    def with_test_time_flip(self, flip: bool = True) -> Sequential:
        """The same model predicting from each image and its mirror (or not)."""
        return self._changed(test_time_flip=flip)

    def with_class_names(self, class_names: tuple[str, ...]) -> Sequential:
        """The same model with the names of the classes its outputs stand for."""
        if len(class_names) != self.num_classes:
            raise ConvlensError(
                f"the model ends in Dense({self.num_classes}) but the dataset has "
                f"{len(class_names)} classes; change the last layer to Dense({len(class_names)})."
            )
        return self._changed(class_names=class_names)

    def with_input_scale(self, input_scale: float) -> Sequential:
        """The same model taking pixels multiplied by ``input_scale`` (1/255 by default)."""
        return self._changed(input_scale=input_scale)

    def with_output_units(self, units: int) -> Sequential:
        """The same model with its final Dense layer resized to ``units`` classes."""
        if self.num_classes == units:
            return self
        last = self.layers[-1]
        if not isinstance(last, Dense):
            raise ConvlensError(
                f"the model ends in {last.keras_type} with {self.num_classes} outputs but the "
                f"dataset has {units} classes; end the model with Dense({units})."
            )
        return self._changed(
            layers=(*self.layers[:-1], replace(last, units=units)), class_names=None
        )

    def with_input_shape(self, shape: Shape) -> Sequential:
        """The same layers built for another (height, width, channels) input.

        Shapes and parameter counts follow; a layer that no longer fits is refused with
        the sentence naming it (a 3x3 filter on a 2x2 map).
        """
        shape = _validate_input_shape(tuple(shape))
        if shape == self.input_shape:
            return self
        return self._changed(input_shape=shape)

    def build(self, seed: int | None = None) -> torch.nn.Module:
        """A torch module computing this model (NCHW inside), with Keras's initialisation."""
        from convlens.network import build_network

        try:
            return build_network(self, seed=seed)
        except KeyError as exc:  # torch refuses a module name that clashes with an attribute
            raise ConvlensError(
                f"the model cannot be built ({exc.args[0] if exc.args else exc}); "
                f"rename that layer."
            ) from None


def _row(name: str, layer: Layer, shape: Shape) -> LayerRow:
    """The summary row of ``layer`` (called ``name``) on an input of ``shape``."""
    _check_layer_name(name)
    layer = layer if layer.name else replace(layer, name=name)  # errors name the layer
    return LayerRow(
        name=name,
        layer=layer,
        input_shape=shape,
        output_shape=layer.output_shape(shape),
        params=layer.param_count(shape),
        trainable=layer.trainable_count(shape),
        shape_why=layer.explain_shape(shape),
        params_why=layer.explain_params(shape),
    )


def format_summary(model: Sequential, explain: bool = True) -> str:
    """Render the summary table as plain text (golden-tested, so keep it stable)."""
    name_w = max(
        len("Layer (type)"), *(len(f"{r.name} ({r.layer.keras_type})") for r in model.rows)
    )
    shape_w = max(len("Output Shape"), *(len(r.keras_shape) for r in model.rows))
    param_w = max(len("Param #"), *(len(f"{r.params:,}") for r in model.rows))
    head = f"{'Layer (type)':<{name_w}}  {'Output Shape':<{shape_w}}  {'Param #':>{param_w}}"
    if explain:
        head += "  Why"
    indent = " " * (name_w + shape_w + param_w + 6)
    title = f'Model: "{model.name}"  input: {model.input_shape}'
    if model.input_scale != DEFAULT_INPUT_SCALE:
        title += f"  pixels 0..255 multiplied by {model.input_scale:.6g} first"
    if model.test_time_flip:
        title += "  predicts from each image and its mirror (mean of the two logits)"
    lines = [title, head, "=" * len(head)]
    fields = model.receptive_fields()
    for row in model.rows:
        label = f"{row.name} ({row.layer.keras_type})"
        line = f"{label:<{name_w}}  {row.keras_shape:<{shape_w}}  {row.params:>{param_w},}"
        if explain:
            lines.append(f"{line}  shape  {row.shape_why}")
            lines.append(f"{indent}params {row.params_why}")
            if fields[row.name] is not None:  # which input pixels one output pixel sees
                lines.append(f"{indent}sees   {fields[row.name].why}")
        else:
            lines.append(line)
    frozen = model.total_params - model.trainable_params
    lines += [
        "=" * len(head),
        f"Total params: {model.total_params:,} ({model.total_params * 4 / 1024:,.2f} KB)",
        f"Trainable params: {model.trainable_params:,}",
        f"Non-trainable params: {frozen:,}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- presets


def _seed_cnn() -> list[Layer]:
    return [
        Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2, 2),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]


def _seed_dnn() -> list[Layer]:
    return [
        Flatten(input_shape=(28, 28, 1)),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]


def _lenet5() -> list[Layer]:
    # LeCun et al. 1998 on 32x32x1: 5x5 filters, 6 then 16 deep, average pooling, tanh.
    return [
        Conv2D(6, (5, 5), activation="tanh", input_shape=(32, 32, 1)),
        AveragePooling2D(2, 2),
        Conv2D(16, (5, 5), activation="tanh"),
        AveragePooling2D(2, 2),
        Flatten(),
        Dense(120, activation="tanh"),
        Dense(84, activation="tanh"),
        Dense(10, activation="softmax"),
    ]


def _single_conv() -> list[Layer]:
    # The lesson's MNIST exercise: one convolution and one pooling layer.
    return [
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]


def _best() -> list[Layer]:
    # convlens's most accurate preset for 28x28 grayscale in 15 minutes on a 2-core CPU
    # (see BENCHMARKS.md): twice the lesson's width at the top, batch normalisation
    # after every convolution, three pooling stages, dropout before and after Dense(256).
    return [
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Conv2D(64, (3, 3), activation="relu", padding="same"),
        BatchNormalization(),
        Conv2D(64, (3, 3), activation="relu", padding="same"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Conv2D(128, (3, 3), activation="relu", padding="same"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Flatten(),
        Dropout(0.3),
        Dense(256, activation="relu"),
        Dropout(0.3),
        Dense(10, activation="softmax"),
    ]


PRESETS = {
    "seed-cnn": (_seed_cnn, "the lesson's CNN: two Conv2D(64, 3x3) + MaxPooling2D(2, 2) blocks"),
    "seed-dnn": (_seed_dnn, "the lesson's dense-only baseline: Flatten, Dense(128), Dense(10)"),
    "lenet5": (_lenet5, "LeNet-5 on 32x32x1: 5x5 filters, 6 then 16 deep, average pooling"),
    "single-conv": (_single_conv, "the MNIST exercise: one Conv2D(32, 3x3) and one pooling"),
    "best": (_best, "the most accurate preset: four Conv2D with batch normalisation, dropout"),
}


def preset(name: str) -> Sequential:
    """The named preset model (seed-cnn, seed-dnn, lenet5, single-conv, best)."""
    if name not in PRESETS:
        raise ConvlensError(
            f"unknown model {name!r}; use a preset ({', '.join(PRESETS)}) or a model JSON file."
        )
    return Sequential(PRESETS[name][0](), name=name)


def read_spec(path: str | Path) -> Sequential:
    """Read a model JSON file (spec only, no weights)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConvlensError(f"cannot read model file {path} ({exc}); check the path.") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConvlensError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"fix the file."
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, or nesting too deep
        reason = "it nests too deeply" if isinstance(exc, RecursionError) else exc
        raise ConvlensError(
            f"{path} is not a usable model file ({reason}); fix the file."
        ) from None
    try:
        return Sequential.from_config(config)
    except ConvlensError as exc:
        raise ConvlensError(f"{path}: {exc}") from None


def resolve_model(name_or_path: str) -> Sequential:
    """A preset by name, or a model JSON file by path."""
    if name_or_path in PRESETS:
        return preset(name_or_path)
    if name_or_path.endswith(".json") or Path(name_or_path).is_file():
        return read_spec(name_or_path)
    return preset(name_or_path)  # raises the "unknown model" sentence


# ---------------------------------------------------------------- model files


def save_model(directory: str | Path, model: Sequential, network: torch.nn.Module) -> None:
    """Write model.json and weights.safetensors into ``directory`` (each atomically)."""
    from safetensors.torch import save as save_tensors

    from convlens.fsutil import atomic_write_bytes, atomic_write_text

    directory = Path(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    atomic_write_bytes(directory / WEIGHTS_FILE, save_tensors(state, metadata={"format": "pt"}))
    atomic_write_text(directory / SPEC_FILE, json.dumps(model.config(), indent=2) + "\n")


def load_model(directory: str | Path) -> tuple[Sequential, torch.nn.Module]:
    """Read a saved model: its spec and a built network holding the saved weights (eval mode).

    The weights must match the spec exactly (names, shapes, dtypes); anything
    else is refused with one sentence. No code from the files is run.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    directory = Path(directory)
    model = read_spec(directory / SPEC_FILE)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ConvlensError(
            f"{directory} has no {WEIGHTS_FILE}; train the model first (`convlens train`)."
        )
    _check_weights_size(weights_path, model)
    try:
        state = load_tensors(weights_path.read_bytes())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConvlensError(
            f"{weights_path} is not a valid safetensors file ({exc}); retrain or restore it."
        ) from None
    except KeyError as exc:  # a dtype the safetensors format knows but torch does not
        raise ConvlensError(
            f"{weights_path} holds tensors of type {exc} that convlens cannot read; "
            f"retrain or restore it."
        ) from None
    network = model.build()
    _check_weights(weights_path, network.state_dict(), state)
    network.load_state_dict(state)
    network.eval()
    return model, network


_CHEAP_BUILD_BYTES = 64 << 20  # below this, building a mismatched network costs nothing


def _check_weights_size(path: Path, model: Sequential) -> None:
    """Refuse, before building, a spec too big for its weights file to hold.

    A model.json claiming a huge layer would otherwise allocate it (gigabytes) only to find
    that the weights do not match; small mismatches are left to _check_weights, which names
    the tensor.
    """
    size, needed = path.stat().st_size, model.total_params * 4  # float32 parameters
    if needed > size and needed > _CHEAP_BUILD_BYTES:
        raise ConvlensError(
            f"{path} is not a valid safetensors file for this model.json ({size:,} bytes, but "
            f"its {model.total_params:,} parameters need {needed:,}); it is truncated or the "
            f"two files do not belong together."
        )


def _check_weights(path: Path, expected: dict, found: dict) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unexpected {extra[0]!r}"
        raise ConvlensError(
            f"{path} {what} for this model.json; the two files do not belong together."
        )
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape or found[key].dtype != tensor.dtype:
            raise ConvlensError(
                f"{path}: {key!r} is {tuple(found[key].shape)} {found[key].dtype} but model.json "
                f"needs {tuple(tensor.shape)} {tensor.dtype}; the two files do not belong together."
            )
