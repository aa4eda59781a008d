"""convlens.keras.LiveView: the live view while ``model.fit`` runs, as a Keras callback.

It speaks the callback protocol of Keras 3 (any backend: torch, JAX,
TensorFlow) and of tf.keras 2 (its CallbackList also asks whether batch hooks
are implemented and whether logs may stay tensors), without importing Keras:
the model brings its own. Each epoch, the model is read as convlens.from_keras
reads it (interop/keras_model.py) into a convlens network, from which the
first Conv2D's filters, the watched image's maps and the model's answer are
drawn, exactly as for convlens.train's live view (notebook/live.py). A model
convlens cannot read still gets its curves, with one sentence saying why the
rest is missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.interop.importing import build_imported
from convlens.interop.keras_model import read_keras_model
from convlens.notebook.live import LiveOutput, TrainingBoard, take_snapshot


def _watched_image(images: Any) -> np.ndarray | None:
    """The first of ``images`` as uint8 (H, W, C): floats up to 1 are scaled by 255."""
    if images is None:
        return None
    array = np.asarray(images)
    if array.ndim == 4:
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ConvlensError(
            f"LiveView(images=...) takes images (N, H, W[, C]) with 1 or 3 channels, not an "
            f"array of shape {np.shape(images)}; give x_test[:1]."
        )
    values = array.astype(np.float64)
    if array.dtype.kind == "f" and values.size and values.max() <= 1.0:
        values = values * 255.0  # the lesson's x / 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _accuracy_key(logs: dict[str, Any], prefix: str = "") -> str | None:
    """The accuracy metric's name in Keras's logs: accuracy, acc, sparse_categorical_accuracy."""
    for key in logs:
        name = key[len(prefix) :] if prefix and key.startswith(prefix) else key
        if (
            (prefix == "" or key.startswith(prefix))
            and "acc" in name
            and not (prefix == "" and key.startswith("val_"))
        ):
            return key
    return None


def _number(value: Any) -> float | None:
    """A log value (a float, a NumPy scalar, a tensor) as a float; None when absent."""
    if value is None:
        return None
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return None


class LiveView:
    """A Keras callback drawing the live view (curves, filters, maps) while ``model.fit`` runs.

    ``images``: test images to watch (the first one's maps are drawn), as
    given to the model (floats 0..1 or pixels 0..255); ``class_names`` name
    the model's outputs. ``epochs_seen`` and ``draws`` say what it received
    and drew; in a notebook the frame updates in place, and the callback's
    own ``_repr_html_`` shows the last frame.

    >>> model.fit(x, y, epochs=5, callbacks=[convlens.keras.LiveView(images=x_test[:1])])  # doctest: +SKIP
    """

    _supports_tf_logs = False  # tf.keras 2: give us NumPy logs, not tensors

    def __init__(
        self,
        images: Any = None,
        class_names: Any = None,
        output: LiveOutput | None = None,
    ) -> None:
        self.image = _watched_image(images)
        self.class_names = None if class_names is None else tuple(str(n) for n in class_names)
        self.output = output or LiveOutput()
        self.model: Any = None
        self.params: dict[str, Any] = {}
        self.board: TrainingBoard | None = None
        self.epochs_seen: list[int] = []
        self.epoch = 0

    # -- the protocol Keras calls (Keras 3 and tf.keras 2) ---------------------------------

    def set_model(self, model: Any) -> None:
        """Keras gives the model being fitted."""
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Keras gives epochs, steps per epoch and verbosity."""
        self.params = dict(params or {})

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """A new board for this fit; the first frame (the untrained filters)."""
        epochs = int(self.params.get("epochs") or 1)
        name = getattr(self.model, "name", "the model")
        self.board = TrainingBoard(
            f"Keras fitting {name} ({epochs} epoch{'s' if epochs != 1 else ''})",
            epochs,
            self.image,
            test_label="validation",
            output=self.output,
        )
        self.board.status = f"epoch 1 of {epochs}"
        self.refresh()
        self.board.draw()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Keras counts epochs from 0."""
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """A curve point from the running loss and accuracy; a frame each second."""
        if self.board is None or not logs:
            return
        steps = int(self.params.get("steps") or 0) or batch + 1
        loss, key = _number(logs.get("loss")), _accuracy_key(logs)
        accuracy = _number(logs.get(key)) if key else None
        if loss is not None:
            position = self.epoch + min(batch + 1, steps) / steps
            self.board.point(position, loss, accuracy if accuracy is not None else float("nan"))
            self.board.status = f"epoch {self.epoch + 1} of {self.board.total_epochs}, step {batch + 1:,} of {steps:,}"
        if self.board.due():
            self.board.draw()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """The epoch's figures (validation ones when fit has validation data) and a frame."""
        if self.board is None:
            return
        logs = logs or {}
        key, val_key = _accuracy_key(logs), _accuracy_key(logs, "val_")
        self.board.epoch(
            {
                "epoch": epoch + 1,
                "train_loss": _number(logs.get("loss")) or 0.0,
                "train_accuracy": (_number(logs.get(key)) if key else None) or 0.0,
                "test_loss": _number(logs.get("val_loss")),
                "test_accuracy": _number(logs.get(val_key)) if val_key else None,
            }
        )
        self.epochs_seen.append(epoch + 1)
        self.board.status = f"epoch {epoch + 1} of {self.board.total_epochs} done"
        self.refresh()
        self.board.draw()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """The last frame."""
        if self.board is not None:
            self.board.status = f"done: {len(self.epochs_seen)} epochs"
            self.board.draw()

    def refresh(self) -> None:
        """Filters, maps and answer from the model's weights now (read as from_keras reads it)."""
        if self.board is None or self.image is None or self.model is None:
            return
        try:
            imported = read_keras_model(self.model)
            spec = imported.model
            if self.class_names is not None:
                spec = spec.with_class_names(self.class_names)
            self.board.snapshot = take_snapshot(spec, build_imported(imported), self.image)
        except ConvlensError as exc:
            self.board.note = f"Only the curves are drawn: {exc}"

    # -- hooks Keras may call that the live view does not need ----------------------------

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """tf.keras 2's name for a training batch's end."""
        self.on_train_batch_end(batch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Not needed."""

    def _implements_train_batch_hooks(self) -> bool:
        """tf.keras 2 calls batch hooks only when a callback says it has them."""
        return True

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    @property
    def draws(self) -> int:
        """How many frames were drawn."""
        return 0 if self.board is None else self.board.draws

    def _repr_html_(self) -> str:
        return (
            self.board._repr_html_()
            if self.board is not None
            else "<p>LiveView: not fitted yet.</p>"
        )
