"""The real-valued DFT used for ONNX export (``real_dft``) against the FFT path and NumPy, and a tiny CascadeNet
giving the same reconstruction either way."""

import keras
import numpy as np
import pytest

from keras_zoo.layers import fft2_channels, ifft2_channels
from keras_zoo.layers.fft import real_dft
from keras_zoo.registry import get_model

pytestmark = pytest.mark.backend_agnostic

SHAPES = [(2, 8, 8, 2), (3, 7, 5, 2), (1, 6, 9, 2), (2, 1, 4, 2), (2, 3, 6, 5, 2)]  # last: 2D+t (frames)


def _numpy(fn, x):
    return keras.ops.convert_to_numpy(fn(x))


def _complex(x):
    return x[..., 0].astype(np.float64) + 1j * x[..., 1]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_fft_path_and_numpy(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    expected_k, expected_x = _numpy(fft2_channels, x), _numpy(ifft2_channels, x)
    with real_dft():
        k, inverse = _numpy(fft2_channels, x), _numpy(ifft2_channels, x)
    assert k.shape == inverse.shape == shape and k.dtype == inverse.dtype == np.float32
    np.testing.assert_allclose(k, expected_k, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inverse, expected_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_complex(k), np.fft.fft2(_complex(x), norm="ortho"), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        _complex(inverse), np.fft.ifft2(_complex(x), norm="ortho"), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("shape", [(2, 16, 12, 2), (1, 15, 9, 2)], ids=str)
def test_round_trips(shape):
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    with real_dft():
        np.testing.assert_allclose(_numpy(ifft2_channels, _numpy(fft2_channels, x)), x, atol=1e-5)
        np.testing.assert_allclose(_numpy(fft2_channels, _numpy(ifft2_channels, x)), x, atol=1e-5)


def test_context_is_off_by_default_and_restored_after_nesting_and_errors():
    from keras_zoo.layers import fft

    assert not fft._use_real_dft
    with pytest.raises(RuntimeError), real_dft():
        with real_dft():
            assert fft._use_real_dft
        assert fft._use_real_dft
        raise RuntimeError("leaves the context")
    assert not fft._use_real_dft


def test_free_spatial_sizes_are_refused():
    symbolic = keras.KerasTensor((1, None, None, 2))
    with real_dft(), pytest.raises(ValueError, match="static height and width"):
        fft2_channels(symbolic)


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("tiny", {}),
        ("dynamic", {"input_shape": (4, 12, 8, 2), "n_cascades": 2, "n_convs": 2, "filters": 4}),
    ],
)
def test_cascadenet_output_is_unchanged(preset, overrides):
    model = get_model("cascadenet", preset=preset, **overrides)
    rng = np.random.default_rng(2)
    shape = (2, *model.inputs[0].shape[1:])
    image, kspace = (rng.normal(size=shape).astype("float32") for _ in range(2))
    mask = np.repeat((rng.random(shape[:-1] + (1,)) < 0.3).astype("float32"), 2, axis=-1)
    expected = keras.ops.convert_to_numpy(model([image, kspace, mask], training=False))
    with real_dft():
        got = keras.ops.convert_to_numpy(model([image, kspace, mask], training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
