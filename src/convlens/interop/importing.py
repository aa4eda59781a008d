"""``convlens import``: a Keras or ONNX model file becomes a normal run directory.

The run holds model.json (with the input scale when it is not 1/255),
weights.safetensors and metrics.json, which records where the model came from
(format, file name, SHA-256, the Keras version the file states) and, when a
dataset is given, the model's accuracy on its test split (and whatever the
caller's ``finish`` adds: the report). The run is staged and renamed like every run, so a refused file
leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from convlens.data import datasets
from convlens.data.datasets import Split
from convlens.errors import ConvlensError
from convlens.interop.keras import ImportedModel
from convlens.interop.reading import read_model_file
from convlens.model.network import Network, build_network
from convlens.model.sequential import Sequential
from convlens.model.weights import save_model
from convlens.runs.directory import RUNS_ROOT, staged_run, write_metrics
from convlens.runs.evaluate import evaluate


@dataclass(frozen=True)
class ImportResult:
    """An imported run: where it is, its model, and its test accuracy when evaluated."""

    path: Path
    model: Sequential
    metrics: dict[str, Any]


def build_imported(imported: ImportedModel) -> Network:
    """The imported model's torch Network holding the file's weights, in eval mode."""
    network = build_network(imported.model)
    state = network.state_dict()
    needed = {k for k, v in state.items() if v.is_floating_point()}
    missing = sorted(needed - set(imported.state))
    if missing:
        raise ConvlensError(f"the file has no weights for {missing[0]!r}; the file is damaged.")
    for key, values in imported.state.items():
        tensor = torch.from_numpy(values)
        if key not in state or tuple(state[key].shape) != tuple(tensor.shape):
            raise ConvlensError(f"the file's weights for {key!r} do not fit the model.")
        state[key] = tensor
    network.load_state_dict(state)
    network.eval()
    return network



def parse_classes(text: str | None) -> tuple[str, ...] | None:
    """--classes "a,b,c" -> ("a", "b", "c"); each name non-empty."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise ConvlensError(
            f'--classes {text!r} has an empty name; give names separated by commas, like "cat,dog".'
        )
    return names


def import_model(
    path: str | Path,
    out: str | Path | None = None,
    classes: tuple[str, ...] | None = None,
    dataset: str | None = None,
    input_scale: float | None = None,
    root: Path = RUNS_ROOT,
    data_dir: str | Path | None = None,
    finish: Callable[[Path, Split], None] | None = None,
) -> ImportResult:
    """Import a .keras, .h5 or .onnx file as a run directory (see the module's docstring).

    With a ``dataset``, the model is scored on its test split and
    ``finish(directory, test split)`` may add files before the run is published
    (the CLI and the explorer write the report: interop never draws).
    """
    return import_read_model(
        read_model_file(path),
        Path(path).stem,
        out=out,
        classes=classes,
        dataset=dataset,
        input_scale=input_scale,
        root=root,
        data_dir=data_dir,
        finish=finish,
    )


def import_read_model(
    imported: ImportedModel,
    stem: str,
    out: str | Path | None = None,
    classes: tuple[str, ...] | None = None,
    dataset: str | None = None,
    input_scale: float | None = None,
    root: Path = RUNS_ROOT,
    data_dir: str | Path | None = None,
    finish: Callable[[Path, Split], None] | None = None,
) -> ImportResult:
    """A model already read (from a file, or from memory: a Keras model, a torch module) as a run.

    The run is written as ``import_model`` writes it, named runs/<stem>-<time>
    unless ``out`` is given.
    """
    model = imported.model
    if input_scale is not None:
        model = model.with_input_scale(input_scale)
    test, names, data_name, data_source = None, classes, None, None
    if dataset is not None:
        loaded = _load_dataset(model, dataset, data_dir)
        test, data_name = loaded.test, loaded.name
        data_source = str(Path(dataset).resolve()) if Path(dataset).is_dir() else None
        names = names or loaded.class_names
    if names is not None:
        model = model.with_class_names(tuple(names))
    network = build_imported(imported)
    network.input_scale = model.input_scale
    metrics: dict[str, Any] = {
        "imported_from": imported.source,
        "input_scale": model.input_scale,
        "total_params": model.total_params,
    }
    with staged_run(out, stem, root) as staged:  # runs/<stem>-<time>
        save_model(staged.staging, model, network)
        if test is not None:
            metrics.update(_evaluate(network, model, test, data_name, data_source))
        write_metrics(staged.staging, metrics)
        if test is not None and finish is not None:
            finish(staged.staging, test)
    return ImportResult(staged.final, model, metrics)


def _load_dataset(model: Sequential, dataset: str, data_dir: str | Path | None) -> Any:
    height, width, channels = model.input_shape
    loaded = datasets.load(dataset, data_dir, image_size=(height, width), channels=channels)
    if loaded.num_classes != model.num_classes:
        raise ConvlensError(
            f"{loaded.name} has {loaded.num_classes} classes but the model has "
            f"{model.num_classes} outputs; give the dataset it was trained on."
        )
    return loaded


def _evaluate(
    network: Any, model: Sequential, test: Any, name: str | None, source: str | None
) -> dict[str, Any]:
    evaluation = evaluate(network, test, model.input_shape, model.num_classes)
    result = {"dataset": name, "test_accuracy": evaluation.accuracy, "test_loss": evaluation.loss}
    if source is not None:
        result["data_source"] = source
    return result
