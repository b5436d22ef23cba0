"""The PyTorch CascadeNet port (benchmarks/torch_ports/cascadenet.py) against keras_zoo's CascadeNet.

Forward equality uses a real undersampling problem: a random complex image, a binary mask, the masked
orthonormal uncentred k-space (``np.fft.fft2(..., norm="ortho")``, as keras_zoo.layers.fft) and the
zero-filled image. Tolerance: 1e-4 times the output's largest magnitude. Both frameworks run float32 convs
and FFTs in a different summation order (TF/oneDNN vs torch/pocketfft), so they agree to ~1e-6 relative
per layer; a few cascades of conv + FFT keep the difference well under 1e-4.
"""

import keras
import numpy as np
import pytest

from keras_zoo.models.cascadenet import ASCEND_VARIANT, cascadenet
from tests.torch_ports.helpers import randomise_batch_norm, run_command_line

PORT = "cascadenet"  # benchmarks/torch_ports/cascadenet.py, the ``port`` fixture (conftest.py)

TINY = {"n_cascades": 2, "n_convs": 3, "filters": 8}
RTOL = 1e-4


def undersampled_batch(rng: np.random.Generator, shape: tuple) -> list[np.ndarray]:
    """Complex images of ``shape`` (batch, [frames,] H, W) -> Keras [zero-filled, k-space, mask] inputs.

    Each is float32 (*shape, 2), channel 0 real and 1 imaginary; the mask is binary, both channels equal,
    with the (uncentred) k-space centre always sampled.
    """
    image = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    mask = (rng.random(shape) < 0.4).astype(np.float64)
    mask[..., 0, 0] = 1.0
    kspace = np.fft.fft2(image, norm="ortho") * mask
    zero_filled = np.fft.ifft2(kspace, norm="ortho")

    def channels(z):
        return np.stack([z.real, z.imag], axis=-1).astype("float32")

    return [channels(zero_filled), channels(kspace), np.stack([mask, mask], axis=-1).astype("float32")]


def to_torch(torch, x: np.ndarray):
    """Keras channels-last (batch, ..., 2) -> torch channels-first (batch, 2, ...)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


def compare_forward(port, torch, keras_model, torch_model, inputs: list[np.ndarray]) -> float:
    """Copies weights, runs both in inference mode; returns max |keras - torch| / max |keras|."""
    torch.set_num_threads(1)
    port.copy_keras_weights(keras_model, torch_model)
    torch_model.eval()
    expected = keras.ops.convert_to_numpy(keras_model([np.asarray(x) for x in inputs], training=False))
    with torch.no_grad():
        got = torch_model(*(to_torch(torch, x) for x in inputs)).numpy()
    got = np.moveaxis(got, 1, -1)
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def test_parameter_counts_match_keras_at_the_reference_configs(port, harness):
    assert harness.count_parameters(port.build()) == cascadenet().count_params() == 565_770  # D5-C5
    ascend_keras = cascadenet(n_cascades=5, **ASCEND_VARIANT)
    ascend = port.build(n_cascades=5, **ASCEND_VARIANT)
    assert harness.count_parameters(ascend) == ascend_keras.count_params() == 336_649  # shared, counted once
    dynamic = {"input_shape": (30, 256, 32, 2), "n_cascades": 10, "dynamic": True, "data_sharing": True}
    dynamic_count = cascadenet(**dynamic).count_params()
    assert harness.count_parameters(port.build(**dynamic)) == dynamic_count == 3_562_260  # D5-C10(S)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"n_cascades": 3, **ASCEND_VARIANT, "n_convs": 3},
        {"noise_lambda": 0.3},
        {"dynamic": True, "data_sharing": True},
        {"dynamic": True},
    ],
    ids=["2d", "ascend", "noisy-dc", "dynamic-sharing", "dynamic"],
)
def test_parameter_counts_match_keras_at_small_configs(port, harness, config):
    shape = (4, 16, 12, 2) if config.get("dynamic") else (16, 12, 2)
    full = {**TINY, **config, "input_shape": shape}
    assert harness.count_parameters(port.build(**full)) == cascadenet(**full).count_params()


def test_forward_matches_keras_2d(port):
    import torch

    config = {**TINY, "input_shape": (16, 12, 2)}
    keras_model, torch_model = cascadenet(**config), port.build(**config)
    inputs = undersampled_batch(np.random.default_rng(0), (2, 16, 12))
    assert compare_forward(port, torch, keras_model, torch_model, inputs) <= RTOL


def test_forward_matches_keras_ascend_variant(port):
    import torch

    config = {**ASCEND_VARIANT, "n_cascades": 3, "n_convs": 3, "filters": 8, "input_shape": (16, 12, 2)}
    keras_model, torch_model = cascadenet(**config), port.build(**config)
    rng = np.random.default_rng(1)
    randomise_batch_norm(keras_model, rng)
    keras_model.get_layer("dc").set_weights([np.float32(0.8)])
    inputs = undersampled_batch(rng, (2, 16, 12))
    assert compare_forward(port, torch, keras_model, torch_model, inputs) <= RTOL
    assert torch_model.dc.lambda_weight.item() == pytest.approx(0.8)


def test_forward_matches_keras_noisy_dc(port):
    import torch

    config = {**TINY, "noise_lambda": 0.3, "input_shape": (12, 16, 2)}
    keras_model, torch_model = cascadenet(**config), port.build(**config)
    inputs = undersampled_batch(np.random.default_rng(2), (2, 12, 16))
    assert compare_forward(port, torch, keras_model, torch_model, inputs) <= RTOL


def test_forward_matches_keras_dynamic_with_data_sharing(port):
    import torch

    config = {
        "n_cascades": 2,
        "n_convs": 3,
        "filters": 4,
        "input_shape": (6, 8, 12, 2),
        "dynamic": True,
        "data_sharing": True,
    }
    keras_model, torch_model = cascadenet(**config), port.build(**config)
    inputs = undersampled_batch(np.random.default_rng(3), (1, 6, 8, 12))
    assert compare_forward(port, torch, keras_model, torch_model, inputs) <= RTOL


def test_port_output_is_data_consistent(port):
    """Noise-free DC: the output's k-space equals the measurement wherever the mask samples."""
    import torch

    torch.manual_seed(0)
    torch_model = port.build(**TINY, input_shape=(16, 12, 2)).eval()
    inputs = undersampled_batch(np.random.default_rng(4), (2, 16, 12))
    image, kspace, mask = (to_torch(torch, x) for x in inputs)
    with torch.no_grad():
        out = torch_model(image, kspace, mask)
    k_out = torch.fft.fft2(torch.complex(out[:, 0], out[:, 1]), norm="ortho")
    sampled = mask[:, 0] > 0
    k0 = torch.complex(kspace[:, 0], kspace[:, 1])
    assert torch.allclose(k_out[sampled], k0[sampled], atol=1e-5)


def test_cli_prints_one_json_line(port, capsys):
    argv = (
        "--batch-size 1 --steps 1 --warmup 0 --threads 1 --size 16 16 --n-cascades 1 --n-convs 2 --filters 4"
    ).split()
    record = run_command_line(port, capsys, argv)
    assert record["model"] == "cascadenet" and record["input_shape"] == [[2, 16, 16]] * 3
