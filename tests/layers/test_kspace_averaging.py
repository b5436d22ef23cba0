"""KSpaceAveraging against a direct NumPy loop over frames (circular in time)."""

import keras
import numpy as np
import pytest

from keras_zoo.layers import KSpaceAveraging

pytestmark = pytest.mark.backend_agnostic


def numpy_kspace_averaging(image, mask, distances, divide_by_n):
    """image complex (n, t, x, y), mask (n, t, x, y): the reference's averaging, written as a loop."""
    k = np.fft.fft2(image, norm="ortho")
    frames = k.shape[1]
    outputs = [image]
    for d in distances:
        filled = np.empty_like(k)
        for t in range(frames):
            window = [(t + s) % frames for s in range(-d, d + 1)]
            k_sum = k[:, window].sum(axis=1)
            m_sum = mask[:, window].sum(axis=1)
            average = k_sum / np.maximum(2 * d + 1 if divide_by_n else 1, m_sum)
            filled[:, t] = average * (1 - mask[:, t]) + k[:, t] * mask[:, t]
        outputs.append(np.fft.ifft2(filled, norm="ortho"))
    return outputs


@pytest.mark.parametrize("divide_by_n", [False, True])
def test_matches_numpy_loop(divide_by_n):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 5, 6, 4)) + 1j * rng.normal(size=(2, 5, 6, 4))
    mask = (rng.random((2, 5, 6, 4)) < 0.3).astype("float32")
    distances = (0, 1, 3)
    x = np.stack([image.real, image.imag], axis=-1).astype("float32")
    out = keras.ops.convert_to_numpy(
        KSpaceAveraging(distances, divide_by_n=divide_by_n)([x, np.stack([mask, mask], -1)])
    )
    assert out.shape == (2, 5, 6, 4, 2 * (1 + len(distances)))
    expected = numpy_kspace_averaging(image, mask, distances, divide_by_n)
    for i, copy in enumerate(expected):
        np.testing.assert_allclose(out[..., 2 * i] + 1j * out[..., 2 * i + 1], copy, atol=1e-5)


def test_without_input_copy_and_config_round_trip():
    layer = KSpaceAveraging([2, 4], divide_by_n=True, include_input=False)
    x = np.zeros((1, 3, 4, 4, 2), "float32")
    assert tuple(layer([x, x[..., :1]]).shape) == (1, 3, 4, 4, 4)
    clone = KSpaceAveraging.from_config(layer.get_config())
    assert (clone.frame_distances, clone.divide_by_n, clone.include_input) == ([2, 4], True, False)


def test_negative_distance_is_rejected():
    with pytest.raises(ValueError, match="frame_distances"):
        KSpaceAveraging([-1])
