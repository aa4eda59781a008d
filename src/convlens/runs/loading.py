"""A trained run loaded back: its model and network, its metrics, and its dataset
with the test split it was scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens.data import datasets
from convlens.data.datasets import SOURCES
from convlens.errors import ConvlensError
from convlens.model.sequential import Sequential
from convlens.model.weights import load_model
from convlens.runs.directory import RUNS_ROOT, read_metrics, read_split, resolve_run
from convlens.runs.display import headline, run_html
from convlens.runs.evaluate import predict_proba

if TYPE_CHECKING:

    from convlens.data.datasets import Dataset, Split


@dataclass
class Run:
    """A trained run loaded back: where it is, its model, network and metrics."""

    path: Path
    model: Sequential
    network: Any  # convlens.network.Network
    metrics: dict[str, Any]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names the model was trained with (or 0..N-1)."""
        return self.model.class_names or tuple(str(i) for i in range(self.model.num_classes))

    @property
    def light_on_dark(self) -> bool:
        """Whether it learned light objects on black (Fashion-MNIST, MNIST): then a picture
        with a light border is inverted before it is read (images.invert_rule)."""
        return str(self.metrics.get("dataset", "")).lower() in SOURCES

    def predict(self, images: Any) -> Any:
        """The model's outputs, float32 (N, classes), for uint8 images (N, H, W, C).

        The run's preprocessing (pixels times its input scale) is applied; the
        outputs are the class probabilities when the model ends in softmax, else
        its last layer's values, as the framework the model came from computes them.
        """
        return predict_proba(self.network, images, self.model.input_shape)

    def __repr__(self) -> str:
        facts = headline(self.metrics, self.model.name, self.model.total_params)
        return f"Run({str(self.path)!r}: {'; '.join(facts)})"

    def _repr_html_(self) -> str:
        """In a notebook: the headline, the training curves and the confusion matrix."""
        return run_html(self.path, self.metrics, self.model.name, self.model.total_params)


def load_run(run: str | Path | None = None, root: Path = RUNS_ROOT) -> Run:
    """Load a run directory (default: the latest under runs/)."""
    path = resolve_run(run, root)
    model, network = load_model(path)
    return Run(path, model, network, read_metrics(path))




def dataset_of(run: Run, dataset: str | None = None) -> str:
    """The dataset a run was trained on (by name, or its folder), unless ``dataset`` is given."""
    if dataset:
        return dataset
    name = str(run.metrics.get("dataset", "fashion-mnist"))
    source = run.metrics.get("data_source")
    if name.lower() not in SOURCES and source and Path(source).is_dir():
        return str(source)
    return name


def load_run_dataset(run: Run, dataset: str | None = None, data_dir: str | None = None) -> Dataset:
    """The run's dataset (or ``dataset``) at the run's input, with its recorded test split."""
    height, width, channels = run.model.input_shape
    name = dataset_of(run, dataset)
    split = read_split(run.path) if dataset_of(run) == name else None
    loaded = datasets.load(
        name,
        data_dir,
        image_size=(height, width),
        channels=channels,
        seed=split["seed"] if split else 0,
        test_files=split["test_files"] if split else None,
    )
    if loaded.num_classes != run.model.num_classes:
        raise ConvlensError(
            f"{loaded.name} has {loaded.num_classes} classes but the run's model predicts "
            f"{run.model.num_classes}; use the dataset it was trained on (--dataset)."
        )
    return loaded


def load_test_split(run: Run, dataset: str | None = None, data_dir: str | None = None) -> Split:
    """The test split (uint8 (N, H, W, C), labels (N,)) of the run's dataset, fitted to its input."""
    return load_run_dataset(run, dataset, data_dir).test
