"""Test-time augmentation: the mean prediction over the 8 flips and quarter turns of 2D images."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np


def dihedral_average(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """Test-time augmentation: the mean prediction over the 8 flips and quarter turns of 2D images.

    Each view (rotations by 0/90/180/270 degrees of the image and of its left-right mirror) is predicted and
    mapped back to the original orientation before averaging, so a per-pixel output stays aligned.

    Args:
        predict: maps images (n, H, W, channels) to per-pixel outputs (n, H, W, k); for the quarter turns
            it receives (n, W, H, channels), so a fully convolutional network needs both sides divisible by
            its stride.
        images: (n, H, W, channels).

    Returns:
        float32 (n, H, W, k).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (n, H, W, channels), got shape {images.shape}")
    total = None
    for mirrored in (False, True):
        base = images[:, :, ::-1] if mirrored else images
        for turns in range(4):
            view = np.ascontiguousarray(np.rot90(base, turns, axes=(1, 2)))
            output = np.rot90(np.asarray(predict(view), np.float32), -turns, axes=(1, 2))
            output = output[:, :, ::-1] if mirrored else output
            total = output if total is None else total + output
    return total / 8.0


def predict_images(
    model: keras.Model, images: np.ndarray, tta: bool = False, batch_size: int = 1
) -> np.ndarray:
    """``model.predict`` on images (n, H, W, channels), or with ``tta`` its :func:`dihedral_average`."""

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict(batch, batch_size=batch_size, verbose=0)

    return dihedral_average(predict, images) if tta else predict(images)
