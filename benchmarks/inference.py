"""Predicting the 10,000 test images: convlens against a plain PyTorch eager loop.

Both use the same trained weights (copied from convlens's network into the
plain nn.Sequential, with Flatten's order converted), batch 1000, no autograd.
The results are checked equal before timing.

    flock /tmp/convlens-bench.lock python benchmarks/inference.py
"""

from __future__ import annotations

import time

import torch
from reference import lesson_model, to_tensors

from convlens.data import datasets
from convlens.model.network import build_network, images_to_tensor
from convlens.model.presets import preset
from convlens.runs.evaluate import predict_logits


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Load convlens's Keras-ordered weights into the plain NCHW model."""
    target[0].load_state_dict(source.conv2d.state_dict())
    target[3].load_state_dict(source.conv2d_1.state_dict())
    # convlens flattens (H, W, C); the plain model flattens (C, H, W).
    weight = source.dense.weight.detach().view(128, 5, 5, 64).permute(0, 3, 1, 2).reshape(128, 1600)
    target[7].load_state_dict({"weight": weight, "bias": source.dense.bias.detach()})
    target[9].load_state_dict(source.dense_1.state_dict())


@torch.no_grad()
def plain_predict(model: torch.nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def best_time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    dataset = datasets.load("fashion-mnist")
    network = build_network(preset("seed-cnn"), seed=0).eval()
    plain = lesson_model()
    copy_weights(network, plain)
    ours_x = images_to_tensor(dataset.test.images, (28, 28, 1))
    plain_x, _ = to_tensors(dataset.test.images, dataset.test.labels)
    ours = predict_logits(network, ours_x)
    theirs = plain_predict(plain, plain_x)
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
    t_plain = best_time(lambda: plain_predict(plain, plain_x))
    t_ours = best_time(lambda: predict_logits(network, ours_x))
    n = len(plain_x)
    print(f"plain PyTorch eager, batch 1000: {t_plain:.3f} s ({n / t_plain:.0f} img/s)")
    print(f"convlens predict_logits:        {t_ours:.3f} s ({n / t_ours:.0f} img/s)")
    print(f"convlens is {t_plain / t_ours:.2f}x faster")


if __name__ == "__main__":
    main()
