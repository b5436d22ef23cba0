"""The PyTorch Models Genesis port (benchmarks/torch_ports/genesis.py) against keras_zoo's Keras genesis.

Forward tolerance: both sides compute in float32 from identical weights; only the summation order of the
3D convolutions differs, a few float32 ulps per layer, near 1e-6 on outputs of order 1 after ~15 layers.
1e-4 (relative to the output scale) catches any kernel-layout, concat-order, upsampling or epsilon error
(each moves outputs by 1e-2 or more) with margin.
"""

import keras
import numpy as np
import pytest

from keras_zoo.models.genesis import genesis
from tests.torch_ports.helpers import compare_logits_and_outputs, randomise_batch_norm, run_command_line

PORT = "genesis"  # benchmarks/torch_ports/genesis.py, the ``port`` fixture (conftest.py)
TOLERANCE = 1e-4


def randomise_biases(model: keras.Model, seed: int = 1) -> None:
    """Non-zero convolution biases (Keras starts them at zero), so their copy is checked too."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            layer.bias.assign(rng.normal(0.0, 0.05, layer.bias.shape).astype("float32"))


def compare(port, config: dict, x: np.ndarray, training: bool = False) -> tuple[float, float]:
    """Logits (``head_conv``) and output differences, Keras BN weights and biases randomised (helpers.py)."""
    randomise = (randomise_batch_norm, randomise_biases)
    return compare_logits_and_outputs(port, genesis, config, "head_conv", x, training, randomise)


def test_reference_parameter_count(port, harness):
    assert harness.count_parameters(port.build()) == genesis().count_params() == 16_324_929


@pytest.mark.parametrize(
    "config",
    [
        {"input_shape": (16, 16, 8, 1), "filters": 2, "depth": 3},  # registry "tiny"
        {"input_shape": (8, 8, 8, 2), "filters": 3, "depth": 2, "classes": 3, "batch_norm": False},
        {"input_shape": (16, 16, 16, 1), "filters": 4, "depth": 5},
    ],
)
def test_parameter_count_small(port, harness, config):
    assert harness.count_parameters(port.build(**config)) == genesis(**config).count_params()


@pytest.mark.parametrize(
    "config",
    [
        {"input_shape": (16, 8, 12, 1), "filters": 2, "depth": 3},
        {"input_shape": (8, 12, 4, 2), "filters": 3, "depth": 2, "classes": 3},
        {"input_shape": (8, 8, 8, 1), "filters": 2, "depth": 4, "batch_norm": False},
    ],
)
def test_forward_matches_keras(port, config):
    x = np.random.default_rng(1).random((2, *config["input_shape"]), dtype=np.float32)
    logits_diff, out_diff = compare(port, config, x)
    assert logits_diff <= TOLERANCE and out_diff <= TOLERANCE, (logits_diff, out_diff)


def test_training_mode_batch_norm_matches_keras(port):
    """Training-mode BN normalises by batch statistics with the same epsilon (genesis has no dropout)."""
    config = {"input_shape": (8, 8, 8, 1), "filters": 2, "depth": 3}
    x = np.random.default_rng(2).random((2, 8, 8, 8, 1), dtype=np.float32)
    logits_diff, out_diff = compare(port, config, x, training=True)
    assert logits_diff <= TOLERANCE and out_diff <= TOLERANCE, (logits_diff, out_diff)


def test_batch_norm_constants(port):
    model = port.build(input_shape=(8, 8, 8, 1), filters=2, depth=2, bn_momentum=0.9)
    keras_bn = genesis(input_shape=(8, 8, 8, 1), filters=2, depth=2, bn_momentum=0.9).get_layer("depth_0_bn")
    bn = model.blocks[0].bn
    assert bn.eps == pytest.approx(keras_bn.epsilon)
    assert bn.momentum == pytest.approx(1.0 - keras_bn.momentum)
    assert model.blocks[0].conv.bias is not None  # the reference keeps the bias before BN


def test_rejects_indivisible_input(port):
    with pytest.raises(ValueError, match="divisible"):
        port.build(input_shape=(16, 16, 12, 1), depth=4)


def test_command_line_prints_one_json_line(port, capsys):
    argv = ["--batch-size", "1", "--preset", "tiny", "--steps", "1", "--warmup", "0", "--threads", "1"]
    record = run_command_line(port, capsys, argv)
    assert record["model"] == "genesis" and record["input_shape"] == [[1, 16, 16, 8]]
    assert record["parameters"] == genesis(input_shape=(16, 16, 8, 1), filters=2, depth=3).count_params()
