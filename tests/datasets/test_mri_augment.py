"""CascadeNet training augmentation: random flips and a smooth phase for magnitude images."""

import numpy as np

from keras_zoo.datasets.mri import augment_image, channels_to_complex, smooth_phase, undersampled_examples
from keras_zoo.datasets.phantoms import phantom_images


def _flips(image: np.ndarray) -> list[np.ndarray]:
    return [image, image[::-1], image[:, ::-1], image[::-1, ::-1]]


def test_smooth_phase_has_unit_modulus_is_seeded_and_varies_slowly():
    phase = smooth_phase((40, 50), np.random.default_rng(3))
    assert phase.shape == (40, 50) and phase.dtype == np.complex64
    np.testing.assert_allclose(np.abs(phase), 1, atol=1e-6)
    np.testing.assert_array_equal(phase, smooth_phase((40, 50), np.random.default_rng(3)))
    # neighbouring pixels differ by at most the largest gradient of the quadratic: 6 pi over 2/39
    step = np.abs(np.angle(phase[1:] / phase[:-1]))
    assert step.max() < 6 * np.pi * 2 / 39
    assert np.ptp(np.angle(phase)) > 0.1  # not constant


def test_augment_flips_magnitude_images_and_adds_phase_but_keeps_complex_phase():
    image = phantom_images(1, 32, seed=0)[0].real.astype(np.float32)
    seen = set()
    for seed in range(12):
        out = augment_image(image, np.random.default_rng(seed))
        assert out.dtype == np.complex64 and np.any(out.imag)
        matches = [i for i, f in enumerate(_flips(image)) if np.allclose(np.abs(out), f, atol=1e-6)]
        assert matches
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}
    complex_image = image * np.exp(1j * 0.7).astype(np.complex64)
    out = augment_image(complex_image, np.random.default_rng(0))
    assert any(np.allclose(out, f, atol=1e-6) for f in _flips(complex_image))  # no phase added


def test_training_examples_are_augmented_only_when_asked():
    images = phantom_images(2, 32, seed=1).real.astype(np.complex64)
    plain = undersampled_examples(images, batch_size=4, steps=1, seed=5, centre_lines=4, augment=False)
    targets = channels_to_complex(plain[0][1])
    assert all(any(np.allclose(t, im, atol=1e-6) for im in images) for t in targets)
    augmented = undersampled_examples(images, batch_size=4, steps=1, seed=5, centre_lines=4)
    targets = channels_to_complex(augmented[0][1])
    assert all(np.any(t.imag) for t in targets)
    assert all(
        any(np.allclose(np.abs(t), f, atol=1e-6) for im in images for f in _flips(im.real)) for t in targets
    )
