"""The PyTorch AmoebaNet-D port (benchmarks/torch_ports/amoebanet.py) matches keras_zoo's model.

Parameter counts at the reference and small configurations, outputs at small configurations with the Keras
weights copied in (inference mode), the 'same' padding layers against Keras, drop-path and the command line.
"""

import keras
import numpy as np
import pytest

from keras_zoo.models.amoebanet import amoebanet
from tests.helpers import tf_same_padding
from tests.torch_ports.helpers import randomise_batch_norm, run_command_line

PORT = "amoebanet"  # benchmarks/torch_ports/amoebanet.py, the ``port`` fixture (conftest.py)

TINY = {"input_shape": (32, 32, 3), "classes": 10, "num_cells": 3, "filters": 16, "stem_filters": 8}
# Non-square, odd and even sizes down the network, auxiliary head (needs a 5x5 map) and drop-path layers.
AUX = {
    "input_shape": (96, 80, 3),
    "classes": 5,
    "num_cells": 3,
    "filters": 8,
    "stem_filters": 4,
    "aux_head": True,
    "drop_path_keep_prob": 0.8,
}
# float32 differences (summation order of convolutions, ~100 layers deep) relative to the output scale;
# a real mismatch (padding, pooling divisor, concatenation order) gives differences of order 1e-1.
RELATIVE_TOLERANCE = 1e-4


def test_parameter_count_reference(port, harness):
    keras_model = amoebanet()
    assert keras_model.count_params() == 46_181_769  # 46,099,177 trainable + BN statistics, 1001 classes
    assert harness.count_parameters(port.build()) == keras_model.count_params()


@pytest.mark.parametrize("config", [TINY, AUX], ids=["tiny", "aux_drop_path"])
def test_parameter_count_small(port, harness, config):
    assert harness.count_parameters(port.build(**config)) == amoebanet(**config).count_params()


@pytest.mark.parametrize("config", [TINY, AUX], ids=["tiny", "aux_drop_path"])
def test_forward_matches_keras(port, config):
    import torch

    keras.utils.set_random_seed(0)
    keras_model = amoebanet(**config)
    randomise_batch_norm(keras_model, variance=(0.5, 1.5))
    torch_model = port.build(**config).eval()
    port.copy_keras_weights(keras_model, torch_model)

    x = np.random.default_rng(1).random((2, *config["input_shape"]), dtype=np.float32)
    expected = keras_model(x, training=False)
    expected = expected if isinstance(expected, list) else [expected]
    with torch.no_grad():
        actual = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected) == (2 if config.get("aux_head") else 1)
    for keras_out, torch_out in zip(expected, actual):
        keras_out, torch_out = keras.ops.convert_to_numpy(keras_out), torch_out.numpy()
        assert torch_out.shape == keras_out.shape
        scale = np.abs(keras_out).max()
        assert np.abs(torch_out - keras_out).max() <= RELATIVE_TOLERANCE * scale


def same_average_pool(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """TensorFlow's "same" average pooling of x (1, h, w, c), written out: the mean of the input pixels in
    each window, the padding not counted. (Keras 3.15's torch backend counts repeated edge pixels where the
    padding is uneven, keras-team/keras#23233, so its layer is no reference under torch.)"""
    _, h, w, _ = x.shape
    out_h, out_w = -(-h // stride), -(-w // stride)
    (top, _), (left, _) = tf_same_padding(h, k, stride), tf_same_padding(w, k, stride)
    y = np.empty((1, out_h, out_w, x.shape[3]), np.float32)
    for i in range(out_h):
        for j in range(out_w):
            r, c = i * stride - top, j * stride - left
            y[0, i, j] = x[0, max(r, 0) : r + k, max(c, 0) : c + k].mean(axis=(0, 1))
    return y


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_same_padding_layers_match_keras(port, size, stride):
    """'same' convolutions and pooling with TensorFlow's split, including the asymmetric cases."""
    import torch

    x = np.random.default_rng(2).normal(size=(1, size, size + 1, 3)).astype(np.float32)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

    def compare(keras_layer, torch_layer):
        expected = keras.ops.convert_to_numpy(keras_layer(x)).transpose(0, 3, 1, 2)
        with torch.no_grad():
            actual = torch_layer(xt).numpy()
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)

    for k in (2, 3):
        max_pool = keras.layers.MaxPooling2D(k, strides=stride, padding="same")
        compare(max_pool, port.SamePool2d("max", k, stride))
        compare(lambda x, k=k: same_average_pool(x, k, stride), port.SamePool2d("avg", k, stride))
    for kernel, strides in (((3, 3), (stride, stride)), ((1, 7), (1, stride)), ((7, 1), (stride, 1))):
        conv = keras.layers.Conv2D(4, kernel, strides=strides, padding="same", use_bias=False)
        conv.build(x.shape)
        torch_conv = port.Conv2d(3, 4, kernel, name="c", stride=strides)
        with torch.no_grad():
            kernel = keras.ops.convert_to_numpy(conv.kernel)
            torch_conv.weight.copy_(torch.from_numpy(kernel).permute(3, 2, 0, 1))
        compare(conv, torch_conv)


def test_drop_path(port):
    import torch

    layer = port.DropPath(0.5, name="d")
    x = torch.ones(64, 2, 3, 3)
    layer.train()
    assert torch.equal(layer(x), x)  # progress 0: keep probability 1, as the Keras layer before scheduling
    with torch.no_grad():
        layer.progress.fill_(1.0)
    y = layer(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(per_sample == per_sample[:, :1])  # whole samples kept (x / 0.5) or dropped
    assert 0 < (per_sample[:, 0] == 0).sum() < 64
    layer.eval()
    assert torch.equal(layer(x), x)


def test_command_line_prints_record(port, capsys):
    argv = (
        ["--batch-size", "2", "--steps", "1", "--warmup", "0", "--threads", "1"]
        + ["--input-shape", "32", "32", "3", "--classes", "10", "--num-cells", "3"]
        + ["--filters", "8", "--stem-filters", "4"]
    )
    record = run_command_line(port, capsys, argv)
    assert record["model"] == "amoebanet"
    assert record["batch"] == 2 and record["input_shape"] == [[3, 32, 32]]
    assert record["step_time_ms"] > 0
