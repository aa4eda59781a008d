"""A model as it will train on one of the explorer's datasets, planned as `convlens train` plans it.

The editor shows it (POST /api/models/summary with a dataset) and a job is
checked with it before anything starts (POST /api/jobs): a preset, or a
lesson's exercise made from one ("fit"), gets the input and the last layer
``training.plan`` gives a preset on that dataset (a folder of colour images
of mixed sizes: their size and colour, one output per class); any other model
is taken as written, and one that cannot learn the dataset's classes is
refused with the sentence naming its last layer. What a dataset gives is
computed once per dataset and input shape (a folder is read to know its
colour) and kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from convlens.errors import ConvlensError, LayerError
from convlens.model.sequential import Sequential
from convlens.training.plan import PlannedInput, planned_input

KEPT_PLANS = 32


@dataclass(frozen=True)
class Fitted:
    """A model ready for a dataset, why its input is so, and what fitting would give."""

    model: Sequential
    input_why: str
    fitted_shape: tuple[int, int, int]  # the input a preset would get on this dataset


class Fitter:
    """What models become on the explorer's datasets ({page's name: what data.load reads})."""

    def __init__(self, datasets: dict[str, str]) -> None:
        self.datasets = datasets
        self._plans: OrderedDict[tuple[str, tuple[int, ...], bool], PlannedInput] = OrderedDict()
        self._lock = threading.Lock()

    def source(self, dataset: str) -> str:
        """What data.load reads for the page's ``dataset``; an unknown one is one sentence."""
        if dataset not in self.datasets:
            raise ConvlensError(
                f"unknown dataset {dataset!r}; choose one of {', '.join(self.datasets)} (start "
                "`convlens explore --dataset FOLDER` to train on a folder of images)."
            )
        return self.datasets[dataset]

    def planned(self, model: Sequential, dataset: str, fit: bool) -> PlannedInput:
        """training.plan's answer for ``model`` on ``dataset``, computed once and kept."""
        source = self.source(dataset)
        key = (source, tuple(model.input_shape), fit)
        with self._lock:  # one folder read at a time; the next asker finds it kept
            if key not in self._plans:
                self._plans[key] = planned_input(model, source, fit=fit)
                while len(self._plans) > KEPT_PLANS:
                    self._plans.popitem(last=False)
            self._plans.move_to_end(key)
            return self._plans[key]

    def fit(self, model: Sequential, dataset: str, fit: bool) -> Fitted:
        """``model`` as it will train on ``dataset``; a model that cannot is one sentence.

        ``fit``: the model is a preset or made from one, and gets a preset's input and
        last layer; else it is taken as written and must end in one output per class.
        """
        fitted = self.planned(model, dataset, fit=True)
        if fit:  # a layer that no longer fits the new input is named by with_input_shape
            ready, why = model.with_input_shape(fitted.image_shape), fitted.why
        else:
            ready, why = model, self.planned(model, dataset, fit=False).why
        try:
            if fit:
                ready = ready.with_output_units(len(fitted.class_names))
            named = ready.with_class_names(fitted.class_names)
        except LayerError:
            raise
        except ConvlensError as exc:  # it does not end in one output per class
            raise LayerError(str(exc), len(ready.layers) - 1) from None
        return Fitted(named, why, fitted.image_shape)
