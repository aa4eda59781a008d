"""Recipe experiments: one training run, several ways to evaluate it after every epoch.

Trains a preset with a recipe (optionally with flips in training, or SGD with
Nesterov momentum and weight decay instead of Adam) and, after each epoch,
prints the test accuracy of the last weights and of exponential moving
averages (EMA) of the weights with several decays, each also with flip
test-time augmentation when --flip is given. One run answers "does EMA or
test-time flipping help this recipe?" without training once per variant;
--label-smoothing and --schedule change the recipe itself (ablations).
Wall times include the extra evaluations; read the accuracies.

    flock /tmp/convlens-bench.lock python benchmarks/recipe_variants.py --model best --flip
    flock /tmp/convlens-bench.lock python benchmarks/recipe_variants.py --model seed-cnn

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from convlens.data import datasets
from convlens.model.network import build_network, images_to_tensor
from convlens.model.presets import preset
from convlens.runs.evaluate import evaluate_tensors
from convlens.training.averaging import WeightAverage
from convlens.training.recipes import TrainConfig, default_recipe, recipe_config
from convlens.training.train import lr_at


def optimizer_for(network: torch.nn.Module, args: argparse.Namespace, lr: float):
    """Adam (the recipes'), AdamW when --weight-decay is given, or Nesterov SGD with --sgd."""
    if args.sgd:
        return torch.optim.SGD(
            network.parameters(), lr=lr, momentum=args.sgd, nesterov=True,
            weight_decay=args.weight_decay,
        )  # fmt: skip
    if args.weight_decay:
        return torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=args.weight_decay)
    return torch.optim.Adam(network.parameters(), lr=lr)


def accuracies(named: dict[str, torch.nn.Module], test_x, test_y, flip: bool) -> str:
    """One line: each network's test accuracy, and with flip TTA when ``flip``."""
    cells = []
    for name, network in named.items():
        cell = f"{name} {evaluate_tensors(network, test_x, test_y, 10).accuracy:.4f}"
        if flip:
            cell += f"/tta {evaluate_tensors(network, test_x, test_y, 10, flip=True).accuracy:.4f}"
        cells.append(cell)
    return " | ".join(cells)


def epoch_batches(
    network: torch.nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    keep: float,
    pool: int,
    last_loss: torch.Tensor | None,
):
    """Index tensors of the batches to train on, in ``order``.

    Selective backprop when --keep < 1: each pool of candidates keeps its
    highest-loss fraction, scored now (a no-grad forward pass) or, with
    --stale, by each image's loss when it was last trained on.
    """
    if keep >= 1.0:
        yield from order.split(batch_size)
        return
    pool = pool or round(batch_size / keep)
    for candidates in order.split(pool):
        if last_loss is not None:
            losses = last_loss[candidates]
        else:
            with torch.no_grad():
                logits = network(train_x[candidates])
                losses = F.cross_entropy(logits, train_y[candidates], reduction="none")
        kept = losses.topk(round(len(candidates) * keep)).indices.sort().values
        yield from candidates[kept].split(batch_size)


def train(args: argparse.Namespace, config: TrainConfig) -> None:
    """Train once, printing every evaluation after each epoch."""
    started = time.perf_counter()
    dataset = datasets.load("fashion-mnist")
    model = preset(args.model).with_class_names(dataset.class_names)
    train_x = images_to_tensor(dataset.train.images, model.input_shape)
    train_y = torch.from_numpy(dataset.train.labels.astype(np.int64))
    test_x = images_to_tensor(dataset.test.images, model.input_shape)
    test_y = torch.from_numpy(dataset.test.labels.astype(np.int64))
    network = build_network(model, seed=config.seed)
    optimizer = optimizer_for(network, args, config.learning_rate)
    decays = [float(d) for d in args.decays.split(",") if d]
    averages = {f"ema{d}": WeightAverage(network, d) for d in decays}
    generator = torch.Generator().manual_seed(config.seed)
    total = (
        math.ceil(len(train_x) / config.batch_size) * config.epochs
    )  # onecycle: approximate with --keep
    step = 0
    last_loss = torch.full((len(train_x),), math.inf)  # each image's loss when last trained on
    for epoch in range(1, config.epochs + 1):
        network.train()
        order = torch.randperm(len(train_x), generator=generator)
        if epoch == 1 and args.first_fraction < 1:
            order = order[: round(len(order) * args.first_fraction)]
        elif epoch == 2 and args.first_fraction < 1:  # the unseen rank as an average image
            seen = torch.isfinite(last_loss)
            last_loss[~seen] = last_loss[seen].mean()
        selecting = args.keep < 1.0 and epoch >= args.select_from
        stale = last_loss if selecting and args.stale else None
        keep = args.keep if selecting else 1.0
        chosen = epoch_batches(
            network, train_x, train_y, order, config.batch_size, keep, args.pool, stale
        )
        for index in chosen:
            x, y = train_x[index], train_y[index]
            if args.flip:
                mirror = torch.rand(len(x), generator=generator) < 0.5
                x = torch.where(mirror[:, None, None, None], x.flip(3), x)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, config)
            each = F.cross_entropy(
                network(x), y, label_smoothing=config.label_smoothing, reduction="none"
            )
            last_loss[index] = each.detach()
            loss = each.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            for average in averages.values():
                average.update(network)
        named = {"last": network} | {name: a.network for name, a in averages.items()}
        line = accuracies(named, test_x, test_y, args.flip)
        print(f"epoch {epoch} ({time.perf_counter() - started:.0f} s) | {line}", flush=True)


def main() -> None:
    """Parse the variant and run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="seed-cnn")
    parser.add_argument("--recipe", help="default: the model's own (fast, or best for best)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--schedule", choices=("onecycle", "constant"))
    parser.add_argument("--flip", action="store_true", help="flips in training, flip TTA too")
    parser.add_argument("--decays", default="0.99,0.995,0.998,0.999", help="EMA decays")
    parser.add_argument("--sgd", type=float, default=0.0, help="Nesterov SGD with this momentum")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument(
        "--keep", type=float, default=1.0,
        help="selective backprop: train on this fraction of each chunk, the highest-loss images",
    )  # fmt: skip
    parser.add_argument("--select-from", type=int, default=2, help="first epoch that selects")
    parser.add_argument(
        "--first-fraction", type=float, default=1.0,
        help="epoch 1 trains on this fraction only; the rest then rank at the mean loss",
    )  # fmt: skip
    parser.add_argument("--pool", type=int, default=0, help="candidates scored at once")
    parser.add_argument("--stale", action="store_true", help="select by last trained-on loss")
    args = parser.parse_args()
    config = recipe_config(
        args.recipe or default_recipe(args.model),
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        label_smoothing=args.label_smoothing,
        schedule=args.schedule,
    )
    print(config, flush=True)
    train(args, config)


if __name__ == "__main__":
    main()
