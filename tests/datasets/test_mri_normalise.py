"""CascadeNet input normalisation by the zero-filled image, k-space resampling of slices, mask densities."""

import numpy as np
import pytest

from keras_zoo.datasets.mr_slices import fit_size, fourier_resize
from keras_zoo.datasets.mri import (
    cartesian_mask,
    cascadenet_example,
    channels_to_complex,
    scale_by_zero_filled,
    undersampled_examples,
    uniform_mask,
    zero_filled_peak,
)


def _images(n=3, nx=32, ny=24, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, nx, ny)) * np.exp(1j * rng.random((n, nx, ny)))).astype(np.complex64)


def test_zero_filled_normalisation_matches_numpy():
    images = _images()
    (image, kspace, mask), target = cascadenet_example(images, 5, 4.0, 8, normalise="zero_filled")
    (raw_image, raw_kspace, _), raw_target = cascadenet_example(images, 5, 4.0, 8)
    # independent computation: same masks (same seed), zero-filled image by numpy's FFT, then the per-example peak
    m = mask[..., 0]
    zf = np.fft.ifft2(np.fft.fft2(images, norm="ortho") * m, norm="ortho")
    peak = np.abs(zf).max(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(channels_to_complex(image), zf / peak, atol=1e-5)
    np.testing.assert_allclose(channels_to_complex(target), images / peak, atol=1e-5)
    np.testing.assert_allclose(
        channels_to_complex(kspace), np.fft.fft2(images, norm="ortho") * m / peak, atol=1e-5
    )
    assert np.abs(channels_to_complex(image)).max(axis=(1, 2)) == pytest.approx([1, 1, 1])
    # the scale is the only difference from the un-normalised example, and it leaves PSNR unchanged
    np.testing.assert_allclose(raw_image / peak[..., None], image, atol=1e-5)
    np.testing.assert_allclose(raw_target / peak[..., None], target, atol=1e-5)
    np.testing.assert_allclose(raw_kspace / peak[..., None], kspace, atol=1e-5)


def test_scale_by_zero_filled_keeps_zero_examples_and_scales_sequences_as_a_whole():
    zf = np.zeros((2, 3, 4, 4), np.complex64)
    zf[1, 2] = 4.0  # one frame of the second sequence
    out_zf, out_k, out_t = scale_by_zero_filled(zf, zf * 2, zf + 1)
    assert np.all(out_zf[0] == 0) and np.all(out_t[0] == 1)  # all-zero example: divided by 1
    assert np.abs(out_zf[1]).max() == 1 and np.all(out_zf[1, :2] == 0)
    np.testing.assert_allclose(out_k[1], zf[1] * 2 / 4)
    assert out_t.dtype == np.complex64
    peak = zero_filled_peak(zf)  # the scales kspace_inputs returns for the outputs
    assert peak.dtype == np.float32 and peak.tolist() == [1.0, 4.0]


def test_normalise_is_checked_and_reaches_the_training_stream():
    images = _images(n=2)
    with pytest.raises(ValueError, match="normalise"):
        cascadenet_example(images, 0, normalise="max")
    with pytest.raises(ValueError, match="normalise"):
        undersampled_examples(images, 2, 1, normalise="bad")
    (image, _, _), _ = undersampled_examples(images, 2, 1, augment=False, normalise="zero_filled")[0]
    assert np.abs(channels_to_complex(image)).max(axis=(1, 2)) == pytest.approx([1, 1])


def test_fourier_resize_matches_a_numpy_kspace_crop_and_keeps_the_field_of_view():
    rng = np.random.default_rng(1)
    x = rng.random((2, 16, 12)).astype(np.float32)
    y = fourier_resize(x, (8, 6))
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(1, 2)), norm="ortho"), axes=(1, 2))
    k = k[:, 4:12, 3:9]  # centred 8x6 block
    expected = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(1, 2)), norm="ortho"), axes=(1, 2))
    expected = expected.real * np.sqrt(48 / 192)
    assert y.shape == (2, 8, 6) and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert y.mean() == pytest.approx(x.mean(), rel=1e-5)  # intensities keep their scale
    smooth = np.outer(np.hanning(16), np.hanning(12))[None]  # band-limited: a 2x resample is near exact
    np.testing.assert_allclose(fourier_resize(smooth, (8, 6))[0], smooth[0, ::2, ::2], atol=0.05)
    c = (x + 1j * x[:, ::-1]).astype(np.complex64)
    z = fourier_resize(c, (20, 20))  # padding k-space upsamples; complex stays complex
    assert z.shape == (2, 20, 20) and z.dtype == np.complex64
    np.testing.assert_allclose(fourier_resize(z, (16, 12)), c, atol=1e-5)
    assert fit_size(x, (8, 6)).shape == (2, 8, 6)


def test_uniform_mask_is_cartesian_mask_with_uniform_density():
    np.testing.assert_array_equal(
        uniform_mask((2, 40, 8), 4.0, 8, rng=3), cartesian_mask((2, 40, 8), 4.0, 8, rng=3, density="uniform")
    )
    with pytest.raises(ValueError, match="density"):
        cartesian_mask((40, 8), density="poisson")


def test_phase_radians_bounds_the_random_phase():
    from keras_zoo.datasets.mri import augment_image

    image = np.random.default_rng(2).random((16, 16)).astype(np.float32) + 0.5
    flat = augment_image(image, np.random.default_rng(0), phase_radians=0.0)
    assert np.allclose(flat.imag, 0) and np.allclose(np.sort(np.abs(flat).ravel()), np.sort(image.ravel()))
    wide = augment_image(image, np.random.default_rng(0), phase_radians=2 * np.pi)
    narrow = augment_image(image, np.random.default_rng(0), phase_radians=np.pi)
    np.testing.assert_allclose(np.abs(wide), np.abs(narrow), rtol=1e-6)  # same flips, magnitude kept
    # same draws scaled: the phase of `wide` is twice that of `narrow` (mod 2 pi)
    np.testing.assert_allclose(np.exp(1j * 2 * np.angle(narrow)), np.exp(1j * np.angle(wide)), atol=1e-4)


def test_phase_probability_leaves_that_share_of_magnitude_images_real():
    from keras_zoo.datasets.mri import augment_image, undersampled_examples

    image = np.random.default_rng(2).random((16, 16)).astype(np.float32) + 0.5
    rng = np.random.default_rng(0)
    real = [not np.any(augment_image(image, rng, phase_probability=0.3).imag) for _ in range(400)]
    assert 0.62 < np.mean(real) < 0.78  # 70 % stay real (binomial sd 2.3 %)
    assert all(np.any(augment_image(image, rng, phase_probability=1.0).imag) for _ in range(20))
    assert not any(np.any(augment_image(image, rng, phase_probability=0.0).imag) for _ in range(20))
    # probability 1 draws exactly what the earlier releases drew (the recipe's measurements stay valid)
    np.testing.assert_array_equal(
        augment_image(image, np.random.default_rng(5), phase_probability=1.0),
        augment_image(image, np.random.default_rng(5)),
    )
    with pytest.raises(ValueError, match="phase_probability"):
        undersampled_examples(image[None], 1, 1, phase_probability=1.5)


def test_fourier_resize_keeps_magnitude_images_held_as_complex_real_valued():
    # load_mr_images returns complex64 even for magnitude files; the phase augmentation only treats images
    # without an imaginary part as magnitude-only, so an even-size k-space cut must not leave a residue
    x = np.random.default_rng(3).random((2, 16, 16)).astype(np.complex64)
    y = fourier_resize(x, (8, 8))
    assert y.dtype == np.complex64 and not np.any(y.imag)
    np.testing.assert_allclose(y.real, fourier_resize(x.real, (8, 8)), atol=1e-6)
