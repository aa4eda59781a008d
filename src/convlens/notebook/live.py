"""The live view of training in a notebook: curves, the first convolution's filters, one image's maps.

The story the page's training panel tells (web/job_process.py's events drawn
by static/js/jobs.js), told in a notebook cell: the running loss and accuracy,
the test figures after each epoch, the first Conv2D's filters and one test
image's maps in that layer as they change, and what the model says that image
is. A TrainingBoard holds what was seen and draws it as one HTML frame, which
a LiveOutput shows in one output area updated in place (IPython's display
handle: JupyterLab, Notebook 7, VS Code and Colab all keep it live). Outside
a notebook nothing is shown; the board keeps its frames for ``_repr_html_``.

``LiveTraining`` is the training callback convlens.train uses in a notebook;
notebook/keras.py's LiveView feeds the same board from Keras's callbacks.
"""

from __future__ import annotations

import base64
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from convlens import shown
from convlens.errors import ConvlensError
from convlens.inspect import journey
from convlens.training.callbacks import Callback, EpochRecord
from convlens.training.recipes import TrainConfig, batches_per_epoch, keep_in_epoch
from convlens.views.live_figures import live_curves_figure
from convlens.web import pictures

DRAW_SECONDS = 1.0  # a frame at most this often while an epoch runs (and after every epoch)
SNAPSHOT_SECONDS = 2.0  # filters and maps recomputed at most this often within an epoch
TILE_WIDTH = 240  # CSS pixels of the filters' and maps' grids


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveOutput:
    """One output area of the running cell, replaced by every frame (nothing outside Jupyter)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = in_notebook() if enabled is None else enabled
        self.handle: Any = None

    def show(self, html: str) -> None:
        """Show ``html`` in place of the previous frame."""
        if not self.enabled:
            return
        from IPython.display import HTML, display  # optional: present wherever a kernel runs

        if self.handle is None:
            self.handle = display(HTML(html), display_id=True)
        else:
            self.handle.update(HTML(html))


@dataclass(frozen=True)
class Snapshot:
    """The first convolution's filters and the watched image's maps as PNG data URLs, and the
    model's answer for that image."""

    layer: str | None
    filters: str | None
    maps: str | None
    answer: str


def take_snapshot(spec: Any, network: Any, image: np.ndarray) -> Snapshot:
    """Filters, maps and answer of a (Sequential, Network) pair for one uint8 (H, W, C) image."""
    pair = (spec, network)
    try:
        row, kernels = journey.learned_filters(pair)
    except ConvlensError:
        row, kernels = None, None  # a model without Conv2D (the dense baseline)
    last = spec.rows[-1].name
    wanted = [row.name] if row is not None else []
    captured = journey.activations(pair, image[None], [*wanted, last])
    filters = maps = None
    if row is not None:
        filters = pictures.map_grid(kernels[:, :, 0, :], "RdBu_r", symmetric=True)[0]
        maps = pictures.map_grid(captured[row.name][0])[0]
    outputs = captured[last][0].astype(np.float64)
    if not network.final_softmax:
        outputs = np.exp(outputs - outputs.max())
        outputs = outputs / outputs.sum()
    best = int(outputs.argmax())
    names = spec.class_names or tuple(str(i) for i in range(len(outputs)))
    return Snapshot(
        row.name if row else None, filters, maps, f"{names[best]} ({outputs[best]:.0%})"
    )


class TrainingBoard:
    """What the live view has seen (steps, epochs, the latest snapshot) and its HTML frame."""

    def __init__(
        self,
        title: str,
        total_epochs: int,
        image: np.ndarray | None = None,
        label: str | None = None,
        test_label: str = "test",
        output: LiveOutput | None = None,
    ) -> None:
        self.title, self.total_epochs = title, total_epochs
        self.image, self.label, self.test_label = image, label, test_label
        self.output = output or LiveOutput()
        self.steps: list[tuple[float, float, float]] = []
        self.epochs: list[tuple[int, float | None, float | None]] = []
        self.records: list[dict[str, Any]] = []
        self.snapshot: Snapshot | None = None
        self.status = "starting"
        self.note = ""
        self.draws = 0
        self.last_draw = 0.0
        self.frame = ""

    def point(self, position: float, loss: float, accuracy: float) -> None:
        """A running loss and accuracy at ``position`` epochs (1.5: half-way through epoch 2)."""
        self.steps.append((float(position), float(loss), float(accuracy)))

    def epoch(self, record: dict[str, Any]) -> None:
        """An epoch's record: epoch, train and test (or validation) loss and accuracy."""
        self.records.append(record)
        self.epochs.append(
            (int(record["epoch"]), record.get("test_loss"), record.get("test_accuracy"))
        )

    def due(self) -> bool:
        """Whether a frame is due (DRAW_SECONDS since the last one)."""
        return time.perf_counter() - self.last_draw >= DRAW_SECONDS

    def draw(self) -> None:
        """Render the frame and show it in place of the previous one."""
        self.frame = self.html()
        self.output.show(self.frame)
        self.draws += 1
        self.last_draw = time.perf_counter()

    def headline(self) -> str:
        """The status line: where training is, and the last epoch's figures."""
        parts = [self.status]
        if self.records:
            last = self.records[-1]
            parts.append(
                f"after epoch {last['epoch']}: loss {last['train_loss']:.4f}, "
                f"accuracy {last['train_accuracy']:.2%}"
            )
            if last.get("test_accuracy") is not None:
                parts.append(f"{self.test_label} accuracy {last['test_accuracy']:.2%}")
        return " · ".join(parts)

    def html(self) -> str:
        """The frame: the status line, the curves, then filters, maps and the watched image."""
        curves = live_curves_figure(
            self.steps, self.epochs, self.total_epochs, test_label=self.test_label
        )
        parts = [
            shown.paragraph(self.headline()),
            f"<div>{_png_img(curves._repr_png_(), 'training curves', 720)}</div>",
            f"<div>{self._pictures()}</div>",
        ]
        if self.note:
            parts.append(shown.paragraph(self.note, muted=True))
        return shown.block(self.title, *parts)

    def _pictures(self) -> str:
        snapshot, row = self.snapshot, []
        if snapshot is not None and snapshot.filters:
            row.append(
                shown.figure(
                    _url_img(snapshot.filters, "filters"),
                    f"{snapshot.layer}'s filters (blue negative, red positive)",
                )
            )
            row.append(
                shown.figure(
                    _url_img(snapshot.maps, "maps"), f"the image's maps in {snapshot.layer}"
                )
            )
        if self.image is not None:
            pixels = self.image[:, :, 0] if self.image.shape[2] == 1 else self.image
            said = f"; the model says {snapshot.answer}" if snapshot else ""
            caption = f"the watched image{f', a {self.label}' if self.label else ''}{said}"
            row.append(shown.figure(shown.picture(pixels, "watched image", 112), caption))
        return "".join(row)

    def _repr_html_(self) -> str:
        return self.frame or self.html()


def _png_img(png: bytes, alt: str, width: int) -> str:
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<img src="{url}" alt="{alt}" style="max-width: 100%; width: {width}px">'


def _url_img(url: str | None, alt: str) -> str:
    style = f"width: {TILE_WIDTH}px; max-width: 100%; image-rendering: pixelated"
    return f'<img src="{url}" alt="{alt}" style="{style}">'


class LiveTraining(Callback):
    """convlens.train's live view in a notebook: a training callback drawing a TrainingBoard."""

    def __init__(
        self,
        spec: Any,
        dataset: Any,
        config: TrainConfig,
        first_epoch: int = 1,
        watch_image: int = 0,
        output: LiveOutput | None = None,
    ) -> None:
        self.spec, self.config = spec, config
        self.network: Any = None
        test = dataset.test
        self.index = watch_image % max(1, len(test))
        self.image = test.images[self.index]
        label = int(test.labels[self.index])
        names = dataset.class_names
        images = len(dataset.train)
        self.steps = [
            batches_per_epoch(images, config.batch_size, keep_in_epoch(config, epoch))
            for epoch in range(1, config.epochs + 1)
        ]
        title = (
            f"Training {spec.name} on {dataset.name} ({images:,} images, "
            f"{config.epochs} epoch{'s' if config.epochs != 1 else ''})"
        )
        self.board = TrainingBoard(
            title,
            config.epochs,
            self.image,
            names[label] if label < len(names) else str(label),
            output=output,
        )
        self.board.status = f"epoch {first_epoch} of {config.epochs}"
        self.last_snapshot = 0.0
        self.started = time.perf_counter()

    def on_train_begin(self, network: Any) -> None:
        """The network being trained: filters and maps are drawn from it as it learns."""
        self.network = network
        self.refresh()
        self.board.draw()

    def refresh(self) -> None:
        """A new snapshot of the filters, the maps and the answer."""
        if self.network is not None:
            self.board.snapshot = take_snapshot(self.spec, self.network, self.image)
            self.last_snapshot = time.perf_counter()

    def on_batch_end(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        """After every step: a curve point; a frame each second, a snapshot every two."""
        steps = self.steps[min(epoch, len(self.steps)) - 1]
        self.board.point(epoch - 1 + (batch + 1) / steps, loss, accuracy)
        self.board.status = (
            f"epoch {epoch} of {self.config.epochs}, step {batch + 1:,} of {steps:,}"
        )
        if self.board.due():
            if time.perf_counter() - self.last_snapshot >= SNAPSHOT_SECONDS:
                self.refresh()
            self.board.draw()

    def on_epoch_end(self, record: EpochRecord) -> bool:
        """An epoch's record, a fresh snapshot and a frame."""
        self.board.epoch(asdict(record))
        self.board.status = f"epoch {record.epoch} of {self.config.epochs} done"
        self.refresh()
        self.board.draw()
        return False

    def finished(self, test_accuracy: float, path: Any) -> None:
        """The last frame: where the run is and how it did."""
        seconds = time.perf_counter() - self.started
        self.board.status = f"done in {seconds:.0f} s: test accuracy {test_accuracy:.2%}"
        self.board.note = f"the run is {path}"
        self.board.draw()

    def interrupted(self, epochs_done: int, path: Any) -> None:
        """The last frame after an interrupted kernel: what is saved and how to go on."""
        self.board.status = f"interrupted after epoch {epochs_done} of {self.config.epochs}"
        self.board.note = (
            f"epochs 1-{epochs_done} are saved; continue with convlens.train(resume={str(path)!r})"
        )
        self.board.draw()
