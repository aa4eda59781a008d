"""convlens: convolutional neural networks on small images, real, fast and visible.

What a user imports, in one place::

    import convlens

    model = convlens.preset("seed-cnn")          # a Sequential spec; model.summary()
    run = convlens.train(model, epochs=1)        # trains, writes a run directory, returns it
    test = convlens.load_test_split(run)         # the images it was scored on
    maps = convlens.attribute(run, test.images[:4], "gradcam")

Names are imported on first use, so ``import convlens`` (and ``convlens --help``)
loads no torch; ``dir(convlens)`` lists them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from convlens.errors import ConvlensError
from convlens.version import __version__

# name -> the module that defines it (imported when the name is first used)
_PUBLIC: dict[str, str] = {
    # the lesson's arithmetic (NumPy)
    "conv2d": "convlens.lab.ops",
    "pool2d": "convlens.lab.ops",
    "explain_pixel": "convlens.lab.ops",
    "convolve": "convlens.lab.convolution",
    "FILTERS": "convlens.lab.ops",
    "facade": "convlens.lab.sample_images",
    # pictures: any PNG/JPEG/BMP read safely, fitted to a model's input
    "read_image": "convlens.images",
    "fit_to_input": "convlens.images",
    # models: specs, presets, files, the torch network
    "Sequential": "convlens.model.sequential",
    "preset": "convlens.model.presets",
    "PRESETS": "convlens.model.presets",
    "read_spec": "convlens.model.files",
    "LAYER_TYPES": "convlens.model.layers",
    "Conv2D": "convlens.model.layers",
    "MaxPooling2D": "convlens.model.layers",
    "AveragePooling2D": "convlens.model.layers",
    "GlobalAveragePooling2D": "convlens.model.layers",
    "GlobalMaxPooling2D": "convlens.model.layers",
    "Flatten": "convlens.model.layers",
    "Dense": "convlens.model.layers",
    "Dropout": "convlens.model.layers",
    "BatchNormalization": "convlens.model.layers",
    "Rescaling": "convlens.model.layers",
    "Activation": "convlens.model.layers",
    "ReLU": "convlens.model.layers",
    "Softmax": "convlens.model.layers",
    "ZeroPadding2D": "convlens.model.layers",
    "Cropping2D": "convlens.model.layers",
    "build_network": "convlens.model.network",
    # data
    "load": "convlens.data.datasets",
    "Dataset": "convlens.data.datasets",
    "Split": "convlens.data.datasets",
    # runs
    "Run": "convlens.runs.loading",
    "load_run": "convlens.runs.loading",
    "load_test_split": "convlens.runs.loading",
    "predict_folder": "convlens.runs.predict",
    # training
    "TrainConfig": "convlens.training.recipes",
    "RECIPES": "convlens.training.recipes",
    "plan_training": "convlens.training.plan",
    "fit": "convlens.training.train",
    "Callback": "convlens.training.callbacks",
    # inside a trained model
    "activations": "convlens.inspect.journey",
    "journey": "convlens.inspect.journey",
    "learned_filters": "convlens.inspect.journey",
    "choose_images": "convlens.inspect.journey",
    "attribute": "convlens.inspect.attribution",
    "explain": "convlens.inspect.attribution",
    "METHODS": "convlens.inspect.methods",
    "top_patches": "convlens.inspect.portraits",
    "synthesise": "convlens.inspect.portraits",
    # other frameworks' files
    "read_model_file": "convlens.interop.reading",
    "export": ("convlens.interop.export", "export_run"),
    # figures and the report
    "write_report": "convlens.views.report",
    "journey_figure": "convlens.views.run_figures",
    "feature_maps_figure": "convlens.views.run_figures",
    "filters_figure": "convlens.views.run_figures",
    "why_figure": ("convlens.views.attribution_figures", "run_why_figure"),
    "portraits_figure": ("convlens.views.attribution_figures", "run_portraits_figure"),
    # workflows: what the commands do, returning a run
    "train": "convlens.notebook.workflows",
    "import_model": "convlens.notebook.workflows",
    "evaluate": "convlens.notebook.workflows",
    "from_keras": "convlens.notebook.workflows",
    "from_torch": "convlens.notebook.workflows",
    # the explorer in a notebook cell (an anywidget: pip install "convlens[notebook]")
    "Explorer": "convlens.notebook.widget",
}
# modules of the face, imported on first use: convlens.keras.LiveView, the Keras user's door
_DOORS: dict[str, str] = {"keras": "convlens.keras"}

__all__ = ["ConvlensError", "__version__", *_PUBLIC, *_DOORS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name in _DOORS:
        value = importlib.import_module(_DOORS[name])
    elif name in _PUBLIC:
        where = _PUBLIC[name]
        module_name, attribute = where if isinstance(where, tuple) else (where, name)
        value = getattr(importlib.import_module(module_name), attribute)
    else:
        raise AttributeError(f"module 'convlens' has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what editors and type checkers see
    from convlens.data.datasets import Dataset, Split, load
    from convlens.images import fit_to_input, read_image
    from convlens.inspect.attribution import attribute, explain
    from convlens.inspect.journey import activations, choose_images, journey, learned_filters
    from convlens.inspect.methods import METHODS
    from convlens.inspect.portraits import synthesise, top_patches
    from convlens.interop.export import export_run as export
    from convlens.interop.reading import read_model_file
    from convlens.lab.convolution import convolve
    from convlens.lab.ops import FILTERS, conv2d, explain_pixel, pool2d
    from convlens.lab.sample_images import facade
    from convlens.model.files import read_spec
    from convlens.model.layers import (
        LAYER_TYPES,
        Activation,
        AveragePooling2D,
        BatchNormalization,
        Conv2D,
        Cropping2D,
        Dense,
        Dropout,
        Flatten,
        GlobalAveragePooling2D,
        GlobalMaxPooling2D,
        MaxPooling2D,
        ReLU,
        Rescaling,
        Softmax,
        ZeroPadding2D,
    )
    from convlens.model.network import build_network
    from convlens.model.presets import PRESETS, preset
    from convlens.model.sequential import Sequential
    from convlens.notebook.widget import Explorer
    from convlens.notebook.workflows import (
        evaluate,
        from_keras,
        from_torch,
        import_model,
        train,
    )
    from convlens.runs.loading import Run, load_run, load_test_split
    from convlens.runs.predict import predict_folder
    from convlens.training.callbacks import Callback
    from convlens.training.plan import plan_training
    from convlens.training.recipes import RECIPES, TrainConfig
    from convlens.training.train import fit
    from convlens.views.attribution_figures import run_portraits_figure as portraits_figure
    from convlens.views.attribution_figures import run_why_figure as why_figure
    from convlens.views.report import write_report
    from convlens.views.run_figures import feature_maps_figure, filters_figure, journey_figure
