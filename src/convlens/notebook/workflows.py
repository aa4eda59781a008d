"""The workflows the CLI runs, as Python functions that return a loaded run.

``train`` plans a model for a dataset as `convlens train` does, trains it,
writes the same run directory (report included) and returns the run;
``import_model`` does what `convlens import` does; ``from_keras`` and
``from_torch`` do it for a model in memory (a Keras model, a torch
nn.Sequential), read by interop/ as a file would be; ``evaluate`` scores a
run on its test split. Each takes a run as a Run or a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convlens.data import datasets
from convlens.interop import importing
from convlens.interop.keras import ImportedModel
from convlens.interop.keras_model import read_keras_model
from convlens.interop.torch_model import read_torch_module
from convlens.model.sequential import Sequential
from convlens.notebook.live import LiveTraining, in_notebook
from convlens.runs.directory import RUNS_ROOT
from convlens.runs.evaluate import Evaluation
from convlens.runs.evaluate import evaluate as evaluate_network
from convlens.runs.loading import Run, load_run, load_test_split
from convlens.training.callbacks import Callback, PrintEpochs
from convlens.training.plan import parse_input_size, plan_training
from convlens.training.train import TrainingInterrupted, find_resumable, train_to_run
from convlens.views.report import write_run_report


def train(
    model: str | Sequential = "seed-cnn",
    dataset: str | Path = "fashion-mnist",
    *,
    recipe: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
    input_size: str | tuple[int, int] | None = None,
    color: str | None = None,
    train_images: int | None = None,
    data_dir: str | Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    out: str | Path | None = None,
    runs_dir: str | Path = RUNS_ROOT,
    resume: str | Path | bool | None = None,
    callbacks: Sequence[Callback] = (),
    live: bool | None = None,
    verbose: bool = True,
) -> Run:
    """Train ``model`` on ``dataset`` as `convlens train` does and return the run it wrote.

    ``model`` is a preset name, a model JSON path or a Sequential; ``dataset``
    "fashion-mnist", "mnist" or a folder of images. The recipe's knobs left as
    None keep the recipe's values; ``train_images`` trains on the first that
    many training images only (a quick look; the test split stays whole). The
    run directory (``out``, or a new one under ``runs_dir``) holds the weights,
    history, metrics and report.

    In a notebook (``live`` None or True) a live view shows the curves, the
    first convolution's filters and one test image's maps as they change;
    elsewhere ``verbose`` prints each epoch's line. ``callbacks`` observe
    training (training/callbacks.py). Interrupting (Ctrl-C, or the kernel's
    stop button) after an epoch keeps a resumable run and raises
    TrainingInterrupted naming it; ``resume=<that run>`` (True: the latest)
    continues it to the weights an uninterrupted run would have.

    >>> run = convlens.train("seed-cnn", epochs=1)        # doctest: +SKIP
    >>> run.metrics["test_accuracy"]                        # doctest: +SKIP
    0.8889
    """
    if resume not in (None, False):
        found = find_resumable(None if resume is True else resume, Path(runs_dir))
        data_dir = data_dir or found.data_dir
        height, width, channels = found.model.input_shape
        data = datasets.load(found.dataset, data_dir, image_size=(height, width), channels=channels)
        spec, data, config = found.model, data.with_train_images(found.train_images), found.config
        first_epoch = found.state.epoch + 1
    else:
        found = None
        size = parse_input_size(input_size) if isinstance(input_size, str) else input_size
        plan = plan_training(
            model,
            str(dataset),
            None if data_dir is None else str(data_dir),
            recipe=recipe,
            input_size=size,
            color=color,
            train_images=train_images,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            device=device,
            precision=precision,
        )
        spec, data, config, first_epoch = plan.model, plan.dataset, plan.config, 1
    view = None
    if live or (live is None and in_notebook()):
        view = LiveTraining(spec.with_class_names(data.class_names), data, config, first_epoch)
    printing = [PrintEpochs(config.epochs)] if verbose and view is None else []
    try:
        path, result = train_to_run(
            spec,
            data,
            config,
            out=out,
            root=Path(runs_dir),
            callbacks=[*([view] if view else printing), *callbacks],
            data_dir=data_dir,
            resume=found,
            finish=lambda directory, fit: write_run_report(directory, data.test, fit.test),
        )
    except TrainingInterrupted as stop:
        if view is not None:
            view.interrupted(stop.epochs_done, stop.run)
        raise
    if view is not None:
        view.finished(result.test.accuracy, path)
    return load_run(path)


def import_model(
    path: str | Path,
    *,
    out: str | Path | None = None,
    classes: Sequence[str] | None = None,
    dataset: str | Path | None = None,
    input_scale: float | None = None,
    data_dir: str | Path | None = None,
    runs_dir: str | Path = RUNS_ROOT,
) -> Run:
    """A Keras (.keras, .h5) or ONNX file as a run, as `convlens import` makes it.

    With ``dataset``, the model is scored on its test split and the run gets
    its report. Nothing from the file is run.
    """
    result = importing.import_model(
        path,
        out=out,
        classes=None if classes is None else tuple(classes),
        dataset=None if dataset is None else str(dataset),
        input_scale=input_scale,
        root=Path(runs_dir),
        data_dir=data_dir,
        finish=write_run_report,
    )
    return load_run(result.path)


def from_keras(
    model: Any,
    *,
    classes: Sequence[str] | None = None,
    dataset: str | Path | None = None,
    input_scale: float | None = None,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    runs_dir: str | Path = RUNS_ROOT,
) -> Run:
    """A Keras model in memory (Keras 3 on any backend, or tf.keras 2) as a run.

    Read as `convlens import` reads a .keras file (no file is written first):
    Sequential and single-chain functional models of the layers convlens
    knows. With ``dataset`` ("fashion-mnist", "mnist" or a folder) the run is
    scored on its test split and gets its report; ``input_scale`` is what the
    model's pixels are multiplied by (1/255 unless it starts with Rescaling).

    >>> run = convlens.from_keras(model, dataset="fashion-mnist")  # doctest: +SKIP
    """
    return _imported_run(
        read_keras_model(model), classes, dataset, input_scale, out, data_dir, runs_dir
    )


def from_torch(
    module: Any,
    input_shape: Sequence[int],
    *,
    classes: Sequence[str] | None = None,
    dataset: str | Path | None = None,
    input_scale: float | None = None,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    runs_dir: str | Path = RUNS_ROOT,
) -> Run:
    """A torch ``nn.Sequential`` in memory as a run; ``input_shape`` is torch's (C, H, W).

    Its layers (Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d, the activations,
    Flatten, Linear, Dropout, ...) become the Keras-style layers convlens
    shows, the weights laid out from NCHW to NHWC; the run predicts what the
    module in eval mode predicts. A module convlens cannot read (a residual
    block, a custom module) is one sentence naming it. ``input_scale``: what
    pixels 0..255 are multiplied by before the module sees them (1/255, as
    torchvision's ToTensor, unless given).
    """
    imported = read_torch_module(module, input_shape)
    return _imported_run(imported, classes, dataset, input_scale, out, data_dir, runs_dir)


def _imported_run(
    imported: ImportedModel,
    classes: Sequence[str] | None,
    dataset: str | Path | None,
    input_scale: float | None,
    out: str | Path | None,
    data_dir: str | Path | None,
    runs_dir: str | Path,
) -> Run:
    result = importing.import_read_model(
        imported,
        imported.model.name,
        out=out,
        classes=None if classes is None else tuple(classes),
        dataset=None if dataset is None else str(dataset),
        input_scale=input_scale,
        root=Path(runs_dir),
        data_dir=data_dir,
        finish=write_run_report,
    )
    return load_run(result.path)


def evaluate(
    run: Run | str | Path | None = None,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
) -> Evaluation:
    """Score a run (a Run, its directory, or the latest) on its dataset's test split.

    The figures `convlens evaluate` prints: accuracy, loss, per-class accuracy
    and the confusion matrix.
    """
    loaded = run if isinstance(run, Run) else load_run(run)
    test = load_test_split(loaded, dataset, None if data_dir is None else str(data_dir))
    model = loaded.model
    return evaluate_network(loaded.network, test, model.input_shape, model.num_classes)
