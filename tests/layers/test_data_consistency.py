"""DataConsistency and the 2-channel FFT helpers against NumPy."""

import keras
import numpy as np
import pytest

from keras_zoo.layers import DataConsistency, fft2_channels, ifft2_channels

pytestmark = pytest.mark.backend_agnostic


def to_complex(x):
    x = np.asarray(x)
    return x[..., 0] + 1j * x[..., 1]


def random_case(rng, shape=(2, 8, 6)):
    image = rng.normal(size=shape + (2,)).astype("float32")
    measured = rng.normal(size=shape + (2,)).astype("float32")
    mask = (rng.random(shape) < 0.4).astype("float32")
    return image, measured, np.stack([mask, mask], axis=-1)


def test_fft_helpers_are_orthonormal_uncentred_and_invert_each_other():
    x = np.random.default_rng(0).normal(size=(3, 8, 6, 2)).astype("float32")
    k = keras.ops.convert_to_numpy(fft2_channels(x))
    np.testing.assert_allclose(to_complex(k), np.fft.fft2(to_complex(x), norm="ortho"), atol=1e-5)
    back = keras.ops.convert_to_numpy(ifft2_channels(k))
    np.testing.assert_allclose(back, x, atol=1e-5)


def test_noise_free_dc_restores_measurement_and_keeps_unsampled_entries():
    image, measured, mask = random_case(np.random.default_rng(1))
    measured *= mask  # a real measurement is zero outside the mask
    out = keras.ops.convert_to_numpy(DataConsistency()([image, measured, mask]))
    k_out = np.fft.fft2(to_complex(out), norm="ortho")
    k_in = np.fft.fft2(to_complex(image), norm="ortho")
    sampled = mask[..., 0] > 0
    np.testing.assert_allclose(k_out[sampled], to_complex(measured)[sampled], atol=1e-5)
    np.testing.assert_allclose(k_out[~sampled], k_in[~sampled], atol=1e-5)


@pytest.mark.parametrize("form, offset", [("pytorch", 1.0), ("ascend", 0.5)])
def test_noisy_dc_matches_numpy_formula(form, offset):
    image, measured, mask = random_case(np.random.default_rng(2))
    lam = 0.7
    out = keras.ops.convert_to_numpy(DataConsistency(lam, lambda_form=form)([image, measured, mask[..., :1]]))
    k_hat = np.fft.fft2(to_complex(image), norm="ortho")
    k0, m = to_complex(measured), mask[..., 0]
    if form == "pytorch":
        expected_k = (1 - m) * k_hat + m * (k_hat + lam * k0) / (1 + lam)
    else:
        w = lam / (offset + lam)
        expected_k = k_hat * (1 - w * m) + w * k0 * m
    np.testing.assert_allclose(to_complex(out), np.fft.ifft2(expected_k, norm="ortho"), atol=1e-5)


def test_trainable_lambda_is_a_scalar_weight_and_config_round_trips():
    layer = DataConsistency(0.5, trainable_lambda=True, lambda_form="ascend", name="dc")
    image, measured, mask = random_case(np.random.default_rng(3))
    layer([image, measured, mask])
    assert [tuple(w.shape) for w in layer.trainable_weights] == [()]
    assert float(keras.ops.convert_to_numpy(layer.trainable_weights[0])) == pytest.approx(0.5)
    clone = DataConsistency.from_config(layer.get_config())
    assert (clone.noise_lambda, clone.trainable_lambda, clone.lambda_form) == (0.5, True, "ascend")


def test_dc_computes_in_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = DataConsistency()
    image, measured, mask = random_case(np.random.default_rng(4))
    out = layer([image, measured, mask])
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"noise_lambda": -1.0}, "noise_lambda"),
        ({"trainable_lambda": True}, "trainable_lambda"),
        ({"noise_lambda": 1.0, "lambda_form": "theano"}, "lambda_form"),
    ],
)
def test_bad_arguments_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        DataConsistency(**kwargs)
