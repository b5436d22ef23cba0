"""Reconstruction metrics against scikit-image and NumPy."""

import keras
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from keras_zoo.metrics.reconstruction import NMSE, PSNR, SSIM, complex_psnr, nmse, ssim

pytestmark = pytest.mark.backend_agnostic


def pair(rng, shape):
    reference = rng.random(shape) * np.exp(1j * rng.random(shape))
    return reference, reference + 0.05 * (rng.normal(size=shape) + 1j * rng.normal(size=shape))


def channels(z):
    return np.stack([z.real, z.imag], axis=-1).astype("float32")


def test_numpy_metrics_match_definitions_and_scikit_image():
    reference, reconstruction = pair(np.random.default_rng(0), (20, 24))
    expected = 10 * np.log10(np.abs(reference).max() ** 2 / np.mean(np.abs(reference - reconstruction) ** 2))
    assert complex_psnr(reference, reconstruction) == pytest.approx(expected)
    magnitude = np.abs(reference)
    noisy = np.abs(reconstruction)
    assert complex_psnr(magnitude, noisy) == pytest.approx(
        peak_signal_noise_ratio(magnitude, noisy, data_range=magnitude.max())
    )
    assert complex_psnr(magnitude, noisy, peak="normalized") == pytest.approx(
        peak_signal_noise_ratio(magnitude, noisy, data_range=1.0)
    )
    assert nmse(reference, reconstruction) == pytest.approx(
        np.sum(np.abs(reference - reconstruction) ** 2) / np.sum(np.abs(reference) ** 2)
    )
    assert ssim(reference, reconstruction) == pytest.approx(
        structural_similarity(magnitude, noisy, data_range=magnitude.max())
    )


def test_keras_metrics_average_per_image_values_over_batches():
    rng = np.random.default_rng(1)
    references, reconstructions = pair(rng, (3, 20, 24))
    metrics = {"psnr": PSNR(), "ssim": SSIM(), "nmse": NMSE()}
    for start, stop in ((0, 2), (2, 3)):  # two update calls
        for metric in metrics.values():
            metric.update_state(channels(references[start:stop]), channels(reconstructions[start:stop]))
    expected = {
        "psnr": np.mean([complex_psnr(r, x) for r, x in zip(references, reconstructions)]),
        "ssim": np.mean(
            [
                structural_similarity(np.abs(r), np.abs(x), data_range=np.abs(r).max())
                for r, x in zip(references, reconstructions)
            ]
        ),
        "nmse": np.mean([nmse(r, x) for r, x in zip(references, reconstructions)]),
    }
    for name, metric in metrics.items():
        assert float(keras.ops.convert_to_numpy(metric.result())) == pytest.approx(
            expected[name], rel=1e-4
        ), name
        assert type(metric).from_config(metric.get_config()).name == name


def test_keras_ssim_of_dynamic_sequences_is_the_mean_over_frames():
    references, reconstructions = pair(np.random.default_rng(2), (1, 3, 16, 16))
    metric = SSIM()
    metric.update_state(channels(references), channels(reconstructions))
    expected = np.mean([ssim(r, x) for r, x in zip(references[0], reconstructions[0])])
    assert float(keras.ops.convert_to_numpy(metric.result())) == pytest.approx(expected, rel=1e-4)
