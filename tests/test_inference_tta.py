"""Dihedral test-time augmentation: outputs stay aligned with the input, and the average is equivariant."""

import numpy as np
import pytest

from keras_zoo.inference import dihedral_average


def _row_ramp(batch: np.ndarray) -> np.ndarray:
    """Not equivariant: adds each pixel's row index, so a misaligned back-mapping would show."""
    return batch + np.arange(batch.shape[1], dtype=np.float32)[None, :, None, None]


def test_identity_prediction_is_returned_unchanged():
    images = np.random.default_rng(0).random((2, 8, 12, 1), dtype=np.float32)
    np.testing.assert_allclose(dihedral_average(lambda v: v, images), images, rtol=0, atol=1e-6)


def test_views_are_mapped_back_before_averaging():
    images = np.zeros((1, 6, 6, 1), np.float32)
    # Row index under each view, mapped back: rows (0/180 deg turns), columns (90/270), both mirrored.
    # Their mean over the 8 views is the mean of row, flipped row, column and flipped column indices: 2.5.
    np.testing.assert_allclose(dihedral_average(_row_ramp, images), np.full_like(images, 2.5), atol=1e-6)


@pytest.mark.parametrize("turns, mirror", [(1, False), (2, False), (0, True), (3, True)])
def test_average_is_equivariant_to_flips_and_turns(turns, mirror):
    images = np.random.default_rng(1).random((2, 8, 8, 1), dtype=np.float32)

    def transform(a):
        a = a[:, :, ::-1] if mirror else a
        return np.rot90(a, turns, axes=(1, 2))

    np.testing.assert_allclose(
        dihedral_average(_row_ramp, transform(images)),
        transform(dihedral_average(_row_ramp, images)),
        atol=1e-5,
    )


def test_rejects_non_image_batches():
    with pytest.raises(ValueError, match="must be \\(n, H, W, channels\\)"):
        dihedral_average(lambda v: v, np.zeros((8, 8, 1)))
