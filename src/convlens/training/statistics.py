"""Batch normalisation's statistics measured afresh for the network a run tests and saves.

While training, each BatchNormalization layer keeps a running mean and
variance of its input, moved 1% per step (momentum 0.99, Keras's). After a
few hundred steps those still remember the random start, and the weights'
average (averaging.py) is tested with the statistics of the trained weights,
not its own. Either way the saved network normalises with figures that do not
match its weights: the best preset tested 0.7841 after one Fashion-MNIST
epoch (469 steps) and 0.8851 with statistics measured afresh (seed 3; +0.1
to +0.4 points in epochs 2-10, about nothing once the one-cycle rate has
brought the average to the weights); a few hundred images trained for a few
epochs tested near chance.

``StatisticsRefresh`` measures them again before every test of the saved
network: one pass in float32 over a fixed sample of the training images
(mirrored as training mirrors them), the batch-norm layers in training mode
with a cumulative average (``torch.optim.swa_utils.update_bn``'s method),
every other layer in evaluation mode, no weight changed. A network without
batch normalisation (the lesson's) skips it and costs nothing.
"""

from __future__ import annotations

import math

import torch

from convlens.model.network import scale_pixels

# Images measured: after one epoch of the best preset, 256, 512, 1,024, 2,048 and 10,000
# images gave the same test accuracy to 0.05 points (0.8879-0.8888, two samples each); 512
# cost about 0.2 s in float32 on a 2-core CPU, once an epoch.
SAMPLE_IMAGES = 512
BATCH = 256


def batch_norms(network: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """The network's batch normalisation layers, in order."""
    return [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def refresh_statistics(
    network: torch.nn.Module,
    pixels: torch.Tensor,
    input_scale: float,
    mirror: torch.Tensor | None = None,
    batch_size: int = BATCH,
) -> None:
    """Set every batch-norm layer's running mean and variance from ``pixels``.

    ``pixels``: uint8 (N, C, H, W) on the network's device; ``mirror``: bool
    (N,), which of them to mirror left-right first. The averages are
    cumulative over batches of at most ``batch_size`` (momentum None during
    the pass); each layer's momentum and the network's mode are restored.
    Fewer than two images change nothing.
    """
    norms = batch_norms(network)
    if not norms or len(pixels) < 2:  # one image has no spread to measure
        return
    momenta = [norm.momentum for norm in norms]
    was_training = network.training
    network.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    try:
        # Batches of near-equal size (never one image: batch norm after Dense refuses it).
        for index in torch.arange(len(pixels)).tensor_split(math.ceil(len(pixels) / batch_size)):
            x = scale_pixels(pixels[index.to(pixels.device)], input_scale)
            if mirror is not None:
                x = torch.where(mirror[index.to(mirror.device)][:, None, None, None], x.flip(3), x)
            network(x)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        network.train(was_training)


class StatisticsRefresh:
    """A run's fixed sample of training images, and the refresh of a network from it."""

    def __init__(
        self, train_pixels: torch.Tensor, input_scale: float, mirrors: bool, seed: int
    ) -> None:
        # Its own generator: the run's data order (and a resumed run's) stays as it was.
        generator = torch.Generator().manual_seed(seed)
        count = min(SAMPLE_IMAGES, len(train_pixels))
        chosen = torch.randperm(len(train_pixels), generator=generator)[:count]
        mirror = torch.rand(count, generator=generator) < 0.5 if mirrors else None
        device = train_pixels.device
        self.pixels = train_pixels[chosen.to(device)]
        self.mirror = None if mirror is None else mirror.to(device)
        self.input_scale = input_scale

    def __call__(self, network: torch.nn.Module) -> None:
        """Measure ``network``'s batch-norm statistics afresh from the sample."""
        refresh_statistics(network, self.pixels, self.input_scale, self.mirror)
