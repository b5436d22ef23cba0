"""The PyTorch U-Net port (benchmarks/torch_ports/unet.py) against keras_zoo's Keras U-Net.

Forward tolerance: both sides compute in float32 from identical weights; only the summation order of the
convolutions differs (oneDNN vs torch), which moves a value by a few float32 ulps per layer. Through ~20
layers that stays near 1e-6 on outputs of order 1, so 1e-4 (relative to the output scale) catches any
layout, padding, concat-order or epsilon error (each of those moves outputs by 1e-2 or more) with margin.
"""

import json
import pathlib

import keras
import numpy as np
import pytest

from keras_zoo.models.unet import unet

TOLERANCE = 1e-4


@pytest.fixture
def port(load_port):
    import torch

    torch.set_num_threads(1)
    return load_port("unet")


def randomise_batch_norm(model: keras.Model, seed: int = 0) -> None:
    """Gives every BN layer non-trivial gamma, beta and moving statistics, so the copy of each is checked."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.1, n).astype("float32"))
            layer.moving_mean.assign(rng.normal(0.0, 0.1, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))


def compare(port, config: dict, x: np.ndarray, training: bool = False) -> tuple[float, float]:
    """Builds both models at ``config`` and copies the weights.

    Returns:
        max |keras - torch| of the logits (relative to their scale, at least 1) and of the outputs.
    """
    import torch

    keras.utils.set_random_seed(0)
    keras_model = unet(**config)
    randomise_batch_norm(keras_model)
    keras_logits_model = keras.Model(keras_model.input, keras_model.get_layer("head_logits").output)
    torch_model = port.build(**config)
    port.copy_keras_weights(keras_model, torch_model)
    torch_model.train(training)
    with torch.no_grad():
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        torch_logits = torch_model.logits(xt).permute(0, 2, 3, 1).numpy()
        torch_out = torch_model(xt).permute(0, 2, 3, 1).numpy()
    keras_logits = keras.ops.convert_to_numpy(keras_logits_model(x, training=training))
    keras_out = keras.ops.convert_to_numpy(keras_model(x, training=training))
    assert torch_out.shape == keras_out.shape
    assert keras_out.std() > 1e-3  # not saturated: the comparison means something
    scale = max(1.0, float(np.abs(keras_logits).max()))
    logits_diff = float(np.abs(keras_logits - torch_logits).max()) / scale
    return logits_diff, float(np.abs(keras_out - torch_out).max())


def test_reference_parameter_count(port):
    from harness import count_parameters

    assert count_parameters(port.build()) == unet().count_params() == 31_031_685


@pytest.mark.parametrize(
    "config",
    [
        {"filters": 12, "batch_norm": True},  # configs/unet_isbi_cpu.yaml
        {"input_shape": (32, 32, 1), "filters": 4, "depth": 2},  # registry "tiny"
        {"input_shape": (16, 24, 3), "classes": 4, "filters": 3, "depth": 3, "batch_norm": True},
        {"input_shape": (16, 16, 1), "filters": 2, "dropout": 0.0, "bn_momentum": 0.9, "batch_norm": True},
    ],
)
def test_parameter_count_small(port, config):
    from harness import count_parameters

    assert count_parameters(port.build(**config)) == unet(**config).count_params()


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
    port.main(["--batch-size", "1", "--preset", "tiny", "--steps", "1", "--warmup", "0", "--threads", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["model"] == "unet" and record["input_shape"] == [[1, 32, 32]]
    assert record["parameters"] == unet(input_shape=(32, 32, 1), filters=4, depth=2).count_params()
