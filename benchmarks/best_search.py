"""Search for a best preset: accuracy per epoch of model and recipe variants, on any device.

Accuracy after N epochs does not depend on the device, so this script can run
on a GPU to find which variants are worth timing on the CPU (the budget of the
best preset is CPU wall time: `convlens train --model best`). Each variant is
one training run of a model (a preset, or one of VARIANTS below) with the
best recipe's optimiser (Adam, one-cycle, label smoothing 0.1, EMA 0.99) and
optional augmentation: horizontal flips, random shifts of up to S pixels
(zero padding), cutout of a C x C square. After each epoch it prints the EMA
weights' test accuracy, and with flip test-time augmentation. It also prints
each model's multiply-adds per image, the CPU cost's main term.

    python benchmarks/best_search.py --variants best:9,best:15:flip,wide:12:flip:cut8

A variant is MODEL:EPOCHS[:flip][:shiftS][:cutC][:bB][:lrR]. Results are
recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from convlens.data import datasets
from convlens.model.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from convlens.model.network import build_network, images_to_tensor
from convlens.model.presets import preset
from convlens.model.sequential import Sequential
from convlens.runs.evaluate import evaluate_tensors
from convlens.training.averaging import WeightAverage
from convlens.training.recipes import RECIPES
from convlens.training.train import lr_at


def _bn_conv(filters: int, **kw) -> list:
    return [Conv2D(filters, (3, 3), activation="relu", padding="same", **kw), BatchNormalization()]


VARIANTS = {
    # two convolutions per stage, as VGG: 32-32 at 28x28, 64-64 at 14x14, 128 at 7x7
    "vgg": [
        *_bn_conv(32, input_shape=(28, 28, 1)),
        *_bn_conv(32),
        MaxPooling2D(2, 2),
        *_bn_conv(64),
        *_bn_conv(64),
        MaxPooling2D(2, 2),
        *_bn_conv(128),
        MaxPooling2D(2, 2),
        Flatten(),
        Dropout(0.3),
        Dense(256, activation="relu"),
        Dropout(0.3),
        Dense(10, activation="softmax"),
    ],
    # the best preset with the 28x28 stage narrowed and the 14x14 stage cheaper
    "lean": [
        *_bn_conv(24, input_shape=(28, 28, 1)),
        MaxPooling2D(2, 2),
        *_bn_conv(48),
        *_bn_conv(64),
        MaxPooling2D(2, 2),
        *_bn_conv(128),
        MaxPooling2D(2, 2),
        Flatten(),
        Dropout(0.3),
        Dense(256, activation="relu"),
        Dropout(0.3),
        Dense(10, activation="softmax"),
    ],
    # the best preset at about 62% of its multiply-adds: 48 filters where it has 64, 96 for 128
    "slim": [
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        *_bn_conv(48),
        *_bn_conv(48),
        MaxPooling2D(2, 2),
        *_bn_conv(96),
        MaxPooling2D(2, 2),
        Flatten(),
        Dropout(0.3),
        Dense(256, activation="relu"),
        Dropout(0.3),
        Dense(10, activation="softmax"),
    ],
}


def model_of(name: str) -> Sequential:
    if name in VARIANTS:
        return Sequential(VARIANTS[name], name=name)
    return preset(name)


def multiply_adds(model: Sequential) -> int:
    """Forward multiply-adds per image of Conv2D and Dense layers."""
    total = 0
    for row in model.rows:
        layer = row.layer
        if isinstance(layer, Conv2D):
            h, w, c = row.output_shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw * row.input_shape[-1]
        elif isinstance(layer, Dense):
            total += row.input_shape[0] * layer.units
    return total


def augment(
    x: torch.Tensor, flip: bool, shift: int, cut: int, gen: torch.Generator
) -> torch.Tensor:
    """Flips, shifts (zero padding) and cutout of a batch (B, C, H, W), per image."""
    n, _, h, w = x.shape
    dev = x.device
    if flip:
        mirror = (torch.rand(n, generator=gen) < 0.5).to(dev)
        x = torch.where(mirror[:, None, None, None], x.flip(3), x)
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen).to(dev)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen).to(dev)
        rows = torch.arange(h, device=dev)[None, :] + dy[:, None]  # (n, h)
        cols = torch.arange(w, device=dev)[None, :] + dx[:, None]  # (n, w)
        x = padded[
            torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]
        ]
        x = x.permute(0, 3, 1, 2)
    if cut:
        cy = torch.randint(0, h, (n,), generator=gen).to(dev)
        cx = torch.randint(0, w, (n,), generator=gen).to(dev)
        ys = torch.arange(h, device=dev)[None, :, None]
        xs = torch.arange(w, device=dev)[None, None, :]
        inside = ((ys - cy[:, None, None]).abs() <= cut // 2) & (
            (xs - cx[:, None, None]).abs() <= cut // 2
        )
        x = x * (~inside)[:, None].to(x.dtype)
    return x.contiguous(memory_format=torch.channels_last)


def parse(spec: str) -> dict:
    parts = spec.split(":")
    out = {
        "model": parts[0],
        "epochs": int(parts[1]),
        "flip": False,
        "shift": 0,
        "cut": 0,
        "batch": RECIPES["best"].batch_size,
        "lr": RECIPES["best"].learning_rate,
    }
    for part in parts[2:]:
        if part == "flip":
            out["flip"] = True
        elif part.startswith("shift"):
            out["shift"] = int(part[5:])
        elif part.startswith("cut"):
            out["cut"] = int(part[3:])
        elif part.startswith("b"):
            out["batch"] = int(part[1:])
        elif part.startswith("lr"):
            out["lr"] = float(part[2:])
    return out


def run(spec: str, dataset, device: torch.device, seed: int) -> None:
    v = parse(spec)
    model = model_of(v["model"])
    config = RECIPES["best"]
    train_x = images_to_tensor(dataset.train.images, model.input_shape).to(device)
    train_y = torch.from_numpy(dataset.train.labels).to(device)
    test_x = images_to_tensor(dataset.test.images, model.input_shape).to(device)
    test_y = torch.from_numpy(dataset.test.labels).to(device)
    network = build_network(model, seed=seed).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=v["lr"])
    average = WeightAverage(network, config.ema_decay)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(train_x) // v["batch"])
    total = steps_per_epoch * v["epochs"]
    step, started, curve = 0, time.perf_counter(), []
    tuned = config.__class__(**{**config.__dict__, "learning_rate": v["lr"]})
    for _ in range(v["epochs"]):
        network.train()
        order = torch.randperm(len(train_x), generator=gen).to(device)
        for index in order.split(v["batch"]):
            x = augment(train_x[index], v["flip"], v["shift"], v["cut"], gen)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, tuned)
            loss = F.cross_entropy(network(x), train_y[index], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            average.update(network)
            step += 1
        plain = evaluate_tensors(average.network, test_x, test_y, 10).accuracy
        tta = evaluate_tensors(average.network, test_x, test_y, 10, flip=True).accuracy
        curve.append(f"{plain:.4f}/{tta:.4f}")
    print(
        f"{spec:<28} seed {seed} {multiply_adds(model) / 1e6:5.1f} M MACs  "
        f"{model.total_params:>8,} params  {time.perf_counter() - started:6.1f} s  "
        f"final {curve[-1]}  per epoch (EMA/flip-TTA): {' '.join(curve)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", required=True, help="comma-separated variant specs")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dataset = datasets.load("fashion-mnist", args.data_dir)
    print(f"device {device}, torch {torch.__version__}", flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        for spec in args.variants.split(","):
            run(spec, dataset, device, seed)


if __name__ == "__main__":
    main()
