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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from convlens.allocator import keep_freed_memory
from convlens.averaging import WeightAverage
from convlens.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from convlens.data import Dataset
from convlens.distributed import SINGLE, Group, resolve_device
from convlens.errors import ConvlensError
from convlens.evaluate import Evaluation, evaluate_tensors
from convlens.model import Sequential, save_model
from convlens.network import Network, images_to_tensor
from convlens.optimizer import Adam
from convlens.precision import check_precision, resolve_precision, training_precision
from convlens.runs import (
    RUNS_ROOT,
    StagedRun,
    find_interrupted,
    staged_run,
    write_history,
    write_metrics,
    write_split,
)
from convlens.selection import LossMemory, batches_per_epoch


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run, as plain values."""

    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 2e-3
    schedule: str = "constant"  # "constant", or "onecycle" (warm-up then cosine decay)
    warmup_fraction: float = 0.2
    label_smoothing: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    target_accuracy: float | None = None  # stop once train accuracy passes this
    threads: int | None = None  # None: torch's default (all physical cores)
    device: str = "auto"  # auto (CUDA when present), cpu or cuda
    evaluate_each_epoch: bool = True
    flip_augment: bool = False  # mirror a random half of each batch while training
    shift_augment: int = 0  # > 0: shift each training image by up to this many pixels
    test_time_flip: bool = False  # evaluate on the mean of each image's and its mirror's logits
    # Where the dataset's classes look the same mirrored (data.Dataset.mirror_symmetric),
    # plan.plan_training turns on flip_augment and the model's own test-time flip.
    mirrors: bool = False
    ema_decay: float = 0.99  # > 0: evaluate and save an exponential average of the weights
    precision: str = "auto"  # auto (bfloat16 where native), float32 or bfloat16 (precision.py)
    keep_fraction: float = 1 / 3  # < 1: selective backprop (selection.py) from select_from_epoch
    select_from_epoch: int = 2
    recipe: str = "fast"
    # Scaled to the dataset by for_dataset(): at least this many optimiser steps (more
    # epochs on a small folder), and selection only once this many steps are behind.
    min_steps: int = 600
    select_after_steps: int = 900
    small_data_shift: int = 1  # shift_augment for_dataset() turns on when the data is small


# EMA 0.99 (an exponential average of the weights, averaging.py) in the fast and best
# recipes. With a one-cycle rate it leaves the final figure as it was (fast 0.9143 against
# 0.9142; best 0.9346 against 0.9349 with flips, seed 0), since the rate ends near zero,
# but lifts the epochs before the last (fast +0.90, +0.45, +0.33, +0.11 points after
# epochs 1-4; best 0.9239 against 0.8883 after epoch 5). With the average doing the
# decay's work, the fast recipe keeps its rate constant at 2e-3: final 0.9197 against
# 0.9143 (seed 0) and 0.9189 against 0.9180 (seed 1), and 0.8884 against 0.8766 after
# its first epoch (seed 0). benchmarks/recipe_variants.py measures these.
# Selective backprop (selection.py) from epoch 2: each epoch trains on the third of the
# images with the highest loss when last trained on, so it costs ~18 s instead of ~50 s.
# Seed 0, EMA after each epoch: 0.8884 0.9010 0.9101 0.9145 0.9185 0.9205 at 51, 68, 87,
# 106, 124, 142 s (every image each epoch: 0.9097 after epoch 3 at ~150 s, 0.9197 after
# 5 at ~250 s). Keeping a quarter: 91% one epoch later, 0.9191 after 7 (132 s); scoring
# the pool with a fresh forward pass (Jiang et al.'s way): 0.9109 after epoch 3 but 30 s
# an epoch; selecting from epoch 1 on: 0.8969 after epoch 2, 0.9141 after 5.
# Scaled by steps (for_dataset): a folder of 1,348 digits is 22 steps an epoch, so six
# epochs were 56 steps with selection (95.3%); at least 600 steps with every image each
# epoch reach 99.8% (28 epochs); Fashion-MNIST's 938-step epochs keep the recipe as it
# was (6 epochs, selecting from epoch 2). benchmarks/folders.py measures both.
RECIPES: dict[str, TrainConfig] = {
    "fast": TrainConfig(),
    # The lesson: model.compile(optimizer='adam', ...); model.fit(x, y, epochs=5), Keras batch 32.
    "lesson": TrainConfig(
        epochs=5,
        batch_size=32,
        learning_rate=1e-3,
        schedule="constant",
        label_smoothing=0.0,
        ema_decay=0.0,
        keep_fraction=1.0,
        precision="float32",
        recipe="lesson",
        min_steps=0,  # the lesson's five epochs, whatever the dataset
        select_after_steps=0,
        small_data_shift=0,
    ),
    # The best preset's: batch 128 at peak 4e-3 (batch normalisation takes the larger
    # rate), one-cycle. Nine epochs in float32 gave 0.9366; with bfloat16 and the allocator
    # setting an epoch costs about 0.6 of a plain lesson epoch, so 16 fit in about 10 plain
    # epochs. On Fashion-MNIST it trains on mirrored images and predicts from each image and
    # its mirror (mirrors, plan.py): a GPU search (benchmarks/best_search.py) found flips
    # with 15 epochs 0.9401/0.9372 and with the mirror average 0.9432/0.9403 (seeds 0, 1).
    # Random shifts of 1 px and cutout cost accuracy in so few epochs (BENCHMARKS.md).
    "best": TrainConfig(
        epochs=16,
        batch_size=128,
        learning_rate=4e-3,
        schedule="onecycle",
        keep_fraction=1.0,
        mirrors=True,
        recipe="best",
    ),
}


# A preset trained with its own recipe unless --recipe says otherwise.
PRESET_RECIPES = {"best": "best"}


def default_recipe(model: str) -> str:
    """The recipe a model trains with when none is named: its preset's own, else "fast"."""
    return PRESET_RECIPES.get(model, "fast")


def recipe_config(recipe: str, **overrides: object) -> TrainConfig:
    """The named recipe's config with any non-None overrides applied."""
    if recipe not in RECIPES:
        raise ConvlensError(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}.")
    given = {k: v for k, v in overrides.items() if v is not None}
    config = replace(RECIPES[recipe], **given)
    _validate(config)
    return config


def for_dataset(config: TrainConfig, train_images: int, epochs_given: bool = False) -> TrainConfig:
    """``config`` scaled to a training split of ``train_images`` by optimiser steps.

    Selection (when the recipe selects) starts at the first epoch after
    ``select_after_steps`` steps; the run lasts at least ``min_steps`` steps, in
    more epochs when the split is small (unless the epochs were given), and a
    split too small for ``min_steps`` in the recipe's epochs is shifted by up to
    ``small_data_shift`` pixels while training. A recipe without these (the
    lesson's) is returned as it is.
    """
    full = batches_per_epoch(train_images, config.batch_size, 1.0)
    if config.select_after_steps:
        config = replace(config, select_from_epoch=math.ceil(config.select_after_steps / full) + 1)
    if total_steps(config, train_images, config.batch_size) < config.min_steps:
        # A small dataset is seen many times: a pixel's shift makes each pass new
        # (1,000 Fashion-MNIST images: 0.8355 against 0.8218, mean of 4 seeds).
        config = replace(config, shift_augment=max(config.shift_augment, config.small_data_shift))
    epochs = config.epochs
    while (
        not epochs_given
        and total_steps(replace(config, epochs=epochs), train_images, config.batch_size)
        < config.min_steps
    ):
        epochs += 1
    return replace(config, epochs=epochs)


def _validate(config: TrainConfig) -> None:
    if config.epochs < 1:
        raise ConvlensError(f"epochs must be at least 1, not {config.epochs}.")
    if config.batch_size < 1:
        raise ConvlensError(f"batch size must be at least 1, not {config.batch_size}.")
    if not config.learning_rate > 0:
        raise ConvlensError(f"learning rate must be positive, not {config.learning_rate}.")
    if config.schedule not in ("onecycle", "constant"):
        raise ConvlensError(f"unknown schedule {config.schedule!r}; use onecycle or constant.")
    if not 0 <= config.ema_decay < 1:
        raise ConvlensError(
            f"EMA decay must be in [0, 1), like 0.999 (0 turns it off); got {config.ema_decay}."
        )
    if not 0 < config.keep_fraction <= 1:
        raise ConvlensError(
            f"keep fraction must be in (0, 1], like 0.33 (1 trains on every image); "
            f"got {config.keep_fraction}."
        )
    if not 0 <= config.shift_augment <= 8:
        raise ConvlensError(
            f"shift must be 0 to 8 pixels, like 1 (0 turns it off); got {config.shift_augment}."
        )
    if config.select_from_epoch < 1:
        raise ConvlensError(
            f"select-from epoch must be at least 1, not {config.select_from_epoch}."
        )
    check_precision(config.precision)
    target = config.target_accuracy
    if target is not None and not 0 < target <= 1:
        raise ConvlensError(f"target accuracy must be in (0, 1], like 0.9; got {target}.")


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float
    learning_rate: float
    images: int | None = None  # trained on this epoch (fewer than the split when selecting)
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


class Callback:
    """Hook called after every epoch; return True to stop training."""

    def on_epoch_end(self, record: EpochRecord) -> bool:
        """Called with the epoch just finished; True stops training."""
        return False


@dataclass
class StopAtAccuracy(Callback):
    """The lesson's callback: stop once (training) accuracy passes a target."""

    target: float
    metric: str = "train_accuracy"

    def on_epoch_end(self, record: EpochRecord) -> bool:
        value = getattr(record, self.metric)
        return value is not None and value >= self.target


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


ProgressFn = Callable[[int, int, float, float], None]  # (epoch, batch, loss, accuracy)


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


def keep_in_epoch(config: TrainConfig, epoch: int) -> float:
    """The fraction of the images trained on in ``epoch`` (1-based): all before selecting."""
    return config.keep_fraction if epoch >= config.select_from_epoch else 1.0


def total_steps(config: TrainConfig, images: int, batch_size: int) -> int:
    """Optimiser steps in the whole run over ``images`` per epoch at ``batch_size``."""
    return sum(
        batches_per_epoch(images, batch_size, keep_in_epoch(config, epoch))
        for epoch in range(1, config.epochs + 1)
    )


def _batches(loop: _Loop, order: torch.Tensor, epoch: int) -> Iterable[torch.Tensor]:
    """The epoch's index batches: all of ``order``, or each pool's hardest when selecting."""
    if loop.memory is None:
        return order.split(loop.batch_size)
    return loop.memory.batches(order, loop.batch_size, keep_in_epoch(loop.config, epoch))


def random_shift(x: torch.Tensor, most: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of a batch (B, C, H, W) moved by up to ``most`` pixels each way, zeros in.

    The offsets come from ``generator`` (so a resumed run shifts as the first did);
    the result keeps channels_last memory.
    """
    count, _, height, width = x.shape
    device = x.device
    padded = F.pad(x, (most, most, most, most))
    dy, dx = torch.randint(0, 2 * most + 1, (2, count), generator=generator).to(device)
    rows = torch.arange(height, device=device)[None, :] + dy[:, None]  # (B, H) into padded
    cols = torch.arange(width, device=device)[None, :] + dx[:, None]  # (B, W)
    batch = torch.arange(count, device=device)[:, None, None]
    moved = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


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
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    step, seen = first_step, 0
    for batch, index in enumerate(_batches(loop, order, epoch)):
        x, y = images[index], labels[index]  # (B, C, H, W) channels_last, (B,)
        if config.flip_augment:
            mirror = (torch.rand(len(x), generator=loop.generator) < 0.5).to(device)
            x = torch.where(mirror[:, None, None, None], x.flip(3), x)
        if config.shift_augment:
            x = random_shift(x, config.shift_augment, loop.generator)
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
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_checkpoint: Callable[[TrainingState], None] | None = None,
    resume: TrainingState | None = None,
    group: Group = SINGLE,
    watch: Callable[[Network], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``dataset.train`` and evaluate on ``dataset.test``.

    Returns the trained network (eval mode), the per-epoch history and the
    final test evaluation. Same seed and thread count give the same weights on
    CPU. ``on_checkpoint`` receives the full state after every epoch;
    ``resume`` continues from such a state exactly where it left off.
    ``group`` (from distributed.join) trains one shard per process.
    ``watch`` is called once with the network being trained, before its
    first step (the explorer draws its filters as they learn).
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
    train_x = images_to_tensor(dataset.train.images, model.input_shape, model.input_scale)
    train_x = train_x.to(device)  # (N, C, H, W)
    train_y = torch.from_numpy(np.ascontiguousarray(dataset.train.labels, dtype=np.int64))
    test_x = images_to_tensor(dataset.test.images, model.input_shape, model.input_scale)
    test_x = test_x.to(device)
    test_y = torch.from_numpy(np.ascontiguousarray(dataset.test.labels, dtype=np.int64))
    train_y, test_y = train_y.to(device), test_y.to(device)
    network = model.build(seed=config.seed).to(device)  # built in channels_last memory
    optimizer = Adam(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
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
    )
    evaluated = network if average is None else average.network  # what is tested and saved
    if watch is not None:
        watch(network)
    test: Evaluation | None = None
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_start = time.perf_counter()
        batch_hook = (
            None if on_batch is None else (lambda b, loss, acc, e=epoch: on_batch(e, b, loss, acc))
        )
        train_loss, train_acc, images, step = _train_epoch(
            loop, train_x, train_y, epoch, step, batch_hook
        )
        last = epoch == config.epochs
        test = None
        if config.evaluate_each_epoch or last:
            test = evaluate_tensors(
                evaluated, test_x, test_y, dataset.num_classes, flip=config.test_time_flip
            )
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
        if on_checkpoint is not None:
            on_checkpoint(
                _state(epoch, step, history, network, optimizer, generator, average, memory)
            )
        if on_epoch is not None:
            on_epoch(record)
        if any(callback.on_epoch_end(record) for callback in callbacks):
            history.stopped_early = not last
            break
    if test is None:
        test = evaluate_tensors(
            evaluated, test_x, test_y, dataset.num_classes, flip=config.test_time_flip
        )
    evaluated.eval()
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


class TrainingInterrupted(Exception):
    """Ctrl-C during training: what was saved and how to continue."""

    def __init__(self, run: Path, epochs_done: int) -> None:
        super().__init__(f"training interrupted after {epochs_done} epoch(s)")
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


# What a checkpoint saved before an option existed trained with: no EMA, every image.
BEFORE_OPTIONS = {"ema_decay": 0.0, "keep_fraction": 1.0, "precision": "float32"}


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
    )


def train_to_run(
    model: Sequential,
    dataset: Dataset,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    root: Path = RUNS_ROOT,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    finish: Callable[[Path, FitResult], None] | None = None,
    data_dir: str | Path | None = None,
    resume: Resumable | None = None,
    group: Group = SINGLE,
    watch: Callable[[Network], None] | None = None,
) -> tuple[Path | None, FitResult]:
    """Train and write a complete run directory; returns its path and the fit result.

    A checkpoint is saved at the end of every epoch; ``resume`` (from
    find_resumable) continues an interrupted run to the same final weights.
    ``finish(directory, result)`` may add files (the report) before the run
    is published; ``watch`` is fit's. The directory appears only when everything in it is
    written; Ctrl-C after an epoch keeps the checkpoint and raises
    TrainingInterrupted, before the first epoch it leaves nothing.
    """
    config = resume.config if resume else (config or TrainConfig())
    model = model.with_class_names(dataset.class_names)
    if not group.is_main:  # only rank 0 writes the run directory
        return None, fit(model, dataset, config, group=group)
    info = {
        "model": model.config(),
        "config": asdict(config),
        "dataset": dataset.location,  # a folder by its path, so --resume finds it from anywhere
        "data_dir": None if data_dir is None else str(data_dir),
    }
    out = resume.staged.final if resume else out
    with staged_run(out, model.name, root, resume=resume is not None) as run:
        saved = [resume.state.epoch if resume else 0]  # the epoch of the checkpoint on disk

        def checkpoint(state: TrainingState) -> None:
            state.info = info
            try:
                save_checkpoint(run.staging, state)
                saved[0] = state.epoch
            except OSError as exc:
                kept = "the previous epoch's checkpoint is intact; " if saved[0] else ""
                raise ConvlensError(
                    f"could not save epoch {state.epoch} in {run.staging} "
                    f"({exc.strerror or exc}); {kept}free space or fix permissions, then "
                    f"`convlens train --resume {run.final}` or start again."
                ) from None

        try:
            result = fit(
                model,
                dataset,
                config,
                on_batch=on_batch,
                on_epoch=on_epoch,
                on_checkpoint=checkpoint,
                resume=resume.state if resume else None,
                group=group,
                watch=watch,
            )
        except KeyboardInterrupt:
            if saved[0]:
                raise TrainingInterrupted(run.final, saved[0]) from None
            raise
        save_model(run.staging, model, result.network)
        write_history(run.staging, result.history.as_rows())
        write_metrics(run.staging, run_metrics(model, dataset, config, result, group.world))
        if dataset.split is not None:
            write_split(run.staging, dataset.split)
        if finish is not None:
            finish(run.staging, result)
    return run.final, result
