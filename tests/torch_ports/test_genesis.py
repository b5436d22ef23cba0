"""The PyTorch Models Genesis port (benchmarks/torch_ports/genesis.py) against keras_zoo's Keras genesis.

Forward tolerance: both sides compute in float32 from identical weights; only the summation order of the
3D convolutions differs, a few float32 ulps per layer, near 1e-6 on outputs of order 1 after ~15 layers.
1e-4 (relative to the output scale) catches any kernel-layout, concat-order, upsampling or epsilon error
(each moves outputs by 1e-2 or more) with margin.
"""

import json

import keras
import numpy as np
import pytest

from keras_zoo.models.genesis import genesis

TOLERANCE = 1e-4


@pytest.fixture
def port(load_port):
    import torch

    torch.set_num_threads(1)
    return load_port("genesis")


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


def randomise_biases(model: keras.Model, seed: int = 1) -> None:
    """Non-zero convolution biases (Keras starts them at zero), so their copy is checked too."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            layer.bias.assign(rng.normal(0.0, 0.05, layer.bias.shape).astype("float32"))


def compare(port, config: dict, x: np.ndarray, training: bool = False) -> tuple[float, float]:
    """Builds both models at ``config`` and copies the weights.

    Returns:
        max |keras - torch| of the logits (relative to their scale, at least 1) and of the outputs.
    """
    import torch

    keras.utils.set_random_seed(0)
    keras_model = genesis(**config)
    randomise_batch_norm(keras_model)
    randomise_biases(keras_model)
    keras_logits_model = keras.Model(keras_model.input, keras_model.get_layer("head_conv").output)
    torch_model = port.build(**config)
    port.copy_keras_weights(keras_model, torch_model)
    torch_model.train(training)
    with torch.no_grad():
        xt = torch.from_numpy(x).permute(0, 4, 1, 2, 3)
        torch_logits = torch_model.logits(xt).permute(0, 2, 3, 4, 1).numpy()
        torch_out = torch_model(xt).permute(0, 2, 3, 4, 1).numpy()
    keras_logits = keras.ops.convert_to_numpy(keras_logits_model(x, training=training))
    keras_out = keras.ops.convert_to_numpy(keras_model(x, training=training))
    assert torch_out.shape == keras_out.shape
    assert keras_out.std() > 1e-3  # not saturated: the comparison means something
    scale = max(1.0, float(np.abs(keras_logits).max()))
    logits_diff = float(np.abs(keras_logits - torch_logits).max()) / scale
    return logits_diff, float(np.abs(keras_out - torch_out).max())


def test_reference_parameter_count(port):
    from harness import count_parameters

    assert count_parameters(port.build()) == genesis().count_params() == 16_324_929


@pytest.mark.parametrize(
    "config",
    [
        {"input_shape": (16, 16, 8, 1), "filters": 2, "depth": 3},  # registry "tiny"
        {"input_shape": (8, 8, 8, 2), "filters": 3, "depth": 2, "classes": 3, "batch_norm": False},
        {"input_shape": (16, 16, 16, 1), "filters": 4, "depth": 5},
    ],
)
def test_parameter_count_small(port, config):
    from harness import count_parameters

    assert count_parameters(port.build(**config)) == genesis(**config).count_params()


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
    port.main(["--batch-size", "1", "--preset", "tiny", "--steps", "1", "--warmup", "0", "--threads", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["model"] == "genesis" and record["input_shape"] == [[1, 16, 16, 8]]
    assert record["parameters"] == genesis(input_shape=(16, 16, 8, 1), filters=2, depth=3).count_params()
