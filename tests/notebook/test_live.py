"""Live views of training: convlens.train's in a notebook, and convlens.keras.LiveView in model.fit.

LiveView is checked in a real Keras 3 fit (torch backend, a few hundred
generated images): it receives every epoch, draws at least twice, and the
fitted model read by from_keras predicts what Keras predicts (1e-5). The
tf.keras 2 shape of the callback API (its hook questions, "acc" in the logs)
is driven as tf.keras 2's CallbackList drives it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from keras_models import lesson_cnn
from synthetic import pattern_dataset, pattern_images, write_idx_dataset

import convlens
from convlens.interop.importing import build_imported
from convlens.interop.keras_model import read_keras_model
from convlens.notebook.keras import LiveView
from convlens.notebook.live import LiveOutput, LiveTraining
from convlens.training.recipes import TrainConfig
from convlens.training.train import TrainingInterrupted, fit


class Frames(LiveOutput):
    """A notebook output area that keeps every frame shown in it."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.frames: list[str] = []

    def show(self, html: str) -> None:
        self.frames.append(html)


def test_liveview_in_a_real_keras_fit_sees_every_epoch_and_from_keras_predicts_as_keras():
    import keras  # the user's framework (tests/keras_models.py chose the torch backend)

    x, y = pattern_images(320, seed=2)
    x_test, y_test = pattern_images(64, seed=3)
    model = lesson_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    frames = Frames()
    view = convlens.keras.LiveView(images=x_test[:1] / 255.0, class_names=range(10), output=frames)
    assert isinstance(view, LiveView)
    keras.utils.set_random_seed(0)
    model.fit(
        x / 255.0,
        y,
        epochs=3,
        batch_size=32,
        validation_data=(x_test / 255.0, y_test),
        callbacks=[view],
        verbose=0,
    )
    assert view.epochs_seen == [1, 2, 3]
    assert view.draws >= 2 and len(frames.frames) == view.draws
    last = view.board.records[-1]
    assert last["test_accuracy"] is not None and 0 <= last["test_accuracy"] <= 1
    assert view.board.snapshot is not None and view.board.snapshot.filters.startswith(
        "data:image/png"
    )
    # Keras numbers layer names per process (conv2d_3 after other tests' models): ask the model
    first_conv = next(layer.name for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert f"{first_conv}'s filters" in frames.frames[-1]
    assert "validation accuracy" in frames.frames[-1]
    assert len(view.board.steps) >= 3 * 10  # a running point per batch (10 batches an epoch)

    imported = read_keras_model(model)
    images = (x_test[:8] / 255.0).astype("float32")
    expected = np.asarray(model.predict(images, verbose=0))
    got = build_imported(imported).probabilities(torch.from_numpy(images).permute(0, 3, 1, 2))
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-5, rtol=1e-5)


def test_liveview_speaks_tf_keras_2s_shape_of_the_callback_api():
    model = lesson_cnn()
    frames = Frames()
    view = LiveView(images=pattern_images(1)[0], output=frames)
    # tf.keras 2's CallbackList asks these before calling any batch hook
    assert view._implements_train_batch_hooks() and not view._implements_test_batch_hooks()
    assert view._supports_tf_logs is False
    view.set_model(model)
    view.set_params({"epochs": 2, "steps": 3, "verbose": 1})
    view.on_train_begin({})
    for epoch in range(2):
        view.on_epoch_begin(epoch, {})
        for batch in range(3):
            view.on_train_batch_begin(batch, {})
            view.on_train_batch_end(
                batch, {"loss": np.float32(1.0 / (batch + 1)), "acc": np.float32(0.5)}
            )
        view.on_test_begin({})
        view.on_test_end({})
        view.on_epoch_end(epoch, {"loss": 0.5, "acc": 0.8, "val_loss": 0.6, "val_acc": 0.7})
    view.on_train_end({})
    assert view.epochs_seen == [1, 2]
    assert [record["test_accuracy"] for record in view.board.records] == [0.7, 0.7]
    assert [record["train_accuracy"] for record in view.board.records] == [0.8, 0.8]
    assert view.board.steps[-1] == (2.0, pytest.approx(1 / 3), 0.5)
    assert "validation accuracy 70.00%" in frames.frames[-1]


def test_liveview_on_a_model_convlens_cannot_read_draws_the_curves_and_says_why():
    import keras

    inputs = keras.Input((8, 8, 1))
    merged = keras.layers.Add()(
        [keras.layers.Conv2D(2, 3)(inputs), keras.layers.Conv2D(2, 3)(inputs)]
    )
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(merged)))
    view = LiveView(images=np.zeros((1, 8, 8, 1), np.uint8), output=Frames())
    view.set_model(model)
    view.set_params({"epochs": 1, "steps": 1})
    view.on_train_begin()
    view.on_epoch_end(0, {"loss": 1.0})
    assert view.draws == 2 and view.board.snapshot is None
    assert (
        view.board.note.startswith("Only the curves are drawn:")
        and "single-chain" in view.board.note
    )


def test_the_live_view_of_convlens_train_draws_filters_maps_and_every_epoch():
    data = pattern_dataset(256, 64)
    spec = convlens.preset("seed-cnn").with_output_units(10)
    config = TrainConfig(epochs=2, batch_size=64, evaluate_each_epoch=True, ema_decay=0.0)
    frames = Frames()
    live = LiveTraining(spec.with_class_names(data.class_names), data, config, output=frames)
    fit(spec, data, config, callbacks=[live])
    assert [record["epoch"] for record in live.board.records] == [1, 2]
    assert live.board.draws >= 3  # the untrained filters, then after every epoch
    assert live.board.snapshot.layer == "conv2d" and live.board.snapshot.maps.startswith("data:")
    assert "after epoch 2" in frames.frames[-1] and "the model says" in frames.frames[-1]


class StopInEpoch(convlens.Callback):
    """Ctrl-C (the kernel's stop button) in the middle of an epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, epoch, batch, loss, accuracy) -> None:
        if epoch == self.epoch and batch == 1:
            raise KeyboardInterrupt


def test_an_interrupted_notebook_training_leaves_a_run_train_resumes(tmp_path):
    data = write_idx_dataset(tmp_path / "data", pattern_dataset(300, 60))
    kwargs = dict(data_dir=data, epochs=3, seed=1, runs_dir=tmp_path / "runs", verbose=False)
    with pytest.raises(TrainingInterrupted) as stopped:
        convlens.train("seed-dnn", "mnist", callbacks=[StopInEpoch(2)], live=True, **kwargs)
    assert stopped.value.epochs_done == 1
    run = convlens.train(resume=stopped.value.run, runs_dir=tmp_path / "runs", live=False)
    assert run.path == stopped.value.run and run.metrics["epochs"] == 3
    straight = convlens.train("seed-dnn", "mnist", out=tmp_path / "straight", **kwargs)
    assert run.metrics["test_accuracy"] == straight.metrics["test_accuracy"]


def test_train_images_trains_on_the_first_images_and_says_so(tmp_path):
    data = write_idx_dataset(tmp_path / "data", pattern_dataset(300, 60))
    run = convlens.train(
        "seed-dnn",
        "mnist",
        data_dir=data,
        epochs=1,
        train_images=120,
        out=tmp_path / "r",
        verbose=False,
    )
    assert run.metrics["train_images"] == 120 and run.metrics["test_images"] == 60
    with pytest.raises(
        convlens.ConvlensError, match="train_images must be a whole number from 1 to 300"
    ):
        convlens.train("seed-dnn", "mnist", data_dir=data, train_images=301, verbose=False)
