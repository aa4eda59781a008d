"""Model files made by TensorFlow 2.21 itself, imported without TensorFlow.

tests/fixtures/make_tf_fixtures.py wrote them once with tensorflow-cpu 2.21.0:
tf-keras 2.21 (the Keras 2 API of the lesson) saving legacy .h5 files, and
TensorFlow's Keras 3.15 saving .keras and .h5 files; each beside TensorFlow's
own predictions for seeded images and its parameter count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convlens.interop.importing import import_model
from convlens.runs.loading import load_run

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tf221"
FILES = sorted(p.name for p in FIXTURES.glob("*") if p.suffix in (".h5", ".keras"))


def test_every_fixture_is_here():
    assert len(FILES) == 9


@pytest.mark.parametrize("name", FILES)
def test_a_tensorflow_made_file_predicts_what_tensorflow_did(name, tmp_path):
    path = FIXTURES / name
    expected = np.load(FIXTURES / f"{path.stem}.npz")
    run = load_run(import_model(path, out=tmp_path / "run").path)
    assert run.model.total_params == int(expected["params"])
    outputs = run.predict(expected["images"])
    np.testing.assert_allclose(outputs, expected["outputs"], atol=1e-5, rtol=0)
