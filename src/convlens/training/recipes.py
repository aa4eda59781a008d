"""Training recipes: TrainConfig (every knob as a plain value) and the named
recipes (fast, lesson, best), scaled to a dataset by optimiser steps. No torch:
planning a run and `convlens summary` import none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from convlens.errors import ConvlensError
from convlens.model.presets import PRESETS


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
    beta1: float = 0.9  # Adam's decay of its gradient average (Keras's and torch's 0.9)
    beta2: float = 0.999  # and of its squared-gradient average (their 0.999)
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
# Adam's moments forgetting faster in the fast recipe (betas 0.8, 0.99 instead of 0.9,
# 0.999): float32, seeds 0-2, test accuracy after epochs 1 and 2 0.8928 0.9085 / 0.8933
# 0.9078 / 0.8881 0.9043 against 0.8880 0.9030 / 0.8873 0.9024 / 0.8847 0.8987, final
# 0.9206 / 0.9208 / 0.9197 against 0.9196 / 0.9186 / 0.9206, and 91% in 87,000-92,000
# images against 97,000-102,000 (benchmarks/images_to_accuracy.py).
RECIPES: dict[str, TrainConfig] = {
    "fast": TrainConfig(beta1=0.8, beta2=0.99),
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


def default_recipe(model: str) -> str:
    """The recipe a model trains with when none is named: its preset's own, else "fast"."""
    return PRESETS[model].recipe if model in PRESETS else "fast"


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


# The seeds a run takes, from `convlens train --seed`, the page's job request and the
# notebook alike: 31 bits, what every generator seeded from it accepts.
MAX_SEED = 2**31 - 1


def check_seed(seed: int) -> None:
    """Refuse a seed outside 0..MAX_SEED in one sentence (the one rule for every caller)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConvlensError(
            f"the seed must be a whole number from 0 to {MAX_SEED:,}, like 0 or 42; got {seed!r}."
        )


def _validate(config: TrainConfig) -> None:
    check_seed(config.seed)
    if config.epochs < 1:
        raise ConvlensError(f"epochs must be at least 1, not {config.epochs}.")
    if config.batch_size < 1:
        raise ConvlensError(f"batch size must be at least 1, not {config.batch_size}.")
    if not config.learning_rate > 0:
        raise ConvlensError(f"learning rate must be positive, not {config.learning_rate}.")
    if config.schedule not in ("onecycle", "constant"):
        raise ConvlensError(f"unknown schedule {config.schedule!r}; use onecycle or constant.")
    for name, beta in (("beta1", config.beta1), ("beta2", config.beta2)):
        if not 0 <= beta < 1:
            raise ConvlensError(f"Adam's {name} must be in [0, 1), like 0.9; got {beta}.")
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


def keep_in_epoch(config: TrainConfig, epoch: int) -> float:
    """The fraction of the images trained on in ``epoch`` (1-based): all before selecting."""
    return config.keep_fraction if epoch >= config.select_from_epoch else 1.0


def total_steps(config: TrainConfig, images: int, batch_size: int) -> int:
    """Optimiser steps in the whole run over ``images`` per epoch at ``batch_size``."""
    return sum(
        batches_per_epoch(images, batch_size, keep_in_epoch(config, epoch))
        for epoch in range(1, config.epochs + 1)
    )





def pool_size(batch_size: int, keep: float) -> int:
    """How many candidates one batch is chosen from (``batch_size`` when keeping all)."""
    return max(batch_size, round(batch_size / keep))


def batches_per_epoch(images: int, batch_size: int, keep: float) -> int:
    """How many optimiser steps one epoch over ``images`` takes when keeping ``keep``."""
    return math.ceil(images / pool_size(batch_size, keep))




PRECISIONS = ("auto", "float32", "bfloat16")


def check_precision(name: str) -> None:
    """Refuse a precision that is not auto, float32 or bfloat16, in one sentence."""
    if name not in PRECISIONS:
        raise ConvlensError(f"unknown precision {name!r}; use {', '.join(PRECISIONS)}.")
