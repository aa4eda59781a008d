"""Models in memory: convlens.from_torch (nn.Sequential chains) and convlens.from_keras.

The oracles are the frameworks themselves: a torch module in eval mode and
Keras's own predict, on the same inputs, to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from keras_models import lesson_cnn, randomize
from synthetic import pattern_dataset, write_idx_dataset
from torch import nn

import convlens
from convlens.errors import ConvlensError
from convlens.interop.importing import build_imported
from convlens.interop.keras_model import read_keras_model
from convlens.interop.torch_model import read_torch_module

ACTIVATIONS = [
    nn.ReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.ReLU6,
    nn.Softplus,
    nn.Mish,
]


def randomise_statistics(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """BatchNorm's running statistics and affine weights random, so an order mix-up shows."""
    for child in module.modules():
        if isinstance(child, (nn.BatchNorm2d, nn.BatchNorm1d)):
            size = child.num_features
            child.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            child.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            if child.affine:
                child.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
                child.bias.data.copy_(torch.rand(size, generator=generator) - 0.5)
    return module.eval()


def random_chain(seed: int) -> tuple[nn.Sequential, tuple[int, int, int]]:
    """A random CNN chain: convolutions (paddings, strides), pools, norms, activations, a head."""
    rng = np.random.default_rng(seed)
    channels, size = int(rng.choice([1, 3])), int(rng.choice([16, 20, 28]))
    shape = (channels, size, size)
    layers: list[nn.Module] = []
    for _ in range(int(rng.integers(1, 4))):
        size = nn.Sequential(*layers).eval()(torch.zeros(1, *shape)).shape[-1] if layers else size
        out = int(rng.integers(2, 9))
        kernel = int(rng.choice([k for k in (1, 3, 5) if k <= size]))
        padding = rng.choice(["0", "same", "k//2", "1"])
        stride = 1 if padding == "same" else int(rng.choice([1, 2]))
        pad = {"0": 0, "same": "same", "k//2": kernel // 2, "1": 1}[str(padding)]
        layers.append(
            nn.Conv2d(channels, out, kernel, stride=stride, padding=pad, bias=bool(rng.integers(2)))
        )
        if rng.random() < 0.5:
            layers.append(nn.BatchNorm2d(out, affine=bool(rng.integers(2))))
        activation = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
        layers.append(activation() if rng.random() < 0.8 else nn.LeakyReLU(0.1))
        channels = out
        size = nn.Sequential(*layers).eval()(torch.zeros(1, *shape)).shape[-1]
        if size >= 4 and rng.random() < 0.7:
            two = int(rng.choice([1, 2]))
            layers.append(nn.MaxPool2d(2) if rng.random() < 0.5 else nn.AvgPool2d(2, stride=two))
        if rng.random() < 0.3:
            layers.append(nn.Dropout2d(0.2))
    if rng.random() < 0.3:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        features = channels
    else:
        probe = nn.Sequential(*layers).eval()(torch.zeros(1, *shape))
        layers.append(nn.Flatten())
        features = int(probe.numel())
    hidden = int(rng.integers(4, 17))
    head = [nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.3)]
    if rng.random() < 0.5:
        head.append(nn.BatchNorm1d(hidden))
    head.append(nn.Linear(hidden, 5))
    if rng.random() < 0.5:
        head.append(nn.Softmax(dim=1))
    module = nn.Sequential(nn.Sequential(*layers), nn.Sequential(*head))
    return module, shape


@pytest.mark.parametrize("seed", range(12))
def test_from_torch_of_random_chains_matches_the_module(seed):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module, shape = random_chain(seed)
    randomise_statistics(module, generator)
    network = build_imported(read_torch_module(module, shape))
    x = torch.rand(6, *shape, generator=generator)
    with torch.no_grad():
        expected = module(x).numpy()
        got = network.probabilities(x).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


class ResidualBlock(nn.Module):
    """A residual block: x + conv(x), a branch no chain holds."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


def test_from_torch_refuses_a_residual_block_naming_it():
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), ResidualBlock(4), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)
    )
    with pytest.raises(ConvlensError) as caught:
        read_torch_module(module, (1, 28, 28))
    message = str(caught.value)
    assert "module '2' (ResidualBlock)" in message and "residual block" in message
    assert message.count(".") >= 1 and "\n" not in message


@pytest.mark.parametrize(
    ("module", "shape", "words"),
    [
        (ResidualBlock(1), (1, 28, 28), "ResidualBlock is a module of its own"),
        (nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2)), (1, 28, 28), "grouped or dilated"),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), (28, 28, 3), "give (3, 28, 28)"),
        (nn.Sequential(nn.Linear(4, 2)), (1, 28, 28), "flatten it first"),
        (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), (1, 28, 28), "ceil_mode=True"),
        ("not a module", (1, 28, 28), "not a str"),
    ],
)
def test_from_torch_refuses_what_it_cannot_read_in_one_sentence(module, shape, words):
    with pytest.raises(ConvlensError, match=None) as caught:
        read_torch_module(module, shape)
    assert words in str(caught.value)


def test_from_torch_makes_a_run_that_predicts_what_the_module_predicts(tmp_path):
    torch.manual_seed(3)
    module = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 10),
    ).eval()
    data = write_idx_dataset(tmp_path / "data", pattern_dataset(20, 40))
    run = convlens.from_torch(
        module, (1, 28, 28), dataset="mnist", data_dir=data, out=tmp_path / "torch-run"
    )
    assert [row.layer.keras_type for row in run.model.rows][:3] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
    ]
    assert (
        run.model.rows[0].layer.padding == "same" and run.model.rows[0].layer.activation == "relu"
    )
    assert (run.path / "report.html").is_file() and "test_accuracy" in run.metrics
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    with torch.no_grad():
        expected = module(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_allclose(run.predict(images), expected, atol=1e-5, rtol=1e-5)


def test_from_keras_reads_a_model_in_memory_as_keras_predicts_it(tmp_path):
    model = randomize(lesson_cnn(), seed=5)
    imported = read_keras_model(model)
    assert imported.model.total_params == model.count_params() == 243_786
    assert imported.source["format"] == "keras-in-memory"
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype("float32")
    expected = np.asarray(model.predict(x, verbose=0))
    got = build_imported(imported).probabilities(torch.from_numpy(x).permute(0, 3, 1, 2))
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-5, rtol=1e-5)
    run = convlens.from_keras(model, classes=[str(i) for i in range(10)], out=tmp_path / "k")
    assert run.model.total_params == 243_786 and run.metrics["imported_from"]["backend"] == "torch"


def test_from_keras_refuses_a_branch_and_what_is_not_a_keras_model():
    import keras  # the oracle's own framework (keras_models set its backend)

    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    b = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    merged = keras.layers.Add()([a, b])
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(merged))
    with pytest.raises(ConvlensError, match="single-chain|branch|merges"):
        read_keras_model(keras.Model(inputs, outputs))
    with pytest.raises(ConvlensError, match="not a Sequential|takes a Keras model"):
        read_keras_model(nn.Linear(2, 2))
