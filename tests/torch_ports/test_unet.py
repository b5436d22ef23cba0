"""The PyTorch U-Net port (benchmarks/torch_ports/unet.py) against keras_zoo's Keras U-Net.

Forward tolerance: both sides compute in float32 from identical weights; only the summation order of the
convolutions differs (oneDNN vs torch), which moves a value by a few float32 ulps per layer. Through ~20
layers that stays near 1e-6 on outputs of order 1, so 1e-4 (relative to the output scale) catches any
layout, padding, concat-order or epsilon error (each of those moves outputs by 1e-2 or more) with margin.
"""

import pathlib

import numpy as np
import pytest

from keras_zoo.models.unet import unet
from tests.torch_ports.helpers import compare_logits_and_outputs, run_command_line

PORT = "unet"  # benchmarks/torch_ports/unet.py, the ``port`` fixture (conftest.py)
TOLERANCE = 1e-4


def compare(port, config: dict, x: np.ndarray, training: bool = False) -> tuple[float, float]:
    """Logits (``head_logits``) and output differences, Keras BN weights randomised (see helpers.py)."""
    return compare_logits_and_outputs(port, unet, config, "head_logits", x, training)


def test_reference_parameter_count(port, harness):
    assert harness.count_parameters(port.build()) == unet().count_params() == 31_031_685


@pytest.mark.parametrize(
    "config",
    [
        {"filters": 12, "batch_norm": True},  # configs/unet_isbi_cpu.yaml
        {"input_shape": (32, 32, 1), "filters": 4, "depth": 2},  # registry "tiny"
        {"input_shape": (16, 24, 3), "classes": 4, "filters": 3, "depth": 3, "batch_norm": True},
        {"input_shape": (16, 16, 1), "filters": 2, "dropout": 0.0, "bn_momentum": 0.9, "batch_norm": True},
    ],
)
def test_parameter_count_small(port, harness, config):
    assert harness.count_parameters(port.build(**config)) == unet(**config).count_params()


def test_isbi_preset_matches_config(port):
    """The port's "isbi_cpu" preset carries the architecture options of configs/unet_isbi_cpu.yaml."""
    import yaml

    recipe_path = pathlib.Path(__file__).resolve().parents[2] / "configs" / "unet_isbi_cpu.yaml"
    recipe = yaml.safe_load(recipe_path.read_text())
    preset = port.PRESETS["isbi_cpu"]
    for key in ("filters", "depth", "dropout", "batch_norm", "bn_momentum", "classes"):
        if key in recipe:
            assert preset.get(key) == recipe[key], key
    assert preset["filters"] == 12 and preset["batch_norm"] is True


@pytest.mark.parametrize(
    "config",
    [
        {"input_shape": (16, 24, 1), "filters": 4, "depth": 2},
        {"input_shape": (16, 24, 3), "filters": 4, "depth": 2, "batch_norm": True, "classes": 3},
        {"input_shape": (16, 16, 1), "filters": 2, "depth": 4, "batch_norm": True},
    ],
)
def test_forward_matches_keras(port, config):
    x = np.random.default_rng(1).random((2, *config["input_shape"]), dtype=np.float32)
    logits_diff, out_diff = compare(port, config, x)
    assert logits_diff <= TOLERANCE and out_diff <= TOLERANCE, (logits_diff, out_diff)


def test_training_mode_batch_norm_matches_keras(port):
    """Training-mode BN normalises by batch statistics with the same epsilon (dropout off: deterministic)."""
    config = {"input_shape": (16, 16, 1), "filters": 4, "depth": 2, "batch_norm": True, "dropout": 0.0}
    x = np.random.default_rng(2).random((2, 16, 16, 1), dtype=np.float32)
    logits_diff, out_diff = compare(port, config, x, training=True)
    assert logits_diff <= TOLERANCE and out_diff <= TOLERANCE, (logits_diff, out_diff)


def test_batch_norm_constants(port):
    model = port.build(input_shape=(16, 16, 1), filters=2, depth=2, batch_norm=True, bn_momentum=0.9)
    keras_model = unet(input_shape=(16, 16, 1), filters=2, depth=2, batch_norm=True, bn_momentum=0.9)
    keras_bn = keras_model.get_layer("enc1_bn1")
    bn = model.encoders[0].bn1
    assert bn.eps == pytest.approx(keras_bn.epsilon)
    assert bn.momentum == pytest.approx(1.0 - keras_bn.momentum)
    assert model.encoders[0].conv1.bias is None  # bias-free before BN, as Keras' use_bias=not batch_norm


def test_rejects_indivisible_input(port):
    with pytest.raises(ValueError, match="divisible"):
        port.build(input_shape=(20, 16, 1), depth=3)


def test_command_line_prints_one_json_line(port, capsys):
    argv = ["--batch-size", "1", "--preset", "tiny", "--steps", "1", "--warmup", "0", "--threads", "1"]
    record = run_command_line(port, capsys, argv)
    assert record["model"] == "unet" and record["input_shape"] == [[1, 32, 32]]
    assert record["parameters"] == unet(input_shape=(32, 32, 1), filters=4, depth=2).count_params()
