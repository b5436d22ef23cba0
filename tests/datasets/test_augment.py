"""Paired augmentation keeps image and mask aligned, masks exact, shapes right and draws reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from keras_zoo.datasets.augment import AugmentConfig, augment_pair, center_crop, random_patch, warp

pytestmark = pytest.mark.backend_agnostic

STRONG = AugmentConfig(
    rotation=30.0, shift=0.1, shear=10.0, zoom=0.2, flip_horizontal=True, flip_vertical=True, rot90=True
)


def blobs(shape=(64, 64), seed=0) -> np.ndarray:
    """Binary mask of smooth random blobs (about half the pixels set)."""
    noise = np.random.default_rng(seed).normal(size=shape)
    smooth = ndimage.gaussian_filter(noise, 4)
    return (smooth > np.median(smooth)).astype(np.uint8)


def image_of(mask: np.ndarray) -> np.ndarray:
    """An image that is a known function of the mask: 0.1 outside, 0.9 inside."""
    return (0.1 + 0.8 * mask).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_image_and_mask_stay_aligned(seed):
    mask = blobs(seed=seed)
    rng = np.random.default_rng(seed)
    image, out_mask = random_patch(image_of(mask), mask, (48, 40), rng, STRONG)
    assert image.shape == (48, 40) and out_mask.shape == (48, 40)
    # The bilinear image thresholded halfway must reproduce the nearest-neighbour mask except at edges.
    agreement = np.mean((image > 0.5) == (out_mask == 1))
    assert agreement > 0.97
    # A misaligned pair (mask turned by 90 degrees) does not agree: the check above has teeth.
    assert np.mean((image[:40, :40] > 0.5) == (np.rot90(out_mask[:40, :40]) == 1)) < 0.8


def test_masks_keep_their_values():
    labels = np.random.default_rng(1).integers(0, 5, size=(32, 32)).astype(np.int32)
    image = np.random.default_rng(2).random((32, 32, 3)).astype(np.float32)
    rng = np.random.default_rng(3)
    for _ in range(5):
        out_image, out_labels = augment_pair(image, labels, rng, STRONG)
        assert out_labels.dtype == np.int32 and set(np.unique(out_labels)) <= set(range(5))
        assert out_image.shape == (32, 32, 3) and out_image.dtype == np.float32
        assert out_image.min() >= 0.0 and out_image.max() <= 1.0


def test_channels_transform_alike():
    mask = blobs((40, 40), seed=4)
    image = np.stack([image_of(mask), 1.0 - image_of(mask)], axis=-1)
    out, out_mask = random_patch(image, mask, (32, 32), np.random.default_rng(5), STRONG)
    np.testing.assert_allclose(out[..., 0], 1.0 - out[..., 1], atol=1e-6)
    assert np.mean((out[..., 0] > 0.5) == (out_mask == 1)) > 0.97


def test_same_seed_same_draw_and_crop_without_augmentation_is_a_slice():
    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    first = random_patch(image, None, (8, 10), np.random.default_rng(7), STRONG)[0]
    second = random_patch(image, None, (8, 10), np.random.default_rng(7), STRONG)[0]
    np.testing.assert_array_equal(first, second)
    crop, _ = random_patch(image, None, (8, 10), np.random.default_rng(8))
    top, left = divmod(int(crop[0, 0]), 30)
    np.testing.assert_array_equal(crop, image[top : top + 8, left : left + 10])


def test_identity_warp_and_pure_rotation_match_numpy():
    image = np.random.default_rng(9).random((16, 16))
    center = (7.5, 7.5)
    np.testing.assert_allclose(warp(image, np.eye(2), center, (16, 16), order=1), image, atol=1e-12)
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])  # output offset (r, c) reads input offset (-c, r)
    turned = warp(image, quarter, center, (16, 16), order=0)
    np.testing.assert_array_equal(turned, np.rot90(image, -1))


def test_dihedral_only_is_exact_and_non_square_keeps_shape():
    mask = blobs((24, 36), seed=10)
    config = AugmentConfig(flip_horizontal=True, flip_vertical=True, rot90=True)
    rng = np.random.default_rng(11)
    for _ in range(6):
        image, out_mask = augment_pair(image_of(mask), mask, rng, config)
        assert image.shape == (24, 36)
        np.testing.assert_array_equal(image, image_of(out_mask))
        assert out_mask.sum() == mask.sum()


def test_center_crop_and_bad_arguments():
    array = np.arange(36).reshape(6, 6)
    np.testing.assert_array_equal(center_crop(array, (2, 4)), array[2:4, 1:5])
    with pytest.raises(ValueError, match="fit"):
        center_crop(array, (8, 2))
    with pytest.raises(ValueError, match="fit in the image"):
        random_patch(array, None, (7, 7), np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask shape"):
        random_patch(array, np.zeros((5, 6)), (4, 4), np.random.default_rng(0))
    with pytest.raises(ValueError, match="rotation"):
        AugmentConfig(rotation=-1)
    with pytest.raises(ValueError, match="fill_mode"):
        AugmentConfig(fill_mode="bogus")
