"""PNG panels of MR reconstruction: zero-filled | reconstruction | reference | error map, one row per sample."""

from __future__ import annotations

import numpy as np

from keras_zoo.callbacks.panels import save_image_grid

ERROR_GAIN = 5  # the error map shows 5 x |reconstruction - reference| (images have max magnitude 1)


def _magnitude(x: np.ndarray) -> np.ndarray:
    """|x| of 2-channel arrays (n, [frames,] H, W, 2); the middle frame of dynamic ones -> (n, H, W)."""
    magnitude = np.sqrt(np.sum(np.square(np.asarray(x, dtype=np.float32)), axis=-1))
    if magnitude.ndim == 4:
        magnitude = magnitude[:, magnitude.shape[1] // 2]
    return magnitude


def save_reconstruction_panel(path: str, zero_filled, reconstruction, reference, max_rows: int = 4) -> None:
    """Writes the panel grid for 2-channel arrays (n, [frames,] H, W, 2) (dynamic: the middle frame).

    Args:
        path: PNG file to write (atomically).
        zero_filled: network inputs.
        reconstruction: network outputs.
        reference: targets.
        max_rows: samples shown.
    """
    zf, rec, ref = (_magnitude(a) for a in (zero_filled, reconstruction, reference))
    error = ERROR_GAIN * np.abs(_magnitude(np.asarray(reconstruction) - np.asarray(reference)))
    error_title = f"error x{ERROR_GAIN}"
    columns = {"zero-filled": zf, "reconstruction": rec, "reference": ref, error_title: error}
    save_image_grid(path, columns, min(max_rows, len(zf)), cmaps={error_title: "inferno"})
