"""planned_input: what plan_training will make of a model on a dataset, told beforehand.

The explorer's editor shows it and a page job is checked with it before it
starts (issue 22, item 1); the oracle is plan_training itself, which loads
the data and plans the run as `convlens train` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import pattern_dataset, shapes_folder, tiny_cnn, write_idx_dataset

from convlens.model.presets import preset
from convlens.training.plan import plan_training, planned_input


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "mnist", pattern_dataset(60, 20))
    shapes_folder(root / "shapes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(root))
        yield root


@pytest.mark.parametrize(
    ("model", "dataset", "fit"),
    [
        ("seed-cnn", "shapes", True),  # the folder's size and colour, one output per class
        ("seed-cnn", "shapes", False),  # as written: read at 28x28x1
        ("lenet5", "shapes", True),
        ("seed-cnn", "mnist", True),
        ("lenet5", "mnist", True),  # 32x32: MNIST padded
        ("tiny", "mnist", False),
    ],
)
def test_planned_input_is_what_plan_training_plans(data, model, dataset, fit) -> None:
    spec = tiny_cnn() if model == "tiny" else preset(model)
    source = str(data / dataset) if dataset == "shapes" else dataset
    told = planned_input(spec, source, fit=fit)
    if not fit and dataset == "shapes":  # a model as written keeps its 10 outputs
        spec = spec.with_output_units(3)
    planned = plan_training(spec if not fit else model, source, epochs=1)
    if fit:
        assert planned_input(preset(model), source, fit=True) == told
    assert told.image_shape == planned.dataset.image_shape == planned.model.input_shape
    assert told.class_names == tuple(planned.dataset.class_names)
    assert told.why == planned.input_why


def test_fit_plans_a_model_json_as_the_cli_plans_its_preset(data) -> None:
    """plan_training(Sequential, fit=True) is plan_training(PRESET) for the preset's JSON."""
    source = str(data / "shapes")
    by_name = plan_training("seed-cnn", source, epochs=1)
    fitted = plan_training(preset("seed-cnn"), source, epochs=1, fit=True)
    assert fitted.model.config() == by_name.model.config()
    assert fitted.model.input_shape == (48, 48, 3) and fitted.model.num_classes == 3
    assert fitted.config == by_name.config and fitted.input_why == by_name.input_why
