"""The training engine: fit(model, dataset, config) -> FitResult.

Fast-path ideas, each applied where the code does it:
- the whole split is normalised once into one float tensor held in memory, in
  channels_last layout (what oneDNN's CPU convolutions prefer); batches are
  index_select copies, no per-batch Python decoding;
- a constant learning rate with an exponential moving average of the weights
  (EMA) evaluated and saved: the average settles where a decaying rate would
  (see RECIPES for the figures); one-cycle (linear warm-up, then cosine decay
  to ~0) for the best preset; label smoothing against over-confidence;
- all cores: torch uses every core it is given (``threads``).

``recipe="lesson"`` is the lesson's exact recipe: Adam 1e-3, batch 32, 5
epochs, constant rate, no smoothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from convlens.data.datasets import Dataset
from convlens.errors import ConvlensError
from convlens.model.network import Network, build_network, pixels_to_tensor, scale_pixels
from convlens.model.sequential import Sequential
from convlens.model.weights import save_model
from convlens.runs.directory import (
    RUNS_ROOT,
    StagedRun,
    find_interrupted,
    staged_run,
    write_history,
    write_metrics,
    write_split,
)
from convlens.runs.evaluate import Evaluation, evaluate_tensors
from convlens.training.allocator import keep_freed_memory, release_freed_memory
from convlens.training.averaging import WeightAverage
from convlens.training.callbacks import Callback, EpochRecord, StopAtAccuracy
from convlens.training.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from convlens.training.distributed import SINGLE, Group, resolve_device
from convlens.training.optimizer import Adam
from convlens.training.precision import resolve_precision, training_precision
from convlens.training.recipes import TrainConfig, _validate, keep_in_epoch, total_steps
from convlens.training.selection import LossMemory
from convlens.training.statistics import StatisticsRefresh, batch_norms

    # train_loss / train_accuracy: when selecting, over every image as of its last training


@dataclass
class History:
    """Per-epoch records of a run, and whether a callback stopped it early."""

    epochs: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False

    def as_rows(self) -> list[dict]:
        """One dict per epoch, for history.csv."""
        return [asdict(record) for record in self.epochs]


@dataclass
class FitResult:
    """A trained network with its history and final evaluation on the test split."""

    network: Network
    history: History
    test: Evaluation
    seconds: float  # training wall time, evaluation included


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """The learning rate at optimiser step ``step`` of ``total``.

    onecycle: linear warm-up from 10% to the peak over warmup_fraction of the
    steps, then cosine decay to ~0 (tuned for few epochs); constant: the peak.
    """
    peak = config.learning_rate
    if config.schedule == "constant":
        return peak
    warmup = max(1, int(total * config.warmup_fraction))
    if step < warmup:
        return peak * (0.1 + 0.9 * step / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class _Loop:
    """The moving parts of one training run."""

    network: torch.nn.Module  # the Network, or its DistributedDataParallel wrapper
    optimizer: Adam
    config: TrainConfig
    generator: torch.Generator  # the data order (and flips), on the CPU
    group: Group
    batch_size: int  # per process: the global batch split over the processes
    total_steps: int
    average: WeightAverage | None = None  # updated after every optimiser step
    memory: LossMemory | None = None  # each image's last loss, when selecting (selection.py)
    precision: str = "float32"  # resolved: float32 or bfloat16 (the forward pass's products)
    input_scale: float = 1.0 / 255.0  # what the uint8 pixels are multiplied by (the model's)
    batch_norm: bool = False  # the network normalises batches: no one-image batch


def _batches(loop: _Loop, order: torch.Tensor, epoch: int) -> Iterable[torch.Tensor]:
    """The epoch's index batches: all of ``order``, or each pool's hardest when selecting."""
    if loop.memory is None:
        batches = order.split(loop.batch_size)
    else:
        batches = loop.memory.batches(order, loop.batch_size, keep_in_epoch(loop.config, epoch))
    return _no_lone_image(batches) if loop.batch_norm else batches


def _no_lone_image(batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """``batches`` with a one-image batch joined to the one before it.

    Batch normalisation after a Dense layer cannot normalise one value per
    channel (torch refuses), so 65 images at batch 64 train as one batch of 65.
    """
    held = None
    for batch in batches:
        if held is not None and len(batch) == 1:
            held = torch.cat([held, batch])
            continue
        if held is not None:
            yield held
        held = batch
    if held is not None:
        yield held


def random_shift(x: torch.Tensor, most: int, offsets: torch.Tensor) -> torch.Tensor:
    """Each image of a batch (B, C, H, W) moved by up to ``most`` pixels each way, zeros in.

    ``offsets`` (2, B) are each image's row and column offsets into the padded
    image, 0..2 x most (drawn per epoch by ``_Augmentation``); the result keeps
    channels_last memory.
    """
    count, _, height, width = x.shape
    device = x.device
    padded = F.pad(x, (most, most, most, most))
    dy, dx = offsets
    rows = torch.arange(height, device=device)[None, :] + dy[:, None]  # (B, H) into padded
    cols = torch.arange(width, device=device)[None, :] + dx[:, None]  # (B, W)
    batch = torch.arange(count, device=device)[:, None, None]
    moved = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


@dataclass
class _Augmentation:
    """An epoch's random mirrorings and shifts, one per training image, drawn at its start.

    Drawn on the CPU from the run's generator (a resumed run augments as the
    first did, on any device) and moved to the device once per epoch, so no
    step waits for a copy from the host.
    """

    mirror: torch.Tensor | None  # bool (N,): mirror image i this epoch
    shift: torch.Tensor | None  # int64 (2, N): row and column offsets of image i

    @classmethod
    def draw(cls, config: TrainConfig, count: int, generator: torch.Generator, device) -> _Augmentation:
        """The epoch's draws for ``count`` images (none where the recipe does not augment)."""
        mirror = shift = None
        if config.flip_augment:
            mirror = (torch.rand(count, generator=generator) < 0.5).to(device)
        if config.shift_augment:
            span = 2 * config.shift_augment + 1
            shift = torch.randint(0, span, (2, count), generator=generator).to(device)
        return cls(mirror, shift)

    def apply(self, x: torch.Tensor, index: torch.Tensor, most: int) -> torch.Tensor:
        """The batch ``x`` of images ``index``, mirrored and shifted as drawn."""
        if self.mirror is not None:
            x = torch.where(self.mirror[index][:, None, None, None], x.flip(3), x)
        if self.shift is not None:
            x = random_shift(x, most, self.shift[:, index])
        return x


def _train_epoch(
    loop: _Loop,
    images: torch.Tensor,
    labels: torch.Tensor,
    epoch: int,
    first_step: int,
    on_batch: Callable[[int, float, float], None] | None,
) -> tuple[float, float, int, int]:
    """One pass over this process's shard of shuffled data.

    Returns (loss, accuracy, images trained on, next step). Loss and accuracy
    are over every process's images: those trained on this epoch or, when
    selecting (LossMemory), every image as of the last time it was trained on.
    """
    config, device = loop.config, images.device
    loop.network.train()
    order = loop.group.shard(torch.randperm(len(images), generator=loop.generator)).to(device)
    augmentation = _Augmentation.draw(config, len(images), loop.generator, device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    step, seen = first_step, 0
    for batch, index in enumerate(_batches(loop, order, epoch)):
        x = scale_pixels(images[index], loop.input_scale)  # (B, C, H, W) float, channels_last
        y = labels[index]  # (B,)
        x = augmentation.apply(x, index, config.shift_augment)
        for group in loop.optimizer.param_groups:
            group["lr"] = lr_at(step, loop.total_steps, config)
        with training_precision(loop.precision, device):
            logits = loop.network(x)
        each = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing, reduction="none")
        loss = each.mean()
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        loop.optimizer.step()
        if loop.average is not None:
            loop.average.update(loop.network)
        hits = logits.detach().argmax(1) == y
        if loop.memory is not None:
            loop.memory.record(index, each, hits)
        step, seen = step + 1, seen + len(y)
        loss_sum += loss.detach() * len(y)
        correct += hits.sum()
        if on_batch is not None:
            on_batch(batch, float(loss_sum) / seen, int(correct) / seen)
    totals = torch.stack([loss_sum, correct.double(), torch.tensor(seen, device=device)])
    loss_total, correct_total, count = loop.group.sum(totals.double()).tolist()
    if loop.memory is None:
        return loss_total / count, correct_total / count, int(count), step
    loop.memory.share(loop.group)
    return *loop.memory.summary(), int(count), step


def fit(
    model: Sequential,
    dataset: Dataset,
    config: TrainConfig | None = None,
    callbacks: Sequence[Callback] = (),
    resume: TrainingState | None = None,
    group: Group = SINGLE,
) -> FitResult:
    """Train ``model`` on ``dataset.train`` and evaluate on ``dataset.test``.

    Returns the trained network (eval mode), the per-epoch history and the
    final test evaluation. Same seed and thread count give the same weights on
    CPU. ``callbacks`` observe it (training/callbacks.py: the network before the
    first step, every step, the full state after every epoch, each epoch's
    record, which may stop training); ``resume`` continues from such a state
    exactly where it left off. ``group`` (from distributed.join) trains one
    shard per process.
    """
    config = config or TrainConfig()
    _validate(config)
    if model.num_classes != dataset.num_classes:
        model = model.with_class_names(dataset.class_names)  # raises a clear sentence
    if config.threads:
        torch.set_num_threads(config.threads)
    callbacks = list(callbacks)
    if config.target_accuracy is not None:
        callbacks.append(StopAtAccuracy(config.target_accuracy))
    started = time.perf_counter()
    keep_freed_memory()  # activations reused in place, not page-faulted in each step
    device = resolve_device(config.device)
    # The whole dataset, normalised once, lives on the training device.
    # The splits stay uint8 (a quarter of float32's memory) and each batch is scaled as it
    # is used: the run's peak memory fell from 612 to ~430 MiB, the values are the same.
    train_x = pixels_to_tensor(dataset.train.images, model.input_shape).to(device)  # (N, C, H, W)
    train_y = torch.from_numpy(np.ascontiguousarray(dataset.train.labels, dtype=np.int64))
    test_x = pixels_to_tensor(dataset.test.images, model.input_shape).to(device)
    test_y = torch.from_numpy(np.ascontiguousarray(dataset.test.labels, dtype=np.int64))
    train_y, test_y = train_y.to(device), test_y.to(device)
    network = build_network(model, seed=config.seed).to(device)  # built in channels_last memory
    optimizer = Adam(
        network.parameters(),
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        weight_decay=config.weight_decay,
    )
    generator = torch.Generator().manual_seed(config.seed)
    per_process = math.ceil(config.batch_size / group.world)
    shard_size = len(group.shard(torch.arange(len(train_x))))
    steps = total_steps(config, shard_size, per_process)
    history, step, first_epoch = History(), 0, 1
    if resume is not None:
        network.load_state_dict(resume.network)
        optimizer.load_state_dict(resume.optimizer)
        generator.set_state(resume.shuffle_rng)
        torch.set_rng_state(resume.torch_rng)
        history.epochs = [EpochRecord(**row) for row in resume.history]
        step, first_epoch = resume.step, resume.epoch + 1
    average = WeightAverage(network, config.ema_decay) if config.ema_decay else None
    if average is not None and resume is not None and resume.average:
        average.load_state_dict(resume.average)
    memory = LossMemory(len(train_x), device) if config.keep_fraction < 1 else None
    if memory is not None and resume is not None and resume.selection:
        memory.load_state_dict(resume.selection)
    normalises = bool(batch_norms(network))
    trained = network
    if group.world > 1:  # gradients averaged across processes after every backward
        trained = torch.nn.parallel.DistributedDataParallel(network)
    loop = _Loop(
        trained,
        optimizer,
        config,
        generator,
        group,
        per_process,
        steps,
        average,
        memory,
        resolve_precision(config.precision, device),
        model.input_scale,
        normalises,
    )
    evaluated = network if average is None else average.network  # what is tested and saved
    refresh = None  # batch normalisation's statistics measured for `evaluated` before each test
    if normalises:
        refresh = StatisticsRefresh(train_x, model.input_scale, config.flip_augment, config.seed)

    def test_evaluated() -> Evaluation:
        if refresh is not None:
            refresh(evaluated)
        return evaluate_tensors(
            evaluated, test_x, test_y, dataset.num_classes, flip=config.test_time_flip
        )

    for callback in callbacks:
        callback.on_train_begin(network)
    # Steps call only the callbacks that watch them (a step is ~10 ms; most do not).
    step_watchers = [c for c in callbacks if type(c).on_batch_end is not Callback.on_batch_end]
    test: Evaluation | None = None
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_start = time.perf_counter()
        batch_hook = None
        if step_watchers:

            def batch_hook(batch: int, loss: float, accuracy: float, epoch: int = epoch) -> None:
                for callback in step_watchers:
                    callback.on_batch_end(epoch, batch, loss, accuracy)

        train_loss, train_acc, images, step = _train_epoch(
            loop, train_x, train_y, epoch, step, batch_hook
        )
        last = epoch == config.epochs
        test = None
        if config.evaluate_each_epoch or last:
            test = test_evaluated()
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            train_accuracy=train_acc,
            test_loss=None if test is None else test.loss,
            test_accuracy=None if test is None else test.accuracy,
            seconds=time.perf_counter() - epoch_start,
            learning_rate=lr_at(step - 1, steps, config),
            images=images,
        )
        history.epochs.append(record)
        if any(type(c).on_snapshot is not Callback.on_snapshot for c in callbacks):
            state = _state(epoch, step, history, network, optimizer, generator, average, memory)
            for callback in callbacks:
                callback.on_snapshot(state)
        if any([callback.on_epoch_end(record) for callback in callbacks]):  # every one is told
            history.stopped_early = not last
            break
    if test is None:
        test = test_evaluated()
    evaluated.eval()
    release_freed_memory()  # what comes next (the report) starts from training's memory
    return FitResult(evaluated, history, test, time.perf_counter() - started)


def _state(
    epoch: int,
    step: int,
    history: History,
    network: Network,
    optimizer: Adam,
    generator: torch.Generator,
    average: WeightAverage | None,
    memory: LossMemory | None,
) -> TrainingState:
    return TrainingState(
        epoch=epoch,
        step=step,
        history=history.as_rows(),
        network=network.state_dict(),
        optimizer=optimizer.state_dict(),
        shuffle_rng=generator.get_state(),
        torch_rng=torch.get_rng_state(),
        average=None if average is None else average.state_dict(),
        selection=None if memory is None else memory.state_dict(),
    )


def run_metrics(
    model: Sequential, dataset: Dataset, config: TrainConfig, result: FitResult, processes: int = 1
) -> dict:
    """metrics.json content: test/train accuracy and loss, epochs, seconds, and what ran."""
    last = result.history.epochs[-1]
    epochs = len(result.history.epochs)
    train_seconds = sum(record.seconds for record in result.history.epochs)
    trained = sum(record.images or len(dataset.train) for record in result.history.epochs)
    return {
        "test_accuracy": result.test.accuracy,
        "test_loss": result.test.loss,
        "train_accuracy": last.train_accuracy,
        "train_loss": last.train_loss,
        "epochs": epochs,
        "stopped_early": result.history.stopped_early,
        "seconds": result.seconds,
        "seconds_per_epoch": train_seconds / epochs,
        "images_per_second": trained / train_seconds,  # images trained on
        "model": model.name,
        "total_params": model.total_params,
        "dataset": dataset.name,
        "data_source": dataset.source,
        "train_images": len(dataset.train),
        "test_images": len(dataset.test),
        "input_why": dataset.input_why or None,
        "class_names": list(dataset.class_names),
        "per_class_accuracy": result.test.as_dict(dataset.class_names)["per_class_accuracy"],
        "config": asdict(config),
        "threads": torch.get_num_threads(),
        "processes": processes,
        "device": str(resolve_device(config.device)),
        "precision": resolve_precision(config.precision, resolve_device(config.device)),
        "torch": torch.__version__,
    }


def kept_epochs(count: int) -> str:
    """What an interrupted run kept, in words: "epoch 1 is kept", "epochs 1-3 are kept"."""
    return "epoch 1 is kept" if count == 1 else f"epochs 1-{count} are kept"


def nothing_kept(how: str = "interrupted") -> str:
    """The sentence for a run stopped before its first epoch was saved: nothing to resume."""
    return (
        f"{how} before the first epoch ended: nothing was kept, so `convlens train --resume` "
        "has nothing to resume; run the command again to start over."
    )


class TrainingInterrupted(Exception):
    """Ctrl-C during training: what was saved and how to continue."""

    def __init__(self, run: Path, epochs_done: int) -> None:
        super().__init__(
            f"training interrupted after epoch {epochs_done}: {kept_epochs(epochs_done)} in "
            f"{run}; continue with `convlens train --resume {run}`."
        )
        self.run = run
        self.epochs_done = epochs_done


@dataclass
class Resumable:
    """An interrupted run that can continue: its staging directory and saved state."""

    staged: StagedRun
    state: TrainingState
    model: Sequential
    config: TrainConfig
    dataset: str
    data_dir: str | None
    train_images: int | None = None  # the first that many training images (None: all)
    input_why: str | None = None  # why the images had their shape when the run started


# What a checkpoint saved before an option existed trained with: no EMA, every image,
# Adam's default betas.
BEFORE_OPTIONS = {
    "ema_decay": 0.0,
    "keep_fraction": 1.0,
    "precision": "float32",
    "beta1": 0.9,
    "beta2": 0.999,
}


def find_resumable(run: str | Path | None = None, root: Path = RUNS_ROOT) -> Resumable:
    """The interrupted run named ``run`` (its final path), or the latest one under ``root``."""
    staged = find_interrupted(run, root)
    state = load_checkpoint(staged.staging)
    info = state.info
    return Resumable(
        staged=staged,
        state=state,
        model=Sequential.from_config(info["model"]),
        config=TrainConfig(**{**BEFORE_OPTIONS, **info["config"]}),
        dataset=info["dataset"],
        data_dir=info.get("data_dir"),
        train_images=info.get("train_images"),
        input_why=info.get("input_why"),  # absent from checkpoints saved before it was kept
    )


class Checkpoints(Callback):
    """Saves every epoch's snapshot in a staged run, so an interrupted run resumes from it."""

    def __init__(self, run: StagedRun, info: dict, saved: int = 0) -> None:
        self.run, self.info = run, info
        self.saved = saved  # the epoch of the checkpoint on disk (0: none)

    def on_snapshot(self, state: TrainingState) -> None:
        state.info = self.info
        try:
            save_checkpoint(self.run.staging, state)
        except OSError as exc:
            kept = "the previous epoch's checkpoint is intact; " if self.saved else ""
            raise ConvlensError(
                f"could not save epoch {state.epoch} in {self.run.staging} "
                f"({exc.strerror or exc}); {kept}free space or fix permissions, then "
                f"`convlens train --resume {self.run.final}` or start again."
            ) from None
        self.saved = state.epoch


def train_to_run(
    model: Sequential,
    dataset: Dataset,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    root: Path = RUNS_ROOT,
    callbacks: Sequence[Callback] = (),
    finish: Callable[[Path, FitResult], None] | None = None,
    data_dir: str | Path | None = None,
    resume: Resumable | None = None,
    group: Group = SINGLE,
) -> tuple[Path | None, FitResult]:
    """Train and write a complete run directory; returns its path and the fit result.

    A checkpoint is saved at the end of every epoch (``Checkpoints``, after the
    ``callbacks``' snapshots); ``resume`` (from find_resumable) continues an
    interrupted run to the same final weights. ``finish(directory, result)``
    may add files (the report) before the run is published. The directory
    appears only when everything in it is written; Ctrl-C after an epoch keeps
    the checkpoint and raises TrainingInterrupted, before the first epoch it
    leaves nothing. A resumed run keeps the ``input_why`` it started with (its
    images are read again at the model's input, which would say "as asked").
    """
    config = resume.config if resume else (config or TrainConfig())
    model = model.with_class_names(dataset.class_names)
    if resume is not None and resume.input_why:
        dataset = replace(dataset, input_why=resume.input_why)
    if not group.is_main:  # only rank 0 writes the run directory
        return None, fit(model, dataset, config, group=group)
    info = {
        "model": model.config(),
        "config": asdict(config),
        "dataset": dataset.location,  # a folder by its path, so --resume finds it from anywhere
        "data_dir": None if data_dir is None else str(data_dir),
        "train_images": len(dataset.train),  # a resumed run trains on the images it began with
        "input_why": dataset.input_why or None,
    }
    out = resume.staged.final if resume else out
    with staged_run(out, model.name, root, resume=resume is not None) as run:
        checkpoints = Checkpoints(run, info, resume.state.epoch if resume else 0)
        try:
            result = fit(
                model,
                dataset,
                config,
                callbacks=[checkpoints, *callbacks],
                resume=resume.state if resume else None,
                group=group,
            )
            save_model(run.staging, model, result.network)
            write_history(run.staging, result.history.as_rows())
            write_metrics(run.staging, run_metrics(model, dataset, config, result, group.world))
            if dataset.split is not None:
                write_split(run.staging, dataset.split)
            if finish is not None:
                finish(run.staging, result)
        except KeyboardInterrupt:  # while training or writing: the last checkpoint stays
            if checkpoints.saved:
                raise TrainingInterrupted(run.final, checkpoints.saved) from None
            raise
    return run.final, result
