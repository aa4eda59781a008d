"""The lesson's notebooks (docs/notebooks/), executed by nbclient as a learner runs them.

Each notebook runs top to bottom in a fresh kernel, in a temporary folder
(its runs and pictures land there), with its ``parameters`` cell shortened so
that the trainings take seconds: 03 trains the CNN and the dense baseline on
3,000 images for 2 epochs, 04 looks inside 03's run, 05 fits the lesson's
Keras model on 2,000 images for 1 epoch. The checks read what the cells show.
The notebooks stay committed without outputs (one test says so).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

import convlens
from convlens.data import datasets

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (dev extra)")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient (dev extra)")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel (dev extra)")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
LESSON = [
    "01-convolution-by-hand",
    "02-pooling",
    "03-the-cnn",
    "04-inside-the-model",
    "05-your-own",
]
SHORT = {  # what each parameters cell is shortened to
    "03-the-cnn": "EPOCHS = 2\nTRAIN_IMAGES = 3000",
    "04-inside-the-model": "RUN = {run!r}",
    "05-your-own": "EPOCHS = 1\nTRAIN_IMAGES = 2000",
}
WIDGET = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.slow


def _kernel_env() -> dict[str, str]:
    """The test's environment, with this convlens first on the kernel's path."""
    source = str(Path(convlens.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "torch", "MPLBACKEND": "Agg"}


def _shorten(notebook, parameters: str) -> None:
    """Append the short settings to the notebook's cell tagged ``parameters``."""
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + parameters


def _execute(name: str, folder: Path, parameters: str | None):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    if parameters:
        _shorten(notebook, parameters)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute(env=_kernel_env())
    return notebook


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict:
    """Every lesson notebook, run in order in one folder: {name: the executed notebook}."""
    if datasets._find_files(datasets.SYSTEM_DATA_ROOT / "fashion-mnist") is None:
        pytest.skip("the lesson's notebooks need Debian's dataset-fashion-mnist")
    folder = tmp_path_factory.mktemp("lesson")
    done = {}
    for name in LESSON:
        parameters = SHORT.get(name)
        if name == "04-inside-the-model":
            runs = sorted((folder / "runs").glob("seed-cnn-*"))
            parameters = parameters.format(run=str(runs[-1]))
        done[name] = _execute(name, folder, parameters)
    yield done
    shutil.rmtree(folder, ignore_errors=True)


def _outputs(notebook) -> list:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def _text(notebook) -> str:
    """Everything the notebook printed or showed as text or HTML, joined."""
    parts = []
    for output in _outputs(notebook):
        if output.output_type == "stream":
            parts.append(output.text)
        data = output.get("data", {})
        parts.extend(str(data.get(kind, "")) for kind in ("text/plain", "text/html"))
    return "\n".join(parts)


def _kinds(notebook) -> set[str]:
    return {kind for output in _outputs(notebook) for kind in output.get("data", {})}


def test_the_notebooks_are_committed_without_outputs():
    for name in LESSON:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (name, cell.id)
        tags = [c.metadata.get("tags", []) for c in notebook.cells]
        assert name not in SHORT or ["parameters"] in tags, f"{name} has no parameters cell"


def test_convolution_by_hand_shows_the_lessons_577(executed):
    text = _text(executed["01-convolution-by-hand"])
    assert "+ (-3 * 168) = 577" in text  # the printed sum, product by product
    assert "577" in re.sub(r"<[^>]+>", " ", text)  # and the grids' HTML
    assert "filtered (254, 254)" in text  # a 256x256 picture through a 3x3 filter


def test_pooling_halves_the_picture_and_rounds_down(executed):
    text = _text(executed["02-pooling"])
    assert "(254, 254) -> (127, 127)" in text
    assert "(5, 5)" in text  # 11x11 pooled 2x2
    assert "avg pooled (127, 127)" in text


def test_the_cnn_has_243786_parameters_and_learns(executed):
    notebook = executed["03-the-cnn"]
    text = _text(notebook)
    assert "243,786 parameters" in text
    assert "101,770 params" in text  # the dense baseline
    assert "61,706 params" in text  # LeNet-5
    assert "Why" in text and "sees" in text  # the summary's why column, shown as HTML
    accuracies = dict(re.findall(r"(dense baseline|CNN): test accuracy (0\.\d+)", text))
    # 2 epochs on 3,000 images: well above chance (0.1), well below the lesson's 0.91
    assert 0.65 <= float(accuracies["CNN"]) <= 0.9, accuracies
    assert 0.6 <= float(accuracies["dense baseline"]) <= 0.9, accuracies
    assert "<img" in text  # the run's curves and confusion matrix


def test_inside_the_model_draws_its_figures_and_the_explorer(executed):
    notebook = executed["04-inside-the-model"]
    pictures = [o for o in _outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(pictures) == 4  # journey, one image's maps, the filters, why
    assert WIDGET in _kinds(notebook)  # convlens.Explorer(run)
    assert "243,786 parameters" in _text(notebook)


def test_your_own_model_predicts_what_keras_predicts(executed):
    notebook = executed["05-your-own"]
    text = _text(notebook)
    difference = float(re.search(r"largest difference: (\S+)", text).group(1))
    assert difference <= 1e-5
    predicted = re.findall(r"my-pictures/picture-\d\.png: (.+) \(\d+%\)", text)
    assert len(predicted) == 3, text
    assert "27,210 params" in text  # the PyTorch chain, read
    assert "'1' (Residual) is not a layer convlens knows" in text  # the refusal, one sentence
    assert WIDGET in _kinds(notebook)  # the Explorer on the user's picture
