"""Sequential models: a list of layer specs, presets by name, the summary, model files.

A Sequential knows every layer's output shape and parameter count without
torch; ``build()`` turns it into a torch module (see network.py) whose
parameter count equals the spec's. A model file is the spec as JSON
(model.json) plus the weights as safetensors (weights.safetensors): loading
one never runs code from the file.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from convlens.errors import ConvlensError, LayerError
from convlens.model.layers import (
    ENDINGS,
    Dense,
    Layer,
    Shape,
    layer_from_config,
)
from convlens.model.receptive import ReceptiveField, receptive_fields
from convlens.model.summary_html import summary_html

if TYPE_CHECKING:
    pass

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
    for row in reversed(rows):  # each layer type's ``ending`` (model/layers/base.py)
        if row.layer.ending not in ENDINGS:
            raise ConvlensError(
                f"{row.layer.keras_type} does not say whether a classifier may end with it; "
                f"give its class an ending ({', '.join(ENDINGS)})."
            )
        if row.layer.ending != "passes":
            return row.layer.ending == "output"
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

    def summary_text(self, explain: bool = True, width: int | None = None) -> str:
        """The Keras-style table, Layer (type) | Output Shape | Param #, plus the why of each.

        ``width``: the characters a line may take (a terminal's), the Why column
        wrapping under itself; None: every explanation on one line.
        """
        return format_summary(self, explain=explain, width=width)

    def summary(self, explain: bool = True) -> None:
        """Print the summary table, as Keras's model.summary() does."""
        print(self.summary_text(explain=explain))

    def __repr__(self) -> str:
        return (
            f"Sequential({self.name!r}, input {self.input_shape}, {len(self.rows)} layers, "
            f"{self.total_params:,} params)"
        )

    def _repr_html_(self) -> str:
        """In a notebook: the summary table with its Why column (shape, params, sees)."""
        return summary_html(self)

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


WHY_LABEL = 7  # "shape  ", "params ", "sees   ": the Why column's labels are this wide
NARROWEST_WHY = 24  # below this many characters beside the table, the Why goes under each row


def format_summary(model: Sequential, explain: bool = True, width: int | None = None) -> str:
    """Render the summary table as plain text (golden-tested, so keep it stable).

    ``width`` None keeps each explanation on one line; a number wraps the Why
    column under itself (under the row, indented, when the table leaves it
    fewer than NARROWEST_WHY characters) and the title to that many characters.
    """
    name_w = max(
        len("Layer (type)"), *(len(f"{r.name} ({r.layer.keras_type})") for r in model.rows)
    )
    shape_w = max(len("Output Shape"), *(len(r.keras_shape) for r in model.rows))
    param_w = max(len("Param #"), *(len(f"{r.params:,}") for r in model.rows))
    head = f"{'Layer (type)':<{name_w}}  {'Output Shape':<{shape_w}}  {'Param #':>{param_w}}"
    if explain:
        head += "  Why"
    table_w = name_w + shape_w + param_w + 6
    title = f'Model: "{model.name}"  input: {model.input_shape}'
    if model.input_scale != DEFAULT_INPUT_SCALE:
        title += f"  pixels 0..255 multiplied by {model.input_scale:.6g} first"
    if model.test_time_flip:
        title += "  predicts from each image and its mirror (mean of the two logits)"
    lines = [*_wrapped(title, width, "  "), head, "=" * len(head)]
    fields = model.receptive_fields()
    beside = width is None or width - table_w - WHY_LABEL >= NARROWEST_WHY
    for row in model.rows:
        label = f"{row.name} ({row.layer.keras_type})"
        line = f"{label:<{name_w}}  {row.keras_shape:<{shape_w}}  {row.params:>{param_w},}"
        if not explain:
            lines.append(line)
            continue
        whys = [("shape", row.shape_why), ("params", row.params_why)]
        if fields[row.name] is not None:  # which input pixels one output pixel sees
            whys.append(("sees", fields[row.name].why))
        if beside:
            lines += _why_column(line, whys, table_w, width)
        else:
            lines += [line, *_why_column("", whys, 2, width)]
    frozen = model.total_params - model.trainable_params
    lines += [
        "=" * len(head),
        f"Total params: {model.total_params:,} ({model.total_params * 4 / 1024:,.2f} KB)",
        f"Trainable params: {model.trainable_params:,}",
        f"Non-trainable params: {frozen:,}",
    ]
    return "\n".join(lines)


def _why_column(
    first: str, whys: list[tuple[str, str]], start: int, width: int | None
) -> list[str]:
    """Labelled explanations from column ``start``, the first beside ``first``, each wrapped
    under its own text (not under the label or the table) to ``width``."""
    lines = []
    for label, text in whys:
        lead = f"{first if not lines else '':<{start}}{label:<{WHY_LABEL}}"
        wrapped = _wrapped(text, None if width is None else width - len(lead), "")
        lines.append(f"{lead}{wrapped[0]}")
        lines += [" " * len(lead) + more for more in wrapped[1:]]
    return lines


def _wrapped(text: str, width: int | None, indent: str) -> list[str]:
    """``text`` in lines of at most ``width`` characters (words kept whole); None: one line."""
    if width is None:
        return [text]
    return textwrap.wrap(
        text,
        max(width, 1),
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [""]


# ---------------------------------------------------------------- presets


# ---------------------------------------------------------------- model files


