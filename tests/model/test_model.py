"""Sequential, presets, the summary (golden file), model files."""

import json
from pathlib import Path

import pytest
import torch

from convlens.errors import ConvlensError
from convlens.model.files import read_spec
from convlens.model.layers import Conv2D, Dense, Flatten, MaxPooling2D
from convlens.model.network import build_network
from convlens.model.presets import preset, resolve_model
from convlens.model.sequential import Sequential
from convlens.model.weights import load_model, save_model

GOLDEN = Path(__file__).parents[1] / "golden"

LESSON_SHAPES = [(26, 26, 64), (13, 13, 64), (11, 11, 64), (5, 5, 64), (1600,), (128,), (10,)]


def test_seed_cnn_matches_the_lesson():
    model = preset("seed-cnn")
    assert [row.output_shape for row in model.rows] == LESSON_SHAPES
    assert [row.params for row in model.rows] == [640, 0, 36_928, 0, 0, 204_928, 1_290]
    assert model.total_params == 243_786
    assert [row.name for row in model.rows] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
        "max_pooling2d_1",
        "flatten",
        "dense",
        "dense_1",
    ]


@pytest.mark.parametrize(
    ("name", "total"),
    [
        ("seed-cnn", 243_786),
        ("seed-dnn", 101_770),
        ("lenet5", 61_706),
        ("single-conv", 693_962),
        ("best", 428_490),  # 576 of them BatchNormalization's moving statistics, as Keras counts
    ],
)
def test_preset_totals(name, total):
    assert preset(name).total_params == total


def test_lenet5_first_layer_is_the_lessons_example():
    assert preset("lenet5").rows[0].output_shape == (28, 28, 6)


def test_python_api_with_keras_names():
    model = Sequential(
        [
            Conv2D(64, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(2, 2),
            Conv2D(64, (3, 3), activation="relu"),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(128, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    assert model.total_params == preset("seed-cnn").total_params


@pytest.mark.parametrize("name", ["seed-cnn", "seed-dnn"])
def test_summary_text_is_golden(name):
    expected = (GOLDEN / f"{name}-summary.txt").read_text(encoding="utf-8")
    assert preset(name).summary_text() + "\n" == expected


def test_summary_dict_is_keras_shaped():
    summary = preset("seed-cnn").summary_dict()
    assert summary["total_params"] == 243_786
    first = summary["layers"][0]
    assert first == {
        **first,
        "name": "conv2d",
        "type": "Conv2D",
        "output_shape": [None, 26, 26, 64],
        "params": 640,
    }
    assert summary["layers"][4]["output_shape"] == [None, 1600]
    json.dumps(summary)  # JSON-ready


def test_summary_prints(capsys):
    preset("seed-dnn").summary()
    assert "Total params: 101,770" in capsys.readouterr().out


def test_hand_written_json_is_accepted(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "input_shape": [28, 28, 1],
                "layers": [
                    {"type": "Conv2D", "filters": 64, "kernel_size": [3, 3], "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": [2, 2]},
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 10, "activation": "softmax"},
                ],
            }
        )
    )
    model = resolve_model(str(path))
    assert model.rows[1].output_shape == (13, 13, 64)
    assert model.total_params == 640 + 13 * 13 * 64 * 10 + 10


def test_config_round_trip_preserves_everything():
    model = preset("lenet5")
    again = Sequential.from_config(json.loads(json.dumps(model.config())))
    assert again.summary_dict() == model.summary_dict()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"layers": []}', "at least one layer"),
        (
            '{"input_shape": [28, 28], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}',
            "three positive integers",
        ),
        ('{"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}', "no input shape"),
        ('{"input_shape": [28, 28, 1], "layers": [{"type": "Flatten"}]}', "ends with Dense"),
        (
            '{"input_shape": [3, 3, 1], "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 5},'
            ' {"type": "Flatten"}, {"type": "Dense", "units": 2}]}',
            "conv2d (Conv2D) has a 5x5 kernel",
        ),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_model_files_are_refused(tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(ConvlensError) as caught:
        read_spec(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConvlensError, match="seed-cnn, seed-dnn, lenet5"):
        resolve_model("resnet")


def test_class_count_mismatch_is_explained():
    with pytest.raises(ConvlensError, match=r"Dense\(10\) but the dataset has 3 classes"):
        preset("seed-cnn").with_class_names(("a", "b", "c"))


def test_save_and_load_round_trip(tmp_path):
    model = preset("seed-cnn").with_class_names(tuple("abcdefghij"))
    network = build_network(model, seed=3)
    save_model(tmp_path, model, network)
    loaded_model, loaded = load_model(tmp_path)
    assert loaded_model.class_names == tuple("abcdefghij")
    for (key, a), (_, b) in zip(
        network.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), key
    assert not loaded.training


def test_weights_that_do_not_match_the_spec_are_refused(tmp_path):
    save_model(tmp_path, preset("seed-cnn"), build_network(preset("seed-cnn"), seed=0))
    spec = preset("single-conv").config()
    (tmp_path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ConvlensError, match="do not belong together"):
        load_model(tmp_path)


def test_truncated_weights_are_refused(tmp_path):
    save_model(tmp_path, preset("seed-dnn"), build_network(preset("seed-dnn"), seed=0))
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ConvlensError, match="not a valid safetensors file"):
        load_model(tmp_path)


def test_missing_weights_say_how_to_get_them(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps(preset("seed-dnn").config()))
    with pytest.raises(ConvlensError, match="convlens train"):
        load_model(tmp_path)
