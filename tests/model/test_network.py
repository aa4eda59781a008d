"""The torch build agrees with the spec: parameter counts, shapes, Keras semantics."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import ConvlensError
from convlens.model.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
)
from convlens.model.network import (
    build_network,
    count_parameters,
    images_to_tensor,
    pixels_to_tensor,
    scale_pixels,
)
from convlens.model.presets import PRESETS, preset
from convlens.model.sequential import Sequential
from convlens.runs.evaluate import predict_logits


def _layer_outputs(network, x):
    outputs = []
    for module in network:
        x = module(x)
        outputs.append(x)
    return outputs


def _keras_shape(tensor):
    """(N, C, H, W) -> (H, W, C); (N, F) -> (F,)."""
    shape = tuple(tensor.shape[1:])
    return (*shape[1:], shape[0]) if len(shape) == 3 else shape


@pytest.mark.parametrize("name", list(PRESETS))
def test_torch_parameter_count_equals_the_spec(name):
    model = preset(name)
    assert count_parameters(build_network(model, seed=0)) == model.total_params


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_layer_output_has_the_summary_shape(name):
    model = preset(name)
    network = build_network(model, seed=0).eval()
    x = torch.rand(2, model.input_shape[2], *model.input_shape[:2])
    shapes = [_keras_shape(t) for t in _layer_outputs(network, x)]
    assert shapes == [row.output_shape for row in model.rows]


@st.composite
def random_models(draw):
    height, width = draw(st.integers(4, 20)), draw(st.integers(4, 20))
    channels = draw(st.sampled_from([1, 3]))
    layers, shape = [], (height, width, channels)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "max", "avg", "bn"]))
        padding = draw(st.sampled_from(["valid", "same"]))
        window = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        if kind == "conv":
            layer = Conv2D(
                draw(st.integers(1, 5)),
                window,
                strides=strides,
                padding=padding,
                use_bias=draw(st.booleans()),
            )
        elif kind == "bn":
            layer = BatchNormalization()
        else:
            cls = MaxPooling2D if kind == "max" else AveragePooling2D
            layer = cls(window, strides=strides, padding=padding)
        try:
            shape = layer.output_shape(shape)
        except ConvlensError:  # a window larger than what is left: the spec's own sentence
            continue
        layers.append(layer)
    layers += [Flatten(), Dropout(0.1), Dense(draw(st.integers(2, 6)))]
    return Sequential(layers, input_shape=(height, width, channels))


@settings(max_examples=60, deadline=None)
@given(random_models())
def test_random_models_build_with_the_spec_shapes_and_counts(model):
    network = build_network(model, seed=0).eval()
    assert count_parameters(network) == model.total_params
    x = torch.rand(2, model.input_shape[2], *model.input_shape[:2])
    shapes = [_keras_shape(t) for t in _layer_outputs(network, x)]
    assert shapes == [row.output_shape for row in model.rows]


def _numpy_same_conv(image, kernel, stride):
    """Keras 'same' convolution by hand: pad (extra at bottom/right), then correlate."""
    height, width = image.shape
    k = kernel.shape[0]
    out = math.ceil(height / stride), math.ceil(width / stride)
    pad_h = max((out[0] - 1) * stride + k - height, 0)
    pad_w = max((out[1] - 1) * stride + k - width, 0)
    padded = np.pad(image, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))
    result = np.zeros(out)
    for r in range(out[0]):
        for c in range(out[1]):
            patch = padded[r * stride : r * stride + k, c * stride : c * stride + k]
            result[r, c] = (patch * kernel).sum()
    return result


@pytest.mark.parametrize(("size", "stride", "k"), [(7, 2, 3), (8, 2, 3), (9, 3, 4), (6, 1, 4)])
def test_same_padding_puts_the_extra_row_at_the_bottom_right_like_keras(size, stride, k):
    model = Sequential(
        [Conv2D(1, k, strides=stride, padding="same", use_bias=False), Flatten(), Dense(2)],
        input_shape=(size, size, 1),
    )
    conv = build_network(model, seed=0)[0]
    image = np.random.default_rng(0).random((size, size))
    with torch.no_grad():
        got = conv(torch.tensor(image[None, None], dtype=torch.float32))[0, 0].numpy()
    kernel = conv.weight[0, 0].detach().numpy().astype(np.float64)
    np.testing.assert_allclose(got, _numpy_same_conv(image, kernel, stride), rtol=1e-5, atol=1e-5)


def test_same_average_pooling_ignores_the_padding_like_keras():
    model = Sequential(
        [AveragePooling2D(2, padding="same"), Flatten(), Dense(2)], input_shape=(3, 3, 1)
    )
    pool = build_network(model, seed=0)[0]
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    expected = torch.tensor([[2.0, 3.5], [6.5, 8.0]])  # corner windows average 1 or 2 pixels
    assert torch.allclose(pool(x)[0, 0], expected)


def test_flatten_uses_keras_row_column_channel_order():
    network = build_network(preset("seed-cnn"), seed=0)
    volume = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # (N, C, H, W)
    flat = network.flatten(volume)
    expected = volume.permute(0, 2, 3, 1).reshape(1, -1)  # (N, H*W*C) as Keras lays out NHWC
    assert torch.equal(flat, expected)


def test_glorot_uniform_weights_and_zero_biases_as_keras():
    network = build_network(preset("seed-cnn"), seed=0)
    conv = network.conv2d_1
    fan_in, fan_out = 64 * 9, 64 * 9
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert conv.weight.abs().max() <= limit
    assert conv.weight.abs().max() > 0.9 * limit
    assert torch.count_nonzero(conv.bias) == 0


def test_the_same_seed_builds_the_same_weights():
    a, b = build_network(preset("seed-cnn"), seed=7), build_network(preset("seed-cnn"), seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_images_become_normalised_channels_last_tensors():
    images = np.full((2, 28, 28, 1), 255, dtype=np.uint8)
    tensor = images_to_tensor(images, (32, 32, 1))  # LeNet-5 pads 28x28 to 32x32
    assert tensor.shape == (2, 1, 32, 32)
    assert tensor.is_contiguous(memory_format=torch.channels_last)
    assert tensor[0, 0, 2:30, 2:30].min() == 1.0 and tensor[0, 0, :2].max() == 0.0


def test_final_softmax_is_left_to_the_loss_and_given_by_probabilities():
    network = build_network(preset("seed-dnn"), seed=0).eval()
    x = torch.rand(3, 1, 28, 28)
    probs = network.probabilities(x)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))
    assert not torch.allclose(network(x).sum(dim=1), torch.ones(3))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu"])
def test_pooling_before_a_monotone_activation_changes_nothing(activation):
    model = Sequential(
        [Conv2D(4, 3, activation=activation), MaxPooling2D(2), Flatten(), Dense(3)],
        input_shape=(9, 9, 2),
    )
    network = build_network(model, seed=0)
    assert network._pool_first == {0}
    x = torch.randn(5, 2, 9, 9, requires_grad=True)
    fused = network(x)
    (grad_fused,) = torch.autograd.grad(fused.sum(), x)
    layers = list(network)
    plain = x
    for layer in layers:
        plain = layer(plain)  # each module on its own: activation, then pooling
    (grad_plain,) = torch.autograd.grad(plain.sum(), x)
    assert torch.allclose(fused, plain, atol=1e-6)
    assert torch.allclose(grad_fused, grad_plain, atol=1e-6)


def test_a_hooked_layer_runs_unfused_so_it_shows_its_own_output():
    network = build_network(preset("seed-cnn"), seed=0).eval()
    seen = {}
    network.conv2d.register_forward_hook(lambda m, i, o: seen.setdefault("conv", o))
    network(torch.rand(1, 1, 28, 28))
    assert seen["conv"].shape == (1, 64, 26, 26) and seen["conv"].min() >= 0


def test_built_and_loaded_networks_hold_kernels_in_channels_last_memory(tmp_path):
    # oneDNN keeps NHWC from layer to layer only when kernels are NHWC too; NCHW kernels
    # made a loaded run predict 2.5x slower (BENCHMARKS.md, inference).
    from convlens.model.weights import load_model, save_model

    model = preset("seed-cnn")
    save_model(tmp_path, model, build_network(model, seed=0))
    for network in (build_network(model, seed=0), load_model(tmp_path)[1]):
        for name in ("conv2d", "conv2d_1"):
            weight = getattr(network, name).weight
            assert weight.is_contiguous(memory_format=torch.channels_last), name


@pytest.mark.parametrize("scale", [1.0 / 255.0, 1.0, 0.5])
def test_pixels_scaled_batch_by_batch_equal_the_whole_split_scaled_at_once(scale):
    images = np.random.default_rng(2).integers(0, 256, (7, 28, 28, 1), dtype=np.uint8)
    pixels = pixels_to_tensor(images, (28, 28, 1))
    assert pixels.dtype == torch.uint8 and pixels.is_contiguous(memory_format=torch.channels_last)
    whole = images_to_tensor(images, (28, 28, 1), scale)
    assert torch.equal(scale_pixels(pixels[2:5], scale), whole[2:5])
    network = build_network(preset("seed-cnn"), seed=0).eval()
    network.input_scale = scale
    assert torch.equal(predict_logits(network, pixels, 3), predict_logits(network, whole, 3))


@pytest.mark.parametrize("count, batch_size", [(7, 3), (6, 3), (2, 128), (0, 3)])
def test_logits_batch_by_batch_equal_the_network_on_the_whole_split(count, batch_size):
    network = build_network(preset("seed-cnn"), seed=0).eval()
    images = torch.rand(count, 1, 28, 28)
    with torch.no_grad():
        expected = network(images)
    network.train()
    logits = predict_logits(network, images, batch_size)
    assert logits.shape == (count, 10) and network.training  # training mode given back
    assert torch.allclose(logits, expected, atol=1e-5)


def test_logits_come_to_the_host_once_not_once_a_batch(monkeypatch):
    network = build_network(preset("seed-cnn"), seed=0).eval()
    copies = []
    to_host = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda t, *a, **k: copies.append(1) or to_host(t))
    predict_logits(network, torch.rand(7, 1, 28, 28), batch_size=3)  # three batches
    assert len(copies) == 1  # on a GPU: one device-to-host copy, no sync per batch
