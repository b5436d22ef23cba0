"""The PyTorch DeepLabv3+ port (benchmarks/torch_ports/deeplab.py) against keras_zoo's ``deeplabv3plus``.

Forward tolerance: the port must agree with Keras to ``RTOL = 1e-5`` of the output's largest magnitude. Both
run the same float32 arithmetic in a different order (oneDNN vs ATen kernels), which leaves ~1e-7..1e-6
relative; a real layer difference is far larger (e.g. ``align_corners=True`` in the decoder resize moves the
output by ~1e-2 relative with the weights used here). The weights are re-drawn before the comparison
(LeCun-normal kernels, random batch-norm statistics) because the Keras initialisers (logits stddev 0.01,
unit BN statistics) leave the output almost constant and hide such differences.

Training mode (batch statistics) gets ``RTOL_TRAIN = 1e-4``: normalising by the statistics of a batch of two
(the image-pooling BN sees two values per channel) amplifies the same rounding to ~3e-5. It is rounding only:
with Keras and the port both in float64 the two agree to ~1e-14 up to the ASPP projection and to ~4e-7 at the
output, the rest being ``tf.image.resize``, which computes in float32 whatever the input dtype.
"""

import keras
import numpy as np
import pytest

from keras_zoo.models.deeplab import deeplabv3plus
from tests.torch_ports.helpers import run_command_line

PORT = "deeplab"  # benchmarks/torch_ports/deeplab.py, the ``port`` fixture (conftest.py)

TINY = {"backbone": "xception41", "width": 1 / 16, "middle_units": 1}
RTOL = 1e-5
RTOL_TRAIN = 1e-4


def _randomize(model: keras.Model, seed: int = 0) -> None:
    """LeCun-normal kernels, small biases and random BN statistics, so every branch shows in the output."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            gamma, beta = rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n)
            mean, variance = rng.normal(0, 0.2, n), rng.uniform(0.5, 1.5, n)
            layer.set_weights([s.astype("float32") for s in (gamma, beta, mean, variance)])
        elif layer.weights:
            weights = []
            for w in layer.get_weights():
                if w.ndim == 4:  # (kh, kw, in, out) or depthwise (kh, kw, channels, 1)
                    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
                    fan_in = w.shape[0] * w.shape[1] * (1 if depthwise else w.shape[2])
                    weights.append(rng.normal(0, np.sqrt(1 / fan_in), w.shape))
                else:
                    weights.append(rng.normal(0, 0.1, w.shape))
            layer.set_weights([w.astype("float32") for w in weights])


def _compare(port, config: dict, size: tuple[int, int], batch: int = 1, training: bool = False) -> float:
    """Both models at ``config`` on input (batch, *size, 3): max |difference| / max |Keras output|."""
    import torch

    torch.set_num_threads(1)
    keras.utils.set_random_seed(0)
    keras_model = deeplabv3plus(input_shape=(*size, 3), **config)
    _randomize(keras_model)
    torch_model = port.build(input_shape=(*size, 3), **config)
    port.copy_keras_weights(keras_model, torch_model)
    torch_model.train(training)
    x = np.random.default_rng(1).uniform(-1, 1, (batch, *size, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras_model(x, training=training))
    with torch.no_grad():
        got = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def test_parameter_count_reference(port, harness):
    keras_model = deeplabv3plus()  # 513x513x3, 21 classes, OS16, xception65
    assert harness.count_parameters(port.build()) == keras_model.count_params() == 41_258_213


@pytest.mark.parametrize(
    "config",
    [
        {"input_shape": (33, 33, 3), **TINY},
        {"input_shape": (33, 33, 3), **TINY, "output_stride": 8, "classes": 5},
        {"input_shape": (40, 34, 3), "backbone": "xception71", "width": 1 / 16, "middle_units": 2},
        {
            "input_shape": (33, 33, 3),
            "backbone": "xception65",
            "width": 1 / 8,
            "output_stride": 32,
            "atrous_rates": (2, 3),
        },
    ],
)
def test_parameter_count_small(port, harness, config):
    assert harness.count_parameters(port.build(**config)) == deeplabv3plus(**config).count_params()


@pytest.mark.parametrize(
    "config, size",
    [
        (TINY, (33, 33)),
        (TINY, (45, 37)),  # odd, non-square: fixed padding and resizes on uneven grids
        ({**TINY, "output_stride": 8, "classes": 5}, (33, 33)),
        ({"backbone": "xception71", "width": 1 / 16, "middle_units": 2}, (34, 40)),
        (
            {
                "backbone": "xception65",
                "width": 1 / 8,
                "middle_units": 1,
                "output_stride": 32,
                "classifier_activation": "softmax",
            },
            (50, 50),
        ),
    ],
)
def test_forward_matches_keras_small(port, config, size):
    assert _compare(port, config, size) <= RTOL


def test_forward_matches_keras_reference_architecture(port):
    """The full xception65 / OS16 / 21-class network at a 65x65 input, batch 1."""
    assert _compare(port, {}, (65, 65)) <= RTOL


def test_training_mode_matches_keras(port):
    """Batch statistics in every BN (what the benchmark times); dropout off to be deterministic."""
    assert _compare(port, {**TINY, "dropout": 0.0}, (33, 33), batch=2, training=True) <= RTOL_TRAIN


def test_cli_prints_one_json_record(port, capsys):
    args = (
        "--batch-size 2 --input-size 33 33 --backbone xception41 --width 0.0625 --middle-units 1 --steps 1 "
        "--warmup 0 --threads 1"
    ).split()
    record = run_command_line(port, capsys, args)
    assert record["model"] == "deeplabv3plus"
    assert record["input_shape"] == [[3, 33, 33]] and record["batch"] == 2
    assert record["parameters"] == deeplabv3plus(input_shape=(33, 33, 3), **TINY).count_params()
