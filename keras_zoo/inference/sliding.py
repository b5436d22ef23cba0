"""Sliding windows with Gaussian blending: whole volumes through a network trained on smaller patches."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import keras
import numpy as np


def gaussian_importance(window: Sequence[int], sigma_scale: float = 0.125) -> np.ndarray:
    """Weights (window) peaking at the centre, sigma = ``sigma_scale`` * size per axis, max 1, min > 0."""
    axes = []
    for size in window:
        coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
        sigma = max(size * sigma_scale, 1e-6)
        axes.append(np.exp(-0.5 * (coords / sigma) ** 2))
    weights = axes[0]
    for axis in axes[1:]:
        weights = np.multiply.outer(weights, axis)
    weights /= weights.max()
    return np.maximum(weights, 1e-3).astype(np.float32)


def _starts(size: int, window: int, step: int) -> list[int]:
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, step))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def window_corners(shape: Sequence[int], window: Sequence[int], overlap: float) -> list[tuple[int, ...]]:
    """First corners of the windows that tile ``shape`` (each axis >= its window) with ``overlap``.

    Windows step by ``round(window * (1 - overlap))`` voxels; the last one on each axis is aligned with the
    end, so every voxel is covered. One window when ``shape == window``.
    """
    steps = [max(1, int(round(w * (1.0 - overlap)))) for w in window]
    axes = [_starts(int(s), int(w), step) for s, w, step in zip(shape, window, steps)]
    return [tuple(int(v) for v in corner) for corner in itertools.product(*axes)]


def sliding_window_predict(
    model: keras.Model,
    volume: np.ndarray,
    window: Sequence[int] = (64, 64, 32),
    overlap: float = 0.5,
    blending: str = "gaussian",
    batch_size: int = 4,
) -> np.ndarray:
    """Predicts a volume larger than the model's patch by overlapping windows, blended per voxel.

    The volume is zero-padded up to ``window`` where smaller. Each window's prediction is weighted by a
    Gaussian centred on the window (or uniformly) and the weighted sum is divided by the summed weights.

    Args:
        model: maps (batch, *window, channels) to (batch, *window, classes).
        volume: (x, y, z) or (x, y, z, channels) array, e.g. in [0, 1].
        window: spatial patch size the model was trained on.
        overlap: fraction of a window shared with its neighbour, in [0, 1).
        blending: ``"gaussian"`` or ``"constant"``.
        batch_size: windows per forward pass.

    Returns:
        float32 array (x, y, z, classes).
    """
    if volume.ndim == 3:
        volume = volume[..., None]
    if volume.ndim != 4:
        raise ValueError(f"volume must be (x, y, z) or (x, y, z, channels), got shape {volume.shape}")
    window = tuple(int(w) for w in window)
    if len(window) != 3 or min(window) < 1:
        raise ValueError(f"window must be three positive sizes, got {window}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if blending not in ("gaussian", "constant"):
        raise ValueError(f"blending must be 'gaussian' or 'constant', got {blending!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    original = volume.shape[:3]
    padding = [(0, max(0, w - s)) for s, w in zip(original, window)] + [(0, 0)]
    padded = np.pad(volume.astype(np.float32), padding)
    grid = window_corners(padded.shape[:3], window, overlap)
    weights = gaussian_importance(window) if blending == "gaussian" else np.ones(window, np.float32)
    total = None
    norm = np.zeros(padded.shape[:3], np.float32)
    for first in range(0, len(grid), batch_size):
        corners = grid[first : first + batch_size]
        patches = np.stack(
            [padded[a : a + window[0], b : b + window[1], c : c + window[2]] for a, b, c in corners]
        )
        predictions = keras.ops.convert_to_numpy(model(patches, training=False)).astype(np.float32)
        if total is None:
            total = np.zeros(padded.shape[:3] + predictions.shape[-1:], np.float32)
        for (a, b, c), prediction in zip(corners, predictions):
            region = (slice(a, a + window[0]), slice(b, b + window[1]), slice(c, c + window[2]))
            total[region] += prediction * weights[..., None]
            norm[region] += weights
    result = total / norm[..., None]
    return result[: original[0], : original[1], : original[2]]
